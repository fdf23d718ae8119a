package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

const refreshCookie = "__Host-fief_app_session_refresh" // LoginFlow's default over HTTPS, with RefreshSessions

// TestBrowserSessionRefresh logs in in Chromium with 3-second access
// tokens, waits until Chromium has dropped the expired session cookie, and
// opens a protected page: it answers 200 without Fief's login form, the
// session and refresh cookies rotated by one refresh at Fief. The refreshed
// session has ACR 0: a page requiring ACR 1 sends the browser through
// Fief's password form (acr_values=1), and back.
func TestBrowserSessionRefresh(t *testing.T) {
	chromium := chromiumPath(t)
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	const lifetime = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	a := startApp(t, appOptions{
		fief: []fieftest.Option{fieftest.WithTokenLifetime(lifetime)},
		config: func(c *fief.LoginFlowConfig) {
			c.RefreshSessions = true
			c.CookieKey = []byte("fief-go e2e key of refreshed sessions") // required with RefreshSessions
		},
	})
	tab := startBrowser(t, ctx, chromium)

	step(t, tab, "opening /protected", chromedp.Navigate(a.url+"/protected"))
	resp := logIn(t, tab, a.fief.URL)
	if resp.Status != http.StatusOK || resp.URL != a.url+"/protected" {
		t.Fatalf("after login: %d at %s, want 200 at /protected", resp.Status, resp.URL)
	}
	jar := step(t, tab, "cookies", cookies(a.url+"/"))
	session, refresh := findCookie(jar, sessionCookie), findCookie(jar, refreshCookie)
	if session == nil || refresh == nil {
		t.Fatalf("cookies after login: %d, want the session and refresh cookies", len(jar))
	}
	if !refresh.HTTPOnly || !refresh.Secure || refresh.SameSite != network.CookieSameSiteLax || refresh.Path != "/" || refresh.Session {
		t.Errorf("refresh cookie: HttpOnly=%v Secure=%v SameSite=%q Path=%q Session=%v, want HttpOnly, Secure, Lax, /, persistent",
			refresh.HTTPOnly, refresh.Secure, refresh.SameSite, refresh.Path, refresh.Session)
	}
	if js := step(t, tab, "document.cookie", chromedp.Evaluate[string](`document.cookie`)); strings.Contains(js, "fief_") {
		t.Errorf("document.cookie shows %q", js)
	}

	// Past the access token's expiry: Chromium drops the session cookie.
	authorizes, tokens := a.fief.Requests(fieftest.EndpointAuthorize), a.fief.Requests(fieftest.EndpointToken)
	time.Sleep(lifetime + 500*time.Millisecond)
	if c := findCookie(step(t, tab, "cookies", cookies(a.url+"/")), sessionCookie); c != nil {
		t.Fatalf("Chromium kept the expired session cookie (expires %v)", c.Expires)
	}
	resp = step(t, tab, "opening /protected after expiry", chromedp.NavigateResponse(a.url+"/protected?after=expiry"))
	if resp.Status != http.StatusOK || resp.URL != a.url+"/protected?after=expiry" {
		t.Fatalf("after expiry: %d at %s, want 200 at /protected?after=expiry", resp.Status, resp.URL)
	}
	if user := step(t, tab, "user", chromedp.Text(chromedp.ID("user"))); user != email {
		t.Errorf("the page shows %q, want %q", user, email)
	}
	gotAuthorizes, gotTokens := a.fief.Requests(fieftest.EndpointAuthorize)-authorizes, a.fief.Requests(fieftest.EndpointToken)-tokens
	t.Logf("page after expiry: %d, %d request(s) to Fief's /authorize, %d to its token endpoint", resp.Status, gotAuthorizes, gotTokens)
	if gotAuthorizes != 0 || gotTokens != 1 {
		t.Errorf("%d authorization requests and %d token requests, want 0 (no login form) and 1 (the refresh)", gotAuthorizes, gotTokens)
	}
	jar = step(t, tab, "cookies", cookies(a.url+"/"))
	session2, refresh2 := findCookie(jar, sessionCookie), findCookie(jar, refreshCookie)
	if session2 == nil || refresh2 == nil || session2.Value == session.Value || refresh2.Value == refresh.Value {
		t.Fatalf("cookies after the refresh: session %v, refresh %v; want both rotated", session2 != nil, refresh2 != nil)
	}
	if info, err := a.client.ValidateAccessToken(ctx, session2.Value); err != nil || info.ACR() != fief.ACRLevelZero {
		t.Errorf("refreshed token: ACR %v, %v; want ACR 0", info.ACR(), err)
	}

	// ACR 0 is not enough for /strong: Fief's password form, then back.
	step(t, tab, "opening /strong", chromedp.Navigate(a.url+"/strong"))
	step(t, tab, "Fief's login form", chromedp.WaitVisible(chromedp.ID("email")))
	if loc := step(t, tab, "location", chromedp.Location()); !strings.Contains(loc, "acr_values=1") {
		t.Errorf("step-up login at %s, want acr_values=1", loc)
	}
	resp = logIn(t, tab, a.fief.URL)
	if resp.Status != http.StatusOK || resp.URL != a.url+"/strong" {
		t.Fatalf("after the step-up: %d at %s, want 200 at /strong", resp.Status, resp.URL)
	}
	if acr := step(t, tab, "ACR", chromedp.Text(chromedp.ID("acr"))); acr != "ACR 1" {
		t.Errorf("/strong shows %q, want ACR 1", acr)
	}
}
