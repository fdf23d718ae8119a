package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/examples/internal/exampletest"
	"github.com/fief-go/fief/fieftest"
)

func TestUser(t *testing.T) {
	f, appURL := start(t)
	valid := f.Server.AccessToken(f.User.ID, fieftest.ACR("1"))

	const unauthorized = `{"detail":"Unauthorized"}`
	exampletest.RunCases(t, appURL, []exampletest.Case{
		{Name: "no token", Path: "/user",
			Status: http.StatusUnauthorized, WWWAuthenticate: "Bearer", Body: unauthorized},
		{Name: "other scheme", Path: "/user", Authorization: "Basic YW5uZTpoZXJtaW5ldHJ1Yw==",
			Status: http.StatusUnauthorized, WWWAuthenticate: "Bearer", Body: unauthorized},
		{Name: "forged token", Path: "/user", Authorization: "Bearer not-a-jwt",
			Status: http.StatusUnauthorized, WWWAuthenticate: `Bearer error="invalid_token"`, Body: unauthorized},
		{Name: "expired token", Path: "/user", Authorization: exampletest.Bearer(f.Server.AccessToken(f.User.ID, fieftest.ExpiresIn(-time.Hour))),
			Status: http.StatusUnauthorized, WWWAuthenticate: `Bearer error="invalid_token"`, Body: unauthorized},
		{Name: "valid token", Path: "/user", Authorization: "Bearer " + valid,
			Status: http.StatusOK, BodyHas: `"id":"` + f.User.ID + `"`},
		{Name: "scheme in lower case", Path: "/user", Authorization: "bearer " + valid,
			Status: http.StatusOK, BodyHas: `"id":"` + f.User.ID + `"`},
		{Name: "wrong method", Method: "POST", Path: "/user", Authorization: "Bearer " + valid,
			Status: http.StatusMethodNotAllowed, Body: "Method Not Allowed"},
	})
}

func TestUserAnswersTheTokenInfo(t *testing.T) {
	f, appURL := start(t)
	token := f.Server.AccessToken(f.User.ID, fieftest.Scopes("openid", "offline_access"), fieftest.ACR("1"))

	resp, body := exampletest.Call(t, "GET", appURL+"/user", "Bearer "+token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var got struct {
		ID          string    `json:"id"`
		Scope       []string  `json:"scope"`
		ACR         string    `json:"acr"`
		Permissions []string  `json:"permissions"`
		Expiry      time.Time `json:"expiry"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if got.ID != f.User.ID || !slices.Equal(got.Scope, []string{"openid", "offline_access"}) || got.ACR != "1" ||
		!slices.Equal(got.Permissions, devfief.DemoPermissions()) || time.Until(got.Expiry) < time.Hour {
		t.Errorf("got %+v from %s", got, body)
	}
	if strings.Contains(body, token) {
		t.Error("the answer contains the access token")
	}
}

func TestRun(t *testing.T) {
	t.Setenv("FIEF_BASE_URL", "")
	t.Setenv("FIEF_CLIENT_ID", "")
	t.Setenv("FIEF_CLIENT_SECRET", "")
	cmd := exampletest.StartCommand(t, func(ctx context.Context, out io.Writer) error {
		return run(ctx, out, "127.0.0.1:0", "")
	})

	// run prints the curl commands, then serves until ctx is canceled.
	out := cmd.WaitFor(t, "Press Ctrl-C to stop.")
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
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the printed curl command got %d %s; output:\n%s", resp.StatusCode, body, out)
	}
	cmd.Stop(t)
}

// start serves the API with an embedded Fief.
func start(t *testing.T) (*devfief.Fief, string) {
	app := exampletest.StartApp(t, func(client *fief.Client, _ string) (http.Handler, error) {
		return newApp(client, slog.New(slog.DiscardHandler))
	})
	return app.Fief, app.URL
}
