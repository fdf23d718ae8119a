package main

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/examples/internal/exampletest"
	"github.com/fief-go/fief/fieftest"
)

func TestLoginFlow(t *testing.T) {
	f, appURL := start(t)

	// A visitor without a session is sent to Fief's login page.
	resp, _ := get(t, appURL+"/protected")
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("GET /protected: status %d, want 307", resp.StatusCode)
	}
	authURL := resp.Header.Get("Location")
	q := exampletest.CheckAuthURL(t, f, authURL, appURL+"/auth-callback")
	loginState := exampletest.FindCookie(t, resp, loginCookie)
	exampletest.CheckCookie(t, loginState, "/auth-callback", int(loginLifetime/time.Second))
	if q.Get("state") == "" || !strings.HasPrefix(loginState.Value, q.Get("state")+".") {
		t.Errorf("state %q is not the one in the %s cookie", q.Get("state"), loginCookie)
	}

	// The user logs in on Fief's form; Fief redirects back with a code.
	callback := exampletest.Authorize(t, f, authURL, appURL+"/auth-callback")

	// The callback exchanges the code and sets the session cookie.
	resp, body := get(t, callback.String(), loginState)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/protected" {
		t.Fatalf("GET /auth-callback: %d to %q, want 303 to /protected; body %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	session := exampletest.FindCookie(t, resp, sessionCookie)
	exampletest.CheckCookie(t, session, "/", int((24 * time.Hour).Seconds())) // expires_in: fieftest's default lifetime
	if session.Value == "" {
		t.Fatal("empty session cookie")
	}
	if c := exampletest.FindCookie(t, resp, loginCookie); c.MaxAge >= 0 {
		t.Errorf("the %s cookie is not deleted: %s", loginCookie, exampletest.Show(c))
	}

	// The protected page greets the user, whose info comes from Fief.
	resp, body = get(t, appURL+"/protected", session)
	exampletest.CheckGreeting(t, resp, body)
	if n := f.Server.Requests(fieftest.EndpointUserinfo); n != 1 {
		t.Errorf("%d userinfo calls, want 1 (no cache in this example)", n)
	}

	// Another site cannot log the user out: not with a link, not with a
	// form.
	if resp, _ := get(t, appURL+"/logout", session); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /logout: %d, want 405", resp.StatusCode)
	}
	if resp, _ := post(t, appURL+"/logout", http.Header{"Sec-Fetch-Site": {"cross-site"}}, session); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Errorf("cross-site POST /logout: %d, cookies %q; want 403 and none", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}

	// Logout, the page's form, deletes the cookie and sends the browser to
	// Fief's logout, which comes back to the home page.
	resp, _ = post(t, appURL+"/logout", http.Header{"Sec-Fetch-Site": {"same-origin"}}, session)
	exampletest.CheckLoggedOut(t, f, appURL, resp, sessionCookie)
}

func TestCallbackRefusals(t *testing.T) {
	f, appURL := start(t)

	// beginLogin starts a login and returns Fief's redirect back and the
	// login-state cookie.
	beginLogin := func(t *testing.T) (*url.URL, *http.Cookie) {
		resp, _ := get(t, appURL+"/protected")
		callback := exampletest.Authorize(t, f, resp.Header.Get("Location"), appURL+"/auth-callback")
		return callback, exampletest.FindCookie(t, resp, loginCookie)
	}

	tests := []struct {
		name       string
		request    func(t *testing.T) (string, []*http.Cookie)
		wantStatus int
	}{
		{"no login-state cookie", func(t *testing.T) (string, []*http.Cookie) {
			callback, _ := beginLogin(t)
			return callback.String(), nil
		}, http.StatusBadRequest},
		{"another state", func(t *testing.T) (string, []*http.Cookie) {
			callback, state := beginLogin(t)
			return exampletest.WithQuery(callback, "state", "forged"), []*http.Cookie{state}
		}, http.StatusBadRequest},
		{"no state", func(t *testing.T) (string, []*http.Cookie) {
			callback, state := beginLogin(t)
			c := *callback
			c.RawQuery = url.Values{"code": {callback.Query().Get("code")}}.Encode()
			return c.String(), []*http.Cookie{state}
		}, http.StatusBadRequest},
		{"state of another login", func(t *testing.T) (string, []*http.Cookie) {
			callback, _ := beginLogin(t)
			_, other := beginLogin(t)
			return callback.String(), []*http.Cookie{other}
		}, http.StatusBadRequest},
		{"Fief's error instead of a code", func(t *testing.T) (string, []*http.Cookie) {
			callback, state := beginLogin(t)
			c := *callback
			c.RawQuery = url.Values{"error": {"access_denied"}, "state": {callback.Query().Get("state")}}.Encode()
			return c.String(), []*http.Cookie{state}
		}, http.StatusBadRequest},
		{"code already used", func(t *testing.T) (string, []*http.Cookie) {
			callback, state := beginLogin(t)
			if resp, _ := get(t, callback.String(), state); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("first use: status %d", resp.StatusCode)
			}
			return callback.String(), []*http.Cookie{state}
		}, http.StatusBadRequest},
		{"token endpoint down", func(t *testing.T) (string, []*http.Cookie) {
			callback, state := beginLogin(t)
			f.Server.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: http.StatusInternalServerError, Times: 1})
			return callback.String(), []*http.Cookie{state}
		}, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, cookies := tt.request(t)
			resp, body := get(t, target, cookies...)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			for _, c := range resp.Cookies() {
				if c.Name == sessionCookie {
					t.Errorf("session cookie set: %s", exampletest.Show(c))
				}
			}
			if strings.Contains(body, "invalid_grant") || strings.Contains(body, "fief:") {
				t.Errorf("the answer reveals an internal error: %s", body)
			}
		})
	}
}

func TestProtectedWithBadSession(t *testing.T) {
	f, appURL := start(t)
	for name, token := range map[string]string{
		"forged":  "forged",
		"expired": f.Server.AccessToken(f.User.ID, fieftest.ExpiresIn(-time.Hour)),
	} {
		t.Run(name, func(t *testing.T) {
			resp, _ := get(t, appURL+"/protected", &http.Cookie{Name: sessionCookie, Value: token})
			if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(resp.Header.Get("Location"), f.BaseURL+"/authorize?") {
				t.Errorf("status %d to %q, want 307 to Fief's login page", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

func TestFiefUnavailable(t *testing.T) {
	f, appURL := start(t)
	f.Server.SetDown(true)
	resp, body := get(t, appURL+"/protected")
	if resp.StatusCode != http.StatusServiceUnavailable || body != "Service Unavailable" {
		t.Errorf("status %d %q, want 503 and a fixed body", resp.StatusCode, body)
	}
}

func TestCookiesSecureOverHTTPS(t *testing.T) {
	app, client := exampletest.StartTLSApp(t, testApp)
	resp, _ := exampletest.Send(t, client, exampletest.NewRequest(t, http.MethodGet, app.URL+"/protected"))
	if got := exampletest.MustParse(t, resp.Header.Get("Location")).Query().Get("redirect_uri"); got != app.URL+"/auth-callback" {
		t.Errorf("redirect_uri %q, want %s/auth-callback", got, app.URL)
	}
	if c := exampletest.FindCookie(t, resp, loginCookie); !c.Secure {
		t.Errorf("%s is not Secure over HTTPS", exampletest.Show(c))
	}
	resp, _ = exampletest.Send(t, client, exampletest.NewRequest(t, http.MethodPost, app.URL+"/logout"))
	if c := exampletest.FindCookie(t, resp, sessionCookie); !c.Secure {
		t.Errorf("%s is not Secure over HTTPS", exampletest.Show(c))
	}
}

// start serves the application with an embedded Fief.
func start(t *testing.T) (*devfief.Fief, string) {
	app := exampletest.StartApp(t, testApp)
	return app.Fief, app.URL
}

// testApp is the application as the tests serve it.
func testApp(client *fief.Client, _ string) (http.Handler, error) {
	return newApp(client, slog.New(slog.DiscardHandler))
}

// get sends GET target with cookies (their names and values), like a
// browser that does not follow redirects, and returns the answer with its
// body.
func get(t *testing.T, target string, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	return send(t, http.MethodGet, target, nil, cookies...)
}

// post sends a POST request with header and cookies, without following
// redirects.
func post(t *testing.T, target string, header http.Header, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	return send(t, http.MethodPost, target, header, cookies...)
}

func send(t *testing.T, method, target string, header http.Header, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req := exampletest.NewRequest(t, method, target)
	for k, v := range header {
		req.Header[k] = v
	}
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return exampletest.Send(t, exampletest.NoRedirects(http.DefaultClient), req)
}
