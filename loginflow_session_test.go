package fief_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

const (
	lfSessionCookie = "__Host-fief_app_session"
	lfRefreshCookie = "__Host-fief_app_session_refresh"
)

// loggedIn logs a new browser in and returns it with the session and
// refresh cookies the callback set.
func (e *lfEnv) loggedIn(t *testing.T) (hc *http.Client, session, refresh *http.Cookie) {
	t.Helper()
	hc = e.newBrowser(t)
	authURL, _ := e.start(t, hc, "/protected")
	resp := e.do(t, hc, http.MethodGet, e.authorize(t, authURL).String(), nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d; body %s", resp.StatusCode, resp.body)
	}
	session, refresh = lfFindCookie(resp, lfSessionCookie), lfFindCookie(resp, lfRefreshCookie)
	if session == nil || refresh == nil {
		t.Fatalf("callback: no session or refresh cookie in %q", resp.Header.Values("Set-Cookie"))
	}
	return hc, session, refresh
}

// bare returns a client without a cookie jar: each request carries the
// cookies it is given, as a browser that dropped the others would.
func (e *lfEnv) bare() *http.Client {
	return &http.Client{
		Transport:     e.app.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// send requests path with exactly the cookies given and header.
func (e *lfEnv) send(t *testing.T, path string, header http.Header, cookies ...*http.Cookie) lfResponse {
	t.Helper()
	return e.do(t, e.bare(), http.MethodGet, e.appURL+path, header, cookies...)
}

// checkRefreshed checks that resp is /token's 200 with a refreshed
// session: a new access token of ACR 0, which the handler saw, in a new
// session cookie, and a rotated refresh cookie, which it returns.
func (e *lfEnv) checkRefreshed(t *testing.T, resp lfResponse, oldSession, oldRefresh string) (session, refresh *http.Cookie) {
	t.Helper()
	session, refresh = lfFindCookie(resp, lfSessionCookie), lfFindCookie(resp, lfRefreshCookie)
	if resp.StatusCode != http.StatusOK || session == nil || refresh == nil {
		t.Fatalf("%d %q, cookies %q: want 200 with new session and refresh cookies", resp.StatusCode, resp.body, resp.Header.Values("Set-Cookie"))
	}
	if session.Value == oldSession || refresh.Value == oldRefresh || session.MaxAge <= 0 || refresh.MaxAge <= 0 {
		t.Errorf("cookies not rotated: %s, %s", lfShow(session), lfShow(refresh))
	}
	info, err := e.client.ValidateAccessToken(t.Context(), session.Value)
	if err != nil || info.UserID() != e.user.ID || info.ACR() != fief.ACRLevelZero {
		t.Errorf("new session token: %v, ACR %v; want the user's, ACR 0 (refreshed)", err, info.ACR())
	}
	if want := "acr=0 token=" + lfTokenID(session.Value); resp.body != want {
		t.Errorf("the handler saw %q, want %q: the request did not carry the new token", resp.body, want)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on a response that sets tokens", cc)
	}
	return session, refresh
}

// checkCleared checks that resp deletes the session and refresh cookies.
func checkCleared(t *testing.T, resp lfResponse) {
	t.Helper()
	for _, name := range []string{lfSessionCookie, lfRefreshCookie} {
		if c := lfFindCookie(resp, name); c == nil || c.MaxAge >= 0 || c.Value != "" {
			t.Errorf("%s not deleted: %v", name, c)
		}
	}
}

// checkLoginStarted checks that resp sends the browser to Fief's login.
func (e *lfEnv) checkLoginStarted(t *testing.T, resp lfResponse) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), e.srv.URL+"/authorize?") {
		t.Errorf("%d to %q, want 303 to Fief's login", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestSessionRefresh(t *testing.T) {
	e := newLFEnv(t, lfOptions{refresh: true})
	authURL, _ := e.start(t, nil, "/protected")
	if s := authURL.Query().Get("scope"); s != "openid offline_access" {
		t.Errorf("scope %q, want openid offline_access", s)
	}
	_, session, refresh := e.loggedIn(t)
	if !refresh.HttpOnly || !refresh.Secure || refresh.SameSite != http.SameSiteLaxMode || refresh.Path != "/" ||
		refresh.Domain != "" || refresh.MaxAge != int(fief.DefaultMaxSessionAge/time.Second) {
		t.Errorf("refresh cookie %s, want __Host-, HttpOnly, Secure, SameSite=Lax, Path=/, no Domain, Max-Age=7 days", lfShow(refresh))
	}
	n := len(refresh.Name) + 1 + len(refresh.Value)
	t.Logf("the refresh cookie: %d bytes (name=value)", n)
	if n > 300 {
		t.Errorf("the refresh cookie has %d bytes", n)
	}
	if session.MaxAge != 24*3600 {
		t.Errorf("session cookie Max-Age %d, want expires_in", session.MaxAge)
	}
	if got := fief.RefreshTokenOf(e.flow, refresh.Value); got == "" || strings.Contains(refresh.Value, got) {
		t.Errorf("the refresh cookie does not seal a refresh token")
	}

	// A fresh session is not refreshed.
	calls := e.srv.Requests(fieftest.EndpointToken)
	resp := e.send(t, "/token", nil, session, refresh)
	if resp.StatusCode != http.StatusOK || resp.body != "acr=1 token="+lfTokenID(session.Value) || len(resp.Cookies()) != 0 {
		t.Errorf("fresh session: %d %q, cookies %q", resp.StatusCode, resp.body, resp.Header.Values("Set-Cookie"))
	}

	// The browser dropped the expired session cookie: the refresh cookie
	// brings the session back before the handler runs.
	resp = e.send(t, "/token", nil, refresh)
	session2, refresh2 := e.checkRefreshed(t, resp, session.Value, refresh.Value)
	if n := e.srv.Requests(fieftest.EndpointToken) - calls; n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
	if session2.MaxAge < 24*3600-5 || refresh2.MaxAge > refresh.MaxAge {
		t.Errorf("after refresh: session Max-Age %d (want expires_in), refresh Max-Age %d (want at most %d: the session's age counts from the login)",
			session2.MaxAge, refresh2.MaxAge, refresh.MaxAge)
	}
	// With the rotated cookies, no refresh.
	resp = e.send(t, "/token", nil, session2, refresh2)
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 0 || e.srv.Requests(fieftest.EndpointToken)-calls != 1 {
		t.Errorf("rotated session: %d, cookies %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}

	// An expired access token still sent is refreshed too.
	expired := &http.Cookie{Name: lfSessionCookie, Value: e.srv.AccessToken(e.user.ID, fieftest.Scopes("openid", "offline_access"), fieftest.ExpiresIn(-time.Hour))}
	resp = e.send(t, "/token", nil, expired, refresh2)
	e.checkRefreshed(t, resp, expired.Value, refresh2.Value)
	// So is a session cookie that is not a valid token.
	resp = e.send(t, "/token", nil, &http.Cookie{Name: lfSessionCookie, Value: "forged"}, lfFindCookie(resp, lfRefreshCookie))
	e.checkRefreshed(t, resp, "forged", "")
	if n := e.srv.Requests(fieftest.EndpointToken) - calls; n != 3 {
		t.Errorf("%d token requests, want 3", n)
	}
	if !strings.Contains(e.logs.String(), `level=DEBUG msg="fief: session refreshed"`) {
		t.Errorf("no debug log of the refreshes: %s", e.logs)
	}
}

func TestSessionRefreshMargin(t *testing.T) {
	e := newLFEnv(t, lfOptions{refresh: true})
	_, _, refresh := e.loggedIn(t)
	soon := func(d time.Duration) *http.Cookie {
		return &http.Cookie{Name: lfSessionCookie, Value: e.srv.AccessToken(e.user.ID, fieftest.Scopes("openid", "offline_access"), fieftest.ExpiresIn(d))}
	}
	// Within the default margin (a minute): refreshed.
	resp := e.send(t, "/token", nil, soon(30*time.Second), refresh)
	e.checkRefreshed(t, resp, "", refresh.Value)
	refresh = lfFindCookie(resp, lfRefreshCookie)
	// Beyond it: not.
	s := soon(5 * time.Minute)
	if resp := e.send(t, "/token", nil, s, refresh); resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 0 {
		t.Errorf("token valid for 5 minutes: %d, cookies %q; want no refresh", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}

	// A shorter margin.
	e = newLFEnv(t, lfOptions{refresh: true, config: func(c *fief.LoginFlowConfig) { c.RefreshMargin = 10 * time.Second }})
	_, _, refresh = e.loggedIn(t)
	if resp := e.send(t, "/token", nil, soon(30*time.Second), refresh); len(resp.Cookies()) != 0 {
		t.Errorf("a margin of 10s refreshed a token valid for 30s")
	}
	e.checkRefreshed(t, e.send(t, "/token", nil, soon(5*time.Second), refresh), "", refresh.Value)

	// Tokens shorter-lived than twice the margin are refreshed at half
	// their lifetime, not on every request.
	e = newLFEnv(t, lfOptions{refresh: true, serverOpts: []fieftest.Option{fieftest.WithTokenLifetime(20 * time.Second)}})
	_, session, refresh := e.loggedIn(t)
	calls := e.srv.Requests(fieftest.EndpointToken)
	if resp := e.send(t, "/token", nil, session, refresh); resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 0 {
		t.Errorf("new 20s token: %d, cookies %q; want no refresh", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	e.checkRefreshed(t, e.send(t, "/token", nil, soon(9*time.Second), refresh), "", refresh.Value)
	if n := e.srv.Requests(fieftest.EndpointToken) - calls; n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

func TestSessionRefreshRefused(t *testing.T) {
	e := newLFEnv(t, lfOptions{refresh: true})
	invalidGrant := fieftest.Fault{Status: http.StatusBadRequest, Body: `{"error":"invalid_grant"}`, Times: 1}
	for _, tt := range []struct {
		name   string
		path   string
		header http.Header
		check  func(t *testing.T, resp lfResponse)
	}{
		{"page", "/protected", nil, e.checkLoginStarted},
		{"navigation", "/protected", http.Header{"Sec-Fetch-Mode": {"navigate"}}, e.checkLoginStarted},
		{"fetch", "/protected", http.Header{"Sec-Fetch-Mode": {"cors"}}, func(t *testing.T, resp lfResponse) {
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("%d, WWW-Authenticate %q: want 401", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}},
		{"optional route", "/optional", nil, func(t *testing.T, resp lfResponse) {
			if resp.StatusCode != http.StatusOK || resp.body != "anonymous" {
				t.Errorf("%d %q, want 200 anonymous", resp.StatusCode, resp.body)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, refresh := e.loggedIn(t)
			e.srv.SetFault(fieftest.EndpointToken, invalidGrant)
			resp := e.send(t, tt.path, tt.header, refresh)
			tt.check(t, resp)
			checkCleared(t, resp)

			// A token still valid, within the margin, is cleared with its
			// session: invalid_grant means the session was revoked.
			_, _, refresh = e.loggedIn(t)
			soon := &http.Cookie{Name: lfSessionCookie, Value: e.srv.AccessToken(e.user.ID, fieftest.Scopes("openid", "offline_access"), fieftest.ExpiresIn(10*time.Second))}
			e.srv.SetFault(fieftest.EndpointToken, invalidGrant)
			resp = e.send(t, tt.path, tt.header, soon, refresh)
			tt.check(t, resp)
			checkCleared(t, resp)
		})
	}

	// Fief revokes the refresh tokens of a deleted user.
	_, _, refresh := e.loggedIn(t)
	e.srv.DeleteUser(e.user.ID)
	resp := e.send(t, "/protected", nil, refresh)
	e.checkLoginStarted(t, resp)
	checkCleared(t, resp)
}

func TestSessionRefreshExpiredAtFief(t *testing.T) {
	// The user comes back after Fief's refresh token expired.
	e := newLFEnv(t, lfOptions{refresh: true, serverOpts: []fieftest.Option{fieftest.WithRefreshTokenLifetime(time.Second)}})
	_, _, refresh := e.loggedIn(t)
	time.Sleep(1100 * time.Millisecond)
	resp := e.send(t, "/protected", nil, refresh)
	e.checkLoginStarted(t, resp)
	checkCleared(t, resp)
}

func TestSessionRefreshFiefUnavailable(t *testing.T) {
	e := newLFEnv(t, lfOptions{refresh: true})
	_, _, refresh := e.loggedIn(t)
	soon := &http.Cookie{Name: lfSessionCookie, Value: e.srv.AccessToken(e.user.ID, fieftest.Scopes("openid", "offline_access"), fieftest.ExpiresIn(20*time.Second))}
	for name, fault := range map[string]fieftest.Fault{
		"500":            {Status: http.StatusInternalServerError},
		"429":            {Status: http.StatusTooManyRequests},
		"invalid_client": {Status: http.StatusBadRequest, Body: `{"error":"invalid_client"}`},
		"down":           {Down: true},
		"garbage":        {Status: http.StatusOK, Body: `{"access_token":`},
	} {
		t.Run(name, func(t *testing.T) {
			e.srv.SetFault(fieftest.EndpointToken, fault)
			defer e.srv.ClearFaults()
			// A token still valid is served as is.
			resp := e.send(t, "/token", nil, soon, refresh)
			if resp.StatusCode != http.StatusOK || resp.body != "acr=0 token="+lfTokenID(soon.Value) || len(resp.Cookies()) != 0 {
				t.Errorf("valid token, Fief unavailable: %d %q, cookies %q; want the old token served", resp.StatusCode, resp.body, resp.Header.Values("Set-Cookie"))
			}
			// Without one, the request is answered as logged out, and the
			// refresh cookie is kept for later.
			resp = e.send(t, "/protected", nil, refresh)
			e.checkLoginStarted(t, resp)
			if c := lfFindCookie(resp, lfRefreshCookie); c != nil {
				t.Errorf("the refresh cookie is touched: %s", lfShow(c))
			}
		})
	}
	if !strings.Contains(e.logs.String(), `level=WARN msg="fief: session refresh failed: Fief unavailable"`) {
		t.Errorf("no warning: %s", e.logs)
	}
	// Fief is back: the kept cookie refreshes.
	e.checkRefreshed(t, e.send(t, "/token", nil, refresh), "", refresh.Value)
}

func TestSessionMaxAge(t *testing.T) {
	e := newLFEnv(t, lfOptions{refresh: true, config: func(c *fief.LoginFlowConfig) { c.MaxSessionAge = time.Hour }})
	clock := newTestClock()
	fief.SetLoginFlowClock(e.flow, clock.Now)
	_, session, refresh := e.loggedIn(t)
	if session.MaxAge != 3600 || refresh.MaxAge != 3600 {
		t.Errorf("Max-Age: session %d, refresh %d; want 3600: the session lasts at most MaxSessionAge", session.MaxAge, refresh.MaxAge)
	}
	// Near the end, a refresh does not extend the session.
	clock.Add(50 * time.Minute)
	session2, refresh2 := e.checkRefreshed(t, e.send(t, "/token", nil, refresh), session.Value, refresh.Value)
	if session2.MaxAge > 600 || refresh2.MaxAge > 600 {
		t.Errorf("Max-Age after a refresh 50 minutes in: session %d, refresh %d; want at most 600", session2.MaxAge, refresh2.MaxAge)
	}
	// At the end, no refresh: a new login.
	clock.Add(11 * time.Minute)
	calls := e.srv.Requests(fieftest.EndpointToken)
	resp := e.send(t, "/protected", nil, refresh2)
	e.checkLoginStarted(t, resp)
	if c := lfFindCookie(resp, lfRefreshCookie); c == nil || c.MaxAge >= 0 {
		t.Errorf("the refresh cookie is not deleted: %v", c)
	}
	if n := e.srv.Requests(fieftest.EndpointToken) - calls; n != 0 {
		t.Errorf("%d token requests for a session past MaxSessionAge", n)
	}
	if !strings.Contains(e.logs.String(), "session reached MaxSessionAge") {
		t.Errorf("no log: %s", e.logs)
	}
}

func TestSessionRefreshCookieForged(t *testing.T) {
	e := newLFEnv(t, lfOptions{refresh: true, config: func(c *fief.LoginFlowConfig) { c.CookieKey = bytes.Repeat([]byte{1}, 32) }})
	_, _, refresh := e.loggedIn(t)
	token := fief.RefreshTokenOf(e.flow, refresh.Value)
	other := func(key byte, cookie string) *fief.LoginFlow {
		f, err := fief.NewLoginFlow(e.client, fief.LoginFlowConfig{RedirectURI: e.appURL + "/auth-callback",
			CookieKey: bytes.Repeat([]byte{key}, 32), SessionCookie: cookie, RefreshSessions: true})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	b := []byte(refresh.Value)
	if b[len(b)/2] = 'A'; refresh.Value[len(b)/2] == 'A' {
		b[len(b)/2] = 'B'
	}
	calls := e.srv.Requests(fieftest.EndpointToken)
	for name, value := range map[string]string{
		"changed":                string(b),
		"cut":                    refresh.Value[:len(refresh.Value)-3],
		"not base64":             "!!!",
		"another key":            fief.SealRefreshCookie(other(2, ""), time.Now(), e.user.ID, token),
		"another session cookie": fief.SealRefreshCookie(other(1, "__Host-other"), time.Now(), e.user.ID, token),
	} {
		t.Run(name, func(t *testing.T) {
			resp := e.send(t, "/protected", nil, &http.Cookie{Name: lfRefreshCookie, Value: value})
			e.checkLoginStarted(t, resp)
			if c := lfFindCookie(resp, lfRefreshCookie); c == nil || c.MaxAge >= 0 {
				t.Errorf("the bad refresh cookie is not deleted: %v", c)
			}
		})
	}
	if n := e.srv.Requests(fieftest.EndpointToken) - calls; n != 0 {
		t.Errorf("%d token requests for forged cookies", n)
	}
	// The same flow on another instance (same key) opens it.
	e.checkRefreshed(t, e.send(t, "/token", nil, &http.Cookie{Name: lfRefreshCookie, Value: fief.SealRefreshCookie(other(1, ""), time.Now(), e.user.ID, token)}), "", "")
}

func TestSessionWithoutRefresh(t *testing.T) {
	e := newLFEnv(t, lfOptions{})
	var seen string
	h := e.flow.Session()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Header.Get("Cookie") }))
	r := httptest.NewRequest(http.MethodGet, "/protected", nil)
	r.AddCookie(&http.Cookie{Name: lfRefreshCookie, Value: "x"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if seen != lfRefreshCookie+"=x" || len(w.Result().Cookies()) != 0 {
		t.Errorf("Session without RefreshSessions changed the request or answer: %q, %q", seen, w.Header().Values("Set-Cookie"))
	}
	authURL, _ := e.start(t, nil, "/protected")
	if s := authURL.Query().Get("scope"); s != "openid" {
		t.Errorf("scope %q", s)
	}
	resp := e.get(t, e.authorize(t, authURL).String())
	if c := lfFindCookie(resp, lfRefreshCookie); c != nil {
		t.Errorf("refresh cookie without RefreshSessions: %s", lfShow(c))
	}
	defer func() {
		if recover() == nil {
			t.Error("Session()(nil) did not panic")
		}
	}()
	e.flow.Session()(nil)
}

// A login whose token came without a refresh token (the user removed
// offline_access from the authorization URL) has a session without
// refresh, and a previous session's refresh cookie is deleted.
func TestSessionLoginWithoutRefreshToken(t *testing.T) {
	e := newLFEnv(t, lfOptions{refresh: true})
	hc, _, _ := e.loggedIn(t)
	authURL, _ := e.start(t, hc, "/login?return_to=/protected")
	resp := e.do(t, hc, http.MethodGet, e.authorize(t, lfParse(t, lfWithQuery(authURL, "scope", "openid"))).String(), nil)
	if resp.StatusCode != http.StatusSeeOther || lfFindCookie(resp, lfSessionCookie) == nil {
		t.Fatalf("callback: %d; body %s", resp.StatusCode, resp.body)
	}
	if c := lfFindCookie(resp, lfRefreshCookie); c == nil || c.MaxAge >= 0 {
		t.Errorf("the previous refresh cookie is not deleted: %v", c)
	}
	if !strings.Contains(e.logs.String(), "login without a usable refresh token") {
		t.Errorf("no log: %s", e.logs)
	}
}

func TestLoginFlowOnLogin(t *testing.T) {
	var (
		mu   sync.Mutex
		got  []string
		fail bool
	)
	setFail := func(v bool) { mu.Lock(); fail = v; mu.Unlock() }
	e := newLFEnv(t, lfOptions{refresh: true, config: func(c *fief.LoginFlowConfig) {
		c.OnLogin = func(ctx context.Context, tokens *fief.Tokens, claims fief.UserInfo) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, claims.Email()+" "+claims.Sub())
			if tokens.AccessToken == "" || tokens.RefreshToken == "" || tokens.IDToken == "" {
				t.Errorf("OnLogin got tokens without access, refresh or ID token")
			}
			tokens.AccessToken = "changed by the hook" // a copy
			if fail {
				return errors.New("the user database is down")
			}
			return nil
		}
	}})
	_, session, _ := e.loggedIn(t)
	mu.Lock()
	if session.Value == "changed by the hook" || len(got) != 1 || got[0] != lfEmail+" "+e.user.ID {
		t.Errorf("OnLogin calls %q; session %s", got, lfShow(session))
	}
	mu.Unlock()

	setFail(true)
	resp := e.login(t, "/protected")
	e.checkErrorPage(t, resp, http.StatusInternalServerError, "The login could not be completed. Please try again later.")
	if c := lfFindCookie(resp, lfRefreshCookie); c != nil {
		t.Errorf("refresh cookie set on an aborted login: %s", lfShow(c))
	}
	if !strings.Contains(e.logs.String(), `level=WARN msg="fief: login aborted by OnLogin" error="the user database is down"`) {
		t.Errorf("no log of the hook's error: %s", e.logs)
	}
	// A refresh does not call it.
	setFail(false)
	_, _, refresh := e.loggedIn(t)
	e.checkRefreshed(t, e.send(t, "/token", nil, refresh), "", refresh.Value)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Errorf("%d OnLogin calls, want 3 (logins only)", len(got))
	}
}

func TestLoginFlowOnLogout(t *testing.T) {
	var (
		mu    sync.Mutex
		users []string
	)
	e := newLFEnv(t, lfOptions{refresh: true, cache: true, config: func(c *fief.LoginFlowConfig) {
		c.OnLogout = func(_ context.Context, userID string) { mu.Lock(); users = append(users, userID); mu.Unlock() }
	}})
	logout := func(cookies ...*http.Cookie) lfResponse {
		resp := e.do(t, e.bare(), http.MethodPost, e.appURL+"/logout", nil, cookies...)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", resp.StatusCode)
		}
		return resp
	}

	// With a session: the user's ID; the refresh token is spent at Fief,
	// so that a copy of the refresh cookie is worthless.
	_, session, refresh := e.loggedIn(t)
	calls := e.srv.Requests(fieftest.EndpointToken)
	checkCleared(t, logout(session, refresh))
	if n := e.srv.Requests(fieftest.EndpointToken) - calls; n != 1 {
		t.Errorf("%d token requests at logout, want 1 (spending the refresh token)", n)
	}
	resp := e.send(t, "/protected", nil, refresh)
	e.checkLoginStarted(t, resp)
	checkCleared(t, resp)

	// With only the refresh cookie (the session cookie expired): the user is
	// known from it, and the cache entry removed.
	_, _, refresh = e.loggedIn(t)
	if _, ok, _ := e.cache.Get(t.Context(), e.user.ID); !ok {
		t.Fatal("not cached after login")
	}
	logout(refresh)
	if _, ok, _ := e.cache.Get(t.Context(), e.user.ID); ok {
		t.Error("the user's info is still cached after logout")
	}
	// Without a session.
	logout()
	mu.Lock()
	defer mu.Unlock()
	if len(users) != 3 || users[0] != e.user.ID || users[1] != e.user.ID || users[2] != "" {
		t.Errorf("OnLogout calls %q, want the user twice, then \"\"", users)
	}
}

func TestLoginFlowStepUp(t *testing.T) {
	e := newLFEnv(t, lfOptions{refresh: true})
	hc, session, refresh := e.loggedIn(t)
	// After a password login, ACR 1.
	if resp := e.send(t, "/strong", nil, session, refresh); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.body, "acr=1 ") {
		t.Fatalf("GET /strong after login: %d %q", resp.StatusCode, resp.body)
	}
	// A refreshed session has ACR 0: a navigation goes through a login
	// that asks Fief for a password (acr_values=1), and the response still
	// carries the refreshed cookies.
	jar := hc.Jar
	u := lfParse(t, e.appURL)
	jar.SetCookies(u, []*http.Cookie{{Name: lfSessionCookie, Value: "", MaxAge: -1}})
	resp := e.do(t, hc, http.MethodGet, e.appURL+"/strong?x=1", nil)
	e.checkLoginStarted(t, resp)
	authURL := lfParse(t, resp.Header.Get("Location"))
	if got := authURL.Query().Get("acr_values"); got != "1" {
		t.Errorf("acr_values %q, want 1", got)
	}
	if c := lfFindCookie(resp, lfSessionCookie); c == nil || c.MaxAge <= 0 {
		t.Errorf("the refreshed session is not set: %v", c)
	}
	back := e.do(t, hc, http.MethodGet, e.authorize(t, authURL).String(), nil)
	if back.StatusCode != http.StatusSeeOther || back.Header.Get("Location") != "/strong?x=1" {
		t.Fatalf("callback: %d to %q; body %s", back.StatusCode, back.Header.Get("Location"), back.body)
	}
	if resp := e.do(t, hc, http.MethodGet, e.appURL+"/strong?x=1", nil); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.body, "acr=1 ") {
		t.Errorf("GET /strong after the step-up: %d %q", resp.StatusCode, resp.body)
	}

	// Other requests, and other refusals, keep their 403.
	acr0 := &http.Cookie{Name: lfSessionCookie, Value: e.srv.AccessToken(e.user.ID, fieftest.Scopes("openid", "offline_access"), fieftest.ACR("0"))}
	for _, tt := range []struct {
		path   string
		header http.Header
	}{
		{"/strong", http.Header{"Sec-Fetch-Mode": {"cors"}}},
		{"/scoped", nil},
	} {
		if resp := e.send(t, tt.path, tt.header, acr0); resp.StatusCode != http.StatusForbidden || resp.Header.Get("WWW-Authenticate") != `Bearer error="insufficient_scope"` {
			t.Errorf("GET %s %v: %d, want the default 403", tt.path, tt.header, resp.StatusCode)
		}
	}

	// A step-up login that Fief completes without raising the ACR fails,
	// rather than loop.
	hc2 := e.newBrowser(t)
	resp = e.do(t, hc2, http.MethodGet, e.appURL+"/strong", nil, acr0)
	e.checkLoginStarted(t, resp)
	callback := e.authorize(t, lfParse(t, resp.Header.Get("Location")))
	e.srv.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: http.StatusOK, Times: 1, Body: `{"access_token":"` + acr0.Value +
		`","id_token":"` + e.srv.IDToken(e.user.ID) + `","token_type":"bearer","expires_in":3600}`})
	e.checkErrorPage(t, e.do(t, hc2, http.MethodGet, callback.String(), nil), http.StatusBadRequest, lfMsgRefused)
	if !strings.Contains(e.logs.String(), "the step-up login did not reach the ACR it asked for") {
		t.Errorf("no log: %s", e.logs)
	}
}

func TestSessionRefreshInsecureCookies(t *testing.T) {
	e := newLFEnv(t, lfOptions{refresh: true, insecure: true})
	authURL, _ := e.start(t, nil, "/protected")
	resp := e.get(t, e.authorize(t, authURL).String())
	refresh := lfFindCookie(resp, "fief_app_session_refresh")
	if refresh == nil || refresh.Secure || !refresh.HttpOnly || refresh.SameSite != http.SameSiteLaxMode || refresh.Path != "/" {
		t.Fatalf("refresh cookie %v, want fief_app_session_refresh, not Secure, HttpOnly, SameSite=Lax, Path=/", refresh)
	}
	resp = e.send(t, "/token", nil, refresh)
	if resp.StatusCode != http.StatusOK || lfFindCookie(resp, "fief_app_session") == nil || lfFindCookie(resp, "fief_app_session_refresh") == nil {
		t.Errorf("refresh over HTTP: %d, cookies %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
}

// TestSessionTokenChecks: a request through Session and an Authenticator
// reports one token check, the Authenticator's, whether the session is
// fresh or refreshed on the way; the flow's own checks of tokens (at the
// callback, at a refresh, at logout) are not reported as token checks.
func TestSessionTokenChecks(t *testing.T) {
	rec := &recorder{}
	e := newLFEnv(t, lfOptions{refresh: true, clientOpts: []fief.Option{fief.WithHooks(rec.hooks())}})
	checks := func(t *testing.T, what string, want ...fief.Outcome) {
		t.Helper()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		var got []fief.Outcome
		for _, c := range rec.checks {
			got = append(got, c.Outcome)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: token checks %v, want %v", what, got, want)
		}
		rec.checks = nil
	}
	forget := func() { rec.mu.Lock(); rec.checks = nil; rec.mu.Unlock() } // the test's own checks
	_, session, refresh := e.loggedIn(t)
	checks(t, "login", fief.OutcomeNoToken) // the Authenticator's, starting the login

	if resp := e.send(t, "/token", nil, session, refresh); resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 0 {
		t.Fatalf("fresh session: %d %q", resp.StatusCode, resp.body)
	}
	checks(t, "fresh session", fief.OutcomeOK)

	expired := &http.Cookie{Name: lfSessionCookie, Value: e.srv.AccessToken(e.user.ID, fieftest.Scopes("openid", "offline_access"), fieftest.ExpiresIn(-time.Hour))}
	resp := e.send(t, "/token", nil, expired, refresh)
	checks(t, "expired session, refreshed", fief.OutcomeOK)
	_, refresh = e.checkRefreshed(t, resp, expired.Value, refresh.Value)
	forget()

	resp = e.send(t, "/token", nil, refresh)
	checks(t, "no session cookie, refreshed", fief.OutcomeOK)
	session, _ = e.checkRefreshed(t, resp, "", refresh.Value)
	forget()

	if resp := e.do(t, e.bare(), http.MethodPost, e.appURL+"/logout", nil, session); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	checks(t, "logout")
}
