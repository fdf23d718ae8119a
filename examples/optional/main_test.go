package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/fieftest"
)

func TestOptionalUser(t *testing.T) {
	f, appURL := start(t)
	valid := f.Server.AccessToken(f.User.ID)
	gone := f.Server.AddUser(fieftest.User{Email: "jean@bretagne.duchy", Password: "hermine"})
	goneToken := f.Server.AccessToken(gone.ID)
	f.Server.DeleteUser(gone.ID) // its token is still valid offline, but Fief refuses it

	const anonymous = `{"message":"Hello, anonymous visitor"}`
	tests := []struct {
		name  string
		token string
		want  string
	}{
		{"no token", "", anonymous},
		{"forged token", "forged", anonymous},
		{"expired token", f.Server.AccessToken(f.User.ID, fieftest.ExpiresIn(-time.Hour)), anonymous},
		{"token of a deleted user", goneToken, anonymous},
		{"valid token", valid, `{"message":"Hello, anne@bretagne.duchy"}`},
		{"valid token again", valid, `{"message":"Hello, anne@bretagne.duchy"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, "GET", appURL+"/optional-user", tt.token)
			if resp.StatusCode != http.StatusOK || body != tt.want {
				t.Errorf("got %d %s, want 200 %s", resp.StatusCode, body, tt.want)
			}
		})
	}
	// The deleted user's token and the first request with the valid one
	// called Fief; the second was served from the cache.
	if n := f.Server.Requests(fieftest.EndpointUserinfo); n != 2 {
		t.Errorf("%d userinfo calls, want 2", n)
	}
}

func TestOptionalUserFiefUnavailable(t *testing.T) {
	f, appURL := start(t)
	f.Server.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: http.StatusBadGateway})

	// Anonymous visitors do not need Fief.
	if resp, body := do(t, "GET", appURL+"/optional-user", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("anonymous: %d %s", resp.StatusCode, body)
	}
	// A user's info cannot be read: the request fails instead of passing as
	// anonymous, with a fixed body.
	resp, body := do(t, "GET", appURL+"/optional-user", f.Server.AccessToken(f.User.ID))
	if resp.StatusCode != http.StatusServiceUnavailable || body != `{"detail":"Service Unavailable"}` {
		t.Errorf("user: %d %s, want 503 and the fixed body", resp.StatusCode, body)
	}
}

// start serves the API with an embedded Fief.
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

// do sends a request with the access token in the Authorization header
// (none if token is empty)
// and returns the answer with its body.
func do(t *testing.T, method, url, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
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
