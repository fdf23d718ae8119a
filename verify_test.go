package fief_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

func TestValidateAccessToken(t *testing.T) {
	s := fieftest.NewTB(t)
	c := newClient(t, s)
	u := addUser(s, "castles:read", "castles:write")
	ctx := context.Background()
	other := fieftest.GenerateKey(2048)
	upper := strings.ToUpper(u.ID)

	tests := []struct {
		name  string
		token string
		reqs  []fief.Requirement
		want  error
	}{
		{"valid", s.AccessToken(u.ID), nil, nil},
		{"valid with requirements", s.AccessToken(u.ID, fieftest.Scopes("openid", "castles"), fieftest.ACR("1")),
			[]fief.Requirement{fief.RequireScopes("castles"), fief.RequireACR(fief.ACRLevelOne), fief.RequirePermissions("castles:write")}, nil},
		{"no kid tries every key", s.AccessToken(u.ID, fieftest.Header("kid", nil)), nil, nil},
		{"expired within leeway", s.AccessToken(u.ID, fieftest.ExpiresIn(-30*time.Second)), nil, nil},
		{"expired", s.AccessToken(u.ID, fieftest.ExpiresIn(-2*time.Minute)), nil, fief.ErrAccessTokenExpired},
		{"no exp", s.AccessToken(u.ID, fieftest.Claim("exp", nil)), nil, fief.ErrAccessTokenInvalid},
		{"nbf in the future", s.AccessToken(u.ID, fieftest.Claim("nbf", time.Now().Add(time.Hour).Unix())), nil, fief.ErrAccessTokenInvalid},
		{"iat in the future", s.AccessToken(u.ID, fieftest.IssuedAt(time.Now().Add(time.Hour)), fieftest.ExpiresIn(2*time.Hour)), nil, fief.ErrAccessTokenInvalid},
		{"other key", s.AccessToken(u.ID, fieftest.SignWith(other)), nil, fief.ErrAccessTokenInvalid},
		{"other key, no kid", s.AccessToken(u.ID, fieftest.SignWith(other), fieftest.Header("kid", nil)), nil, fief.ErrAccessTokenInvalid},
		{"kid of the tenant key, other key", s.AccessToken(u.ID, fieftest.SignWith(other), fieftest.Header("kid", s.KeyID())), nil, fief.ErrAccessTokenInvalid},
		{"wrong issuer", s.AccessToken(u.ID, fieftest.Claim("iss", "https://evil.example")), nil, fief.ErrAccessTokenInvalid},
		{"alg HS256 header", s.Sign(map[string]any{"sub": u.ID}, map[string]any{"alg": "HS256", "kid": s.KeyID()}, nil), nil, fief.ErrAccessTokenInvalid},
		{"missing scope claim", s.AccessToken(u.ID, fieftest.Claim("scope", nil)), nil, fief.ErrAccessTokenInvalid},
		{"scope not a string", s.AccessToken(u.ID, fieftest.Claim("scope", []string{"openid"})), nil, fief.ErrAccessTokenInvalid},
		{"missing acr", s.AccessToken(u.ID, fieftest.Claim("acr", nil)), nil, fief.ErrAccessTokenInvalid},
		{"unknown acr", s.AccessToken(u.ID, fieftest.Claim("acr", "2")), nil, fief.ErrAccessTokenInvalid},
		{"missing permissions", s.AccessToken(u.ID, fieftest.Claim("permissions", nil)), nil, fief.ErrAccessTokenInvalid},
		{"permissions not a list", s.AccessToken(u.ID, fieftest.Claim("permissions", "castles:read")), nil, fief.ErrAccessTokenInvalid},
		{"sub not a UUID", s.AccessToken(u.ID, fieftest.Claim("sub", "anne")), nil, fief.ErrAccessTokenInvalid},
		{"missing scope", s.AccessToken(u.ID), []fief.Requirement{fief.RequireScopes("castles")}, fief.ErrAccessTokenMissingScope},
		{"ACR too low", s.AccessToken(u.ID, fieftest.ACR("0")), []fief.Requirement{fief.RequireACR(fief.ACRLevelOne)}, fief.ErrAccessTokenACRTooLow},
		{"missing permission", s.AccessToken(u.ID), []fief.Requirement{fief.RequirePermissions("castles:delete")}, fief.ErrAccessTokenMissingPermission},
		// The reference order: scopes are checked before permissions are read.
		{"missing permissions claim and scope", s.AccessToken(u.ID, fieftest.Claim("permissions", nil)), []fief.Requirement{fief.RequireScopes("castles")}, fief.ErrAccessTokenInvalid},
		{"scope before ACR", s.AccessToken(u.ID, fieftest.ACR("0")), []fief.Requirement{fief.RequireACR(fief.ACRLevelOne), fief.RequireScopes("castles")}, fief.ErrAccessTokenMissingScope},
		{"JWE as access token", "eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIn0.a.b.c.d", nil, fief.ErrAccessTokenInvalid},
		{"garbage", "not a token", nil, fief.ErrAccessTokenInvalid},
		{"empty", "", nil, fief.ErrAccessTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := c.ValidateAccessToken(ctx, tt.token, tt.reqs...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err == nil && info.UserID() != u.ID {
				t.Fatalf("UserID = %q", info.UserID())
			}
			if err != nil && strings.Contains(err.Error(), tt.token) && tt.token != "" {
				t.Fatal("the error repeats the token")
			}
		})
	}

	t.Run("upper-case sub is canonicalised", func(t *testing.T) {
		info, err := c.ValidateAccessToken(ctx, s.AccessToken(u.ID, fieftest.Claim("sub", upper)))
		if err != nil || info.UserID() != u.ID {
			t.Fatalf("info = %+v, err = %v", info, err)
		}
	})
	t.Run("info", func(t *testing.T) {
		tok := s.AccessToken(u.ID, fieftest.Scopes("openid", "castles"), fieftest.ACR("1"))
		info, err := c.ValidateAccessToken(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(info.Scopes(), " ") != "openid castles" || info.ACR() != fief.ACRLevelOne ||
			strings.Join(info.Permissions(), ",") != "castles:read,castles:write" || info.AccessToken() != tok || info.Expiry().Before(time.Now()) {
			t.Fatalf("info = %+v", info)
		}
	})
}

func TestLeewayAndAudiences(t *testing.T) {
	s := fieftest.NewTB(t)
	u := addUser(s)
	ctx := context.Background()
	strict := newClient(t, s, fief.WithLeeway(0))
	if _, err := strict.ValidateAccessToken(ctx, s.AccessToken(u.ID, fieftest.ExpiresIn(-5*time.Second))); !errors.Is(err, fief.ErrAccessTokenExpired) {
		t.Fatalf("zero leeway: %v", err)
	}
	aud := newClient(t, s, fief.WithAudiences("mobile", s.ClientID))
	if _, err := aud.ValidateAccessToken(ctx, s.AccessToken(u.ID)); err != nil {
		t.Fatalf("accepted audience: %v", err)
	}
	if _, err := aud.ValidateAccessToken(ctx, s.AccessToken(u.ID, fieftest.Audience("other-client"))); !errors.Is(err, fief.ErrAccessTokenInvalid) {
		t.Fatalf("other audience: %v", err)
	}
	// By default only the client's own tokens are accepted: a token issued
	// to another client of the tenant is not (the confused deputy).
	def := newClient(t, s)
	if _, err := def.ValidateAccessToken(ctx, s.AccessToken(u.ID)); err != nil {
		t.Fatalf("own token, default audience: %v", err)
	}
	if _, err := def.ValidateAccessToken(ctx, s.AccessToken(u.ID, fieftest.Audience("other-client"))); !errors.Is(err, fief.ErrAccessTokenInvalid) {
		t.Fatalf("another client's token, default audience: %v", err)
	}
	// SkipAudienceCheck accepts any client of the tenant, as the reference
	// client does.
	if _, err := newClient(t, s, fief.SkipAudienceCheck()).ValidateAccessToken(ctx, s.AccessToken(u.ID, fieftest.Audience("other-client"))); err != nil {
		t.Fatalf("SkipAudienceCheck: %v", err)
	}
	if _, err := fief.New(s.URL, s.ClientID, s.ClientSecret, fief.WithAudiences()); err == nil {
		t.Fatal("WithAudiences() without audience accepted")
	}
}

func TestIDTokenEncryption(t *testing.T) {
	s := fieftest.NewTB(t)
	s.AddClient(fieftest.Client{ID: "enc", Secret: "enc-secret", EncryptIDToken: true})
	key := s.EncryptionKey("enc")
	if key == "" {
		t.Fatal("no encryption key")
	}
	u := addUser(s)
	ctx := context.Background()
	code := func() string {
		return s.IssueCode(fieftest.CodeRequest{UserID: u.ID, ClientID: "enc", RedirectURI: redirectURI, Scopes: []string{"openid"}})
	}

	withKey, err := fief.New(s.URL, "enc", "enc-secret", fief.WithEncryptionKey(key))
	if err != nil {
		t.Fatal(err)
	}
	tokens, info, err := withKey.AuthCallback(ctx, code(), redirectURI, "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(tokens.IDToken, ".") != 4 || info.Sub() != u.ID {
		t.Fatalf("encrypted ID token not decoded: %v", info)
	}

	withoutKey, _ := fief.New(s.URL, "enc", "enc-secret")
	if _, _, err := withoutKey.AuthCallback(ctx, code(), redirectURI, ""); !errors.Is(err, fief.ErrIDTokenInvalid) {
		t.Fatalf("encrypted ID token without key: %v", err)
	}

	// A client configured with a key refuses plain ID tokens (reference
	// behaviour).
	plainClient, _ := fief.New(s.URL, s.ClientID, s.ClientSecret, fief.WithEncryptionKey(key))
	c2 := s.IssueCode(fieftest.CodeRequest{UserID: u.ID, RedirectURI: redirectURI, Scopes: []string{"openid"}})
	if _, _, err := plainClient.AuthCallback(ctx, c2, redirectURI, ""); !errors.Is(err, fief.ErrIDTokenInvalid) {
		t.Fatalf("plain ID token with key: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	s, u, c, _ := newWarmClient(t)
	ctx := context.Background()
	oldKID := s.KeyID()
	oldToken := s.AccessToken(u.ID)
	s.RotateKey()
	newToken := s.AccessToken(u.ID)
	if _, err := c.ValidateAccessToken(ctx, newToken); err != nil {
		t.Fatalf("token signed with the new key: %v", err)
	}
	if n := s.Requests(fieftest.EndpointJWKS); n != 2 {
		t.Fatalf("JWKS fetches = %d, want 2", n)
	}
	if _, err := c.ValidateAccessToken(ctx, oldToken); err != nil {
		t.Fatalf("old key still published: %v", err)
	}
	s.RemoveKey(oldKID)
	// A client whose key set was fetched after the removal refuses it (the
	// running client drops it at its next refresh: see internal/keyset's
	// TestStaleSetRefreshesInBackground and TestRemovedKeyDisappearsAfterRefresh).
	c2 := newClient(t, s)
	if _, err := c2.ValidateAccessToken(ctx, oldToken); !errors.Is(err, fief.ErrAccessTokenInvalid) {
		t.Fatalf("removed key: %v", err)
	}
}

func TestUnknownKidFlood(t *testing.T) {
	s, u, c, _ := newWarmClient(t)
	ctx := context.Background()
	const n = 1000
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = s.AccessToken(u.ID, fieftest.Header("kid", fmt.Sprintf("random-%d", i)))
	}
	var wg sync.WaitGroup
	for _, tok := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.ValidateAccessToken(ctx, tok); !errors.Is(err, fief.ErrAccessTokenInvalid) {
				t.Errorf("err = %v", err)
			}
		}()
	}
	wg.Wait()
	// One fetch at start, at most one refresh within the cooldown.
	if got := s.Requests(fieftest.EndpointJWKS); got > 2 {
		t.Fatalf("JWKS fetches = %d, want <= 2", got)
	}
	// A forged token with an unknown kid AND a wrong issuer never triggers
	// a fetch, even after the cooldown.
	c3 := newClient(t, s, fief.WithKeyRefreshCooldown(0))
	c3.ValidateAccessToken(ctx, s.AccessToken(u.ID))
	before := s.Requests(fieftest.EndpointJWKS)
	for i := 0; i < 20; i++ {
		c3.ValidateAccessToken(ctx, s.AccessToken(u.ID, fieftest.Header("kid", "x"), fieftest.Claim("iss", "https://evil")))
		c3.ValidateAccessToken(ctx, s.AccessToken(u.ID, fieftest.Header("kid", "x"), fieftest.ExpiresIn(-time.Hour)))
	}
	if got := s.Requests(fieftest.EndpointJWKS); got != before {
		t.Fatalf("implausible tokens caused %d JWKS fetches", got-before)
	}
}

func TestFiefDownWithCachedKeys(t *testing.T) {
	s, u, c, tok := newWarmClient(t)
	ctx := context.Background()
	s.SetDown(true)
	defer s.SetDown(false)
	for i := 0; i < 10; i++ {
		if _, err := c.ValidateAccessToken(ctx, tok); err != nil {
			t.Fatalf("cached keys with Fief down: %v", err)
		}
	}
	// An unknown kid with Fief down is just an invalid token.
	if _, err := c.ValidateAccessToken(ctx, s.AccessToken(u.ID, fieftest.Header("kid", "new"))); !errors.Is(err, fief.ErrAccessTokenInvalid) {
		t.Fatalf("err = %v", err)
	}
	// Fief's APIs are unreachable: a transport error, not a RequestError.
	_, err := c.UserInfo(ctx, tok)
	var re *fief.RequestError
	if err == nil || errors.As(err, &re) {
		t.Fatalf("userinfo with Fief down: %v", err)
	}
}

func TestConcurrentValidation(t *testing.T) {
	s := fieftest.NewTB(t)
	u := addUser(s)
	c := newClient(t, s)
	ctx := context.Background()
	good := s.AccessToken(u.ID)
	expired := s.AccessToken(u.ID, fieftest.ExpiresIn(-time.Hour))
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.ValidateAccessToken(ctx, good); err != nil {
				t.Error(err)
			}
			if _, err := c.ValidateAccessToken(ctx, expired); !errors.Is(err, fief.ErrAccessTokenExpired) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := s.Requests(fieftest.EndpointDiscovery); n != 1 {
		t.Fatalf("discovery fetches = %d, want 1", n)
	}
	if n := s.Requests(fieftest.EndpointJWKS); n != 1 {
		t.Fatalf("JWKS fetches = %d, want 1", n)
	}
}
