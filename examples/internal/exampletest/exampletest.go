// Package exampletest holds what the examples' tests share, none of which
// is about protecting handlers with Fief: an embedded Fief and the
// example's handler served for one test, requests that return the answer's
// body, a browser (a cookie jar, no redirects) that logs in on the embedded
// Fief's form, a runner for tables of API requests and the answers they
// must get, the checks of a web application on fief.LoginFlow, and an
// example's command run in the background.
//
// It is for the examples' tests only: their main.go and app.go never
// import it.
package exampletest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/devfief"
)

// Fief starts an embedded Fief with the demo user, closed when the test
// ends.
func Fief(t testing.TB) *devfief.Fief {
	t.Helper()
	f, err := devfief.Embedded("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// NewApp returns an example's handler, for the Fief client and served at
// appURL (http://127.0.0.1:port or https://127.0.0.1:port, no trailing
// slash).
type NewApp func(client *fief.Client, appURL string) (http.Handler, error)

// App is an example's handler served for a test, with its embedded Fief.
type App struct {
	Fief *devfief.Fief
	// URL is the application's URL, without a trailing slash.
	URL string
	// Scope is the scope its login asks for ("": "openid").
	Scope string
}

// StartApp starts an embedded Fief and serves the handler that newApp
// returns for it, as ServeApp.
func StartApp(t testing.TB, newApp NewApp) *App {
	t.Helper()
	f := Fief(t)
	return &App{Fief: f, URL: ServeApp(t, f, newApp)}
}

// ServeApp serves over plain HTTP, until the test ends, the handler that
// newApp returns for the Fief f, and returns its URL.
func ServeApp(t testing.TB, f *devfief.Fief, newApp NewApp) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	ts.Start()
	return serve(t, ts, f, newApp)
}

// StartTLSApp is StartApp over HTTPS. It also returns a client that trusts
// the server and does not follow redirects.
func StartTLSApp(t testing.TB, newApp NewApp) (*App, *http.Client) {
	t.Helper()
	f := Fief(t)
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	return &App{Fief: f, URL: serve(t, ts, f, newApp)}, NoRedirects(ts.Client())
}

// serve makes the started server ts serve, until the test ends, the
// handler that newApp returns for its URL: the handler needs the URL,
// hence the server first.
func serve(t testing.TB, ts *httptest.Server, f *devfief.Fief, newApp NewApp) string {
	t.Helper()
	t.Cleanup(ts.Close)
	h, err := newApp(f.Client, ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = h
	return ts.URL
}

// NoRedirects returns a copy of c that does not follow redirects, so that
// each can be checked, and gives up after 10 seconds unless c has a
// timeout.
func NoRedirects(c *http.Client) *http.Client {
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if nc.Timeout == 0 {
		nc.Timeout = 10 * time.Second
	}
	return &nc
}

// NewRequest returns a request with the test's context.
func NewRequest(t testing.TB, method, target string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// Send sends req with client and returns the answer with its body,
// trimmed of white space.
func Send(t testing.TB, client *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := client.Do(req)
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

// Call sends a request as an API client does, with the Authorization
// header authorization (none if empty) and without following redirects,
// and returns the answer with its body.
func Call(t testing.TB, method, target, authorization string) (*http.Response, string) {
	t.Helper()
	req := NewRequest(t, method, target)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return Send(t, NoRedirects(http.DefaultClient), req)
}

// Bearer returns the Authorization header that carries an access token,
// "Bearer <token>", or "" (no header) for no token.
func Bearer(token string) string {
	if token == "" {
		return ""
	}
	return "Bearer " + token
}

// FindCookie returns the cookie that resp sets whose name matches pattern,
// as path.Match reads it: "fief_app_session", "fief_flow_*".
func FindCookie(t testing.TB, resp *http.Response, pattern string) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if ok, err := path.Match(pattern, c.Name); err != nil {
			t.Fatal(err)
		} else if ok {
			return c
		}
	}
	t.Fatalf("no %s cookie in %q", pattern, resp.Header.Values("Set-Cookie"))
	return nil
}

// CheckCookie checks the attributes of a cookie set over plain HTTP:
// HttpOnly, SameSite=Lax, not Secure, and the given path and Max-Age.
func CheckCookie(t testing.TB, c *http.Cookie, path string, maxAge int) {
	t.Helper()
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.Path != path || c.MaxAge != maxAge {
		t.Errorf("cookie %s, want HttpOnly, SameSite=Lax, not Secure over HTTP, Path=%s, Max-Age=%d", Show(c), path, maxAge)
	}
}

// Show returns c as in a Set-Cookie header, without its value.
func Show(c *http.Cookie) string {
	r := *c
	if r.Value != "" {
		r.Value = "REDACTED"
	}
	return r.String()
}

// WithQuery returns u with its query parameter k set to v.
func WithQuery(u *url.URL, k, v string) string {
	c := *u
	q := c.Query()
	q.Set(k, v)
	c.RawQuery = q.Encode()
	return c.String()
}

// MustParse parses a URL.
func MustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
