package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/fieftest"
)

// The cookies of fief.LoginFlow over plain HTTP (InsecureCookies): over
// HTTPS they are Secure, named __Host-fief_app_session,
// __Secure-fief_flow_<...> and __Host-fief_bind_<...>.
const (
	// sessionCookie holds the access token after login.
	sessionCookie = "fief_app_session"
	// flowCookiePrefix starts the name of the cookie of a login in
	// progress, which holds its return-to path, sealed for its state and
	// its browser, for /auth-callback only.
	flowCookiePrefix = "fief_flow_"
	// bindCookiePrefix starts the name of the cookie that binds a login
	// in progress to the browser that started it.
	bindCookiePrefix = "fief_bind_"
)

// walkthrough plays a user's visit to the demo app at appURL, logging in on
// the embedded Fief f, and prints each step to out. It returns an error at
// the first step that does not go as expected.
func walkthrough(ctx context.Context, out io.Writer, appURL string, f *devfief.Fief) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	w := &walker{ctx: ctx, out: out, browser: &http.Client{
		Transport: transport,
		Jar:       jar,
		Timeout:   10 * time.Second,
		// Show every redirect instead of following it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}

	w.step("GET /api/user without a token")
	resp, _, err := w.call(appURL+"/api/user", "")
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return w.fail("got %s, want 401", resp.Status)
	}
	w.result("%s, WWW-Authenticate: %s", resp.Status, resp.Header.Get("WWW-Authenticate"))

	w.step("GET /protected in a browser without a session")
	if resp, _, err = w.navigate(http.MethodGet, appURL+"/protected"); err != nil {
		return err
	}
	loginURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loginURL, f.BaseURL+"/authorize?") {
		return w.fail("got %s to %q, want 303 to Fief's login page", resp.Status, loginURL)
	}
	var flow, bind *http.Cookie
	for _, c := range resp.Cookies() {
		switch {
		case strings.HasPrefix(c.Name, flowCookiePrefix) && c.Value != "":
			flow = c
		case strings.HasPrefix(c.Name, bindCookiePrefix) && c.Value != "":
			bind = c
		}
	}
	if flow == nil || !flow.HttpOnly || flow.SameSite != http.SameSiteLaxMode || flow.Path != "/auth-callback" ||
		flow.MaxAge != int(fief.LoginFlowLifetime/time.Second) {
		return w.fail("no HttpOnly, SameSite=Lax %s* cookie for /auth-callback with Max-Age=%d in %q",
			flowCookiePrefix, int(fief.LoginFlowLifetime/time.Second), resp.Header.Values("Set-Cookie"))
	}
	if bind == nil || !bind.HttpOnly || bind.Path != "/" {
		return w.fail("no HttpOnly %s* cookie for / in %q", bindCookiePrefix, resp.Header.Values("Set-Cookie"))
	}
	w.result("%s to Fief's login page (LoginFlow.RedirectToLogin, the middleware's unauthorized handler):", resp.Status)
	w.result("  %s", elide(loginURL))
	w.result("The login's return-to path /protected, sealed for its state and this browser, in cookie")
	w.result("  %s (Path=%s; HttpOnly; SameSite=Lax; Max-Age=%d)", flow.Name, flow.Path, flow.MaxAge)
	w.result("bound to this browser by cookie")
	w.result("  %s (Path=%s; HttpOnly; SameSite=Lax; Max-Age=%d)", bind.Name, bind.Path, bind.MaxAge)

	w.step(fmt.Sprintf("Log in on Fief's login form as %s / %s", devfief.DemoEmail, devfief.DemoPassword))
	callback, err := f.Server.Authorize(loginURL, devfief.DemoEmail, devfief.DemoPassword)
	if err != nil {
		return w.fail("%v", err)
	}
	if !strings.HasPrefix(callback.String(), appURL+"/auth-callback?") || callback.Query().Get("code") == "" {
		return w.fail("Fief redirected to %s, want the app's /auth-callback with a code", callback)
	}
	w.result("Fief accepts the password and sends the browser back with a code:")
	w.result("  %s", elide(callback.String()))

	w.step("GET /auth-callback: LoginFlow.Callback checks the state and exchanges the code for tokens")
	if resp, _, err = w.navigate(http.MethodGet, callback.String()); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/protected" {
		return w.fail("got %s to %q, want 303 back to /protected", resp.Status, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	flowDeleted := false
	for _, c := range resp.Cookies() {
		switch {
		case c.Name == sessionCookie && c.Value != "":
			session = c
		case c.Name == flow.Name && c.MaxAge < 0:
			flowDeleted = true
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" || session.MaxAge <= 0 {
		return w.fail("no HttpOnly, SameSite=Lax %s cookie for / with a Max-Age in %q", sessionCookie, resp.Header.Values("Set-Cookie"))
	}
	if !flowDeleted {
		return w.fail("the flow cookie %s is not deleted: %q", flow.Name, resp.Header.Values("Set-Cookie"))
	}
	w.result("%s back to /protected, the page asked for; flow cookie deleted (single use);", resp.Status)
	w.result("the access token in cookie %s (Path=/; HttpOnly; SameSite=Lax; Max-Age=%d);", session.Name, session.MaxAge)
	w.result("the ID token's claims in the app's user-info cache")

	w.step("GET /protected with the session cookie")
	userinfoCalls := f.Server.Requests(fieftest.EndpointUserinfo)
	resp, body, err := w.navigate(http.MethodGet, appURL+"/protected")
	if err != nil {
		return err
	}
	greeting := "Hello " + devfief.DemoEmail
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, greeting) {
		return w.fail("got %s, want 200 and %q", resp.Status, greeting)
	}
	if n := f.Server.Requests(fieftest.EndpointUserinfo) - userinfoCalls; n != 0 {
		return w.fail("%d calls to Fief's userinfo endpoint, want 0: the login cached the user's info", n)
	}
	w.result("%s: %q (CurrentUser, user info cached at login: no call to Fief)", resp.Status, greeting)

	w.step("GET /api/user with Authorization: Bearer <the same access token>")
	if resp, body, err = w.call(appURL+"/api/user", session.Value); err != nil {
		return err
	}
	var info struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &info) != nil || info.ID != f.User.ID {
		return w.fail("got %s %s, want 200 and the token info of user %s", resp.Status, body, f.User.ID)
	}
	w.result("%s: %s", resp.Status, body)

	w.step("POST /logout (the page's Log out button)")
	if resp, _, err = w.navigate(http.MethodPost, appURL+"/logout"); err != nil {
		return err
	}
	logoutURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || logoutURL != f.Client.LogoutURL(appURL+"/") {
		return w.fail("got %s to %q, want 303 to Fief's logout", resp.Status, logoutURL)
	}
	cleared := false
	for _, c := range resp.Cookies() {
		cleared = cleared || c.Name == sessionCookie && c.MaxAge < 0
	}
	if !cleared {
		return w.fail("the session cookie is not deleted: %q", resp.Header.Values("Set-Cookie"))
	}
	w.result("%s to Fief's logout; session cookie deleted:", resp.Status)
	w.result("  %s", logoutURL)
	if resp, _, err = w.navigate(http.MethodGet, logoutURL); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != appURL+"/" {
		return w.fail("Fief's logout: got %s to %q, want 302 to %s/", resp.Status, resp.Header.Get("Location"), appURL)
	}
	w.result("Fief ends its session: %s back to %s/", resp.Status, appURL)
	if resp, _, err = w.navigate(http.MethodGet, appURL+"/protected"); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), f.BaseURL+"/authorize?") {
		return w.fail("GET /protected after logout: got %s to %q, want 303 to Fief's login page", resp.Status, resp.Header.Get("Location"))
	}
	w.result("GET /protected again: %s to Fief's login page", resp.Status)
	// Fief does not revoke access tokens: a copy of the old one stays valid
	// until it expires, but the logout removed the user's cached info.
	userinfoCalls = f.Server.Requests(fieftest.EndpointUserinfo)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, appURL+"/protected", nil)
	if err != nil {
		return w.fail("%v", err)
	}
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session.Value})
	if resp, body, err = w.do(req); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, greeting) {
		return w.fail("GET /protected with a copy of the old token: got %s, want 200 and %q", resp.Status, greeting)
	}
	if n := f.Server.Requests(fieftest.EndpointUserinfo) - userinfoCalls; n != 1 {
		return w.fail("GET /protected with a copy of the old token: %d calls to Fief's userinfo endpoint, want 1: the logout removes the cached user info", n)
	}
	w.result("A copy of the old token works until it expires (Fief does not revoke tokens), but")
	w.result("logout removed the user's cached info: %s after 1 call to Fief's userinfo endpoint", resp.Status)

	fmt.Fprintf(out, "\nAll %d steps went as expected.\n", w.n)
	return nil
}

// walker runs the steps of the walkthrough with a browser-like client: a
// cookie jar, no automatic redirects.
type walker struct {
	ctx     context.Context
	out     io.Writer
	browser *http.Client
	n       int    // current step
	title   string // of the current step
}

func (w *walker) step(title string) {
	w.n++
	w.title = title
	fmt.Fprintf(w.out, "\n%d. %s\n", w.n, title)
}

func (w *walker) result(format string, args ...any) {
	fmt.Fprintf(w.out, "   "+format+"\n", args...)
}

// fail returns the error of the current step.
func (w *walker) fail(format string, args ...any) error {
	return fmt.Errorf("step %d (%s): %s", w.n, w.title, fmt.Sprintf(format, args...))
}

// call sends GET url as an API client does, with the access token in the
// Authorization header unless it is empty, and returns the answer and its
// body.
func (w *walker) call(url, token string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(w.ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", w.fail("%v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return w.do(req)
}

// navigate sends a request as a browser does when the user follows a link,
// a redirect or submits a form: with the Fetch metadata headers that
// LoginFlow.RedirectToLogin and http.CrossOriginProtection read, and the
// cookies of the jar.
func (w *walker) navigate(method, url string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(w.ctx, method, url, nil)
	if err != nil {
		return nil, "", w.fail("%v", err)
	}
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	if method == http.MethodPost {
		req.Header.Set("Sec-Fetch-Site", "same-origin") // a form on the app's own page
	}
	return w.do(req)
}

// do sends req and returns the answer and its body.
func (w *walker) do(req *http.Request) (*http.Response, string, error) {
	resp, err := w.browser.Do(req)
	if err != nil {
		return nil, "", w.fail("%v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", w.fail("%v", err)
	}
	return resp, strings.TrimSpace(string(b)), nil
}

// elide shortens the random values in the query of u (state, code, PKCE
// challenge) for printing.
func elide(u string) string {
	base, query, ok := strings.Cut(u, "?")
	if !ok {
		return u
	}
	params := strings.Split(query, "&")
	for i, p := range params {
		k, v, _ := strings.Cut(p, "=")
		if (k == "state" || k == "code" || k == "code_challenge") && len(v) > 8 {
			params[i] = k + "=" + v[:6] + "…"
		}
	}
	return base + "?" + strings.Join(params, "&")
}
