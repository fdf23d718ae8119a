package fief

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief/fieftest"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// referenceVerify is the straightforward validation with jwx's generic
// jwt.Parse (a jwt.Token with a map of private claims), kept here as the
// yardstick of the lean path: same checks, same error classes.
func referenceVerify(token string, keys map[string]*rsa.PublicKey, issuer string, leeway time.Duration, now time.Time) (AccessTokenInfo, error) {
	if len(token) > 16<<10 {
		return AccessTokenInfo{}, ErrAccessTokenInvalid
	}
	msg, err := jws.Parse([]byte(token))
	if err != nil || len(msg.Signatures()) != 1 || strings.Count(token, ".") != 2 {
		return AccessTokenInfo{}, ErrAccessTokenInvalid
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	if hdr.Algorithm() != jwa.RS256 || hdr.JWKSetURL() != "" || hdr.X509URL() != "" || hdr.JWK() != nil || len(hdr.Critical()) > 0 || hdr.X509CertChain() != nil {
		return AccessTokenInfo{}, ErrAccessTokenInvalid
	}
	if _, ok := hdr.Get("b64"); ok {
		return AccessTokenInfo{}, ErrAccessTokenInvalid
	}
	var candidates []*rsa.PublicKey
	if kid := hdr.KeyID(); kid != "" {
		if k, ok := keys[kid]; ok {
			candidates = append(candidates, k)
		}
	} else {
		for _, k := range keys {
			candidates = append(candidates, k)
		}
	}
	var tok jwt.Token
	for _, k := range candidates {
		if tok, err = jwt.Parse([]byte(token), jwt.WithKey(jwa.RS256, k), jwt.WithValidate(false)); err == nil {
			break
		}
	}
	if tok == nil {
		return AccessTokenInfo{}, ErrAccessTokenInvalid
	}
	err = jwt.Validate(tok, jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
		jwt.WithAcceptableSkew(leeway), jwt.WithRequiredClaim("exp"))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired()):
		// jwx validates exp before nbf and iat, so does the lean path.
		return AccessTokenInfo{}, ErrAccessTokenExpired
	case err != nil:
		return AccessTokenInfo{}, ErrAccessTokenInvalid
	case !tok.Expiration().After(now.Add(-leeway)):
		return AccessTokenInfo{}, ErrAccessTokenExpired
	case tok.Issuer() != issuer:
		return AccessTokenInfo{}, ErrAccessTokenInvalid
	}
	claims := tok.PrivateClaims()
	scope, ok1 := claims["scope"].(string)
	acrStr, ok2 := claims["acr"].(string)
	rawPerms, ok3 := claims["permissions"].([]any)
	if !ok1 || !ok2 || !ok3 {
		return AccessTokenInfo{}, ErrAccessTokenInvalid
	}
	perms := make([]string, 0, len(rawPerms))
	for _, p := range rawPerms {
		s, ok := p.(string)
		if !ok {
			return AccessTokenInfo{}, ErrAccessTokenInvalid
		}
		perms = append(perms, s)
	}
	acr, err := ParseACR(acrStr)
	if err != nil {
		return AccessTokenInfo{}, ErrAccessTokenInvalid
	}
	id, ok := canonicalUUID(tok.Subject())
	if !ok {
		return AccessTokenInfo{}, ErrAccessTokenInvalid
	}
	return AccessTokenInfo{&tokenInfo{userID: id, scopes: strings.Fields(scope), acr: acr, permissions: perms,
		expiry: tok.Expiration(), token: token}}, nil
}

// errClass names the sentinel an error wraps.
func errClass(err error) string {
	for _, e := range []error{ErrAccessTokenExpired, ErrAccessTokenInvalid, ErrAccessTokenMissingScope, ErrAccessTokenACRTooLow, ErrAccessTokenMissingPermission} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return "ok"
}

// accessTokenVectors returns tokens covering the accepted and the refused.
func accessTokenVectors(s *fieftest.Server, userID string) map[string]string {
	other := fieftest.GenerateKey(2048)
	now := time.Now()
	return map[string]string{
		"valid":                s.AccessToken(userID),
		"valid acr 1":          s.AccessToken(userID, fieftest.ACR("1"), fieftest.Scopes("openid", "castles")),
		"no kid":               s.AccessToken(userID, fieftest.Header("kid", nil)),
		"unknown kid":          s.AccessToken(userID, fieftest.Header("kid", "nope")),
		"other key":            s.AccessToken(userID, fieftest.SignWith(other)),
		"other key, our kid":   s.AccessToken(userID, fieftest.SignWith(other), fieftest.Header("kid", s.KeyID())),
		"expired":              s.AccessToken(userID, fieftest.ExpiresIn(-time.Hour)),
		"expired in leeway":    s.AccessToken(userID, fieftest.ExpiresIn(-30*time.Second)),
		"no exp":               s.AccessToken(userID, fieftest.Claim("exp", nil)),
		"nbf future":           s.AccessToken(userID, fieftest.Claim("nbf", now.Add(time.Hour).Unix())),
		"nbf in leeway":        s.AccessToken(userID, fieftest.Claim("nbf", now.Add(30*time.Second).Unix())),
		"iat future":           s.AccessToken(userID, fieftest.IssuedAt(now.Add(time.Hour)), fieftest.ExpiresIn(2*time.Hour)),
		"wrong iss":            s.AccessToken(userID, fieftest.Claim("iss", "https://evil")),
		"no scope":             s.AccessToken(userID, fieftest.Claim("scope", nil)),
		"scope number":         s.AccessToken(userID, fieftest.Claim("scope", 5)),
		"no acr":               s.AccessToken(userID, fieftest.Claim("acr", nil)),
		"acr 2":                s.AccessToken(userID, fieftest.Claim("acr", "2")),
		"acr number":           s.AccessToken(userID, fieftest.Claim("acr", 1)),
		"no permissions":       s.AccessToken(userID, fieftest.Claim("permissions", nil)),
		"permissions string":   s.AccessToken(userID, fieftest.Claim("permissions", "a")),
		"permissions numbers":  s.AccessToken(userID, fieftest.Claim("permissions", []int{1})),
		"sub not uuid":         s.AccessToken(userID, fieftest.Claim("sub", "anne")),
		"sub upper":            s.AccessToken(userID, fieftest.Claim("sub", strings.ToUpper(userID))),
		"alg HS256 header":     s.Sign(map[string]any{"sub": userID}, map[string]any{"alg": "HS256", "kid": s.KeyID()}, nil),
		"alg none header":      s.Sign(map[string]any{"sub": userID}, map[string]any{"alg": "none", "kid": s.KeyID()}, nil),
		"jku header":           s.AccessToken(userID, fieftest.Header("jku", "https://evil/jwks")),
		"crit header":          s.AccessToken(userID, fieftest.Header("crit", []string{"exp"})),
		"tampered payload":     tamper(s.AccessToken(userID)),
		"signature stripped":   s.AccessToken(userID)[:strings.LastIndexByte(s.AccessToken(userID), '.')+1],
		"JWE shape":            "eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIn0.a.b.c.d",
		"garbage":              "garbage",
		"10,000 dots":          strings.Repeat(".", 10000),
		"huge":                 strings.Repeat("a", 20<<10),
		"float exp":            s.AccessToken(userID, fieftest.Claim("exp", float64(now.Add(time.Hour).Unix())+0.5)),
		"string exp":           s.AccessToken(userID, fieftest.Claim("exp", fmt.Sprint(now.Add(time.Hour).Unix()))),
		"aud string":           s.AccessToken(userID, fieftest.Claim("aud", "fieftest-client")),
		"extra unknown claims": s.AccessToken(userID, fieftest.Claim("roles", map[string]any{"x": 1})),
	}
}

// signRaw signs a payload given as raw JSON text.
func signRaw(t *testing.T, key *rsa.PrivateKey, kid, payload string) string {
	t.Helper()
	hdr := jws.NewHeaders()
	hdr.Set(jws.KeyIDKey, kid)
	out, err := jws.Sign([]byte(payload), jws.WithKey(jwa.RS256, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// tamper flips one character of the payload.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	p := []byte(parts[1])
	if p[5] == 'A' {
		p[5] = 'B'
	} else {
		p[5] = 'A'
	}
	return parts[0] + "." + string(p) + "." + parts[2]
}

// TestLeanPathAgreesWithJWTParse runs the lean path, the cached path and
// jwx's jwt.Parse over the same vectors and requires the same outcome.
func TestLeanPathAgreesWithJWTParse(t *testing.T) {
	signing := fieftest.GenerateKey(2048)
	s := fieftest.NewTB(t, fieftest.WithSigningKey(signing))
	u := s.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Permissions: []string{"castles:read"}})
	c, err := New(s.URL, s.ClientID, s.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.ValidateAccessToken(ctx, s.AccessToken(u.ID)); err != nil {
		t.Fatal(err)
	}
	keys := map[string]*rsa.PublicKey{s.KeyID(): s.PublicKey()}
	// Where the lean path is deliberately stricter than jwx's defaults.
	stricter := map[string]string{
		"string exp":          "RFC 7519 makes exp a JSON number; jwx also parses numeric strings",
		"duplicate scope":     "decoders disagree on duplicate members; jwx keeps the last (here: wider) one",
		"escaped member name": "an escaped name could pass for a second scope member",
	}
	vectors := accessTokenVectors(s, u.ID)
	exp := time.Now().Add(time.Hour).Unix()
	claims := fmt.Sprintf(`"sub":%q,"iss":%q,"aud":["fieftest-client"],"exp":%d,"acr":"0","permissions":[]`, u.ID, s.Issuer(), exp)
	vectors["duplicate scope"] = signRaw(t, signing, s.KeyID(), `{"scope":"openid",`+claims+`,"scope":"openid admin"}`)
	vectors["escaped member name"] = signRaw(t, signing, s.KeyID(), `{"scope":"openid",`+claims+`,"sc\u006fpe":"openid admin"}`)
	for name, tok := range vectors {
		t.Run(name, func(t *testing.T) {
			want, wantErr := referenceVerify(tok, keys, s.Issuer(), DefaultLeeway, time.Now())
			if reason, ok := stricter[name]; ok {
				if wantErr != nil {
					t.Fatalf("jwt.Parse refuses it too (%v): drop it from the stricter list", wantErr)
				}
				t.Logf("lean path stricter: %s", reason)
				want, wantErr = AccessTokenInfo{}, ErrAccessTokenInvalid
			}
			for pass := 0; pass < 2; pass++ { // the second pass may hit the verified-token cache
				got, _, gotErr := c.verifyAccessToken(ctx, tok)
				if errClass(gotErr) != errClass(wantErr) {
					t.Fatalf("pass %d: lean %q, jwt.Parse %q", pass, errClass(gotErr), errClass(wantErr))
				}
				if gotErr == nil && infoString(got) != infoString(want) {
					t.Fatalf("pass %d: lean %s\njwt.Parse %s", pass, infoString(got), infoString(want))
				}
			}
		})
	}
}

// TestVerifiedTokenCache checks what a cache hit may and may not skip.
func TestVerifiedTokenCache(t *testing.T) {
	s := fieftest.NewTB(t)
	u := s.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Permissions: []string{"castles:read"}})
	c, err := New(s.URL, s.ClientID, s.ClientSecret, WithLeeway(0), WithKeyRefreshCooldown(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Now()
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	tok := s.AccessToken(u.ID, fieftest.ExpiresIn(time.Minute), fieftest.Scopes("openid", "castles"))
	first, err := c.ValidateAccessToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.tokens.Len() != 1 {
		t.Fatalf("cache Len = %d", c.tokens.Len())
	}

	t.Run("hit returns an equal, separate value", func(t *testing.T) {
		second, err := c.ValidateAccessToken(ctx, tok)
		if err != nil || infoString(second) != infoString(first) {
			t.Fatalf("second = %+v, %v", second, err)
		}
		scopes := second.Scopes()
		scopes[0] = "mutated"
		_ = append(scopes, "admin")
		third, _ := c.ValidateAccessToken(ctx, tok)
		if third.UserID() != u.ID || fmt.Sprint(third.Scopes()) != "[openid castles]" {
			t.Fatalf("cache poisoned: %+v", third)
		}
	})
	t.Run("requirements are checked on every hit", func(t *testing.T) {
		if _, err := c.ValidateAccessToken(ctx, tok, RequireScopes("castles")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ValidateAccessToken(ctx, tok, RequireScopes("admin")); !errors.Is(err, ErrAccessTokenMissingScope) {
			t.Fatalf("err = %v", err)
		}
		if _, err := c.ValidateAccessToken(ctx, tok, RequireACR(ACRLevelOne)); !errors.Is(err, ErrAccessTokenACRTooLow) {
			t.Fatalf("err = %v", err)
		}
		if _, err := c.ValidateAccessToken(ctx, tok, RequirePermissions("castles:write")); !errors.Is(err, ErrAccessTokenMissingPermission) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a tampered copy is a different key", func(t *testing.T) {
		if _, err := c.ValidateAccessToken(ctx, tamper(tok)); !errors.Is(err, ErrAccessTokenInvalid) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("an expired token is never served", func(t *testing.T) {
		advance(time.Minute)
		if _, err := c.ValidateAccessToken(ctx, tok); !errors.Is(err, ErrAccessTokenExpired) {
			t.Fatalf("err = %v", err)
		}
		if c.tokens.Len() != 0 {
			t.Fatalf("expired entry kept: Len = %d", c.tokens.Len())
		}
	})
	t.Run("an entry is dropped when its key leaves the key set", func(t *testing.T) {
		old := s.AccessToken(u.ID, fieftest.IssuedAt(now), fieftest.ExpiresIn(time.Hour))
		if _, err := c.ValidateAccessToken(ctx, old); err != nil {
			t.Fatal(err)
		}
		oldKID := s.KeyID()
		s.RotateKey()
		s.RemoveKey(oldKID)
		// A token with the new kid makes the client refresh its key set.
		if _, err := c.ValidateAccessToken(ctx, s.AccessToken(u.ID, fieftest.IssuedAt(now), fieftest.ExpiresIn(time.Hour))); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ValidateAccessToken(ctx, old); !errors.Is(err, ErrAccessTokenInvalid) {
			t.Fatalf("token of a removed key served from cache: %v", err)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		c0, _ := New(s.URL, s.ClientID, s.ClientSecret, WithVerifiedTokenCache(0))
		if c0.tokens != nil {
			t.Fatal("cache not disabled")
		}
		if _, err := c0.ValidateAccessToken(ctx, s.AccessToken(u.ID)); err != nil {
			t.Fatal(err)
		}
	})
}

// infoString prints everything an AccessTokenInfo holds.
func infoString(i AccessTokenInfo) string {
	return fmt.Sprint(i.UserID(), i.Scopes(), i.ACR(), i.Permissions(), i.Expiry().Unix(), i.AccessToken())
}
