package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/fieftest"
)

// Over plain HTTP (local development) the cookies have no prefix and are
// not Secure; over HTTPS they are __Host- and __Secure- cookies.
const (
	sessionCookie = "fief_app_session"
	flowPrefix    = "fief_flow_"
)

// The login, the cached pages and the logout, with the cache in memory
// and on Redis.
func TestLoginFlow(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testLoginFlow(t, start(t)) })
	t.Run("redis", func(t *testing.T) { testLoginFlow(t, startWith(t, redisCache(t))) })
}

func testLoginFlow(t *testing.T, e *env) {
	b := e.browser(t)

	// A visitor without a session is sent to Fief's login page.
	resp, _ := b.get(t, e.url+"/protected?tab=castles")
	authURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(authURL, e.f.BaseURL+"/authorize?") {
		t.Fatalf("GET /protected: %d to %q, want 303 to Fief's /authorize", resp.StatusCode, authURL)
	}
	q := mustParse(t, authURL).Query()
	for k, want := range map[string]string{
		"response_type":         "code",
		"client_id":             e.f.Server.ClientID,
		"redirect_uri":          e.url + "/auth-callback",
		"scope":                 "openid",
		"code_challenge_method": "S256",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorization URL: %s=%q, want %q", k, got, want)
		}
	}
	if q.Get("state") == "" || q.Get("code_challenge") == "" {
		t.Errorf("authorization URL without state or PKCE challenge: %s", authURL)
	}
	flow := findCookie(t, resp, flowPrefix)
	checkCookie(t, flow, "/auth-callback", 600)

	// The user logs in on Fief's form; Fief redirects back with a code.
	callback, err := e.f.Server.Authorize(authURL, devfief.DemoEmail, devfief.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(callback.String(), e.url+"/auth-callback?") || callback.Query().Get("code") == "" {
		t.Fatalf("Fief redirected to %s", callback)
	}

	// The callback exchanges the code, sets the session cookie and returns
	// to the page the visitor asked for.
	resp, body := b.get(t, callback.String())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/protected?tab=castles" {
		t.Fatalf("GET /auth-callback: %d to %q, want 303 to /protected?tab=castles; body %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	session := findCookie(t, resp, sessionCookie)
	checkCookie(t, session, "/", int((24 * time.Hour).Seconds())) // expires_in: fieftest's default lifetime
	if session.Value == "" {
		t.Fatal("empty session cookie")
	}
	if c := findCookie(t, resp, flow.Name); c.MaxAge >= 0 {
		t.Errorf("the flow cookie is not deleted: %s", show(c))
	}

	// The protected page greets the user, whose info the login cached:
	// Fief's userinfo endpoint is not called.
	for range 2 {
		resp, body = b.get(t, e.url+"/protected?tab=castles")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Hello anne@bretagne.duchy") {
			t.Fatalf("GET /protected: %d %s", resp.StatusCode, body)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
	}
	if n := e.f.Server.Requests(fieftest.EndpointUserinfo); n != 0 {
		t.Errorf("%d userinfo calls, want 0", n)
	}

	// Logout deletes the cookie and sends the browser to Fief's logout,
	// which comes back to the home page.
	resp, _ = b.do(t, http.MethodPost, e.url+"/logout")
	logoutURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || logoutURL != e.f.Client.LogoutURL(e.url+"/") ||
		!strings.HasPrefix(logoutURL, e.f.BaseURL+"/logout?") {
		t.Fatalf("POST /logout: %d to %q, want 303 to Fief's logout", resp.StatusCode, logoutURL)
	}
	if c := findCookie(t, resp, sessionCookie); c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("the session cookie is not deleted: %s", show(c))
	}
	resp, _ = b.get(t, logoutURL)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != e.url+"/" {
		t.Errorf("Fief's logout: %d to %q, want 302 to %s/", resp.StatusCode, resp.Header.Get("Location"), e.url)
	}
	if resp, body := b.get(t, e.url+"/"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `href="/protected"`) {
		t.Errorf("GET /: %d %s", resp.StatusCode, body)
	}
	if resp, _ := b.get(t, e.url+"/protected"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET /protected after logout: %d, want 303 to Fief", resp.StatusCode)
	}

	// Logout removed the user's entry: the old token (Fief does not revoke
	// it) is served with a fresh call to Fief.
	old := e.browser(t)
	old.setCookie(t, e.url, &http.Cookie{Name: sessionCookie, Value: session.Value})
	if resp, _ := old.get(t, e.url+"/protected"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /protected with the old token: %d", resp.StatusCode)
	}
	if n := e.f.Server.Requests(fieftest.EndpointUserinfo); n != 1 {
		t.Errorf("%d userinfo calls after logout, want 1: the entry was removed", n)
	}
}

func TestCacheMiss(t *testing.T) {
	// A valid session whose user is not cached (another instance logged the
	// user in, or the entry expired): CurrentUser asks Fief once, then
	// serves from the cache.
	e := start(t)
	b := e.browser(t)
	b.setCookie(t, e.url, &http.Cookie{Name: sessionCookie, Value: e.f.Server.AccessToken(e.f.User.ID)})
	for range 2 {
		resp, body := b.get(t, e.url+"/protected")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Hello anne@bretagne.duchy") {
			t.Fatalf("GET /protected: %d %s", resp.StatusCode, body)
		}
	}
	if n := e.f.Server.Requests(fieftest.EndpointUserinfo); n != 1 {
		t.Errorf("%d userinfo calls, want 1", n)
	}
}

func TestReturnTo(t *testing.T) {
	e := start(t)
	for returnTo, want := range map[string]string{
		"/protected?tab=castles": "/protected?tab=castles",
		"//evil.example":         "/",
		"https://evil.example":   "/",
		"/\\evil.example":        "/",
		"":                       "/",
	} {
		t.Run(returnTo, func(t *testing.T) {
			b := e.browser(t)
			resp, _ := b.get(t, e.url+"/login?return_to="+url.QueryEscape(returnTo))
			callback, err := e.f.Server.Authorize(resp.Header.Get("Location"), devfief.DemoEmail, devfief.DemoPassword)
			if err != nil {
				t.Fatal(err)
			}
			if resp, body := b.get(t, callback.String()); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
				t.Errorf("callback: %d to %q, want 303 to %q; body %s", resp.StatusCode, resp.Header.Get("Location"), want, body)
			}
		})
	}
}

func TestCallbackRefusals(t *testing.T) {
	e := start(t)

	// beginLogin starts a login in b and returns Fief's redirect back.
	beginLogin := func(t *testing.T, b *browser) *url.URL {
		resp, _ := b.get(t, e.url+"/protected")
		callback, err := e.f.Server.Authorize(resp.Header.Get("Location"), devfief.DemoEmail, devfief.DemoPassword)
		if err != nil {
			t.Fatal(err)
		}
		return callback
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
		request    func(t *testing.T, b *browser) string
		wantStatus int
	}{
		{"another browser", func(t *testing.T, b *browser) string {
			return beginLogin(t, e.browser(t)).String()
		}, http.StatusBadRequest},
		{"forged state", func(t *testing.T, b *browser) string {
			return withQuery(beginLogin(t, b), "state", "forged")
		}, http.StatusBadRequest},
		{"no state", func(t *testing.T, b *browser) string {
			callback := beginLogin(t, b)
			return e.url + "/auth-callback?code=" + url.QueryEscape(callback.Query().Get("code"))
		}, http.StatusBadRequest},
		{"Fief's error instead of a code", func(t *testing.T, b *browser) string {
			callback := beginLogin(t, b)
			return e.url + "/auth-callback?" + url.Values{"error": {"access_denied"}, "state": {callback.Query().Get("state")}}.Encode()
		}, http.StatusBadRequest},
		{"reloaded callback", func(t *testing.T, b *browser) string {
			callback := beginLogin(t, b)
			if resp, _ := b.get(t, callback.String()); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("first use: status %d", resp.StatusCode)
			}
			return callback.String()
		}, http.StatusBadRequest},
		{"token endpoint down", func(t *testing.T, b *browser) string {
			callback := beginLogin(t, b)
			e.f.Server.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: http.StatusInternalServerError, Times: 1})
			return callback.String()
		}, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := e.browser(t)
			resp, body := b.get(t, tt.request(t, b))
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			if !strings.Contains(body, `id="fief-login-error"`) {
				t.Errorf("not the login error page: %s", body)
			}
			for _, c := range resp.Cookies() {
				if c.Name == sessionCookie && c.MaxAge > 0 {
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
	e := start(t)
	for name, token := range map[string]string{
		"forged":  "forged",
		"expired": e.f.Server.AccessToken(e.f.User.ID, fieftest.ExpiresIn(-time.Hour)),
	} {
		t.Run(name, func(t *testing.T) {
			b := e.browser(t)
			b.setCookie(t, e.url, &http.Cookie{Name: sessionCookie, Value: token})
			resp, _ := b.get(t, e.url+"/protected")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), e.f.BaseURL+"/authorize?") {
				t.Errorf("status %d to %q, want 303 to Fief's login page", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

func TestFiefUnavailable(t *testing.T) {
	e := start(t)
	e.f.Server.SetDown(true)
	resp, body := e.browser(t).get(t, e.url+"/protected")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "Login is temporarily unavailable") {
		t.Errorf("status %d %q, want 503 and the login error page", resp.StatusCode, body)
	}
}

func TestCookiesSecureOverHTTPS(t *testing.T) {
	f, err := devfief.Embedded("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	app, err := newApp(f.Client, config{URL: ts.URL}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = app

	b := &browser{client: noRedirects(ts.Client())}
	resp, _ := b.get(t, ts.URL+"/protected")
	if got := mustParse(t, resp.Header.Get("Location")).Query().Get("redirect_uri"); got != ts.URL+"/auth-callback" {
		t.Errorf("redirect_uri %q, want %s/auth-callback", got, ts.URL)
	}
	if c := findCookie(t, resp, "__Secure-"+flowPrefix); !c.Secure || !c.HttpOnly {
		t.Errorf("%s is not Secure and HttpOnly over HTTPS", show(c))
	}
	resp, _ = b.do(t, http.MethodPost, ts.URL+"/logout")
	if c := findCookie(t, resp, "__Host-"+sessionCookie); !c.Secure || !c.HttpOnly {
		t.Errorf("%s is not Secure and HttpOnly over HTTPS", show(c))
	}
}

func TestRun(t *testing.T) {
	// The command serves on its address and stops with its context.
	t.Setenv("REDIS_URL", "")
	ctx, cancel := context.WithCancel(t.Context())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, &out, "127.0.0.1:0", "", "") }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
	if !strings.Contains(out.String(), "/protected in your browser") || !strings.Contains(out.String(), "Cache:     in memory") {
		t.Errorf("output: %s", &out)
	}
	if _, err := cookieKey("abcd"); err == nil {
		t.Error("a short cookie key is accepted")
	}
}

type env struct {
	f   *devfief.Fief
	url string
}

// start serves the application over plain HTTP with an embedded Fief and
// the in-memory cache.
func start(t *testing.T) *env {
	t.Helper()
	return startWith(t, nil)
}

// startWith serves the application over plain HTTP with an embedded Fief
// and cache (nil: in memory).
func startWith(t *testing.T, cache fief.UserInfoCache) *env {
	t.Helper()
	f, err := devfief.Embedded("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	ts := httptest.NewServer(nil)
	t.Cleanup(ts.Close)
	app, err := newApp(f.Client, config{URL: ts.URL, Cache: cache}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = app
	return &env{f: f, url: ts.URL}
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so that each step can be checked.
type browser struct {
	client *http.Client
}

func (e *env) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{client: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) setCookie(t *testing.T, u string, c *http.Cookie) {
	b.client.Jar.SetCookies(mustParse(t, u), []*http.Cookie{c})
}

func (b *browser) get(t *testing.T, target string) (*http.Response, string) {
	t.Helper()
	return b.do(t, http.MethodGet, target)
}

// do sends a request and returns the answer with its body.
func (b *browser) do(t *testing.T, method, target string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, strings.TrimSpace(string(body))
}

// noRedirects returns a copy of c that does not follow redirects.
func noRedirects(c *http.Client) *http.Client {
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &nc
}

// findCookie returns the cookie that resp sets whose name starts with
// prefix.
func findCookie(t *testing.T, resp *http.Response, prefix string) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, prefix) {
			return c
		}
	}
	t.Fatalf("no %s* cookie in %q", prefix, resp.Header.Values("Set-Cookie"))
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
