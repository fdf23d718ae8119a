package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/fieftest"
)

func TestLoginFlow(t *testing.T) {
	f, appURL := start(t)

	// A visitor without a session is sent to Fief's login page.
	resp, _ := get(t, appURL+"/protected")
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("GET /protected: status %d, want 307", resp.StatusCode)
	}
	authURL := resp.Header.Get("Location")
	if !strings.HasPrefix(authURL, f.BaseURL+"/authorize?") {
		t.Fatalf("redirected to %s, want Fief's /authorize", authURL)
	}
	q := mustParse(t, authURL).Query()
	for k, want := range map[string]string{
		"response_type":         "code",
		"client_id":             f.Server.ClientID,
		"redirect_uri":          appURL + "/auth-callback",
		"scope":                 "openid",
		"code_challenge_method": "S256",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorization URL: %s=%q, want %q", k, got, want)
		}
	}
	loginState := findCookie(t, resp, loginCookie)
	checkCookie(t, loginState, "/auth-callback", int(loginLifetime/time.Second))
	if q.Get("state") == "" || !strings.HasPrefix(loginState.Value, q.Get("state")+".") {
		t.Errorf("state %q is not the one in the %s cookie", q.Get("state"), loginCookie)
	}

	// The user logs in on Fief's form; Fief redirects back with a code.
	callback, err := f.Server.Authorize(authURL, devfief.DemoEmail, devfief.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(callback.String(), appURL+"/auth-callback?") || callback.Query().Get("code") == "" {
		t.Fatalf("Fief redirected to %s", callback)
	}

	// The callback exchanges the code and sets the session cookie.
	resp, body := get(t, callback.String(), loginState)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/protected" {
		t.Fatalf("GET /auth-callback: %d to %q, want 303 to /protected; body %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	session := findCookie(t, resp, sessionCookie)
	checkCookie(t, session, "/", int((24 * time.Hour).Seconds())) // expires_in: fieftest's default lifetime
	if session.Value == "" {
		t.Fatal("empty session cookie")
	}
	if c := findCookie(t, resp, loginCookie); c.MaxAge >= 0 {
		t.Errorf("the %s cookie is not deleted: %s", loginCookie, show(c))
	}

	// The protected page greets the user, whose info comes from Fief.
	resp, body = get(t, appURL+"/protected", session)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Hello anne@bretagne.duchy") {
		t.Fatalf("GET /protected: %d %s", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	if n := f.Server.Requests(fieftest.EndpointUserinfo); n != 1 {
		t.Errorf("%d userinfo calls, want 1 (no cache in this example)", n)
	}

	// Logout deletes the cookie and sends the browser to Fief's logout,
	// which comes back to the home page.
	resp, _ = get(t, appURL+"/logout", session)
	logoutURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || logoutURL != f.Client.LogoutURL(appURL+"/") ||
		!strings.HasPrefix(logoutURL, f.BaseURL+"/logout?") {
		t.Fatalf("GET /logout: %d to %q, want 303 to Fief's logout", resp.StatusCode, logoutURL)
	}
	if c := findCookie(t, resp, sessionCookie); c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("the session cookie is not deleted: %s", show(c))
	}
	resp, _ = get(t, logoutURL)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != appURL+"/" {
		t.Errorf("Fief's logout: %d to %q, want 302 to %s/", resp.StatusCode, resp.Header.Get("Location"), appURL)
	}
	if resp, body := get(t, appURL+"/"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `href="/protected"`) {
		t.Errorf("GET /: %d %s", resp.StatusCode, body)
	}
}

func TestCallbackRefusals(t *testing.T) {
	f, appURL := start(t)

	// beginLogin starts a login and returns Fief's redirect back and the
	// login-state cookie.
	beginLogin := func(t *testing.T) (*url.URL, *http.Cookie) {
		resp, _ := get(t, appURL+"/protected")
		callback, err := f.Server.Authorize(resp.Header.Get("Location"), devfief.DemoEmail, devfief.DemoPassword)
		if err != nil {
			t.Fatal(err)
		}
		return callback, findCookie(t, resp, loginCookie)
	}
	withQuery := func(u *url.URL, k, v string) string {
		c := *u
		q := c.Query()
		q.Set(k, v)
		c.RawQuery = q.Encode()
		return c.String()
	}

	tests := []struct {
		name       string
		request    func(t *testing.T) (string, []*http.Cookie)
		wantStatus int
	}{
		{"no login-state cookie", func(t *testing.T) (string, []*http.Cookie) {
			callback, _ := beginLogin(t)
			return callback.String(), nil
		}, http.StatusBadRequest},
		{"another state", func(t *testing.T) (string, []*http.Cookie) {
			callback, state := beginLogin(t)
			return withQuery(callback, "state", "forged"), []*http.Cookie{state}
		}, http.StatusBadRequest},
		{"no state", func(t *testing.T) (string, []*http.Cookie) {
			callback, state := beginLogin(t)
			c := *callback
			c.RawQuery = url.Values{"code": {callback.Query().Get("code")}}.Encode()
			return c.String(), []*http.Cookie{state}
		}, http.StatusBadRequest},
		{"state of another login", func(t *testing.T) (string, []*http.Cookie) {
			callback, _ := beginLogin(t)
			_, other := beginLogin(t)
			return callback.String(), []*http.Cookie{other}
		}, http.StatusBadRequest},
		{"Fief's error instead of a code", func(t *testing.T) (string, []*http.Cookie) {
			callback, state := beginLogin(t)
			c := *callback
			c.RawQuery = url.Values{"error": {"access_denied"}, "state": {callback.Query().Get("state")}}.Encode()
			return c.String(), []*http.Cookie{state}
		}, http.StatusBadRequest},
		{"code already used", func(t *testing.T) (string, []*http.Cookie) {
			callback, state := beginLogin(t)
			if resp, _ := get(t, callback.String(), state); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("first use: status %d", resp.StatusCode)
			}
			return callback.String(), []*http.Cookie{state}
		}, http.StatusBadRequest},
		{"token endpoint down", func(t *testing.T) (string, []*http.Cookie) {
			callback, state := beginLogin(t)
			f.Server.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: http.StatusInternalServerError, Times: 1})
			return callback.String(), []*http.Cookie{state}
		}, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, cookies := tt.request(t)
			resp, body := get(t, target, cookies...)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			for _, c := range resp.Cookies() {
				if c.Name == sessionCookie {
					t.Errorf("session cookie set: %s", show(c))
				}
			}
			if strings.Contains(body, "invalid_grant") || strings.Contains(body, "fief:") {
				t.Errorf("the answer reveals an internal error: %s", body)
			}
		})
	}
}

func TestProtectedWithBadSession(t *testing.T) {
	f, appURL := start(t)
	for name, token := range map[string]string{
		"forged":  "forged",
		"expired": f.Server.AccessToken(f.User.ID, fieftest.ExpiresIn(-time.Hour)),
	} {
		t.Run(name, func(t *testing.T) {
			resp, _ := get(t, appURL+"/protected", &http.Cookie{Name: sessionCookie, Value: token})
			if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(resp.Header.Get("Location"), f.BaseURL+"/authorize?") {
				t.Errorf("status %d to %q, want 307 to Fief's login page", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

func TestFiefUnavailable(t *testing.T) {
	f, appURL := start(t)
	f.Server.SetDown(true)
	resp, body := get(t, appURL+"/protected")
	if resp.StatusCode != http.StatusServiceUnavailable || body != "Service Unavailable" {
		t.Errorf("status %d %q, want 503 and a fixed body", resp.StatusCode, body)
	}
}

func TestCookiesSecureOverHTTPS(t *testing.T) {
	f, err := devfief.Embedded("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	app, err := newApp(f.Client, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(app)
	t.Cleanup(ts.Close)

	resp, err := noRedirects(ts.Client()).Get(ts.URL + "/protected")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := mustParse(t, resp.Header.Get("Location")).Query().Get("redirect_uri"); got != ts.URL+"/auth-callback" {
		t.Errorf("redirect_uri %q, want %s/auth-callback", got, ts.URL)
	}
	if c := findCookie(t, resp, loginCookie); !c.Secure {
		t.Errorf("%s is not Secure over HTTPS", show(c))
	}
	resp, err = noRedirects(ts.Client()).Get(ts.URL + "/logout")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c := findCookie(t, resp, sessionCookie); !c.Secure {
		t.Errorf("%s is not Secure over HTTPS", show(c))
	}
}

// start serves the application with an embedded Fief.
func start(t *testing.T) (*devfief.Fief, string) {
	t.Helper()
	f, err := devfief.Embedded("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	app, err := newApp(f.Client, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(app)
	t.Cleanup(ts.Close)
	return f, ts.URL
}

// noRedirects returns a copy of c that does not follow redirects.
func noRedirects(c *http.Client) *http.Client {
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &nc
}

// get sends GET target with cookies, like a browser that does not follow
// redirects, and returns the answer with its body.
func get(t *testing.T, target string, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := noRedirects(http.DefaultClient).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, strings.TrimSpace(string(b))
}

// findCookie returns the cookie called name that resp sets.
func findCookie(t *testing.T, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie in %q", name, resp.Header.Values("Set-Cookie"))
	return nil
}

// checkCookie checks the attributes of a cookie set over plain HTTP.
func checkCookie(t *testing.T, c *http.Cookie, path string, maxAge int) {
	t.Helper()
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.Path != path || c.MaxAge != maxAge {
		t.Errorf("cookie %s, want HttpOnly, SameSite=Lax, not Secure over HTTP, Path=%s, Max-Age=%d", show(c), path, maxAge)
	}
}

// show returns c as in a Set-Cookie header, without its value.
func show(c *http.Cookie) string {
	r := *c
	if r.Value != "" {
		r.Value = "REDACTED"
	}
	return r.String()
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
