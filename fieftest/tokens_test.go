package fieftest_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief/fieftest"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwe"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// decode returns the header and claims of a compact JWS without verifying
// it.
func decode(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return jwtHeader(t, token), claims
}

// verifiesWith reports whether token's signature is RS256 by pub, whatever
// its header says (checked with crypto/rsa, not with a JOSE library, which
// would reject odd headers before looking at the signature).
func verifiesWith(token string, pub *rsa.PublicKey) bool {
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(token[:i]))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil
}

// near reports whether the numeric claim v is within 5 s of want.
func near(v any, want time.Time) bool {
	f, ok := v.(float64)
	return ok && math.Abs(f-float64(want.Unix())) <= 5
}

func TestAccessToken(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	header, claims := verify(t, s, s.AccessToken(alice.ID))

	if !equalJSON(header, map[string]any{"alg": "RS256", "kid": s.KeyID()}) {
		t.Errorf("header = %v, want exactly alg and kid", header)
	}
	wantKeys := []string{"acr", "aud", "auth_time", "azp", "exp", "iat", "iss", "permissions", "scope", "sub"}
	if got := keysOf(claims); !slices.Equal(got, wantKeys) {
		t.Errorf("claims = %v, want %v", got, wantKeys)
	}
	now := time.Now()
	for _, tc := range []struct {
		claim string
		want  any
	}{
		{"iss", "https://fief.test"},
		{"sub", alice.ID},
		{"aud", []any{s.ClientID}},
		{"azp", s.ClientID},
		{"acr", "0"},
		{"scope", "openid"},
		{"permissions", []any{"castles:read"}},
	} {
		if !equalJSON(claims[tc.claim], tc.want) {
			t.Errorf("%s = %v, want %v", tc.claim, claims[tc.claim], tc.want)
		}
	}
	if !near(claims["iat"], now) || !near(claims["auth_time"], now) || !near(claims["exp"], now.Add(24*time.Hour)) {
		t.Errorf("times: iat %v auth_time %v exp %v", claims["iat"], claims["auth_time"], claims["exp"])
	}
}

func TestTokenOptions(t *testing.T) {
	s := newServer(t, fieftest.WithTokenLifetime(time.Hour))
	alice := addAlice(s)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

	tests := []struct {
		name  string
		user  string
		opts  []fieftest.TokenOption
		check map[string]any // claim → wanted value (nil = absent)
		times func(t *testing.T, claims map[string]any)
	}{
		{name: "lifetime", times: func(t *testing.T, c map[string]any) {
			if c["exp"].(float64)-c["iat"].(float64) != 3600 {
				t.Errorf("exp - iat = %v, want 3600", c["exp"].(float64)-c["iat"].(float64))
			}
		}},
		{name: "scopes", opts: []fieftest.TokenOption{fieftest.Scopes("openid", "offline_access", "castles")},
			check: map[string]any{"scope": "openid offline_access castles"}},
		{name: "no scope", opts: []fieftest.TokenOption{fieftest.Scopes()}, check: map[string]any{"scope": ""}},
		{name: "acr", opts: []fieftest.TokenOption{fieftest.ACR("1")}, check: map[string]any{"acr": "1"}},
		{name: "permissions", opts: []fieftest.TokenOption{fieftest.Permissions("a", "b")},
			check: map[string]any{"permissions": []any{"a", "b"}}},
		{name: "no permissions", opts: []fieftest.TokenOption{fieftest.Permissions()},
			check: map[string]any{"permissions": []any{}}},
		{name: "unknown user", user: "00000000-0000-4000-8000-000000000000",
			check: map[string]any{"sub": "00000000-0000-4000-8000-000000000000", "permissions": []any{}}},
		{name: "audience", opts: []fieftest.TokenOption{fieftest.Audience("api", "other")},
			check: map[string]any{"aud": []any{"api", "other"}, "azp": "api"}},
		{name: "empty audience", opts: []fieftest.TokenOption{fieftest.Audience()},
			check: map[string]any{"aud": []any{}, "azp": nil}},
		{name: "for client", opts: []fieftest.TokenOption{fieftest.ForClient("mobile")},
			check: map[string]any{"aud": []any{"mobile"}, "azp": "mobile"}},
		{name: "claim override and removal", opts: []fieftest.TokenOption{
			fieftest.Claim("iss", "https://evil.test"), fieftest.Claim("exp", nil), fieftest.Claim("custom", 42)},
			check: map[string]any{"iss": "https://evil.test", "exp": nil, "custom": float64(42)}},
		{name: "claims apply after options", opts: []fieftest.TokenOption{fieftest.Claim("acr", "2"), fieftest.ACR("1")},
			check: map[string]any{"acr": "2"}},
		{name: "ID token options are ignored", opts: []fieftest.TokenOption{fieftest.Nonce("n"), fieftest.CHash("c"), fieftest.ATHash("a")},
			check: map[string]any{"nonce": nil, "c_hash": nil, "at_hash": nil}},
		{name: "expired", opts: []fieftest.TokenOption{fieftest.ExpiresIn(-time.Minute)}, times: func(t *testing.T, c map[string]any) {
			if !near(c["exp"], time.Now().Add(-time.Minute)) || !near(c["iat"], time.Now()) {
				t.Errorf("exp %v iat %v", c["exp"], c["iat"])
			}
		}},
		{name: "issued at", opts: []fieftest.TokenOption{fieftest.IssuedAt(t0)}, times: func(t *testing.T, c map[string]any) {
			if !near(c["iat"], t0) || !near(c["auth_time"], t0) || !near(c["exp"], t0.Add(time.Hour)) {
				t.Errorf("iat %v auth_time %v exp %v", c["iat"], c["auth_time"], c["exp"])
			}
		}},
		{name: "issued at with expires in", opts: []fieftest.TokenOption{fieftest.IssuedAt(t0), fieftest.ExpiresIn(time.Minute)},
			times: func(t *testing.T, c map[string]any) {
				if !near(c["iat"], t0) || !near(c["exp"], time.Now().Add(time.Minute)) {
					t.Errorf("iat %v exp %v", c["iat"], c["exp"])
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user := tc.user
			if user == "" {
				user = alice.ID
			}
			_, claims := verify(t, s, s.AccessToken(user, tc.opts...))
			for name, want := range tc.check {
				got, present := claims[name]
				if want == nil && present {
					t.Errorf("%s = %v, want absent", name, got)
				} else if want != nil && !equalJSON(got, want) {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			if tc.times != nil {
				tc.times(t, claims)
			}
		})
	}
}

func TestTokenHeaders(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		name       string
		opts       []fieftest.TokenOption
		wantHeader map[string]any
		signer     *rsa.PublicKey
	}{
		{"default", nil, map[string]any{"alg": "RS256", "kid": s.KeyID()}, s.PublicKey()},
		{"no kid", []fieftest.TokenOption{fieftest.Header("kid", nil)}, map[string]any{"alg": "RS256"}, s.PublicKey()},
		{"typ", []fieftest.TokenOption{fieftest.Header("typ", "JWT")}, map[string]any{"alg": "RS256", "kid": s.KeyID(), "typ": "JWT"}, s.PublicKey()},
		{"alg lie", []fieftest.TokenOption{fieftest.Header("alg", "HS256")}, map[string]any{"alg": "HS256", "kid": s.KeyID()}, s.PublicKey()},
		{"no alg", []fieftest.TokenOption{fieftest.Header("alg", nil)}, map[string]any{"kid": s.KeyID()}, s.PublicKey()},
		{"odd kid type", []fieftest.TokenOption{fieftest.Header("kid", 7)}, map[string]any{"alg": "RS256", "kid": 7}, s.PublicKey()},
		{"sign with", []fieftest.TokenOption{fieftest.SignWith(otherKey())}, map[string]any{"alg": "RS256", "kid": "other"}, &otherKey().PublicKey},
		{"sign with and kid", []fieftest.TokenOption{fieftest.SignWith(otherKey()), fieftest.Header("kid", s.KeyID())},
			map[string]any{"alg": "RS256", "kid": s.KeyID()}, &otherKey().PublicKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for kind, token := range map[string]string{"access": s.AccessToken("u", tc.opts...), "id": s.IDToken("u", tc.opts...)} {
				header, _ := decode(t, token)
				if !equalJSON(header, tc.wantHeader) {
					t.Errorf("%s token header = %v, want %v", kind, header, tc.wantHeader)
				}
				if !verifiesWith(token, tc.signer) {
					t.Errorf("%s token is not RS256-signed by the expected key", kind)
				}
			}
		})
	}
}

func TestIDToken(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	token := s.IDToken(alice.ID, fieftest.Nonce("n-0S6"), fieftest.CHash("the-code"), fieftest.ATHash("the-token"), fieftest.ACR("1"))
	_, claims := verify(t, s, token)
	wantKeys := []string{"acr", "at_hash", "aud", "auth_time", "azp", "c_hash", "email", "email_verified", "exp",
		"fields", "iat", "is_active", "iss", "nonce", "sub", "tenant_id"}
	if got := keysOf(claims); !slices.Equal(got, wantKeys) {
		t.Errorf("claims = %v\nwant %v", got, wantKeys)
	}
	for _, tc := range []struct {
		claim string
		want  any
	}{
		{"sub", alice.ID},
		{"email", "alice@example.com"},
		{"email_verified", true},
		{"is_active", true},
		{"fields", map[string]any{"first_name": "Alice"}},
		{"iss", s.Issuer()},
		{"aud", []any{s.ClientID}},
		{"acr", "1"},
		{"nonce", "n-0S6"},
		{"c_hash", fieftest.ValidationHash("the-code")},
		{"at_hash", fieftest.ValidationHash("the-token")},
	} {
		if !equalJSON(claims[tc.claim], tc.want) {
			t.Errorf("%s = %v, want %v", tc.claim, claims[tc.claim], tc.want)
		}
	}
	tenant, _ := claims["tenant_id"].(string)
	if !uuidV4.MatchString(tenant) {
		t.Errorf("tenant_id %q is not a UUID", tenant)
	}
	if info := get(t, s.URL+"/api/userinfo"); info.status != 401 {
		t.Errorf("userinfo without token: %d", info.status)
	}

	// A user without fields has "fields": {}; an unknown user only sub.
	bob := s.AddUser(fieftest.User{Email: "bob@example.com", Inactive: true})
	if _, c := verify(t, s, s.IDToken(bob.ID)); !equalJSON(c["fields"], map[string]any{}) || c["is_active"] != false || c["tenant_id"] != tenant {
		t.Errorf("bob: fields %v, is_active %v, tenant_id %v", c["fields"], c["is_active"], c["tenant_id"])
	}
	_, c := verify(t, s, s.IDToken("ghost"))
	if _, has := c["email"]; has || c["sub"] != "ghost" {
		t.Errorf("unknown user claims: %v", c)
	}
}

func TestIDTokenEncryption(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	s.AddClient(fieftest.Client{ID: "enc", Secret: "enc-secret", EncryptIDToken: true})

	keyJSON := s.EncryptionKey("enc")
	key, err := jwk.ParseKey([]byte(keyJSON))
	if err != nil {
		t.Fatalf("EncryptionKey %q: %v", keyJSON, err)
	}
	priv, ok := key.(jwk.RSAPrivateKey)
	if !ok {
		t.Fatalf("EncryptionKey is a %T, want an RSA private key", key)
	}
	if key.KeyUsage() != "enc" || key.KeyID() == "" {
		t.Errorf("use %q, kid %q", key.KeyUsage(), key.KeyID())
	}
	if len(priv.D()) == 0 || len(priv.P()) == 0 || len(priv.Q()) == 0 {
		t.Error("private members are missing")
	}
	var members map[string]any
	_ = json.Unmarshal([]byte(keyJSON), &members)
	if _, hasAlg := members["alg"]; hasAlg {
		t.Error("the encryption key has an alg member")
	}

	tests := []struct {
		name    string
		opts    []fieftest.TokenOption
		wantAud string // "" = not encrypted
	}{
		{"for client", []fieftest.TokenOption{fieftest.ForClient("enc")}, "enc"},
		{"forced", []fieftest.TokenOption{fieftest.Encrypt("enc")}, s.ClientID},
		{"plain", nil, ""},
		{"other client", []fieftest.TokenOption{fieftest.ForClient(s.ClientID)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := s.IDToken(alice.ID, tc.opts...)
			if tc.wantAud == "" {
				verify(t, s, token)
				return
			}
			if n := strings.Count(token, "."); n != 4 {
				t.Fatalf("token has %d dots, want a compact JWE", n)
			}
			header := jwtHeader(t, token)
			want := map[string]any{"alg": "RSA-OAEP-256", "enc": "A256CBC-HS512", "kid": key.KeyID()}
			if !equalJSON(header, want) {
				t.Errorf("JWE header = %v, want %v (no cty)", header, want)
			}
			inner, err := jwe.Decrypt([]byte(token), jwe.WithKey(jwa.RSA_OAEP_256, key))
			if err != nil {
				t.Fatalf("decrypt: %v", err)
			}
			_, claims := verify(t, s, string(inner))
			if claims["sub"] != alice.ID || !equalJSON(claims["aud"], []any{tc.wantAud}) {
				t.Errorf("inner claims sub %v aud %v", claims["sub"], claims["aud"])
			}
		})
	}

	if tok := s.AccessToken(alice.ID, fieftest.ForClient("enc"), fieftest.Encrypt("enc")); strings.Count(tok, ".") != 2 {
		t.Error("an access token was encrypted")
	}
	for _, id := range []string{s.ClientID, "unknown"} {
		if k := s.EncryptionKey(id); k != "" {
			t.Errorf("EncryptionKey(%q) = %q, want empty", id, k)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Encrypt for a client without a key did not panic")
		}
	}()
	s.IDToken(alice.ID, fieftest.Encrypt(s.ClientID))
}

func TestSign(t *testing.T) {
	s := newServer(t)
	claims := map[string]any{"sub": "u", "acr": "0"}
	tests := []struct {
		name       string
		headers    map[string]any
		key        *rsa.PrivateKey
		wantHeader map[string]any
		signer     *rsa.PublicKey
	}{
		{"defaults", nil, nil, map[string]any{"alg": "RS256", "kid": s.KeyID()}, s.PublicKey()},
		{"other key, current kid", nil, otherKey(), map[string]any{"alg": "RS256", "kid": s.KeyID()}, &otherKey().PublicKey},
		{"no kid", map[string]any{"alg": "RS256"}, nil, map[string]any{"alg": "RS256"}, s.PublicKey()},
		{"alg none", map[string]any{"alg": "none"}, nil, map[string]any{"alg": "none"}, s.PublicKey()},
		{"embedded jwk", map[string]any{"alg": "RS256", "jwk": map[string]any{"kty": "oct"}}, nil,
			map[string]any{"alg": "RS256", "jwk": map[string]any{"kty": "oct"}}, s.PublicKey()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := s.Sign(claims, tc.headers, tc.key)
			header, got := decode(t, token)
			if !equalJSON(header, tc.wantHeader) {
				t.Errorf("header = %v, want %v", header, tc.wantHeader)
			}
			if !equalJSON(got, claims) {
				t.Errorf("claims = %v, want %v", got, claims)
			}
			if !verifiesWith(token, tc.signer) {
				t.Error("signature does not verify with the expected key")
			}
		})
	}
}

func TestValidationHash(t *testing.T) {
	// Reference values: base64url(sha256(v)[:16]) without padding, computed
	// with Python like Fief's get_validation_hash.
	for v, want := range map[string]string{
		"abc":  "ungWv48Bz-pBQUDeXa4iIw",
		"":     "47DEQpj8HBSa-_TImW-5JA",
		"fief": "mvmfsFiKEO7h5OfvxtXxJA",
	} {
		if got := fieftest.ValidationHash(v); got != want {
			t.Errorf("ValidationHash(%q) = %q, want %q", v, got, want)
		}
	}
}
