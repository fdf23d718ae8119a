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

func TestPermissionsRequired(t *testing.T) {
	f, appURL := start(t)
	demo := f.Server.AccessToken(f.User.ID) // castles:read and castles:create
	admin := f.Server.AccessToken(f.User.ID, fieftest.Permissions(permRead, permDelete))
	none := f.Server.AccessToken(f.User.ID, fieftest.Permissions())

	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		wantStatus int
		wantBody   string
	}{
		{"list without a token", "GET", "/castles", "", http.StatusUnauthorized, `{"detail":"Unauthorized"}`},
		{"list without permissions", "GET", "/castles", none, http.StatusForbidden, `{"detail":"Forbidden"}`},
		{"list as the demo user", "GET", "/castles", demo, http.StatusOK, `["nantes","rennes","vannes"]`},
		{"delete without a token", "DELETE", "/castles/nantes", "", http.StatusUnauthorized, `{"detail":"Unauthorized"}`},
		{"delete as the demo user", "DELETE", "/castles/nantes", demo, http.StatusForbidden, `{"detail":"Forbidden"}`},
		{"delete with castles:delete", "DELETE", "/castles/nantes", admin, http.StatusNoContent, ""},
		{"expired token with every permission", "DELETE", "/castles/nantes",
			f.Server.AccessToken(f.User.ID, fieftest.Permissions(permRead, permDelete), fieftest.ExpiresIn(-time.Hour)),
			http.StatusUnauthorized, `{"detail":"Unauthorized"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.method, appURL+tt.path, tt.token)
			if resp.StatusCode != tt.wantStatus || body != tt.wantBody {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if resp.StatusCode == http.StatusForbidden {
				if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer error="insufficient_scope"` {
					t.Errorf("WWW-Authenticate %q", got)
				}
			}
		})
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
