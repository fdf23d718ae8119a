package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/exampletest"
	"github.com/fief-go/fief/fieftest"
)

// The login and its checks are exampletest's, shared with examples/webapp:
// see exampletest.CheckLogin and the others.

// The login, the cached pages and the logout, with the cache in memory
// and on Redis.
func TestLoginFlow(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testLoginFlow(t, start(t)) })
	t.Run("redis", func(t *testing.T) { testLoginFlow(t, startWith(t, redisCache(t))) })
}

func testLoginFlow(t *testing.T, app *exampletest.App) {
	b, session := app.CheckLogin(t)

	// The protected page greets the user, whose info the login cached:
	// Fief's userinfo endpoint is not called.
	for range 2 {
		resp, body := b.Get(t, app.URL+"/protected?tab=castles")
		exampletest.CheckGreeting(t, resp, body)
	}
	if n := app.Fief.Server.Requests(fieftest.EndpointUserinfo); n != 0 {
		t.Errorf("%d userinfo calls, want 0", n)
	}

	// Logout deletes the cookie and sends the browser to Fief's logout,
	// which comes back to the home page.
	app.CheckLogout(t, b)

	// Logout removed the user's entry: the old token (Fief does not revoke
	// it) is served with a fresh call to Fief.
	old := exampletest.NewBrowser(t)
	old.SetCookie(t, app.URL, &http.Cookie{Name: exampletest.SessionCookie, Value: session.Value})
	if resp, _ := old.Get(t, app.URL+"/protected"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /protected with the old token: %d", resp.StatusCode)
	}
	if n := app.Fief.Server.Requests(fieftest.EndpointUserinfo); n != 1 {
		t.Errorf("%d userinfo calls after logout, want 1: the entry was removed", n)
	}
}

func TestCacheMiss(t *testing.T) {
	// A valid session whose user is not cached (another instance logged the
	// user in, or the entry expired): CurrentUser asks Fief once, then
	// serves from the cache.
	app := start(t)
	b := exampletest.NewBrowser(t)
	b.SetCookie(t, app.URL, &http.Cookie{Name: exampletest.SessionCookie, Value: app.Fief.Server.AccessToken(app.Fief.User.ID)})
	for range 2 {
		resp, body := b.Get(t, app.URL+"/protected")
		exampletest.CheckGreeting(t, resp, body)
	}
	if n := app.Fief.Server.Requests(fieftest.EndpointUserinfo); n != 1 {
		t.Errorf("%d userinfo calls, want 1", n)
	}
}

func TestReturnTo(t *testing.T)                { exampletest.CheckReturnTo(t, start(t)) }
func TestCallbackRefusals(t *testing.T)        { exampletest.CheckCallbackRefusals(t, start(t)) }
func TestProtectedWithBadSession(t *testing.T) { exampletest.CheckBadSession(t, start(t)) }
func TestFiefUnavailable(t *testing.T)         { exampletest.CheckFiefUnavailable(t, start(t)) }
func TestCookiesSecureOverHTTPS(t *testing.T) {
	exampletest.CheckSecureCookies(t, func(client *fief.Client, appURL string) (http.Handler, error) {
		return newApp(client, config{URL: appURL, CookieKey: testCookieKey}, slog.New(slog.DiscardHandler))
	})
}

func TestRun(t *testing.T) {
	// The command serves on its address and stops with its context.
	t.Setenv("REDIS_URL", "")
	cmd := exampletest.StartCommand(t, func(ctx context.Context, out io.Writer) error {
		return run(ctx, out, "127.0.0.1:0", "", "")
	})
	if out := cmd.WaitFor(t, "/protected in your browser"); !strings.Contains(out, "Cache:     in memory") {
		t.Errorf("output: %s", out)
	}
	cmd.Stop(t)

	// A short cookie key is refused.
	t.Setenv("APP_COOKIE_KEY", "abcd")
	if err := run(t.Context(), io.Discard, "127.0.0.1:0", "", ""); err == nil || !strings.Contains(err.Error(), "APP_COOKIE_KEY") {
		t.Errorf("run with a short cookie key: %v", err)
	}
}

// testCookieKey is the application's CookieKey in the tests.
var testCookieKey = []byte("webapp-cache test key, 32 bytes or more")

// start serves the application over plain HTTP with an embedded Fief and
// the in-memory cache.
func start(t *testing.T) *exampletest.App {
	t.Helper()
	return startWith(t, nil)
}

// startWith serves the application over plain HTTP with an embedded Fief
// and cache (nil: in memory).
func startWith(t *testing.T, cache fief.UserInfoCache) *exampletest.App {
	t.Helper()
	app := exampletest.StartApp(t, func(client *fief.Client, appURL string) (http.Handler, error) {
		return newApp(client, config{URL: appURL, CookieKey: testCookieKey, Cache: cache}, slog.New(slog.DiscardHandler))
	})
	app.Scope = "openid offline_access" // RefreshSessions
	return app
}
