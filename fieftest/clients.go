package fieftest

import (
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Client is an OAuth client of the tenant.
type Client struct {
	// ID is the client_id. It is required.
	ID string
	// Secret is the client_secret. An empty Secret makes a public client
	// (Fief's client_type=public): it authenticates at the token endpoint
	// with its client_id alone (method "none") and must then use PKCE.
	Secret string
	// RedirectURIs lists the redirect URIs accepted at /authorize and
	// /api/token; they must match exactly. As a fieftest convenience, an
	// empty list accepts any absolute http or https URI.
	RedirectURIs []string
	// EncryptIDToken makes the Server generate an RSA encryption key for the
	// client (of the WithKeySize size) and encrypt the ID tokens it issues
	// to it: compact JWE, RSA-OAEP-256 and A256CBC-HS512, kid = the
	// encryption key's kid, no "cty" header, as Fief does. EncryptionKey
	// returns the private key that decrypts them.
	EncryptIDToken bool
}

// client is a registered Client with its encryption key, if any.
type client struct {
	Client
	encKey *rsa.PrivateKey // nil unless EncryptIDToken
	encKID string
	encJWK string // private JWK JSON of encKey
}

// AddClient registers c, replacing any client with the same ID. It panics
// if c.ID is empty. When c.EncryptIDToken is set it generates c's encryption
// key, which takes a moment for large key sizes.
func (s *Server) AddClient(c Client) {
	if c.ID == "" {
		panic("fieftest: AddClient: the client has no ID")
	}
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	cl := &client{Client: c}
	if c.EncryptIDToken {
		cl.encKey = GenerateKey(s.keySize)
		cl.encKID = randomToken()
		cl.encJWK = privateJWK(cl.encKey, cl.encKID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.ID] = cl
}

// EncryptionKey returns the private JWK, as JSON, of the key that decrypts
// the ID tokens of client clientID: what Fief shows the administrator once
// when encryption is enabled, and what a Fief client takes as its
// encryption key. It returns "" if the client is unknown or has no
// encryption key.
func (s *Server) EncryptionKey(clientID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cl, ok := s.clients[clientID]; ok {
		return cl.encJWK
	}
	return ""
}

// privateJWK encodes k as a private RSA JWK with the given kid and use
// "enc", like Fief's generate_jwk(kid, "enc").
func privateJWK(k *rsa.PrivateKey, kid string) string {
	key, err := jwk.FromRaw(k)
	if err == nil {
		err = key.Set(jwk.KeyIDKey, kid)
	}
	if err == nil {
		err = key.Set(jwk.KeyUsageKey, jwk.ForEncryption)
	}
	var b []byte
	if err == nil {
		b, err = json.Marshal(key)
	}
	if err != nil {
		panic(fmt.Sprintf("fieftest: encryption key: %v", err))
	}
	return string(b)
}

// public reports whether the client has no secret.
func (c *client) public() bool { return c.Secret == "" }

// secretMatches compares secret with the client's in constant time; a
// public client matches no secret.
func (c *client) secretMatches(secret string) bool {
	return !c.public() && subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) == 1
}

// allowsRedirect reports whether redirectURI is registered for the client
// (or, with no registered URI, whether it is an absolute http(s) URI).
func (c *client) allowsRedirect(redirectURI string) bool {
	if len(c.RedirectURIs) > 0 {
		return slices.Contains(c.RedirectURIs, redirectURI)
	}
	return isHTTPURL(redirectURI)
}

// isHTTPURL reports whether v is an absolute http or https URL with a host.
func isHTTPURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
