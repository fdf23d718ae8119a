package fieftest

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwe"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// verifyLeeway is the clock skew allowed on exp and nbf at /api/*
// (jwcrypto's default, which Fief uses).
const verifyLeeway = 60 * time.Second

// Sign returns the compact RS256 JWS of claims with the given protected
// headers. It is the low-level minting primitive, for tokens the options
// of AccessToken and IDToken cannot describe. A nil key signs with the
// current signing key; nil headers mean {"alg":"RS256","kid":<current
// kid>}. The signature is RS256 whatever headers["alg"] says. Sign panics
// if the claims or headers cannot be encoded as JSON.
func (s *Server) Sign(claims map[string]any, headers map[string]any, key *rsa.PrivateKey) string {
	s.mu.Lock()
	current := s.currentKey()
	s.mu.Unlock()
	if key == nil {
		key = current.priv
	}
	if headers == nil {
		headers = map[string]any{"alg": "RS256", "kid": current.kid}
	}
	return sign(claims, headers, key)
}

// ValidationHash returns the c_hash/at_hash value of v as Fief computes it:
// the left 16 bytes of SHA-256(v), base64url-encoded without padding.
func ValidationHash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// sign returns the compact RS256 JWS of claims with the given protected
// headers. Headers jws.Sign cannot carry as given (an "alg" other than
// RS256 or none at all, a value of an unexpected type for a registered
// header) are encoded as they are and signed with the RS256 signer.
func sign(claims, headers map[string]any, key *rsa.PrivateKey) string {
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(fmt.Sprintf("fieftest: encoding claims: %v", err))
	}
	if hdr, ok := jwsHeaders(headers); ok {
		token, err := jws.Sign(payload, jws.WithKey(jwa.RS256, key, jws.WithProtectedHeaders(hdr)))
		if err != nil {
			panic(fmt.Sprintf("fieftest: signing: %v", err))
		}
		return string(token)
	}

	rawHeader, err := json.Marshal(headers)
	if err != nil {
		panic(fmt.Sprintf("fieftest: encoding headers: %v", err))
	}
	input := base64.RawURLEncoding.EncodeToString(rawHeader) + "." + base64.RawURLEncoding.EncodeToString(payload)
	signer, err := jws.NewSigner(jwa.RS256)
	if err != nil {
		panic(fmt.Sprintf("fieftest: signing: %v", err))
	}
	sig, err := signer.Sign([]byte(input), key)
	if err != nil {
		panic(fmt.Sprintf("fieftest: signing: %v", err))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// jwsHeaders converts headers for jws.Sign, which always writes
// "alg":"RS256" itself. It reports false when that would not reproduce
// headers exactly.
func jwsHeaders(headers map[string]any) (jws.Headers, bool) {
	if alg, ok := headers["alg"].(string); !ok || alg != jwa.RS256.String() {
		return nil, false
	}
	hdr := jws.NewHeaders()
	for name, v := range headers {
		if name == jws.AlgorithmKey {
			continue
		}
		if err := hdr.Set(name, v); err != nil {
			return nil, false
		}
	}
	return hdr, true
}

// encryptIDToken wraps the signed ID token in a compact JWE for cl, like
// Fief: RSA-OAEP-256, A256CBC-HS512, kid of the client's key, no cty.
func encryptIDToken(token string, cl *client) string {
	hdr := jwe.NewHeaders()
	if err := hdr.Set(jwe.KeyIDKey, cl.encKID); err != nil {
		panic(fmt.Sprintf("fieftest: encrypting ID token: %v", err))
	}
	out, err := jwe.Encrypt([]byte(token),
		jwe.WithKey(jwa.RSA_OAEP_256, &cl.encKey.PublicKey),
		jwe.WithContentEncryption(jwa.A256CBC_HS512),
		jwe.WithProtectedHeaders(hdr),
	)
	if err != nil {
		panic(fmt.Sprintf("fieftest: encrypting ID token: %v", err))
	}
	return string(out)
}

// verifyToken checks a bearer token as Fief does at /api/*: a compact
// RS256 JWS signed by a published key (the one named by kid, or any when
// there is no kid), with exp and nbf, when present, honoured with a 60 s
// leeway. It returns the token's claims.
func (s *Server) verifyToken(token string) (map[string]any, bool) {
	if strings.Count(token, ".") != 2 {
		return nil, false
	}
	msg, err := jws.Parse([]byte(token))
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, false
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	if hdr.Algorithm() != jwa.RS256 {
		return nil, false
	}
	for _, pub := range s.publishedKeys(hdr.KeyID()) {
		payload, err := jws.Verify([]byte(token), jws.WithKey(jwa.RS256, pub))
		if err != nil {
			continue
		}
		claims, ok := decodeClaims(payload)
		if !ok || !timely(claims, time.Now()) {
			return nil, false
		}
		return claims, true
	}
	return nil, false
}

// decodeClaims decodes a JWT payload, keeping numbers as json.Number.
func decodeClaims(payload []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, false
	}
	return claims, true
}

// timely reports whether now is within the exp and nbf claims (each
// optional, as for jwcrypto) give or take verifyLeeway.
func timely(claims map[string]any, now time.Time) bool {
	leeway := verifyLeeway.Seconds()
	t := float64(now.Unix())
	if v, ok := claims["exp"]; ok {
		exp, ok := number(v)
		if !ok || t > exp+leeway {
			return false
		}
	}
	if v, ok := claims["nbf"]; ok {
		nbf, ok := number(v)
		if !ok || t < nbf-leeway {
			return false
		}
	}
	return true
}

func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}
