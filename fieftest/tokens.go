package fieftest

import (
	"crypto/rsa"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// TokenOption customizes a token minted by AccessToken or IDToken.
type TokenOption func(*tokenSpec)

// tokenSpec describes a token to mint. The zero value of each field means
// "the default".
type tokenSpec struct {
	scopes         []string
	acr            string
	permissions    []string
	permissionsSet bool
	expiresIn      time.Duration
	expiresInSet   bool
	issuedAt       time.Time
	authTime       time.Time // zero = issuedAt
	audience       []string
	audienceSet    bool
	clientID       string // the client the token is for; its ID tokens are encrypted if it asks
	encryptFor     string // force encryption with this client's key
	nonce          string
	cHash          string
	atHash         string
	claims         []namedValue // overrides, applied in order after the defaults
	headers        []namedValue
	key            *rsa.PrivateKey // nil = current signing key
}

type namedValue struct {
	name  string
	value any
}

func newTokenSpec(opts []TokenOption) *tokenSpec {
	sp := &tokenSpec{scopes: []string{"openid"}, acr: "0"}
	for _, opt := range opts {
		opt(sp)
	}
	return sp
}

// Scopes sets the scopes of an access token (the space-joined scope claim).
// The default is "openid".
func Scopes(scopes ...string) TokenOption {
	return func(sp *tokenSpec) { sp.scopes = slices.Clone(scopes) }
}

// ACR sets the acr claim: "0" (the default; session reuse, refresh, admin
// API) or "1" (password typed).
func ACR(acr string) TokenOption {
	return func(sp *tokenSpec) { sp.acr = acr }
}

// Permissions sets the permissions claim of an access token. The default is
// the user's permissions (none if the user does not exist).
func Permissions(p ...string) TokenOption {
	return func(sp *tokenSpec) {
		sp.permissions = append([]string{}, p...)
		sp.permissionsSet = true
	}
}

// ExpiresIn makes the token expire d from now (exp = now+d) instead of one
// token lifetime after iat. A negative d mints an already expired token.
func ExpiresIn(d time.Duration) TokenOption {
	return func(sp *tokenSpec) {
		sp.expiresIn = d
		sp.expiresInSet = true
	}
}

// IssuedAt sets iat and auth_time (default now); exp follows as iat plus the
// token lifetime unless ExpiresIn is given.
func IssuedAt(t time.Time) TokenOption {
	return func(sp *tokenSpec) {
		sp.issuedAt = t
		sp.authTime = t
	}
}

// Audience sets the aud claim (default: the default client's ID) and azp,
// which is its first member.
func Audience(aud ...string) TokenOption {
	return func(sp *tokenSpec) {
		sp.audience = append([]string{}, aud...)
		sp.audienceSet = true
	}
}

// ForClient mints the token for client clientID: aud is [clientID], azp is
// clientID and, for ID tokens, the token is encrypted if that client has
// EncryptIDToken set.
func ForClient(clientID string) TokenOption {
	return func(sp *tokenSpec) {
		sp.audience = []string{clientID}
		sp.audienceSet = true
		sp.clientID = clientID
	}
}

// Claim sets claim name to value after the defaults are computed, so it can
// override any of them; a nil value removes the claim (Claim("exp", nil)
// mints a token without exp).
func Claim(name string, value any) TokenOption {
	return func(sp *tokenSpec) { sp.claims = append(sp.claims, namedValue{name, value}) }
}

// Header sets the protected header name to value, overriding the defaults
// ({"alg":"RS256","kid":<kid>}); a nil value removes it (Header("kid", nil)
// mints a token without kid). The token is always signed with RS256,
// whatever "alg" says.
func Header(name string, value any) TokenOption {
	return func(sp *tokenSpec) { sp.headers = append(sp.headers, namedValue{name, value}) }
}

// SignWith signs the token with k, typically a key the Server does not
// publish, instead of the current signing key. The kid header is then
// "other" unless Header sets it.
func SignWith(k *rsa.PrivateKey) TokenOption {
	return func(sp *tokenSpec) { sp.key = k }
}

// Nonce sets the nonce claim of an ID token. AccessToken ignores it.
func Nonce(n string) TokenOption {
	return func(sp *tokenSpec) { sp.nonce = n }
}

// CHash sets the c_hash claim of an ID token to ValidationHash(code).
// AccessToken ignores it.
func CHash(code string) TokenOption {
	return func(sp *tokenSpec) { sp.cHash = ValidationHash(code) }
}

// ATHash sets the at_hash claim of an ID token to
// ValidationHash(accessToken). AccessToken ignores it.
func ATHash(accessToken string) TokenOption {
	return func(sp *tokenSpec) { sp.atHash = ValidationHash(accessToken) }
}

// Encrypt makes IDToken encrypt the token with the encryption key of client
// clientID, which must have EncryptIDToken set (IDToken panics otherwise).
// AccessToken ignores it: Fief never encrypts access tokens.
func Encrypt(clientID string) TokenOption {
	return func(sp *tokenSpec) { sp.encryptFor = clientID }
}

// AccessToken mints an access token for user userID with Fief's claims: iss,
// sub, aud, exp, iat, auth_time, acr, azp, scope and permissions, signed
// RS256 with header {"alg":"RS256","kid":<current kid>}. Without options it
// has scope "openid", acr "0", the user's permissions and the default
// client as audience. The user need not exist.
func (s *Server) AccessToken(userID string, opts ...TokenOption) string {
	return s.mintAccessToken(userID, newTokenSpec(opts))
}

// IDToken mints an ID token for user userID: the user's claims (sub, email,
// email_verified, is_active, tenant_id, fields; only sub if the user does
// not exist), then iss, aud, exp, iat, auth_time, acr and azp, plus nonce,
// c_hash and at_hash when asked for. It is encrypted when Encrypt is given,
// or ForClient names a client with EncryptIDToken set.
func (s *Server) IDToken(userID string, opts ...TokenOption) string {
	return s.mintIDToken(userID, newTokenSpec(opts))
}

// mintAccessToken signs the access token sp describes.
func (s *Server) mintAccessToken(userID string, sp *tokenSpec) string {
	s.mu.Lock()
	perms := sp.permissions
	if !sp.permissionsSet {
		if u, ok := s.users[userID]; ok {
			perms = slices.Clone(u.Permissions)
		}
	}
	key := s.currentKey()
	s.mu.Unlock()

	claims := s.registeredClaims(userID, sp)
	claims["scope"] = strings.Join(sp.scopes, " ")
	if perms == nil {
		perms = []string{}
	}
	claims["permissions"] = perms
	return s.signSpec(claims, sp, key)
}

// mintIDToken signs, and encrypts if need be, the ID token sp describes.
func (s *Server) mintIDToken(userID string, sp *tokenSpec) string {
	s.mu.Lock()
	claims := map[string]any{"sub": userID}
	if u, ok := s.users[userID]; ok {
		claims = s.claims(u)
	}
	enc, err := s.encryptionClient(sp)
	key := s.currentKey()
	s.mu.Unlock()
	if err != nil {
		panic(err.Error())
	}

	maps.Copy(claims, s.registeredClaims(userID, sp))
	for name, v := range map[string]string{"nonce": sp.nonce, "c_hash": sp.cHash, "at_hash": sp.atHash} {
		if v != "" {
			claims[name] = v
		}
	}
	token := s.signSpec(claims, sp, key)
	if enc != nil {
		token = encryptIDToken(token, enc)
	}
	return token
}

// encryptionClient returns the client whose key encrypts the ID token
// described by sp, or nil for a plain JWS. s.mu must be held.
func (s *Server) encryptionClient(sp *tokenSpec) (*client, error) {
	if sp.encryptFor != "" {
		cl, ok := s.clients[sp.encryptFor]
		if !ok || cl.encKey == nil {
			return nil, fmt.Errorf("fieftest: Encrypt(%q): no such client with EncryptIDToken", sp.encryptFor)
		}
		return cl, nil
	}
	if cl, ok := s.clients[sp.clientID]; ok && cl.encKey != nil {
		return cl, nil
	}
	return nil, nil
}

// registeredClaims returns the claims common to access and ID tokens.
func (s *Server) registeredClaims(userID string, sp *tokenSpec) map[string]any {
	now := time.Now()
	iat := sp.issuedAt
	if iat.IsZero() {
		iat = now
	}
	authTime := sp.authTime
	if authTime.IsZero() {
		authTime = iat
	}
	exp := iat.Add(s.lifetime)
	if sp.expiresInSet {
		exp = now.Add(sp.expiresIn)
	}
	aud := []string{s.ClientID}
	if sp.audienceSet {
		aud = sp.audience
	}
	claims := map[string]any{
		"iss":       s.issuer,
		"sub":       userID,
		"aud":       aud,
		"exp":       exp.Unix(),
		"iat":       iat.Unix(),
		"auth_time": authTime.Unix(),
		"acr":       sp.acr,
	}
	if len(aud) > 0 {
		claims["azp"] = aud[0]
	}
	return claims
}

// signSpec applies sp's claim and header overrides and signs the token
// with sp's key, or with current when sp names none.
func (s *Server) signSpec(claims map[string]any, sp *tokenSpec, current *signingKey) string {
	for _, c := range sp.claims {
		if c.value == nil {
			delete(claims, c.name)
		} else {
			claims[c.name] = c.value
		}
	}
	key, kid := current.priv, current.kid
	if sp.key != nil {
		key, kid = sp.key, "other"
	}
	headers := map[string]any{"alg": "RS256", "kid": kid}
	for _, h := range sp.headers {
		if h.value == nil {
			delete(headers, h.name)
		} else {
			headers[h.name] = h.value
		}
	}
	return sign(claims, headers, key)
}
