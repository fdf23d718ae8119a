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

	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/fieftest"
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
	resp, _, err := w.get(appURL+"/api/user", "")
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return w.fail("got %s, want 401", resp.Status)
	}
	w.result("%s, WWW-Authenticate: %s", resp.Status, resp.Header.Get("WWW-Authenticate"))

	w.step("GET /protected in a browser without a session")
	if resp, _, err = w.get(appURL+"/protected", ""); err != nil {
		return err
	}
	loginURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loginURL, f.BaseURL+"/authorize?") {
		return w.fail("got %s to %q, want 307 to Fief's login page", resp.Status, loginURL)
	}
	w.result("%s to Fief's login page:", resp.Status)
	w.result("  %s", elide(loginURL))

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

	w.step("GET /auth-callback: the app checks the state and exchanges the code for tokens")
	if resp, _, err = w.get(callback.String(), ""); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/protected" {
		return w.fail("got %s to %q, want 303 to /protected", resp.Status, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.MaxAge <= 0 {
		return w.fail("no HttpOnly, SameSite=Lax session cookie with a Max-Age in %q", resp.Header.Values("Set-Cookie"))
	}
	w.result("%s to /protected, with the access token in cookie %s (HttpOnly; SameSite=Lax; Max-Age=%d)",
		resp.Status, session.Name, session.MaxAge)

	w.step("GET /protected with the session cookie")
	userinfoCalls := f.Server.Requests(fieftest.EndpointUserinfo)
	resp, body, err := w.get(appURL+"/protected", "")
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
	w.result("%s: %q (user info cached at login: no call to Fief)", resp.Status, greeting)

	w.step("GET /api/user with Authorization: Bearer <the same access token>")
	if resp, body, err = w.get(appURL+"/api/user", session.Value); err != nil {
		return err
	}
	var info struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &info) != nil || info.ID != f.User.ID {
		return w.fail("got %s %s, want 200 and the token info of user %s", resp.Status, body, f.User.ID)
	}
	w.result("%s: %s", resp.Status, body)

	w.step("GET /logout")
	if resp, _, err = w.get(appURL+"/logout", ""); err != nil {
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
	w.result("%s to Fief's logout, session cookie deleted:", resp.Status)
	w.result("  %s", logoutURL)
	if resp, _, err = w.get(logoutURL, ""); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != appURL+"/" {
		return w.fail("Fief's logout: got %s to %q, want 302 to %s/", resp.Status, resp.Header.Get("Location"), appURL)
	}
	w.result("Fief ends its session: %s back to %s/", resp.Status, appURL)
	if resp, _, err = w.get(appURL+"/protected", ""); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusTemporaryRedirect {
		return w.fail("GET /protected after logout: got %s, want 307 to the login page", resp.Status)
	}
	w.result("GET /protected again: %s to Fief's login page", resp.Status)

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

// get sends GET url, with the access token in the Authorization header
// unless it is empty, and returns the answer and its body.
func (w *walker) get(url, token string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(w.ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", w.fail("%v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
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
