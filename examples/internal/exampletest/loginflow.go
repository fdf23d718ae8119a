package exampletest

// The checks of a web application on fief.LoginFlow (examples/webapp and
// examples/webapp-cache): GET /protected for logged-in users, /login,
// /auth-callback and POST /logout.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/fieftest"
)

// The cookies of fief.LoginFlow over plain HTTP (local development): they
// have no prefix and are not Secure. Over HTTPS they are
// __Host-fief_app_session and __Secure-fief_flow_<...>.
const (
	// SessionCookie holds the access token.
	SessionCookie = "fief_app_session"
	// FlowCookie matches (FindCookie) the cookie of a login in progress.
	FlowCookie = "fief_flow_*"
)

// CheckLogin logs the demo user in with a new browser, checking each step
// of the login: /protected?tab=castles sends the browser to Fief's login
// page, with state and PKCE, and sets the flow cookie; Fief sends it back
// to /auth-callback with a code; the callback sets the session cookie,
// deletes the flow cookie and returns to the page asked for. It returns
// the browser and the session cookie.
func (a *App) CheckLogin(t *testing.T) (*Browser, *http.Cookie) {
	t.Helper()
	b := NewBrowser(t)

	// A visitor without a session is sent to Fief's login page.
	resp, _ := b.Get(t, a.URL+"/protected?tab=castles")
	authURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET /protected: %d to %q, want 303 to Fief's /authorize", resp.StatusCode, authURL)
	}
	CheckAuthURLScope(t, a.Fief, authURL, a.URL+"/auth-callback", a.Scope)
	flow := FindCookie(t, resp, FlowCookie)
	CheckCookie(t, flow, "/auth-callback", 600)

	// The user logs in on Fief's form; Fief redirects back with a code.
	callback := Authorize(t, a.Fief, authURL, a.URL+"/auth-callback")

	// The callback exchanges the code, sets the session cookie and returns
	// to the page the visitor asked for.
	resp, body := b.Get(t, callback.String())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/protected?tab=castles" {
		t.Fatalf("GET /auth-callback: %d to %q, want 303 to /protected?tab=castles; body %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	session := FindCookie(t, resp, SessionCookie)
	CheckCookie(t, session, "/", int((24 * time.Hour).Seconds())) // expires_in: fieftest's default lifetime
	if session.Value == "" {
		t.Fatal("empty session cookie")
	}
	if c := FindCookie(t, resp, flow.Name); c.MaxAge >= 0 {
		t.Errorf("the flow cookie is not deleted: %s", Show(c))
	}
	return b, session
}

// CheckLogout logs b out with POST /logout and checks it as CheckLoggedOut
// does; then /protected sends b to Fief's login page again.
func (a *App) CheckLogout(t *testing.T, b *Browser) {
	t.Helper()
	resp, _ := b.Do(t, http.MethodPost, a.URL+"/logout")
	CheckLoggedOut(t, a.Fief, a.URL, resp, SessionCookie)
	if resp, _ := b.Get(t, a.URL+"/protected"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET /protected after logout: %d, want 303 to Fief", resp.StatusCode)
	}
}

// CheckAuthURL checks that authURL is the embedded Fief f's authorization
// URL for a login with an authorization code, state and PKCE that comes
// back to redirectURI, with the scope openid, and returns its query.
func CheckAuthURL(t testing.TB, f *devfief.Fief, authURL, redirectURI string) url.Values {
	t.Helper()
	return CheckAuthURLScope(t, f, authURL, redirectURI, "")
}

// CheckAuthURLScope is CheckAuthURL for a login that asks for scope ("":
// openid).
func CheckAuthURLScope(t testing.TB, f *devfief.Fief, authURL, redirectURI, scope string) url.Values {
	t.Helper()
	if scope == "" {
		scope = "openid"
	}
	if !strings.HasPrefix(authURL, f.BaseURL+"/authorize?") {
		t.Fatalf("redirected to %s, want Fief's /authorize", authURL)
	}
	q := MustParse(t, authURL).Query()
	for k, want := range map[string]string{
		"response_type":         "code",
		"client_id":             f.Server.ClientID,
		"redirect_uri":          redirectURI,
		"scope":                 scope,
		"code_challenge_method": "S256",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorization URL: %s=%q, want %q", k, got, want)
		}
	}
	if q.Get("state") == "" || q.Get("code_challenge") == "" {
		t.Errorf("authorization URL without state or PKCE challenge: %s", authURL)
	}
	return q
}

// Authorize logs the demo user in on the login form of the embedded Fief f
// at authURL, checks that Fief sends the browser back to redirectURI with
// a code, and returns that URL.
func Authorize(t testing.TB, f *devfief.Fief, authURL, redirectURI string) *url.URL {
	t.Helper()
	callback, err := f.Server.Authorize(authURL, devfief.DemoEmail, devfief.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(callback.String(), redirectURI+"?") || callback.Query().Get("code") == "" {
		t.Fatalf("Fief redirected to %s", callback)
	}
	return callback
}

// CheckGreeting checks the protected page of a logged-in demo user: it
// greets the user and is not cached.
func CheckGreeting(t testing.TB, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Hello "+devfief.DemoEmail) {
		t.Fatalf("GET /protected: %d %s", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
}

// CheckLoggedOut checks resp, the answer of the application at appURL to
// a logout: it deletes the session cookie and sends the browser to Fief's
// logout page (of the embedded Fief f), which comes back to the home page,
// which is served.
func CheckLoggedOut(t testing.TB, f *devfief.Fief, appURL string, resp *http.Response, sessionCookie string) {
	t.Helper()
	logoutURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || logoutURL != f.Client.LogoutURL(appURL+"/") ||
		!strings.HasPrefix(logoutURL, f.BaseURL+"/logout?") {
		t.Fatalf("logout: %d to %q, want 303 to Fief's logout", resp.StatusCode, logoutURL)
	}
	if c := FindCookie(t, resp, sessionCookie); c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("the session cookie is not deleted: %s", Show(c))
	}
	client := NoRedirects(http.DefaultClient)
	resp, _ = Send(t, client, NewRequest(t, http.MethodGet, logoutURL))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != appURL+"/" {
		t.Errorf("Fief's logout: %d to %q, want 302 to %s/", resp.StatusCode, resp.Header.Get("Location"), appURL)
	}
	if resp, body := Send(t, client, NewRequest(t, http.MethodGet, appURL+"/")); resp.StatusCode != http.StatusOK || !strings.Contains(body, `href="/protected"`) {
		t.Errorf("GET /: %d %s", resp.StatusCode, body)
	}
}

// CheckReturnTo checks that a login started at /login?return_to=<path>
// comes back to that path when it is one of the site's, and to / otherwise.
func CheckReturnTo(t *testing.T, a *App) {
	for returnTo, want := range map[string]string{
		"/protected?tab=castles": "/protected?tab=castles",
		"//evil.example":         "/",
		"https://evil.example":   "/",
		"/\\evil.example":        "/",
		"":                       "/",
	} {
		t.Run(returnTo, func(t *testing.T) {
			b := NewBrowser(t)
			callback := b.LogIn(t, a.Fief.Server, a.URL+"/login?return_to="+url.QueryEscape(returnTo))
			if resp, body := b.Get(t, callback.String()); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
				t.Errorf("callback: %d to %q, want 303 to %q; body %s", resp.StatusCode, resp.Header.Get("Location"), want, body)
			}
		})
	}
}

// CheckCallbackRefusals checks that /auth-callback refuses what is not the
// end of a login that this browser started, with the login error page and
// without a session cookie or an internal error.
func CheckCallbackRefusals(t *testing.T, a *App) {
	// beginLogin starts a login in b and returns Fief's redirect back.
	beginLogin := func(t *testing.T, b *Browser) *url.URL {
		return b.LogIn(t, a.Fief.Server, a.URL+"/protected")
	}

	tests := []struct {
		name       string
		request    func(t *testing.T, b *Browser) string
		wantStatus int
	}{
		{"another browser", func(t *testing.T, b *Browser) string {
			return beginLogin(t, NewBrowser(t)).String()
		}, http.StatusBadRequest},
		{"forged state", func(t *testing.T, b *Browser) string {
			return WithQuery(beginLogin(t, b), "state", "forged")
		}, http.StatusBadRequest},
		{"no state", func(t *testing.T, b *Browser) string {
			callback := beginLogin(t, b)
			return a.URL + "/auth-callback?code=" + url.QueryEscape(callback.Query().Get("code"))
		}, http.StatusBadRequest},
		{"Fief's error instead of a code", func(t *testing.T, b *Browser) string {
			callback := beginLogin(t, b)
			return a.URL + "/auth-callback?" + url.Values{"error": {"access_denied"}, "state": {callback.Query().Get("state")}}.Encode()
		}, http.StatusBadRequest},
		{"reloaded callback", func(t *testing.T, b *Browser) string {
			callback := beginLogin(t, b)
			if resp, _ := b.Get(t, callback.String()); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("first use: status %d", resp.StatusCode)
			}
			return callback.String()
		}, http.StatusBadRequest},
		{"token endpoint down", func(t *testing.T, b *Browser) string {
			callback := beginLogin(t, b)
			a.Fief.Server.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: http.StatusInternalServerError, Times: 1})
			return callback.String()
		}, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBrowser(t)
			resp, body := b.Get(t, tt.request(t, b))
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			if !strings.Contains(body, `id="fief-login-error"`) {
				t.Errorf("not the login error page: %s", body)
			}
			for _, c := range resp.Cookies() {
				if c.Name == SessionCookie && c.MaxAge > 0 {
					t.Errorf("session cookie set: %s", Show(c))
				}
			}
			if strings.Contains(body, "invalid_grant") || strings.Contains(body, "fief:") {
				t.Errorf("the answer reveals an internal error: %s", body)
			}
		})
	}
}

// CheckBadSession checks that a forged or expired session cookie sends
// the browser to Fief's login page.
func CheckBadSession(t *testing.T, a *App) {
	for name, token := range map[string]string{
		"forged":  "forged",
		"expired": a.Fief.Server.AccessToken(a.Fief.User.ID, fieftest.ExpiresIn(-time.Hour)),
	} {
		t.Run(name, func(t *testing.T) {
			b := NewBrowser(t)
			b.SetCookie(t, a.URL, &http.Cookie{Name: SessionCookie, Value: token})
			resp, _ := b.Get(t, a.URL+"/protected")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), a.Fief.BaseURL+"/authorize?") {
				t.Errorf("status %d to %q, want 303 to Fief's login page", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

// CheckFiefUnavailable checks that a login while Fief is down answers 503
// with the login error page.
func CheckFiefUnavailable(t *testing.T, a *App) {
	a.Fief.Server.SetDown(true)
	resp, body := NewBrowser(t).Get(t, a.URL+"/protected")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "Login is temporarily unavailable") {
		t.Errorf("status %d %q, want 503 and the login error page", resp.StatusCode, body)
	}
}

// CheckSecureCookies serves the application over HTTPS and checks that
// its redirect URI is the https one and its cookies are Secure and
// HttpOnly, with the __Secure- and __Host- prefixes.
func CheckSecureCookies(t *testing.T, newApp NewApp) {
	a, client := StartTLSApp(t, newApp)
	b := &Browser{Client: client}
	resp, _ := b.Get(t, a.URL+"/protected")
	if got := MustParse(t, resp.Header.Get("Location")).Query().Get("redirect_uri"); got != a.URL+"/auth-callback" {
		t.Errorf("redirect_uri %q, want %s/auth-callback", got, a.URL)
	}
	if c := FindCookie(t, resp, "__Secure-"+FlowCookie); !c.Secure || !c.HttpOnly {
		t.Errorf("%s is not Secure and HttpOnly over HTTPS", Show(c))
	}
	resp, _ = b.Do(t, http.MethodPost, a.URL+"/logout")
	if c := FindCookie(t, resp, "__Host-"+SessionCookie); !c.Secure || !c.HttpOnly {
		t.Errorf("%s is not Secure and HttpOnly over HTTPS", Show(c))
	}
}
