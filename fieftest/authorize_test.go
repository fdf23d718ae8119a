package fieftest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fief-go/fief/fieftest"
)

// authURL builds an authorization URL for the default client with params
// overriding the defaults ("" removes a parameter).
func authURL(s *fieftest.Server, params map[string]string) string {
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {s.ClientID},
		"redirect_uri":  {redirectURI},
		"scope":         {"openid"},
		"state":         {"st4te"},
	}
	for k, v := range params {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	return s.URL + "/authorize?" + q.Encode()
}

func TestAuthorizeErrors(t *testing.T) {
	s := newServer(t)
	s.AddClient(fieftest.Client{ID: "strict", Secret: "x", RedirectURIs: []string{"https://strict.test/cb"}})

	tests := []struct {
		name   string
		params map[string]string
		// Either an error page...
		wantPage string // X-Fief-Error
		// ...or a redirect to redirect_uri with error and state.
		wantRedirect string
	}{
		{name: "missing client_id", params: map[string]string{"client_id": ""}, wantPage: "invalid_client"},
		{name: "unknown client", params: map[string]string{"client_id": "nope"}, wantPage: "invalid_client"},
		{name: "missing redirect_uri", params: map[string]string{"redirect_uri": ""}, wantPage: "invalid_redirect_uri"},
		{name: "redirect_uri not registered", params: map[string]string{"client_id": "strict", "redirect_uri": "https://strict.test/other"},
			wantPage: "invalid_redirect_uri"},
		{name: "redirect_uri not http", params: map[string]string{"redirect_uri": "javascript:alert(1)"}, wantPage: "invalid_redirect_uri"},
		{name: "missing response_type", params: map[string]string{"response_type": ""}, wantRedirect: "invalid_request"},
		{name: "hybrid response_type", params: map[string]string{"response_type": "code id_token"}, wantRedirect: "unsupported_response_type"},
		{name: "missing scope", params: map[string]string{"scope": ""}, wantRedirect: "invalid_request"},
		{name: "scope without openid", params: map[string]string{"scope": "profile offline_access"}, wantRedirect: "invalid_scope"},
		{name: "bad challenge method", params: map[string]string{"code_challenge": "abc", "code_challenge_method": "S512"},
			wantRedirect: "invalid_request"},
		{name: "prompt none", params: map[string]string{"prompt": "none"}, wantRedirect: "login_required"},
		{name: "bad prompt", params: map[string]string{"prompt": "maybe"}, wantRedirect: "invalid_request"},
		{name: "bad screen", params: map[string]string{"screen": "reset"}, wantRedirect: "invalid_request"},
		{name: "request object", params: map[string]string{"request": "eyJ..."}, wantRedirect: "request_not_supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, authURL(s, tc.params))
			if tc.wantPage != "" {
				if r.status != http.StatusBadRequest || r.header.Get("X-Fief-Error") != tc.wantPage {
					t.Fatalf("got %d X-Fief-Error %q, want 400 %q", r.status, r.header.Get("X-Fief-Error"), tc.wantPage)
				}
				if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), `class="error"`) {
					t.Errorf("not an HTML error page: %s", r.body)
				}
				return
			}
			if r.status != http.StatusFound {
				t.Fatalf("status = %d, want 302 (body %s)", r.status, r.body)
			}
			loc, err := url.Parse(r.header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			q := loc.Query()
			if loc.Scheme+"://"+loc.Host+loc.Path != redirectURI || q.Get("error") != tc.wantRedirect ||
				q.Get("state") != "st4te" || q.Get("error_description") == "" {
				t.Errorf("Location = %s, want %s with error=%s and state", loc, redirectURI, tc.wantRedirect)
			}
		})
	}
}

func TestAuthorizeLoginPage(t *testing.T) {
	s := newServer(t, fieftest.WithTenantPath("/secondary"))
	r := get(t, authURL(s, map[string]string{"login_hint": "alice@example.com", "code_challenge": "xyz", "nonce": "n", "lang": "fr", "acr_values": "1"}))
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, content type %q", r.status, r.header.Get("Content-Type"))
	}
	page := string(r.body)
	for _, want := range []string{
		`<form method="post" action="/secondary/login">`,
		`name="email" id="email" value="alice@example.com"`,
		`type="password" name="password" id="password"`,
		`<input type="hidden" name="login_session" value="`,
		`<button type="submit" id="login">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %q:\n%s", want, page)
		}
	}
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "fief_login_session" {
			cookie = c
		}
	}
	if cookie == nil || cookie.Path != "/secondary" || !cookie.HttpOnly {
		t.Fatalf("login session cookie = %+v", cookie)
	}

	// GET /login with the cookie shows the same form again.
	again := do(t, http.MethodGet, s.URL+"/login", nil, http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}})
	if again.status != http.StatusOK || !strings.Contains(string(again.body), cookie.Value) {
		t.Errorf("GET /login: %d", again.status)
	}
	if r := get(t, s.URL+"/login"); r.status != http.StatusBadRequest || r.header.Get("X-Fief-Error") != "invalid_session" {
		t.Errorf("GET /login without session: %d %q", r.status, r.header.Get("X-Fief-Error"))
	}
}

// loginSession opens the login page and returns its session ID.
func loginSession(t *testing.T, s *fieftest.Server, params map[string]string) string {
	t.Helper()
	page := string(get(t, authURL(s, params)).body)
	const marker = `name="login_session" value="`
	i := strings.Index(page, marker)
	if i < 0 {
		t.Fatalf("no login session in %s", page)
	}
	rest := page[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}

func TestLogin(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	s.AddUser(fieftest.User{Email: "off@example.com", Password: "password1", Inactive: true})
	s.AddUser(fieftest.User{Email: "nopass@example.com"})

	tests := []struct {
		name, email, password string
		session               string // "" = a fresh one
		wantStatus            int
		wantError             string // X-Fief-Error of error pages
	}{
		{name: "success", email: "alice@example.com", password: "correct horse", wantStatus: http.StatusFound},
		{name: "email case-insensitive", email: "ALICE@example.com", password: "correct horse", wantStatus: http.StatusFound},
		{name: "wrong password", email: "alice@example.com", password: "Correct horse", wantStatus: http.StatusBadRequest},
		{name: "unknown email", email: "eve@example.com", password: "correct horse", wantStatus: http.StatusBadRequest},
		{name: "inactive user", email: "off@example.com", password: "password1", wantStatus: http.StatusBadRequest},
		{name: "user without password", email: "nopass@example.com", password: "", wantStatus: http.StatusBadRequest},
		{name: "unknown session", email: "alice@example.com", password: "correct horse", session: "forged",
			wantStatus: http.StatusBadRequest, wantError: "invalid_session"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			session := tc.session
			if session == "" {
				session = loginSession(t, s, map[string]string{"nonce": "n1"})
			}
			form := url.Values{"login_session": {session}, "email": {tc.email}, "password": {tc.password}}
			r := do(t, http.MethodPost, s.URL+"/login", strings.NewReader(form.Encode()),
				http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d", r.status, tc.wantStatus)
			}
			switch {
			case r.status == http.StatusFound:
				loc, _ := url.Parse(r.header.Get("Location"))
				if loc.Query().Get("code") == "" || loc.Query().Get("state") != "st4te" {
					t.Fatalf("Location = %s", loc)
				}
				tokens := exchange(t, s, loc.Query().Get("code"), nil).json(t)
				_, claims := verify(t, s, tokens["access_token"].(string))
				if claims["acr"] != "1" || claims["sub"] != alice.ID {
					t.Errorf("acr %v sub %v, want acr 1 (password typed)", claims["acr"], claims["sub"])
				}
				_, id := verify(t, s, tokens["id_token"].(string))
				if id["nonce"] != "n1" {
					t.Errorf("nonce = %v", id["nonce"])
				}
			case tc.wantError != "":
				if got := r.header.Get("X-Fief-Error"); got != tc.wantError {
					t.Errorf("X-Fief-Error = %q, want %q", got, tc.wantError)
				}
			default:
				page := string(r.body)
				if !strings.Contains(page, `<p class="error"`) || !strings.Contains(page, `id="password"`) ||
					!strings.Contains(page, session) {
					t.Errorf("no form with an error message:\n%s", page)
				}
			}
		})
	}

	// A login session is used once.
	session := loginSession(t, s, nil)
	form := url.Values{"login_session": {session}, "email": {"alice@example.com"}, "password": {"correct horse"}}
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if r := do(t, http.MethodPost, s.URL+"/login", strings.NewReader(form.Encode()), h); r.status != http.StatusFound {
		t.Fatalf("first login: %d", r.status)
	}
	if r := do(t, http.MethodPost, s.URL+"/login", strings.NewReader(form.Encode()), h); r.status != http.StatusBadRequest {
		t.Errorf("second login with the same session: %d, want 400", r.status)
	}
}

func TestAuthorizeHelper(t *testing.T) {
	s := newServer(t, fieftest.WithTenantPath("/t"))
	alice := addAlice(s)

	loc, err := s.Authorize(authURL(s, map[string]string{"nonce": "abc", "scope": "openid offline_access"}), "alice@example.com", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	code := loc.Query().Get("code")
	if loc.Host != "app.test" || code == "" || loc.Query().Get("state") != "st4te" {
		t.Fatalf("Location = %s", loc)
	}
	r := exchange(t, s, code, nil)
	if r.status != http.StatusOK {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	tokens := r.json(t)
	access := tokens["access_token"].(string)
	_, claims := verify(t, s, access)
	if claims["scope"] != "openid offline_access" || claims["acr"] != "1" || claims["sub"] != alice.ID {
		t.Errorf("access token claims %v", claims)
	}
	_, id := verify(t, s, tokens["id_token"].(string))
	if id["nonce"] != "abc" || id["c_hash"] != fieftest.ValidationHash(code) || id["at_hash"] != fieftest.ValidationHash(access) {
		t.Errorf("ID token nonce %v c_hash %v at_hash %v", id["nonce"], id["c_hash"], id["at_hash"])
	}
	if tokens["refresh_token"] == nil {
		t.Error("no refresh token despite offline_access")
	}

	errTests := []struct {
		name, url, email, password string
		wantErr                    string // substring of the error; "" = a redirect with error=wantParam
		wantParam                  string
	}{
		{name: "wrong password", url: authURL(s, nil), email: "alice@example.com", password: "nope", wantErr: "Invalid email or password"},
		{name: "unknown client", url: authURL(s, map[string]string{"client_id": "nope"}), wantErr: "invalid_client"},
		{name: "other host", url: "http://elsewhere.test/t/authorize", wantErr: "not on this server"},
		{name: "bad URL", url: "http://[::1", wantErr: "Authorize"},
		{name: "redirect with error", url: authURL(s, map[string]string{"scope": "email"}), wantParam: "invalid_scope"},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			loc, err := s.Authorize(tc.url, tc.email, tc.password)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || loc.Query().Get("error") != tc.wantParam {
				t.Fatalf("Authorize = %v, %v; want a redirect with error=%s", loc, err, tc.wantParam)
			}
		})
	}

	// A relative URL resolves against the server.
	rel := strings.TrimPrefix(authURL(s, nil), strings.TrimSuffix(s.URL, "/t"))
	if loc, err := s.Authorize(rel, "alice@example.com", "correct horse"); err != nil || loc.Query().Get("code") == "" {
		t.Errorf("relative URL: %v, %v", loc, err)
	}
}

func TestIssueCode(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	s.AddClient(fieftest.Client{ID: "strict", Secret: "x", RedirectURIs: []string{"https://strict.test/cb"}})

	code := s.IssueCode(fieftest.CodeRequest{UserID: alice.ID, RedirectURI: redirectURI, Nonce: "nn", Scopes: []string{"openid", "castles"}})
	tokens := exchange(t, s, code, nil).json(t)
	_, claims := verify(t, s, tokens["access_token"].(string))
	if claims["acr"] != "1" || claims["scope"] != "openid castles" || !equalJSON(claims["aud"], []any{s.ClientID}) {
		t.Errorf("claims %v", claims)
	}
	code = s.IssueCode(fieftest.CodeRequest{UserID: alice.ID, RedirectURI: redirectURI, ACR: "0"})
	_, claims = verify(t, s, exchange(t, s, code, nil).json(t)["access_token"].(string))
	if claims["acr"] != "0" || claims["scope"] != "openid" {
		t.Errorf("claims %v", claims)
	}

	for name, req := range map[string]fieftest.CodeRequest{
		"unknown user":         {UserID: "nobody", RedirectURI: redirectURI},
		"unknown client":       {UserID: alice.ID, ClientID: "nope", RedirectURI: redirectURI},
		"no redirect URI":      {UserID: alice.ID},
		"unregistered":         {UserID: alice.ID, ClientID: "strict", RedirectURI: redirectURI},
		"bad challenge method": {UserID: alice.ID, RedirectURI: redirectURI, CodeChallenge: "c", CodeChallengeMethod: "S1"},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("IssueCode did not panic")
				}
			}()
			s.IssueCode(req)
		})
	}
}

func TestLogout(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		query      string
		wantStatus int
		wantLoc    string
	}{
		{"?redirect_uri=https%3A%2F%2Fapp.test%2Fbye%3Fx%3D1", http.StatusFound, "https://app.test/bye?x=1"},
		{"?redirect_uri=myapp%3A%2F%2Fhost%2Fdone", http.StatusFound, "myapp://host/done"},
		{"", http.StatusBadRequest, ""},
		{"?redirect_uri=not-a-url", http.StatusBadRequest, ""},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := get(t, s.URL+"/logout"+tc.query)
			if r.status != tc.wantStatus || r.header.Get("Location") != tc.wantLoc {
				t.Fatalf("got %d Location %q, want %d %q", r.status, r.header.Get("Location"), tc.wantStatus, tc.wantLoc)
			}
			if r.status == http.StatusBadRequest && r.header.Get("X-Fief-Error") != "invalid_request" {
				t.Errorf("X-Fief-Error = %q", r.header.Get("X-Fief-Error"))
			}
		})
	}
}
