package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/examples/internal/exampletest"
	"github.com/fief-go/fief/fieftest"
)

func TestWalkthrough(t *testing.T) {
	f := exampletest.Fief(t)
	appURL := serveApp(t, f, nil)

	var out bytes.Buffer
	if err := walkthrough(t.Context(), &out, appURL, f); err != nil {
		t.Fatalf("%v; output:\n%s", err, &out)
	}
	for _, want := range []string{
		"1. GET /api/user without a token\n   401 Unauthorized, WWW-Authenticate: Bearer",
		"2. GET /protected in a browser without a session\n   303 See Other to Fief's login page",
		"in cookie\n     fief_flow_",
		"(Path=/auth-callback; HttpOnly; SameSite=Lax; Max-Age=600)",
		"3. Log in on Fief's login form as anne@bretagne.duchy",
		"4. GET /auth-callback",
		"303 See Other back to /protected",
		"cookie fief_app_session (Path=/; HttpOnly; SameSite=Lax; Max-Age=86400)",
		`5. GET /protected with the session cookie` + "\n" + `   200 OK: "Hello anne@bretagne.duchy"`,
		"6. GET /api/user with Authorization: Bearer <the same access token>\n   200 OK: {\"id\":\"" + f.User.ID + `"`,
		"7. POST /logout (the page's Log out button)\n   303 See Other to Fief's logout",
		"Fief ends its session: 302 Found back to " + appURL + "/",
		"GET /protected again: 303 See Other to Fief's login page",
		"200 OK after 1 call to Fief's userinfo endpoint",
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
	f := exampletest.Fief(t)
	tests := []struct {
		name    string
		wrap    func(app http.Handler) http.Handler
		wantErr string
	}{
		{"not the demo app", func(http.Handler) http.Handler { return http.NotFoundHandler() },
			"step 1 (GET /api/user without a token): got 404 Not Found, want 401"},
		{"unprotected API", func(app http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/api/user" {
					return
				}
				app.ServeHTTP(w, r)
			})
		}, "step 1 (GET /api/user without a token): got 200 OK, want 401"},
		{"login redirect without the flow cookie", func(app http.Handler) http.Handler {
			return dropCookies(app, "/protected", flowCookiePrefix)
		}, "step 2 (GET /protected in a browser without a session): no HttpOnly, SameSite=Lax fief_flow_* cookie"},
		{"callback without the session cookie", func(app http.Handler) http.Handler {
			return dropCookies(app, "/auth-callback", sessionCookie)
		}, "step 4 (GET /auth-callback: LoginFlow.Callback checks the state and exchanges the code for tokens): no HttpOnly, SameSite=Lax fief_app_session cookie"},
		{"callback keeps the flow cookie", func(app http.Handler) http.Handler {
			return dropCookies(app, "/auth-callback", flowCookiePrefix)
		}, "step 4 (GET /auth-callback: LoginFlow.Callback checks the state and exchanges the code for tokens): the flow cookie fief_flow_"},
		{"user info not cached", func(app http.Handler) http.Handler {
			// Before each page, a logout in the background empties the
			// cache (and only that: its answer is dropped).
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/protected" {
					logout := r.Clone(r.Context())
					logout.Method, logout.URL.Path, logout.RequestURI = http.MethodPost, "/logout", ""
					logout.Header.Del("Sec-Fetch-Mode")
					app.ServeHTTP(httptest.NewRecorder(), logout)
				}
				app.ServeHTTP(w, r)
			})
		}, "step 5 (GET /protected with the session cookie): 1 calls to Fief's userinfo endpoint, want 0"},
		{"API ignores the token", func(app http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Header.Del("Authorization")
				app.ServeHTTP(w, r)
			})
		}, "step 6 (GET /api/user with Authorization: Bearer <the same access token>): got 401 Unauthorized"},
		{"logout answers GET only", func(app http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/logout" && r.Method != http.MethodGet {
					http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
					return
				}
				app.ServeHTTP(w, r)
			})
		}, "step 7 (POST /logout (the page's Log out button)): got 405 Method Not Allowed"},
		{"logout keeps the session", func(app http.Handler) http.Handler {
			return dropCookies(app, "/logout", sessionCookie)
		}, "step 7 (POST /logout (the page's Log out button)): the session cookie is not deleted"},
		{"logout keeps the cached user info", func(app http.Handler) http.Handler {
			// The flow's Logout does not see the token, so cannot tell
			// whose entry to remove.
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/logout" {
					r.Header.Del("Cookie")
				}
				app.ServeHTTP(w, r)
			})
		}, "step 7 (POST /logout (the page's Log out button)): GET /protected with a copy of the old token: 0 calls to Fief's userinfo endpoint, want 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			appURL := serveApp(t, f, tt.wrap)
			var out bytes.Buffer
			err := walkthrough(t.Context(), &out, appURL, f)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("error %v,\nwant %q...; output:\n%s", err, tt.wantErr, &out)
			}
		})
	}
}

// A cross-site form cannot log the user out: http.CrossOriginProtection
// refuses it before LoginFlow's Logout sees it.
func TestCrossSiteLogoutRefused(t *testing.T) {
	f := exampletest.Fief(t)
	appURL := serveApp(t, f, nil)
	token := f.Server.AccessToken(f.User.ID)
	for site, want := range map[string]int{"cross-site": http.StatusForbidden, "same-origin": http.StatusSeeOther} {
		req := exampletest.NewRequest(t, http.MethodPost, appURL+"/logout")
		req.Header.Set("Sec-Fetch-Site", site)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
		resp, _ := exampletest.Send(t, noRedirects, req)
		if resp.StatusCode != want {
			t.Errorf("%s POST /logout: %s, want %d", site, resp.Status, want)
		}
	}
}

func TestRun(t *testing.T) {
	// As on a fresh machine: no Fief configured.
	for _, v := range []string{"FIEF_BASE_URL", "FIEF_CLIENT_ID", "FIEF_CLIENT_SECRET"} {
		t.Setenv(v, "")
	}

	t.Run("walkthrough", func(t *testing.T) {
		var out strings.Builder
		if err := run(t.Context(), &out, "127.0.0.1:0", "", false); err != nil {
			t.Fatalf("run: %v; output:\n%s", err, &out)
		}
		if !strings.Contains(out.String(), "All 7 steps went as expected.") {
			t.Errorf("output:\n%s", &out)
		}
	})

	t.Run("serve", func(t *testing.T) {
		cmd := exampletest.StartCommand(t, func(ctx context.Context, out io.Writer) error {
			return run(ctx, out, "127.0.0.1:0", "", true)
		})

		// After the walkthrough the app keeps serving until ctx is done.
		out := cmd.WaitFor(t, "Press Ctrl-C to stop.")
		if !strings.Contains(out, "All 7 steps went as expected.") ||
			!strings.Contains(out, "log in as "+devfief.DemoEmail+" / "+devfief.DemoPassword) {
			t.Errorf("output:\n%s", out)
		}
		appURL := appURLIn(out)
		resp, _ := exampletest.Send(t, noRedirects, exampletest.NewRequest(t, http.MethodGet, appURL+"/"))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s/: %s", appURL, resp.Status)
		}
		cmd.Stop(t)
	})

	t.Run("real Fief", func(t *testing.T) {
		// A Fief named by the environment: no scripted walkthrough, the
		// app serves for a human to log in.
		srv := fieftest.NewTB(t)
		t.Setenv("FIEF_BASE_URL", srv.URL)
		t.Setenv("FIEF_CLIENT_ID", srv.ClientID)
		t.Setenv("FIEF_CLIENT_SECRET", srv.ClientSecret)
		cmd := exampletest.StartCommand(t, func(ctx context.Context, out io.Writer) error {
			return run(ctx, out, "127.0.0.1:0", "", false)
		})

		out := cmd.WaitFor(t, "Press Ctrl-C to stop.")
		appURL := appURLIn(out)
		for _, want := range []string{
			"Fief:      " + srv.URL + " (from FIEF_BASE_URL)",
			"Allow the redirect URI " + appURL + "/auth-callback on your Fief client",
			"open " + appURL + "/protected in your browser",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "1. GET") {
			t.Errorf("a walkthrough ran against a real Fief:\n%s", out)
		}
		resp, _ := exampletest.Send(t, noRedirects, exampletest.NewRequest(t, http.MethodGet, appURL+"/protected"))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), srv.URL+"/authorize?") ||
			loc.Query().Get("redirect_uri") != appURL+"/auth-callback" {
			t.Errorf("GET /protected: %s to %q, want 303 to %s/authorize with redirect_uri %s/auth-callback",
				resp.Status, loc, srv.URL, appURL)
		}
		cmd.Stop(t)
	})

	t.Run("busy address", func(t *testing.T) {
		ts := httptest.NewServer(http.NotFoundHandler())
		defer ts.Close()
		err := run(t.Context(), io.Discard, strings.TrimPrefix(ts.URL, "http://"), "", false)
		if err == nil {
			t.Error("run succeeded on a busy address")
		}
	})
}

// serveApp serves the demo app for f, wrapped by wrap unless it is nil,
// and returns its URL.
func serveApp(t *testing.T, f *devfief.Fief, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	return exampletest.ServeApp(t, f, func(client *fief.Client, appURL string) (http.Handler, error) {
		app, err := newApp(client, appURL, slog.New(slog.DiscardHandler))
		if err == nil && wrap != nil {
			app = wrap(app)
		}
		return app, err
	})
}

// dropCookies returns app with the cookies whose names start with prefix
// removed from its answers to requests for path.
func dropCookies(app http.Handler, path, prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			app.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			if k != "Set-Cookie" {
				w.Header()[k] = v
			}
		}
		for _, c := range rec.Result().Cookies() {
			if !strings.HasPrefix(c.Name, prefix) {
				http.SetCookie(w, c)
			}
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// noRedirects is an HTTP client that does not follow redirects.
var noRedirects = exampletest.NoRedirects(http.DefaultClient)

// appURLIn returns the app's URL that run printed in out.
func appURLIn(out string) string {
	_, appURL, _ := strings.Cut(out, "App:       ")
	appURL, _, _ = strings.Cut(appURL, "\n")
	return appURL
}
