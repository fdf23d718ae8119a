package fieftest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// signingKey is one of the tenant's RS256 keys.
type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
	pub  jwk.Key // public JWK as published: kty, kid, use "sig", n, e
}

func newSigningKey(priv *rsa.PrivateKey) *signingKey {
	kid := randomToken()
	pub, err := jwk.FromRaw(&priv.PublicKey)
	if err != nil {
		panic(fmt.Sprintf("fieftest: signing key: %v", err))
	}
	if err := pub.Set(jwk.KeyIDKey, kid); err != nil {
		panic(fmt.Sprintf("fieftest: signing key: %v", err))
	}
	if err := pub.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
		panic(fmt.Sprintf("fieftest: signing key: %v", err))
	}
	return &signingKey{kid: kid, priv: priv, pub: pub}
}

// GenerateKey returns a new RSA private key of the given size. It panics if
// generation fails (bits below 1024, for instance).
func GenerateKey(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(fmt.Sprintf("fieftest: GenerateKey(%d): %v", bits, err))
	}
	return k
}

// KeyID returns the kid of the current signing key.
func (s *Server) KeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.currentKey().kid
}

// PublicKey returns the public part of the current signing key.
func (s *Server) PublicKey() *rsa.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &s.currentKey().priv.PublicKey
}

// RotateKey generates a new signing key of the current key's size, makes it
// the current one and returns its kid. The previous keys stay published (and
// accepted at /api/*) until RemoveKey, so tokens they signed remain valid.
// A real Fief has no rotation feature; this simulates a key change made in
// its database.
func (s *Server) RotateKey() string {
	k := newSigningKey(GenerateKey(s.PublicKey().N.BitLen()))
	s.publishKey(k)
	return k.kid
}

// RemoveKey unpublishes the key kid: it leaves the JWKS and tokens signed
// with it are rejected at /api/*. Removing the current key makes the most
// recent remaining key current. Unknown kids are ignored. RemoveKey panics
// if kid is the only key left.
func (s *Server) RemoveKey(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range s.keys {
		if k.kid != kid {
			continue
		}
		if len(s.keys) == 1 {
			panic("fieftest: RemoveKey: cannot remove the only signing key (call RotateKey first)")
		}
		s.keys = append(s.keys[:i:i], s.keys[i+1:]...)
		s.updateJWKS()
		return
	}
}

// publishKey adds k to the published keys and makes it current.
func (s *Server) publishKey(k *signingKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, k)
	s.updateJWKS()
}

// currentKey returns the key that signs new tokens. s.mu must be held.
func (s *Server) currentKey() *signingKey { return s.keys[len(s.keys)-1] }

// updateJWKS re-encodes the published key set. s.mu must be held.
func (s *Server) updateJWKS() {
	set := jwk.NewSet()
	for _, k := range s.keys {
		if err := set.AddKey(k.pub); err != nil {
			panic(fmt.Sprintf("fieftest: key set: %v", err))
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic(fmt.Sprintf("fieftest: key set: %v", err))
	}
	s.jwks = b
}

// publishedKeys returns the public keys that may have signed a token with
// the given kid: the key with that kid, or every published key when kid is
// empty.
func (s *Server) publishedKeys(kid string) []*rsa.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*rsa.PublicKey
	for _, k := range s.keys {
		if kid == "" || k.kid == kid {
			out = append(out, &k.priv.PublicKey)
		}
	}
	return out
}

// handleJWKS serves GET /.well-known/jwks.json.
func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	body := s.jwks
	s.mu.Unlock()
	writeRawJSON(w, http.StatusOK, body)
}
