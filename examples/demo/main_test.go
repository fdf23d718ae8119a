package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief/examples/internal/devfief"
)

func TestWalkthrough(t *testing.T) {
	f := embedded(t)
	app, err := newApp(f.Client, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(app)
	t.Cleanup(ts.Close)

	var out bytes.Buffer
	if err := walkthrough(t.Context(), &out, ts.URL, f); err != nil {
		t.Fatalf("%v; output:\n%s", err, &out)
	}
	for _, want := range []string{
		"1. GET /api/user without a token\n   401 Unauthorized",
		"2. GET /protected in a browser without a session\n   307 Temporary Redirect to Fief's login page",
		"3. Log in on Fief's login form as anne@bretagne.duchy",
		"4. GET /auth-callback",
		"(HttpOnly; SameSite=Lax; Max-Age=86400)",
		`5. GET /protected with the session cookie` + "\n" + `   200 OK: "Hello anne@bretagne.duchy"`,
		"6. GET /api/user with Authorization: Bearer <the same access token>\n   200 OK: {\"id\":\"" + f.User.ID + `"`,
		"7. GET /logout\n   303 See Other to Fief's logout",
		"All 7 steps went as expected.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
	if strings.Contains(out.String(), "eyJ") {
		t.Errorf("the output shows a token:\n%s", &out)
	}
}

func TestWalkthroughReportsDeviations(t *testing.T) {
	f := embedded(t)
	app, err := newApp(f.Client, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		app     http.Handler
		wantErr string
	}{
		{"not the demo app", http.NotFoundHandler(), "step 1 (GET /api/user without a token): got 404 Not Found, want 401"},
		{"unprotected API", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/user" {
				return
			}
			app.ServeHTTP(w, r)
		}), "step 1 "},
		{"no session cookie", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/auth-callback" {
				http.Redirect(w, r, "/protected", http.StatusSeeOther)
				return
			}
			app.ServeHTTP(w, r)
		}), "step 4 "},
		{"logout keeps the session", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/logout" {
				http.Redirect(w, r, f.Client.LogoutURL("http://"+r.Host+"/"), http.StatusSeeOther)
				return
			}
			app.ServeHTTP(w, r)
		}), "step 7 (GET /logout): the session cookie is not deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(tt.app)
			defer ts.Close()
			var out bytes.Buffer
			err := walkthrough(t.Context(), &out, ts.URL, f)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want %q...; output:\n%s", err, tt.wantErr, &out)
			}
		})
	}
}

func TestRun(t *testing.T) {
	// As on a fresh machine: no Fief configured.
	for _, v := range []string{"FIEF_BASE_URL", "FIEF_CLIENT_ID", "FIEF_CLIENT_SECRET"} {
		t.Setenv(v, "")
	}

	t.Run("walkthrough", func(t *testing.T) {
		out := &syncBuffer{}
		if err := run(t.Context(), out, "127.0.0.1:0", "", false); err != nil {
			t.Fatalf("run: %v; output:\n%s", err, out)
		}
		if !strings.Contains(out.String(), "All 7 steps went as expected.") {
			t.Errorf("output:\n%s", out)
		}
	})

	t.Run("serve", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		out := &syncBuffer{}
		done := make(chan error, 1)
		go func() { done <- run(ctx, out, "127.0.0.1:0", "", true) }()

		// After the walkthrough the app keeps serving until ctx is done.
		timeout := time.After(10 * time.Second)
		for !strings.Contains(out.String(), "Press Ctrl-C to stop.") {
			select {
			case err := <-done:
				t.Fatalf("run returned %v; output:\n%s", err, out)
			case <-timeout:
				t.Fatalf("not serving; output:\n%s", out)
			case <-time.After(10 * time.Millisecond):
			}
		}
		_, appURL, _ := strings.Cut(out.String(), "App:       ")
		appURL, _, _ = strings.Cut(appURL, "\n")
		resp, err := http.Get(appURL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s/: %s", appURL, resp.Status)
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
	})

	t.Run("busy address", func(t *testing.T) {
		ts := httptest.NewServer(http.NotFoundHandler())
		defer ts.Close()
		err := run(t.Context(), &syncBuffer{}, strings.TrimPrefix(ts.URL, "http://"), "", false)
		if err == nil {
			t.Error("run succeeded on a busy address")
		}
	})
}

func embedded(t *testing.T) *devfief.Fief {
	t.Helper()
	f, err := devfief.Embedded("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
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
