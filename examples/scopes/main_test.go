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

func TestScopeRequired(t *testing.T) {
	f, appURL := start(t)
	withScope := f.Server.AccessToken(f.User.ID, fieftest.Scopes("openid", requiredScope))

	tests := []struct {
		name       string
		token      string
		wantStatus int
		wantAuthn  string // WWW-Authenticate
		wantBody   string
	}{
		{"no token", "", http.StatusUnauthorized, "Bearer", `{"detail":"Unauthorized"}`},
		{"forged token", "forged", http.StatusUnauthorized, `Bearer error="invalid_token"`, `{"detail":"Unauthorized"}`},
		{"expired token with the scope",
			f.Server.AccessToken(f.User.ID, fieftest.Scopes("openid", requiredScope), fieftest.ExpiresIn(-time.Hour)),
			http.StatusUnauthorized, `Bearer error="invalid_token"`, `{"detail":"Unauthorized"}`},
		{"token without the scope", f.Server.AccessToken(f.User.ID),
			http.StatusForbidden, `Bearer error="insufficient_scope"`, `{"detail":"Forbidden"}`},
		{"token with another scope", f.Server.AccessToken(f.User.ID, fieftest.Scopes("openid", "castles:read")),
			http.StatusForbidden, `Bearer error="insufficient_scope"`, `{"detail":"Forbidden"}`},
		{"token with the scope", withScope, http.StatusOK, "", `"scope":["openid","castles"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, "GET", appURL+"/user", tt.token)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.wantAuthn {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.wantAuthn)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body %s, want %s in it", body, tt.wantBody)
			}
			if tt.token != "" && strings.Contains(body, tt.token) {
				t.Error("the answer contains the access token")
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
