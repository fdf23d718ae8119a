package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/fieftest"
)

func TestUser(t *testing.T) {
	f, appURL := start(t)
	valid := f.Server.AccessToken(f.User.ID, fieftest.ACR("1"))

	tests := []struct {
		name       string
		method     string
		auth       string
		wantStatus int
		wantAuthn  string // WWW-Authenticate
	}{
		{"no token", "GET", "", http.StatusUnauthorized, "Bearer"},
		{"other scheme", "GET", "Basic YW5uZTpoZXJtaW5ldHJ1Yw==", http.StatusUnauthorized, "Bearer"},
		{"forged token", "GET", "Bearer not-a-jwt", http.StatusUnauthorized, `Bearer error="invalid_token"`},
		{"expired token", "GET", "Bearer " + f.Server.AccessToken(f.User.ID, fieftest.ExpiresIn(-time.Hour)),
			http.StatusUnauthorized, `Bearer error="invalid_token"`},
		{"valid token", "GET", "Bearer " + valid, http.StatusOK, ""},
		{"scheme in lower case", "GET", "bearer " + valid, http.StatusOK, ""},
		{"wrong method", "POST", "Bearer " + valid, http.StatusMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.method, appURL+"/user", tt.auth)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.wantAuthn {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.wantAuthn)
			}
			if tt.wantStatus == http.StatusUnauthorized && body != `{"detail":"Unauthorized"}` {
				t.Errorf("body %s, want the fixed 401 body", body)
			}
			if strings.Contains(body, valid) {
				t.Error("the answer contains the access token")
			}
		})
	}
}

func TestUserAnswersTheTokenInfo(t *testing.T) {
	f, appURL := start(t)
	token := f.Server.AccessToken(f.User.ID, fieftest.Scopes("openid", "offline_access"), fieftest.ACR("1"))

	resp, body := do(t, "GET", appURL+"/user", "Bearer "+token)
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
	ctx, cancel := context.WithCancel(t.Context())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, out, "127.0.0.1:0", "") }()

	// run prints the curl commands, then serves until ctx is canceled.
	var withToken []string
	timeout := time.After(10 * time.Second)
	for withToken == nil {
		select {
		case err := <-done:
			t.Fatalf("run returned %v before serving; output:\n%s", err, out)
		case <-timeout:
			t.Fatalf("no curl command with a token printed; output:\n%s", out)
		case <-time.After(10 * time.Millisecond):
		}
		for line := range strings.Lines(out.String()) {
			// curl -i -H 'Authorization: Bearer <token>' <url>
			if f := strings.Fields(line); len(f) == 7 && f[0] == "curl" && f[3] == "'Authorization:" {
				withToken = f
			}
		}
	}
	resp, body := do(t, "GET", withToken[6], "Bearer "+strings.TrimSuffix(withToken[5], "'"))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the printed curl command got %d %s; output:\n%s", resp.StatusCode, body, out)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context was canceled")
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

// do sends a request with the given Authorization header (none if empty)
// and returns the answer with its body.
func do(t *testing.T, method, url, authorization string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
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

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
