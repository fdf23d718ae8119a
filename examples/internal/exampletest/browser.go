package exampletest

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/fieftest"
)

// Browser is an HTTP client with a cookie jar that does not follow
// redirects, so that each step of a login can be checked: it stops at the
// redirect to Fief's login page, where LogIn fills the form in.
type Browser struct {
	Client *http.Client
}

// NewBrowser returns a browser with an empty cookie jar.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Browser{Client: NoRedirects(&http.Client{Jar: jar, Timeout: 10 * time.Second})}
}

// SetCookie puts c into the browser's jar for the site at u.
func (b *Browser) SetCookie(t testing.TB, u string, c *http.Cookie) {
	t.Helper()
	b.Client.Jar.SetCookies(MustParse(t, u), []*http.Cookie{c})
}

// Get sends GET target and returns the answer with its body.
func (b *Browser) Get(t testing.TB, target string) (*http.Response, string) {
	t.Helper()
	return b.Do(t, http.MethodGet, target)
}

// Do sends a request and returns the answer with its body.
func (b *Browser) Do(t testing.TB, method, target string) (*http.Response, string) {
	t.Helper()
	return Send(t, b.Client, NewRequest(t, method, target))
}

// LogIn opens pageURL, which must answer 303 See Other to the login page
// of the embedded Fief srv (as fief.LoginFlow does), and logs in there as
// the demo user. It returns where Fief sends the browser back: the
// application's callback with a code, not visited yet.
func (b *Browser) LogIn(t testing.TB, srv *fieftest.Server, pageURL string) *url.URL {
	t.Helper()
	resp, _ := b.Get(t, pageURL)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, srv.URL+"/authorize?") {
		t.Fatalf("GET %s: %s to %q, want 303 to Fief's login page", pageURL, resp.Status, loc)
	}
	callback, err := srv.Authorize(resp.Header.Get("Location"), devfief.DemoEmail, devfief.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	return callback
}
