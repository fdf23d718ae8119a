package fief_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
	"golang.org/x/oauth2"
)

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

// TestTokenSource: a Fief session as an oauth2.TokenSource: the access
// token until it is about to expire, then one refresh through Fief shared
// by concurrent callers, the rotated refresh token kept and reported.
func TestTokenSource(t *testing.T) {
	s := newServer(t)
	u := addUser(s)
	clk := newTestClock()
	c := newClient(t, s, fief.WithClock(clk.Now))
	ctx := context.Background()
	code := s.IssueCode(fieftest.CodeRequest{UserID: u.ID, RedirectURI: redirectURI, Scopes: []string{"openid", "offline_access"}})
	tokens, _, err := c.AuthCallback(ctx, code, redirectURI, "")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var saved []*fief.Tokens
	ts := c.TokenSource(tokens, func(t *fief.Tokens) { mu.Lock(); saved = append(saved, t); mu.Unlock() })

	tok, err := ts.Token()
	if err != nil || tok.AccessToken != tokens.AccessToken || tok.Type() != "Bearer" || tok.Extra("id_token") != tokens.IDToken {
		t.Fatalf("Token = %+v, %v", tok, err)
	}
	// An x/oauth2 HTTP client sends it.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("Authorization"))
	}))
	defer api.Close()
	resp, err := oauth2.NewClient(ctx, ts).Get(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "Bearer "+tokens.AccessToken {
		t.Fatalf("API got %q", body)
	}

	// Past expiry (less the 10 s margin), concurrent callers share one
	// refresh, which rotates the refresh token.
	s.ResetRequests()
	clk.Add(time.Until(tokens.Expiry) - 5*time.Second)
	var wg sync.WaitGroup
	got := make([]string, 10)
	for i := range got {
		wg.Go(func() {
			tok, err := ts.Token()
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = tok.AccessToken
		})
	}
	wg.Wait()
	if n := s.Requests(fieftest.EndpointToken); n != 1 {
		t.Fatalf("%d token requests for 10 concurrent callers, want 1", n)
	}
	if len(saved) != 1 || saved[0].RefreshToken == "" || saved[0].RefreshToken == tokens.RefreshToken {
		t.Fatalf("onRefresh got %+v", saved)
	}
	for _, a := range got {
		if a != saved[0].AccessToken {
			t.Fatal("callers got different tokens")
		}
	}
	// An answer without a refresh token keeps the current one.
	clk.Add(saved[0].Expiry.Sub(clk.Now()) - 5*time.Second)
	valid := fieftest.ExpiresIn(time.Until(clk.Now()) + time.Hour) // an hour on the test clock
	body, _ = json.Marshal(map[string]any{
		"access_token": s.AccessToken(u.ID, valid), "id_token": s.IDToken(u.ID, valid),
		"token_type": "bearer", "expires_in": 3600,
	})
	s.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: http.StatusOK, Body: string(body), Times: 1})
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	if len(saved) != 2 || saved[1].RefreshToken != saved[0].RefreshToken {
		t.Fatalf("after an answer without a refresh token, onRefresh got %+v, want the current refresh token kept", saved[1:])
	}
	// The old refresh token is spent: Fief refuses it, as it would.
	_, _, err = c.AuthRefreshToken(ctx, tokens.RefreshToken)
	requestError(t, err, http.StatusBadRequest, "invalid_grant")

	// Without a refresh token, an expired token is an error.
	noRefresh := *tokens
	noRefresh.RefreshToken = ""
	noRefresh.Expiry = clk.Now().Add(-time.Minute)
	if _, err := c.TokenSource(&noRefresh, nil).Token(); !errors.Is(err, fief.ErrAccessTokenExpired) {
		t.Fatalf("err = %v, want ErrAccessTokenExpired", err)
	}
	// A refresh Fief refuses is its RequestError.
	spent := *tokens
	spent.Expiry = clk.Now().Add(-time.Minute)
	_, err = c.TokenSource(&spent, nil).Token()
	requestError(t, err, http.StatusBadRequest, "invalid_grant")
}
