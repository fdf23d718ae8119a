package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/examples/internal/exampletest"
	"github.com/fief-go/fief/fieftest"
	"github.com/gin-gonic/gin"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // no debug output from gin
	os.Exit(m.Run())
}

const (
	unauthorized = `{"detail":"Unauthorized"}`
	forbidden    = `{"detail":"Forbidden"}`
)

func TestAPI(t *testing.T) {
	app := start(t)
	srv, user := app.Fief.Server, app.Fief.User
	valid := exampletest.Bearer(srv.AccessToken(user.ID))
	expired := exampletest.Bearer(srv.AccessToken(user.ID, fieftest.ExpiresIn(-time.Hour)))
	noPermission := exampletest.Bearer(srv.AccessToken(user.ID, fieftest.Permissions()))
	canDelete := exampletest.Bearer(srv.AccessToken(user.ID, fieftest.Permissions(permRead, permDelete)))

	exampletest.RunCases(t, app.URL, []exampletest.Case{
		{Name: "no token", Path: "/api/castles",
			Status: http.StatusUnauthorized, WWWAuthenticate: "Bearer", Body: unauthorized},
		{Name: "forged token", Path: "/api/castles", Authorization: exampletest.Bearer("forged"),
			Status: http.StatusUnauthorized, WWWAuthenticate: `Bearer error="invalid_token"`, Body: unauthorized},
		{Name: "expired token", Path: "/api/castles", Authorization: expired,
			Status: http.StatusUnauthorized, WWWAuthenticate: `Bearer error="invalid_token"`, Body: unauthorized},
		{Name: "without castles:read", Path: "/api/castles", Authorization: noPermission,
			Status: http.StatusForbidden, WWWAuthenticate: `Bearer error="insufficient_scope"`, Body: forbidden},
		{Name: "valid token", Path: "/api/castles", Authorization: valid,
			Status: http.StatusOK, Body: `["nantes","rennes","vannes"]`},
		{Name: "delete without castles:delete", Method: "DELETE", Path: "/api/castles/nantes", Authorization: valid,
			Status: http.StatusForbidden, WWWAuthenticate: `Bearer error="insufficient_scope"`, Body: forbidden},
		{Name: "delete without a token", Method: "DELETE", Path: "/api/castles/nantes",
			Status: http.StatusUnauthorized, WWWAuthenticate: "Bearer", Body: unauthorized},
		{Name: "delete with castles:delete", Method: "DELETE", Path: "/api/castles/nantes", Authorization: canDelete,
			Status: http.StatusNoContent},
		{Name: "me without a token", Path: "/api/me",
			Status: http.StatusUnauthorized, WWWAuthenticate: "Bearer", Body: unauthorized},
		{Name: "me", Path: "/api/me", Authorization: valid,
			Status: http.StatusOK, BodyHas: `"email":"` + devfief.DemoEmail + `"`},
	})
}

func TestMe(t *testing.T) {
	app := start(t)
	resp, body := exampletest.Call(t, "GET", app.URL+"/api/me", exampletest.Bearer(app.Fief.Server.AccessToken(app.Fief.User.ID)))
	var got struct {
		ID          string   `json:"id"`
		Email       string   `json:"email"`
		Permissions []string `json:"permissions"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s: %v", resp.StatusCode, body, err)
	}
	if got.ID != app.Fief.User.ID || got.Email != devfief.DemoEmail || !slices.Equal(got.Permissions, devfief.DemoPermissions()) {
		t.Errorf("got %+v", got)
	}
}

// TestOneTokenCheckPerRequest: every API route authenticates its request
// once, as the client's hooks count the token checks.
func TestOneTokenCheckPerRequest(t *testing.T) {
	f := exampletest.Fief(t)
	var checks atomic.Int64
	client, err := fief.New(f.BaseURL, f.Server.ClientID, f.Server.ClientSecret, fief.WithHooks(&fief.Hooks{
		TokenChecked: func(context.Context, fief.TokenCheck) { checks.Add(1) },
	}))
	if err != nil {
		t.Fatal(err)
	}
	appURL := exampletest.ServeApp(t, f, func(_ *fief.Client, appURL string) (http.Handler, error) {
		return newApp(client, config{URL: appURL}, slog.New(slog.DiscardHandler))
	})
	token := exampletest.Bearer(f.Server.AccessToken(f.User.ID, fieftest.Permissions(permRead, permDelete)))
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/api/castles", http.StatusOK},
		{"DELETE", "/api/castles/nantes", http.StatusNoContent},
		{"GET", "/api/me", http.StatusOK},
	} {
		before := checks.Load()
		if resp, body := exampletest.Call(t, c.method, appURL+c.path, token); resp.StatusCode != c.status {
			t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, resp.StatusCode, body, c.status)
		}
		if n := checks.Load() - before; n != 1 {
			t.Errorf("%s %s: %d token checks, want 1", c.method, c.path, n)
		}
	}
}

func TestAPIFiefUnavailable(t *testing.T) {
	app := start(t)
	app.Fief.Server.SetDown(true) // before the key set's first fetch
	resp, body := exampletest.Call(t, "GET", app.URL+"/api/castles", exampletest.Bearer(app.Fief.Server.AccessToken(app.Fief.User.ID)))
	if resp.StatusCode != http.StatusServiceUnavailable || body != `{"detail":"Service Unavailable"}` || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%d %s (Retry-After %q), want 503, the fixed body and Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
}

// TestLoginFlow logs the demo user in from /protected, which greets them,
// and out again; the login and its checks are exampletest's, shared with
// examples/webapp.
func TestLoginFlow(t *testing.T) {
	app := start(t)
	b, _ := app.CheckLogin(t)

	resp, body := b.Get(t, app.URL+"/protected?tab=castles")
	exampletest.CheckGreeting(t, resp, body)
	// The login put the user's info into the cache: no userinfo call.
	if n := app.Fief.Server.Requests(fieftest.EndpointUserinfo); n != 0 {
		t.Errorf("%d userinfo calls, want 0", n)
	}
	// The API reads Authorization headers only: the browser's session
	// cookie is no access token there, and API clients are not sent to a
	// login page.
	if resp, body := b.Get(t, app.URL+"/api/castles"); resp.StatusCode != http.StatusUnauthorized || body != unauthorized {
		t.Errorf("the API with the session cookie: %d %s, want 401", resp.StatusCode, body)
	}
	app.CheckLogout(t, b)
}

func TestProtectedWithBadSession(t *testing.T) { exampletest.CheckBadSession(t, start(t)) }

func TestRun(t *testing.T) {
	t.Setenv("FIEF_BASE_URL", "")
	t.Setenv("FIEF_CLIENT_ID", "")
	t.Setenv("FIEF_CLIENT_SECRET", "")
	t.Setenv("APP_COOKIE_KEY", "")
	cmd := exampletest.StartCommand(t, func(ctx context.Context, out io.Writer) error {
		return run(ctx, out, "127.0.0.1:0", "", "")
	})

	// run prints the curl commands, then serves until ctx is canceled.
	out := cmd.WaitFor(t, "/protected in your browser")
	var withToken []string
	for line := range strings.Lines(out) {
		// curl -i -H 'Authorization: Bearer <token>' <url>
		if f := strings.Fields(line); len(f) == 7 && f[0] == "curl" && f[3] == "'Authorization:" {
			withToken = f
		}
	}
	if withToken == nil {
		t.Fatalf("no curl command with a token printed; output:\n%s", out)
	}
	resp, body := exampletest.Call(t, "GET", withToken[6], "Bearer "+strings.TrimSuffix(withToken[5], "'"))
	if resp.StatusCode != http.StatusOK || body != `["nantes","rennes","vannes"]` {
		t.Errorf("the printed curl command got %d %s; output:\n%s", resp.StatusCode, body, out)
	}
	cmd.Stop(t)

	// A short cookie key is refused.
	t.Setenv("APP_COOKIE_KEY", "abcd")
	if err := run(t.Context(), io.Discard, "127.0.0.1:0", "", ""); err == nil || !strings.Contains(err.Error(), "APP_COOKIE_KEY") {
		t.Errorf("run with a short cookie key: %v", err)
	}
}

// start serves the application over plain HTTP with an embedded Fief.
func start(t *testing.T) *exampletest.App {
	return exampletest.StartApp(t, func(client *fief.Client, appURL string) (http.Handler, error) {
		return newApp(client, config{URL: appURL}, slog.New(slog.DiscardHandler))
	})
}
