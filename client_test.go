package fief_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
	"golang.org/x/oauth2"
)

const redirectURI = "https://www.bretagne.duchy/callback"

// newClient returns a client for the server's default confidential client.
func newClient(t testing.TB, s *fieftest.Server, opts ...fief.Option) *fief.Client {
	t.Helper()
	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func addUser(s *fieftest.Server, perms ...string) fieftest.User {
	return s.AddUser(fieftest.User{
		Email:         fmt.Sprintf("anne-%d@bretagne.duchy", time.Now().UnixNano()),
		Password:      "herminetruc",
		EmailVerified: true,
		Fields:        map[string]any{"first_name": "Anne"},
		Permissions:   perms,
	})
}

// newWarmClient returns a server with one user, a client that has fetched
// discovery and the key set, and a valid token of that user.
func newWarmClient(t *testing.T, opts ...fief.Option) (*fieftest.Server, fieftest.User, *fief.Client, string) {
	t.Helper()
	s := fieftest.NewTB(t)
	u := addUser(s)
	c := newClient(t, s, opts...)
	tok := s.AccessToken(u.ID)
	if _, err := c.ValidateAccessToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	return s, u, c, tok
}

// login drives Fief's login page like a browser and returns the code.
func login(t *testing.T, s *fieftest.Server, authURL string, u fieftest.User) (code, state string) {
	t.Helper()
	loc, err := s.Authorize(authURL, u.Email, u.Password)
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if q.Get("code") == "" {
		t.Fatalf("no code in redirect %s", loc.Redacted())
	}
	return q.Get("code"), q.Get("state")
}

func requestError(t *testing.T, err error, status int, bodyPart string) {
	t.Helper()
	var re *fief.RequestError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want *fief.RequestError", err)
	}
	if re.StatusCode != status || !strings.Contains(re.Body, bodyPart) {
		t.Fatalf("RequestError = %d %q, want %d containing %q", re.StatusCode, re.Body, status, bodyPart)
	}
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name    string
		base    string
		id      string
		opts    []fief.Option
		wantErr bool
	}{
		{"ok", "https://fief.example.com", "id", nil, false},
		{"tenant path with slash", "https://fief.example.com/tenant/", "id", nil, false},
		{"no scheme", "fief.example.com", "id", nil, true},
		{"ftp", "ftp://fief.example.com", "id", nil, true},
		{"query", "https://fief.example.com?x=1", "id", nil, true},
		{"credentials", "https://u:p@fief.example.com", "id", nil, true},
		{"no client id", "https://fief.example.com", "", nil, true},
		{"bad encryption key", "https://fief.example.com", "id", []fief.Option{fief.WithEncryptionKey("{}")}, true},
		{"public key as encryption key", "https://fief.example.com", "id", []fief.Option{fief.WithEncryptionKey(`{"kty":"RSA","n":"AQAB","e":"AQAB"}`)}, true},
		{"negative leeway", "https://fief.example.com", "id", []fief.Option{fief.WithLeeway(-time.Second)}, true},
		{"huge leeway", "https://fief.example.com", "id", []fief.Option{fief.WithLeeway(time.Hour)}, true},
		{"empty audience", "https://fief.example.com", "id", []fief.Option{fief.WithAudiences("")}, true},
		{"nil http client", "https://fief.example.com", "id", []fief.Option{fief.WithHTTPClient(nil)}, true},
		{"bad host", "https://fief.example.com", "id", []fief.Option{fief.WithHost("a/b")}, true},
		{"zero timeout", "https://fief.example.com", "id", []fief.Option{fief.WithTimeout(0)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fief.New(tt.base, tt.id, "secret", tt.opts...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestNewMakesNoRequest(t *testing.T) {
	s := fieftest.NewTB(t)
	newClient(t, s)
	for _, e := range []fieftest.Endpoint{fieftest.EndpointDiscovery, fieftest.EndpointJWKS} {
		if n := s.Requests(e); n != 0 {
			t.Fatalf("%s requests = %d", e, n)
		}
	}
}

func TestAuthURL(t *testing.T) {
	s := fieftest.NewTB(t)
	c := newClient(t, s)
	ctx := context.Background()
	endpoint := s.URL + "/authorize"
	tests := []struct {
		name string
		opts fief.AuthURLOptions
		want string
	}{
		{"scopes only (reference test)", fief.AuthURLOptions{Scopes: []string{"SCOPE_1", "SCOPE_2"}},
			"?response_type=code&client_id=fieftest-client&redirect_uri=https%3A%2F%2Fwww.bretagne.duchy%2Fcallback&scope=SCOPE_1+SCOPE_2"},
		{"everything", fief.AuthURLOptions{State: "STATE", Scopes: []string{"openid"}, CodeChallenge: "CHALLENGE", CodeChallengeMethod: "S256", Lang: "fr", Extra: map[string]string{"foo": "bar", "acr_values": "1"}},
			"?response_type=code&client_id=fieftest-client&redirect_uri=https%3A%2F%2Fwww.bretagne.duchy%2Fcallback&state=STATE&scope=openid&code_challenge=CHALLENGE&code_challenge_method=S256&lang=fr&acr_values=1&foo=bar"},
		{"challenge without method is not sent", fief.AuthURLOptions{CodeChallenge: "CHALLENGE"},
			"?response_type=code&client_id=fieftest-client&redirect_uri=https%3A%2F%2Fwww.bretagne.duchy%2Fcallback"},
		{"extra overrides in place", fief.AuthURLOptions{State: "a", Extra: map[string]string{"state": "b c"}},
			"?response_type=code&client_id=fieftest-client&redirect_uri=https%3A%2F%2Fwww.bretagne.duchy%2Fcallback&state=b+c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.AuthURL(ctx, redirectURI, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got != endpoint+tt.want {
				t.Fatalf("AuthURL =\n %s\nwant\n %s", got, endpoint+tt.want)
			}
		})
	}
}

func TestLogoutURL(t *testing.T) {
	c, err := fief.New("https://bretagne.fief.dev", "CLIENT_ID", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.LogoutURL("https://www.bretagne.duchy"), "https://bretagne.fief.dev/logout?redirect_uri=https%3A%2F%2Fwww.bretagne.duchy"; got != want {
		t.Fatalf("LogoutURL = %s, want %s", got, want)
	}
}

func TestCodeVerifier(t *testing.T) {
	v := fief.GenerateCodeVerifier()
	if len(v) < 43 || v == fief.GenerateCodeVerifier() {
		t.Fatalf("verifier %q", v)
	}
	s := fieftest.NewTB(t)
	c := newClient(t, s)
	ctx := context.Background()
	// RFC 7636 appendix B: the S256 challenge of the verifier.
	got, err := c.AuthURL(ctx, redirectURI, fief.AuthURLOptions{CodeVerifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got, "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256") {
		t.Fatalf("AuthURL = %s", got)
	}
	if _, err := c.AuthURL(ctx, redirectURI, fief.AuthURLOptions{CodeVerifier: v, CodeChallenge: "x", CodeChallengeMethod: "plain"}); err == nil {
		t.Fatal("CodeVerifier with CodeChallenge accepted")
	}
	// The verifier goes to AuthCallback: Fief checks it against the
	// challenge.
	u := addUser(s)
	authURL, _ := c.AuthURL(ctx, redirectURI, fief.AuthURLOptions{Scopes: []string{"openid"}, CodeVerifier: v})
	code, _ := login(t, s, authURL, u)
	if _, _, err := c.AuthCallback(ctx, code, redirectURI, "wrong-verifier-"+v); err == nil {
		t.Fatal("wrong verifier accepted")
	}
	code, _ = login(t, s, authURL, u)
	if _, _, err := c.AuthCallback(ctx, code, redirectURI, v); err != nil {
		t.Fatal(err)
	}
}

func TestAuthCallback(t *testing.T) {
	s := fieftest.NewTB(t)
	c := newClient(t, s)
	u := addUser(s, "castles:read")
	ctx := context.Background()

	authURL, err := c.AuthURL(ctx, redirectURI, fief.AuthURLOptions{State: "xyz", Scopes: []string{"openid", "offline_access", "castles"}})
	if err != nil {
		t.Fatal(err)
	}
	code, state := login(t, s, authURL, u)
	if state != "xyz" {
		t.Fatalf("state = %q", state)
	}
	tokens, info, err := c.AuthCallback(ctx, code, redirectURI, "")
	if err != nil {
		t.Fatal(err)
	}
	if tokens.AccessToken == "" || tokens.IDToken == "" || tokens.RefreshToken == "" || !strings.EqualFold(tokens.TokenType, "bearer") || tokens.ExpiresIn <= 0 {
		t.Fatalf("tokens = %+v", tokens)
	}
	if info.Sub() != u.ID || info.Email() != u.Email || !info.EmailVerified() || !info.IsActive() || info.TenantID() == "" {
		t.Fatalf("userinfo = %v", info)
	}
	if info.Fields()["first_name"] != "Anne" || claim(info, "c_hash") == nil || claim(info, "at_hash") == nil || claim(info, "iss") != s.Issuer() {
		t.Fatalf("ID-token claims = %v", info)
	}
	at, err := c.ValidateAccessToken(ctx, tokens.AccessToken, fief.RequireScopes("castles"), fief.RequireACR(fief.ACRLevelOne), fief.RequirePermissions("castles:read"))
	if err != nil {
		t.Fatal(err)
	}
	if at.UserID() != u.ID || at.ACR() != fief.ACRLevelOne || at.AccessToken() != tokens.AccessToken {
		t.Fatalf("access token info = %+v", at)
	}

	// A code works once.
	_, _, err = c.AuthCallback(ctx, code, redirectURI, "")
	requestError(t, err, http.StatusBadRequest, "invalid_grant")
}

func TestAuthCallbackErrors(t *testing.T) {
	s := fieftest.NewTB(t)
	c := newClient(t, s)
	u := addUser(s)
	ctx := context.Background()
	verifier := fief.GenerateCodeVerifier()
	challenge := oauth2.S256ChallengeFromVerifier(verifier)
	tests := []struct {
		name     string
		req      fieftest.CodeRequest
		redirect string
		verifier string
		body     string
	}{
		{"unknown code", fieftest.CodeRequest{}, redirectURI, "", "invalid_grant"},
		{"redirect mismatch", fieftest.CodeRequest{UserID: u.ID, RedirectURI: redirectURI, Scopes: []string{"openid"}}, redirectURI + "/other", "", "invalid_grant"},
		{"PKCE verifier missing", fieftest.CodeRequest{UserID: u.ID, RedirectURI: redirectURI, Scopes: []string{"openid"}, CodeChallenge: challenge, CodeChallengeMethod: "S256"}, redirectURI, "", "invalid_grant"},
		{"PKCE verifier wrong", fieftest.CodeRequest{UserID: u.ID, RedirectURI: redirectURI, Scopes: []string{"openid"}, CodeChallenge: challenge, CodeChallengeMethod: "S256"}, redirectURI, fief.GenerateCodeVerifier(), "invalid_grant"},
		{"verifier without challenge", fieftest.CodeRequest{UserID: u.ID, RedirectURI: redirectURI, Scopes: []string{"openid"}}, redirectURI, verifier, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := "not-a-code"
			if tt.req.UserID != "" {
				code = s.IssueCode(tt.req)
			}
			_, _, err := c.AuthCallback(ctx, code, tt.redirect, tt.verifier)
			requestError(t, err, http.StatusBadRequest, tt.body)
		})
	}

	t.Run("PKCE S256 ok", func(t *testing.T) {
		code := s.IssueCode(fieftest.CodeRequest{UserID: u.ID, RedirectURI: redirectURI, Scopes: []string{"openid"}, CodeChallenge: challenge, CodeChallengeMethod: "S256"})
		if _, _, err := c.AuthCallback(ctx, code, redirectURI, verifier); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		bad, _ := fief.New(s.URL, s.ClientID, "wrong")
		code := s.IssueCode(fieftest.CodeRequest{UserID: u.ID, RedirectURI: redirectURI, Scopes: []string{"openid"}})
		_, _, err := bad.AuthCallback(ctx, code, redirectURI, "")
		requestError(t, err, http.StatusBadRequest, "invalid_client")
		// A failed client authentication does not consume the code.
		if _, _, err := c.AuthCallback(ctx, code, redirectURI, ""); err != nil {
			t.Fatalf("code consumed by failed client auth: %v", err)
		}
	})
	t.Run("token endpoint down", func(t *testing.T) {
		c.AuthURL(ctx, redirectURI, fief.AuthURLOptions{}) // warm discovery
		s.SetFault(fieftest.EndpointToken, fieftest.Fault{Down: true, Times: 1})
		_, _, err := c.AuthCallback(ctx, "code", redirectURI, "")
		var re *fief.RequestError
		if err == nil || errors.As(err, &re) {
			t.Fatalf("err = %v, want a transport error", err)
		}
	})
}

func TestPublicClientPKCE(t *testing.T) {
	s := fieftest.NewTB(t)
	s.AddClient(fieftest.Client{ID: "cli", RedirectURIs: []string{"http://127.0.0.1:51562/callback"}})
	c, err := fief.New(s.URL, "cli", "")
	if err != nil {
		t.Fatal(err)
	}
	u := addUser(s)
	ctx := context.Background()
	redirect := "http://127.0.0.1:51562/callback"
	verifier := fief.GenerateCodeVerifier()
	challenge := oauth2.S256ChallengeFromVerifier(verifier)
	authURL, err := c.AuthURL(ctx, redirect, fief.AuthURLOptions{Scopes: []string{"openid", "offline_access"}, CodeChallenge: challenge, CodeChallengeMethod: "S256"})
	if err != nil {
		t.Fatal(err)
	}
	code, _ := login(t, s, authURL, u)
	tokens, info, err := c.AuthCallback(ctx, code, redirect, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if info.Sub() != u.ID || tokens.RefreshToken == "" {
		t.Fatalf("tokens %+v info %v", tokens, info)
	}
	if _, _, err := c.AuthRefreshToken(ctx, tokens.RefreshToken); err != nil {
		t.Fatalf("public refresh: %v", err)
	}
	// Without the verifier a public client is refused.
	code = s.IssueCode(fieftest.CodeRequest{UserID: u.ID, ClientID: "cli", RedirectURI: redirect, Scopes: []string{"openid"}})
	_, _, err = c.AuthCallback(ctx, code, redirect, "")
	requestError(t, err, http.StatusBadRequest, "invalid_client")
}

func TestAuthRefreshToken(t *testing.T) {
	s := fieftest.NewTB(t)
	c := newClient(t, s)
	u := addUser(s)
	ctx := context.Background()
	code := s.IssueCode(fieftest.CodeRequest{UserID: u.ID, RedirectURI: redirectURI, Scopes: []string{"openid", "offline_access", "castles"}})
	first, _, err := c.AuthCallback(ctx, code, redirectURI, "")
	if err != nil {
		t.Fatal(err)
	}

	second, info, err := c.AuthRefreshToken(ctx, first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh token not rotated: %q", second.RefreshToken)
	}
	if info.Sub() != u.ID || claim(info, "c_hash") != nil {
		t.Fatalf("refreshed claims = %v", info)
	}
	at, err := c.ValidateAccessToken(ctx, second.AccessToken, fief.RequireScopes("castles"))
	if err != nil {
		t.Fatal(err)
	}
	if at.ACR() != fief.ACRLevelZero {
		t.Fatalf("refreshed ACR = %v, want 0", at.ACR())
	}
	if second.Expiry.Before(time.Now()) {
		t.Fatalf("expiry = %v", second.Expiry)
	}

	// Rotation: the old refresh token is dead.
	_, _, err = c.AuthRefreshToken(ctx, first.RefreshToken)
	requestError(t, err, http.StatusBadRequest, "invalid_grant")

	// Scopes outside the original grant are refused.
	_, _, err = c.AuthRefreshToken(ctx, second.RefreshToken, "openid", "admin")
	requestError(t, err, http.StatusBadRequest, "invalid_scope")

	// Narrowing without offline_access ends the chain.
	third, _, err := c.AuthRefreshToken(ctx, second.RefreshToken, "openid", "castles")
	if err != nil {
		t.Fatal(err)
	}
	if third.RefreshToken != "" {
		t.Fatalf("refresh token issued without offline_access")
	}
	if _, err := c.ValidateAccessToken(ctx, third.AccessToken, fief.RequireScopes("offline_access")); !errors.Is(err, fief.ErrAccessTokenMissingScope) {
		t.Fatalf("narrowed token: %v", err)
	}
}

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

func TestUserEndpoints(t *testing.T) {
	s := fieftest.NewTB(t)
	c := newClient(t, s)
	u := addUser(s)
	ctx := context.Background()
	acr0 := s.AccessToken(u.ID, fieftest.ACR("0"))
	acr1 := s.AccessToken(u.ID, fieftest.ACR("1"))

	info, err := c.UserInfo(ctx, acr0)
	if err != nil {
		t.Fatal(err)
	}
	if info.Sub() != u.ID || info.Email() != u.Email || claim(info, "iss") != nil {
		t.Fatalf("userinfo = %v", info)
	}
	_, err = c.UserInfo(ctx, "invalid")
	requestError(t, err, http.StatusUnauthorized, "Unauthorized")

	info, err = c.UpdateProfile(ctx, acr0, map[string]any{"first_name": "Isabeau", "age": 42})
	if err != nil {
		t.Fatal(err)
	}
	if info.Fields()["first_name"] != "Isabeau" || fmt.Sprint(info.Fields()["age"]) != "42" {
		t.Fatalf("profile = %v", info)
	}

	_, err = c.ChangePassword(ctx, acr0, "a-much-better-password")
	requestError(t, err, http.StatusForbidden, "ACR_TOO_LOW")
	_, err = c.ChangePassword(ctx, acr1, "short")
	requestError(t, err, http.StatusBadRequest, "USER_UPDATE_INVALID_PASSWORD")
	if _, err := c.ChangePassword(ctx, acr1, "a-much-better-password"); err != nil {
		t.Fatal(err)
	}

	other := addUser(s)
	_, err = c.EmailChange(ctx, acr1, other.Email)
	requestError(t, err, http.StatusBadRequest, "USER_UPDATE_EMAIL_ALREADY_EXISTS")
	info, err = c.EmailChange(ctx, acr1, "isabeau@bretagne.duchy")
	if err != nil {
		t.Fatal(err)
	}
	if info.Email() != u.Email {
		t.Fatalf("email changed before verification: %v", info)
	}
	_, err = c.EmailVerify(ctx, acr1, "WRONG1")
	requestError(t, err, http.StatusBadRequest, "USER_UPDATE_INVALID_EMAIL_VERIFICATION_CODE")
	info, err = c.EmailVerify(ctx, acr1, s.EmailVerificationCode(u.ID))
	if err != nil {
		t.Fatal(err)
	}
	if info.Email() != "isabeau@bretagne.duchy" || !info.EmailVerified() {
		t.Fatalf("verified = %v", info)
	}
}

func TestTenantPath(t *testing.T) {
	s := fieftest.NewTB(t, fieftest.WithTenantPath("/secondary"))
	if !strings.HasSuffix(s.URL, "/secondary") || !strings.HasSuffix(s.Issuer(), "/secondary") {
		t.Fatalf("URL %s issuer %s", s.URL, s.Issuer())
	}
	c := newClient(t, s)
	u := addUser(s)
	ctx := context.Background()
	authURL, err := c.AuthURL(ctx, redirectURI, fief.AuthURLOptions{Scopes: []string{"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(authURL, s.URL+"/authorize?") {
		t.Fatalf("AuthURL = %s", authURL)
	}
	code, _ := login(t, s, authURL, u)
	tokens, _, err := c.AuthCallback(ctx, code, redirectURI, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ValidateAccessToken(ctx, tokens.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UserInfo(ctx, tokens.AccessToken); err != nil {
		t.Fatal(err)
	}
	if got := c.LogoutURL("https://x.test"); !strings.HasPrefix(got, s.URL+"/logout?") {
		t.Fatalf("LogoutURL = %s", got)
	}

	// A client pointed at the wrong tenant gets a clear discovery error.
	root := strings.TrimSuffix(s.URL, "/secondary")
	wrong, _ := fief.New(root+"/nope", s.ClientID, s.ClientSecret)
	_, err = wrong.ValidateAccessToken(ctx, tokens.AccessToken)
	if !errors.Is(err, fief.ErrDiscovery) || !strings.Contains(err.Error(), root+"/nope/.well-known/openid-configuration") {
		t.Fatalf("err = %v", err)
	}
	requestError(t, err, http.StatusBadRequest, "Bad Request")
}

func TestHostOverride(t *testing.T) {
	s := fieftest.NewTB(t)
	u := addUser(s)
	c := newClient(t, s, fief.WithHost("fief.public.test"))
	ctx := context.Background()
	authURL, err := c.AuthURL(ctx, redirectURI, fief.AuthURLOptions{Scopes: []string{"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	// The browser-facing URL keeps the public host Fief advertises...
	if !strings.HasPrefix(authURL, "http://fief.public.test/authorize?") {
		t.Fatalf("AuthURL = %s", authURL)
	}
	// ...while server-side calls reach the base URL with the Host header.
	code := s.IssueCode(fieftest.CodeRequest{UserID: u.ID, RedirectURI: redirectURI, Scopes: []string{"openid"}})
	tokens, _, err := c.AuthCallback(ctx, code, redirectURI, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ValidateAccessToken(ctx, tokens.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UserInfo(ctx, tokens.AccessToken); err != nil {
		t.Fatal(err)
	}
}

func TestDiscoveryErrorsAreNotCached(t *testing.T) {
	s := fieftest.NewTB(t)
	u := addUser(s)
	ctx := context.Background()
	tok := s.AccessToken(u.ID)
	tests := []struct {
		name   string
		ep     fieftest.Endpoint
		fault  fieftest.Fault
		status int
	}{
		{"discovery 400 body", fieftest.EndpointDiscovery, fieftest.Fault{Status: 400, Body: `{"detail":"Bad Request"}`}, 400},
		{"discovery 500", fieftest.EndpointDiscovery, fieftest.Fault{Status: 500}, 500},
		{"discovery not JSON", fieftest.EndpointDiscovery, fieftest.Fault{Status: 200, Body: "<html>"}, 0},
		{"discovery JSON without endpoints", fieftest.EndpointDiscovery, fieftest.Fault{Status: 200, Body: `{"detail":"x"}`}, 0},
		{"discovery huge", fieftest.EndpointDiscovery, fieftest.Fault{Status: 200, Body: `{"issuer":"` + strings.Repeat("a", 2<<20) + `"}`}, 0},
		{"discovery down", fieftest.EndpointDiscovery, fieftest.Fault{Down: true}, 0},
		{"jwks 503", fieftest.EndpointJWKS, fieftest.Fault{Status: 503}, 503},
		{"jwks not a key set", fieftest.EndpointJWKS, fieftest.Fault{Status: 200, Body: `{"keys":"no"}`}, 0},
		{"jwks empty", fieftest.EndpointJWKS, fieftest.Fault{Status: 200, Body: `{"keys":[]}`}, 0},
		{"jwks down", fieftest.EndpointJWKS, fieftest.Fault{Down: true}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, s)
			s.SetFault(tt.ep, tt.fault)
			_, err := c.ValidateAccessToken(ctx, tok)
			if !errors.Is(err, fief.ErrDiscovery) {
				t.Fatalf("err = %v, want ErrDiscovery", err)
			}
			var re *fief.RequestError
			if tt.status != 0 && (!errors.As(err, &re) || re.StatusCode != tt.status) {
				t.Fatalf("err = %v, want a RequestError %d", err, tt.status)
			}
			s.ClearFaults()
			// Within a short backoff (1 s) the failure is answered from
			// memory, without a request to Fief...
			before := s.Requests(tt.ep)
			if _, err := c.ValidateAccessToken(ctx, tok); !errors.Is(err, fief.ErrDiscovery) {
				t.Fatalf("within the backoff: %v", err)
			}
			if n := s.Requests(tt.ep) - before; n != 0 {
				t.Fatalf("within the backoff: %d requests to %s", n, tt.ep)
			}
			// ...but it is not cached: after the backoff the client recovers.
			time.Sleep(1100 * time.Millisecond)
			if _, err := c.ValidateAccessToken(ctx, tok); err != nil {
				t.Fatalf("after recovery: %v", err)
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	s := fieftest.NewTB(t)
	u := addUser(s)
	c := newClient(t, s, fief.WithTimeout(100*time.Millisecond))
	s.SetFault(fieftest.EndpointDiscovery, fieftest.Fault{Latency: 5 * time.Second, Times: 1})
	_, err := c.ValidateAccessToken(context.Background(), s.AccessToken(u.ID))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, fief.ErrDiscovery) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	// The caller's context is honoured too.
	c2 := newClient(t, s)
	s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Latency: 5 * time.Second, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c2.UserInfo(ctx, s.AccessToken(u.ID)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
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

func TestResponseBodiesAreCapped(t *testing.T) {
	s := fieftest.NewTB(t)
	u := addUser(s)
	c := newClient(t, s)
	ctx := context.Background()
	s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: 200, Body: `{"sub":"` + strings.Repeat("a", 2<<20) + `"}`})
	if _, err := c.UserInfo(ctx, s.AccessToken(u.ID)); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("err = %v", err)
	}
	s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: 500, Body: strings.Repeat("e", 100<<10)})
	_, err := c.UserInfo(ctx, s.AccessToken(u.ID))
	var re *fief.RequestError
	if !errors.As(err, &re) || re.StatusCode != 500 || len(re.Body) > 4096 {
		t.Fatalf("err = %v", err)
	}
	s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: 200, Body: `[1,2]`})
	if _, err := c.UserInfo(ctx, s.AccessToken(u.ID)); err == nil {
		t.Fatal("non-object userinfo accepted")
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

func TestRequestErrorText(t *testing.T) {
	tests := []struct {
		body, code, text string
	}{
		{`{"error":"invalid_grant"}`, "invalid_grant", "fief: token request failed with status 400 (invalid_grant)"},
		{`{"detail":"ACR_TOO_LOW"}`, "ACR_TOO_LOW", "fief: token request failed with status 400 (ACR_TOO_LOW)"},
		{`{"detail":[{"type":"string_too_short","input":"hunter2"}]}`, "", "fief: token request failed with status 400"},
		{`{"detail":"<script>alert(1)</script>"}`, "", "fief: token request failed with status 400"},
		{`not json`, "", "fief: token request failed with status 400"},
	}
	for _, tt := range tests {
		err := &fief.RequestError{Endpoint: "token", StatusCode: 400, Body: tt.body}
		if err.Code() != tt.code || err.Error() != tt.text {
			t.Errorf("body %s: Code %q, Error %q", tt.body, err.Code(), err.Error())
		}
	}
}

func TestClose(t *testing.T) {
	s, _, c, tok := newWarmClient(t)
	ctx := context.Background()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c.Close() // idempotent
	// Cached keys still validate offline; anything that needs Fief fails.
	if _, err := c.ValidateAccessToken(ctx, tok); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	c2 := newClient(t, s)
	c2.Close()
	if _, err := c2.ValidateAccessToken(ctx, tok); !errors.Is(err, fief.ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

// memCache returns a MemoryCache of n entries for ttl.
func memCache(t testing.TB, n int, ttl time.Duration) *fief.MemoryCache {
	t.Helper()
	c, err := fief.NewMemoryCache(n, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// claim returns one claim of u, decoded (numbers as float64), or nil.
func claim(u fief.UserInfo, name string) any {
	var m map[string]any
	if err := u.Claims(&m); err != nil {
		return nil
	}
	return m[name]
}
