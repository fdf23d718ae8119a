package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/exampletest"
	"github.com/fief-go/fief/fieftest"
	"github.com/fief-go/fief/internal/redistest"
)

// refreshCookie is the cookie of fief.LoginFlow holding the sealed refresh
// token, over plain HTTP.
const refreshCookie = exampletest.SessionCookie + "_refresh"

// refreshOf returns the refresh cookie a logged-in browser holds for the
// application at appURL.
func refreshOf(t *testing.T, b *exampletest.Browser, appURL string) *http.Cookie {
	t.Helper()
	for _, c := range b.Client.Jar.Cookies(exampletest.MustParse(t, appURL)) {
		if c.Name == refreshCookie {
			return c
		}
	}
	t.Fatalf("no %s cookie after login", refreshCookie)
	return nil
}

// The access token expired (the browser dropped the session cookie): the
// protected page is served after a refresh, not a trip through Fief's
// login page, and sets the rotated cookies.
func TestSessionRefresh(t *testing.T) {
	app := start(t)
	b, _ := app.CheckLogin(t)
	refresh := refreshOf(t, b, app.URL)
	tokens := app.Fief.Server.Requests(fieftest.EndpointToken)

	expired := exampletest.NewBrowser(t)
	expired.SetCookie(t, app.URL, &http.Cookie{Name: refresh.Name, Value: refresh.Value})
	resp, body := expired.Get(t, app.URL+"/protected")
	exampletest.CheckGreeting(t, resp, body)
	if n := app.Fief.Server.Requests(fieftest.EndpointToken) - tokens; n != 1 {
		t.Errorf("%d token requests, want 1 (the refresh)", n)
	}
	session := exampletest.FindCookie(t, resp, exampletest.SessionCookie)
	rotated := exampletest.FindCookie(t, resp, refreshCookie)
	if session.MaxAge <= 0 || rotated.MaxAge <= 0 || rotated.Value == refresh.Value {
		t.Errorf("cookies after the refresh: %s, %s; want a new session and a rotated refresh cookie", exampletest.Show(session), exampletest.Show(rotated))
	}
	// Logout spends the refresh token: the old cookie no longer logs in.
	if resp, _ := expired.Do(t, http.MethodPost, app.URL+"/logout"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %s", resp.Status)
	}
	again := exampletest.NewBrowser(t)
	again.SetCookie(t, app.URL, &http.Cookie{Name: rotated.Name, Value: rotated.Value})
	if resp, _ := again.Get(t, app.URL+"/protected"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET /protected with the refresh cookie of a logged-out session: %s, want 303 to Fief", resp.Status)
	}
}

// Two instances of the application with one APP_COOKIE_KEY and one
// REDIS_URL: a burst of requests with one expired session, spread over
// both, is served with one refresh at Fief.
func TestSessionRefreshAcrossInstances(t *testing.T) {
	rs := redistest.Start(t)
	f := exampletest.Fief(t)
	key := bytes.Repeat([]byte{0x42}, 32)
	var urls []string
	for range 2 {
		cache, err := newCache("redis://" + rs.Addr) // a Redis client per instance
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cache.Close() })
		urls = append(urls, exampletest.ServeApp(t, f, func(client *fief.Client, appURL string) (http.Handler, error) {
			return newApp(client, config{URL: appURL, CookieKey: key, Cache: cache, Coordinator: cache.Coordinator}, slog.New(slog.DiscardHandler))
		}))
	}
	app := &exampletest.App{Fief: f, URL: urls[0], Scope: "openid offline_access"}
	b, _ := app.CheckLogin(t)
	refresh := refreshOf(t, b, app.URL)
	tokens := f.Server.Requests(fieftest.EndpointToken)

	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			req := exampletest.NewRequest(t, http.MethodGet, urls[i%2]+"/protected")
			req.AddCookie(&http.Cookie{Name: refresh.Name, Value: refresh.Value})
			<-start
			resp, err := exampletest.NoRedirects(http.DefaultClient).Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("request %d (instance %d): %d, want 200", i, i%2, s)
		}
	}
	refreshes := f.Server.Requests(fieftest.EndpointToken) - tokens
	t.Logf("%d concurrent requests over 2 instances with one expired session: %d refresh at Fief", n, refreshes)
	if refreshes != 1 {
		t.Errorf("%d refreshes at Fief, want 1", refreshes)
	}
}
