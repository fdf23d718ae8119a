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

// The login and its checks are exampletest's, shared with
// examples/webapp-cache: see exampletest.CheckLogin and the others.

func TestLoginFlow(t *testing.T) {
	app := start(t)
	b, _ := app.CheckLogin(t)

	// The protected page greets the user, whose info comes from Fief.
	resp, body := b.Get(t, app.URL+"/protected?tab=castles")
	exampletest.CheckGreeting(t, resp, body)
	if n := app.Fief.Server.Requests(fieftest.EndpointUserinfo); n != 1 {
		t.Errorf("%d userinfo calls, want 1 (no cache in this example)", n)
	}

	// Logout deletes the cookie and sends the browser to Fief's logout,
	// which comes back to the home page.
	app.CheckLogout(t, b)
}

func TestReturnTo(t *testing.T)                { exampletest.CheckReturnTo(t, start(t)) }
func TestCallbackRefusals(t *testing.T)        { exampletest.CheckCallbackRefusals(t, start(t)) }
func TestProtectedWithBadSession(t *testing.T) { exampletest.CheckBadSession(t, start(t)) }
func TestFiefUnavailable(t *testing.T)         { exampletest.CheckFiefUnavailable(t, start(t)) }
func TestCookiesSecureOverHTTPS(t *testing.T)  { exampletest.CheckSecureCookies(t, testApp) }

func TestRun(t *testing.T) {
	// The command serves on its address and stops with its context.
	cmd := exampletest.StartCommand(t, func(ctx context.Context, out io.Writer) error {
		return run(ctx, out, "127.0.0.1:0", "", "")
	})
	cmd.WaitFor(t, "/protected in your browser")
	cmd.Stop(t)

	// A short cookie key is refused.
	t.Setenv("APP_COOKIE_KEY", "abcd")
	if err := run(t.Context(), io.Discard, "127.0.0.1:0", "", ""); err == nil || !strings.Contains(err.Error(), "APP_COOKIE_KEY") {
		t.Errorf("run with a short cookie key: %v", err)
	}
}

// start serves the application over plain HTTP with an embedded Fief.
func start(t *testing.T) *exampletest.App { return exampletest.StartApp(t, testApp) }

// testApp is the application as the tests serve it, at appURL.
func testApp(client *fief.Client, appURL string) (http.Handler, error) {
	return newApp(client, config{URL: appURL}, slog.New(slog.DiscardHandler))
}
