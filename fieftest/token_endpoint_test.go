package fieftest_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief/fieftest"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwe"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

func TestCodeExchange(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	code := s.IssueCode(fieftest.CodeRequest{UserID: alice.ID, RedirectURI: redirectURI, Nonce: "xyz"})

	r := exchange(t, s, code, nil)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
		t.Errorf("Cache-Control %q, Pragma %q", r.header.Get("Cache-Control"), r.header.Get("Pragma"))
	}
	body := r.json(t)
	if got := keysOf(body); !slices.Equal(got, []string{"access_token", "expires_in", "id_token", "token_type"}) {
		t.Errorf("members = %v (no refresh_token without offline_access)", got)
	}
	if body["token_type"] != "bearer" || body["expires_in"] != float64(86400) {
		t.Errorf("token_type %v, expires_in %v", body["token_type"], body["expires_in"])
	}
	access := body["access_token"].(string)
	_, id := verify(t, s, body["id_token"].(string))
	for claim, want := range map[string]any{
		"sub": alice.ID, "nonce": "xyz", "acr": "1", "email": "alice@example.com",
		"c_hash": fieftest.ValidationHash(code), "at_hash": fieftest.ValidationHash(access),
	} {
		if id[claim] != want {
			t.Errorf("ID token %s = %v, want %v", claim, id[claim], want)
		}
	}
	if _, ok := id["permissions"]; ok {
		t.Error("the ID token has permissions")
	}
	if r := get(t, s.URL+"/api/userinfo"); r.status != http.StatusUnauthorized {
		t.Errorf("userinfo without token: %d", r.status)
	}
	if r := do(t, http.MethodGet, s.URL+"/api/userinfo", nil, bearer(access)); r.status != http.StatusOK || r.json(t)["sub"] != alice.ID {
		t.Errorf("userinfo with the access token: %d %s", r.status, r.body)
	}

	// Codes are single use.
	wantTokenError(t, exchange(t, s, code, nil), "invalid_grant")
}

func TestPKCE(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	sum := sha256.Sum256([]byte(verifier))
	s256 := base64.RawURLEncoding.EncodeToString(sum[:])

	tests := []struct {
		name              string
		challenge, method string
		verifier          *string // nil = no code_verifier parameter
		wantErr           string
	}{
		{name: "S256", challenge: s256, method: "S256", verifier: ptr(verifier)},
		{name: "S256 wrong verifier", challenge: s256, method: "S256", verifier: ptr(verifier + "x"), wantErr: "invalid_grant"},
		{name: "S256 verifier as plain", challenge: s256, method: "S256", verifier: ptr(s256), wantErr: "invalid_grant"},
		{name: "S256 missing verifier", challenge: s256, method: "S256", wantErr: "invalid_grant"},
		{name: "plain", challenge: verifier, method: "plain", verifier: ptr(verifier)},
		{name: "plain by default", challenge: verifier, verifier: ptr(verifier)},
		{name: "plain wrong verifier", challenge: verifier, method: "plain", verifier: ptr("nope"), wantErr: "invalid_grant"},
		{name: "plain missing verifier", challenge: verifier, method: "plain", wantErr: "invalid_grant"},
		{name: "verifier without challenge", verifier: ptr(verifier), wantErr: "invalid_grant"},
		{name: "no PKCE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code := s.IssueCode(fieftest.CodeRequest{UserID: alice.ID, RedirectURI: redirectURI,
				CodeChallenge: tc.challenge, CodeChallengeMethod: tc.method})
			extra := url.Values{}
			if tc.verifier != nil {
				extra.Set("code_verifier", *tc.verifier)
			}
			r := exchange(t, s, code, extra)
			if tc.wantErr != "" {
				wantTokenError(t, r, tc.wantErr)
				return
			}
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
		})
	}

	// Through the login form too.
	loc, err := s.Authorize(authURL(s, map[string]string{"code_challenge": s256, "code_challenge_method": "S256"}),
		"alice@example.com", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	code := loc.Query().Get("code")
	wantTokenError(t, exchange(t, s, code, url.Values{"code_verifier": {"wrong"}}), "invalid_grant")
	if r := exchange(t, s, code, url.Values{"code_verifier": {verifier}}); r.status != http.StatusOK {
		t.Errorf("exchange with the right verifier after a wrong one: %d %s", r.status, r.body)
	}
}

func ptr(s string) *string { return &s }

func TestClientAuthentication(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	s.AddClient(fieftest.Client{ID: "spa"}) // public
	const verifier = "verifier-verifier-verifier-verifier-verifier"

	tests := []struct {
		name     string
		clientID string // the code's client
		form     url.Values
		basic    []string
		pkce     bool
		wantErr  string
	}{
		{name: "basic", clientID: s.ClientID, basic: []string{s.ClientID, s.ClientSecret}},
		{name: "post", clientID: s.ClientID, form: url.Values{"client_id": {s.ClientID}, "client_secret": {s.ClientSecret}}},
		{name: "wrong basic, right post", clientID: s.ClientID, basic: []string{s.ClientID, "bad"},
			form: url.Values{"client_id": {s.ClientID}, "client_secret": {s.ClientSecret}}},
		{name: "basic wrong secret", clientID: s.ClientID, basic: []string{s.ClientID, "bad"}, wantErr: "invalid_client"},
		{name: "post wrong secret", clientID: s.ClientID, form: url.Values{"client_id": {s.ClientID}, "client_secret": {"bad"}}, wantErr: "invalid_client"},
		{name: "unknown client", clientID: s.ClientID, basic: []string{"nope", "x"}, wantErr: "invalid_client"},
		{name: "no credentials", clientID: s.ClientID, wantErr: "invalid_client"},
		{name: "confidential client with none", clientID: s.ClientID, form: url.Values{"client_id": {s.ClientID}}, pkce: true, wantErr: "invalid_client"},
		{name: "public client with none and PKCE", clientID: "spa", form: url.Values{"client_id": {"spa"}}, pkce: true},
		{name: "public client without verifier", clientID: "spa", form: url.Values{"client_id": {"spa"}}, wantErr: "invalid_client"},
		{name: "public client with empty secret basic", clientID: "spa", basic: []string{"spa", ""}, wantErr: "invalid_client"},
		{name: "code of another client", clientID: "spa", basic: []string{s.ClientID, s.ClientSecret}, pkce: true, wantErr: "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := fieftest.CodeRequest{UserID: alice.ID, ClientID: tc.clientID, RedirectURI: redirectURI}
			form := url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {redirectURI}}
			if tc.pkce {
				req.CodeChallenge = verifier
				form.Set("code_verifier", verifier)
			}
			form.Set("code", s.IssueCode(req))
			for k, vs := range tc.form {
				form[k] = vs
			}
			r := tokenRequest(t, s, form, tc.basic)
			if tc.wantErr != "" {
				wantTokenError(t, r, tc.wantErr)
				return
			}
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if _, claims := verify(t, s, r.json(t)["access_token"].(string)); !equalJSON(claims["aud"], []any{tc.clientID}) {
				t.Errorf("aud = %v, want [%s]", claims["aud"], tc.clientID)
			}
		})
	}
}

func TestTokenRequestErrors(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	bob := s.AddUser(fieftest.User{Email: "bob@example.com"})
	s.AddClient(fieftest.Client{ID: "other", Secret: "other-secret"})
	creds := []string{s.ClientID, s.ClientSecret}
	code := func(user, client string) string {
		return s.IssueCode(fieftest.CodeRequest{UserID: user, ClientID: client, RedirectURI: redirectURI})
	}
	bobsCode := code(bob.ID, "")
	s.DeleteUser(bob.ID)

	tests := []struct {
		name    string
		form    url.Values
		basic   []string
		wantErr string
	}{
		{"missing grant_type without client", url.Values{}, nil, "invalid_request"},
		{"missing grant_type", url.Values{"code": {"x"}}, creds, "invalid_request"},
		{"unsupported grant_type", url.Values{"grant_type": {"password"}}, creds, "unsupported_grant_type"},
		{"client_credentials", url.Values{"grant_type": {"client_credentials"}}, creds, "unsupported_grant_type"},
		{"missing code", url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {redirectURI}}, creds, "invalid_request"},
		{"missing redirect_uri", url.Values{"grant_type": {"authorization_code"}, "code": {code(alice.ID, "")}}, creds, "invalid_request"},
		{"unknown code", url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}, "redirect_uri": {redirectURI}}, creds, "invalid_grant"},
		{"code of another client", url.Values{"grant_type": {"authorization_code"}, "code": {code(alice.ID, "other")}, "redirect_uri": {redirectURI}}, creds, "invalid_grant"},
		{"redirect_uri mismatch", url.Values{"grant_type": {"authorization_code"}, "code": {code(alice.ID, "")}, "redirect_uri": {redirectURI + "/x"}}, creds, "invalid_grant"},
		{"deleted user", url.Values{"grant_type": {"authorization_code"}, "code": {bobsCode}, "redirect_uri": {redirectURI}}, creds, "invalid_grant"},
		{"missing refresh_token", url.Values{"grant_type": {"refresh_token"}}, creds, "invalid_request"},
		{"unknown refresh_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}, creds, "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantTokenError(t, tokenRequest(t, s, tc.form, tc.basic), tc.wantErr)
		})
	}

	r := do(t, http.MethodPost, s.URL+"/api/token", strings.NewReader("%zz"), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	wantTokenError(t, r, "invalid_request")
}

func TestRefreshToken(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	s.AddClient(fieftest.Client{ID: "other", Secret: "other-secret"})
	creds := []string{s.ClientID, s.ClientSecret}
	code := s.IssueCode(fieftest.CodeRequest{UserID: alice.ID, RedirectURI: redirectURI, Nonce: "n",
		Scopes: []string{"openid", "offline_access", "castles"}})
	first := exchange(t, s, code, nil).json(t)
	refresh, _ := first["refresh_token"].(string)
	if refresh == "" {
		t.Fatalf("no refresh token: %v", first)
	}
	_, firstClaims := verify(t, s, first["access_token"].(string))

	refreshWith := func(token string, basic []string, scope string) response {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}
		if scope != "" {
			form.Set("scope", scope)
		}
		return tokenRequest(t, s, form, basic)
	}

	// Another client cannot use it, nor ask for more scopes; neither consumes it.
	wantTokenError(t, refreshWith(refresh, []string{"other", "other-secret"}, ""), "invalid_grant")
	wantTokenError(t, refreshWith(refresh, creds, "openid offline_access admin"), "invalid_scope")

	r := refreshWith(refresh, creds, "")
	if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	second := r.json(t)
	access := second["access_token"].(string)
	_, claims := verify(t, s, access)
	if claims["acr"] != "0" || claims["scope"] != "openid offline_access castles" || claims["auth_time"] != firstClaims["auth_time"] {
		t.Errorf("refreshed access token: acr %v scope %v auth_time %v (first %v)", claims["acr"], claims["scope"], claims["auth_time"], firstClaims["auth_time"])
	}
	_, id := verify(t, s, second["id_token"].(string))
	if _, ok := id["c_hash"]; ok {
		t.Error("refreshed ID token has c_hash")
	}
	if _, ok := id["nonce"]; ok {
		t.Error("refreshed ID token has nonce")
	}
	if id["at_hash"] != fieftest.ValidationHash(access) || id["acr"] != "0" {
		t.Errorf("refreshed ID token at_hash %v acr %v", id["at_hash"], id["acr"])
	}

	// Rotation: the old token is gone, the new one works.
	wantTokenError(t, refreshWith(refresh, creds, ""), "invalid_grant")
	rotated, _ := second["refresh_token"].(string)
	if rotated == "" || rotated == refresh {
		t.Fatalf("rotated refresh token %q", rotated)
	}

	// Narrowing the scope without offline_access ends the chain.
	r = refreshWith(rotated, creds, "openid castles")
	if r.status != http.StatusOK {
		t.Fatalf("narrowed refresh: %d %s", r.status, r.body)
	}
	third := r.json(t)
	if _, ok := third["refresh_token"]; ok {
		t.Error("a refresh token was issued without offline_access")
	}
	if _, c := verify(t, s, third["access_token"].(string)); c["scope"] != "openid castles" {
		t.Errorf("scope = %v", c["scope"])
	}
	wantTokenError(t, refreshWith(rotated, creds, ""), "invalid_grant")

	// Deleting the user revokes its refresh tokens.
	code = s.IssueCode(fieftest.CodeRequest{UserID: alice.ID, RedirectURI: redirectURI, Scopes: []string{"openid", "offline_access"}})
	last := exchange(t, s, code, nil).json(t)["refresh_token"].(string)
	s.DeleteUser(alice.ID)
	wantTokenError(t, refreshWith(last, creds, ""), "invalid_grant")
}

// TestRefreshTokenReuse checks rotation as Fief does it, under concurrency:
// of concurrent requests with one refresh token exactly one gets new tokens,
// every other gets invalid_grant, and so does any later use of that token.
// This is the race that logs users out of applications that refresh
// naively.
func TestRefreshTokenReuse(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	code := s.IssueCode(fieftest.CodeRequest{UserID: alice.ID, RedirectURI: redirectURI, Scopes: []string{"openid", "offline_access"}})
	refresh := exchange(t, s, code, nil).json(t)["refresh_token"].(string)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh},
		"client_id": {s.ClientID}, "client_secret": {s.ClientSecret}}

	const n = 20
	responses := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			responses[i] = tokenRequest(t, s, form, nil)
		})
	}
	close(start)
	wg.Wait()
	var rotated []string
	for _, r := range responses {
		switch r.status {
		case http.StatusOK:
			rotated = append(rotated, r.json(t)["refresh_token"].(string))
		default:
			wantTokenError(t, r, "invalid_grant")
		}
	}
	if len(rotated) != 1 {
		t.Fatalf("%d of %d concurrent refreshes with one token succeeded, want 1", len(rotated), n)
	}
	wantTokenError(t, tokenRequest(t, s, form, nil), "invalid_grant")
	// The rotated token works, once.
	form.Set("refresh_token", rotated[0])
	if r := tokenRequest(t, s, form, nil); r.status != http.StatusOK {
		t.Fatalf("refresh with the rotated token: %d %s", r.status, r.body)
	}
	wantTokenError(t, tokenRequest(t, s, form, nil), "invalid_grant")
}

// TestRefreshTokenLifetime checks WithRefreshTokenLifetime: a refresh token
// expires that long after it was issued, and each refresh issues one that
// lives that long again.
func TestRefreshTokenLifetime(t *testing.T) {
	s := newServer(t, fieftest.WithRefreshTokenLifetime(time.Second))
	alice := addAlice(s)
	code := s.IssueCode(fieftest.CodeRequest{UserID: alice.ID, RedirectURI: redirectURI, Scopes: []string{"openid", "offline_access"}})
	refresh := exchange(t, s, code, nil).json(t)["refresh_token"].(string)
	form := func(token string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token},
			"client_id": {s.ClientID}, "client_secret": {s.ClientSecret}}
	}
	time.Sleep(600 * time.Millisecond)
	r := tokenRequest(t, s, form(refresh), nil)
	if r.status != http.StatusOK {
		t.Fatalf("refresh within the lifetime: %d %s", r.status, r.body)
	}
	rotated := r.json(t)["refresh_token"].(string)
	time.Sleep(600 * time.Millisecond) // 1.2 s after the first token, 0.6 s after the rotated one
	r = tokenRequest(t, s, form(rotated), nil)
	if r.status != http.StatusOK {
		t.Fatalf("refresh with the rotated token within its own lifetime: %d %s", r.status, r.body)
	}
	rotated = r.json(t)["refresh_token"].(string)
	time.Sleep(1100 * time.Millisecond)
	wantTokenError(t, tokenRequest(t, s, form(rotated), nil), "invalid_grant")
}

func TestPublicClientRefresh(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	s.AddClient(fieftest.Client{ID: "cli", RedirectURIs: []string{"http://localhost:51562/callback"}})
	code := s.IssueCode(fieftest.CodeRequest{UserID: alice.ID, ClientID: "cli", RedirectURI: "http://localhost:51562/callback",
		Scopes: []string{"openid", "offline_access"}, CodeChallenge: "v", CodeChallengeMethod: "plain"})
	r := tokenRequest(t, s, url.Values{"grant_type": {"authorization_code"}, "client_id": {"cli"}, "code": {code},
		"redirect_uri": {"http://localhost:51562/callback"}, "code_verifier": {"v"}}, nil)
	if r.status != http.StatusOK {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	r = tokenRequest(t, s, url.Values{"grant_type": {"refresh_token"}, "client_id": {"cli"},
		"refresh_token": {r.json(t)["refresh_token"].(string)}}, nil)
	if r.status != http.StatusOK {
		t.Fatalf("refresh by a public client: %d %s", r.status, r.body)
	}
}

func TestEncryptedIDTokenFromTokenEndpoint(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	s.AddClient(fieftest.Client{ID: "enc", Secret: "enc-secret", EncryptIDToken: true})
	key, err := jwk.ParseKey([]byte(s.EncryptionKey("enc")))
	if err != nil {
		t.Fatal(err)
	}
	code := s.IssueCode(fieftest.CodeRequest{UserID: alice.ID, ClientID: "enc", RedirectURI: redirectURI, Nonce: "n"})
	r := tokenRequest(t, s, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}},
		[]string{"enc", "enc-secret"})
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	body := r.json(t)
	if strings.Count(body["access_token"].(string), ".") != 2 {
		t.Error("the access token is not a plain JWS")
	}
	inner, err := jwe.Decrypt([]byte(body["id_token"].(string)), jwe.WithKey(jwa.RSA_OAEP_256, key))
	if err != nil {
		t.Fatalf("decrypt ID token: %v", err)
	}
	_, id := verify(t, s, string(inner))
	if id["c_hash"] != fieftest.ValidationHash(code) || id["nonce"] != "n" || !equalJSON(id["aud"], []any{"enc"}) {
		t.Errorf("inner claims %v", id)
	}
}
