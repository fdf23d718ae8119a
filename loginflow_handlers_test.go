package fief_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

func TestLoginFlowFullFlow(t *testing.T) {
	e := newLFEnv(t, lfOptions{serverOpts: []fieftest.Option{fieftest.WithTokenLifetime(90 * time.Minute)}})

	// A visitor without a session is sent to Fief's login page at once.
	authURL, flowCookie, bindCookie := e.startBound(t, nil, "/protected?tab=2")
	q := authURL.Query()
	for k, want := range map[string]string{
		"response_type":         "code",
		"client_id":             e.srv.ClientID,
		"redirect_uri":          e.appURL + "/auth-callback",
		"scope":                 "openid",
		"code_challenge_method": "S256",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorization URL: %s=%q, want %q", k, got, want)
		}
	}
	if len(q.Get("state")) < 26 || len(q.Get("code_challenge")) != 43 {
		t.Errorf("state %q, code_challenge %q: want a random state and an S256 challenge", q.Get("state"), q.Get("code_challenge"))
	}
	if strings.Contains(flowCookie.Value, q.Get("state")) {
		t.Error("the flow cookie shows the state in clear")
	}
	if !strings.HasPrefix(flowCookie.Name, "__Secure-fief_flow_") || !flowCookie.HttpOnly || !flowCookie.Secure ||
		flowCookie.SameSite != http.SameSiteLaxMode || flowCookie.Path != "/auth-callback" ||
		flowCookie.MaxAge != int(fief.LoginFlowLifetime/time.Second) {
		t.Errorf("flow cookie %s, want __Secure-fief_flow_*, HttpOnly, Secure, SameSite=Lax, Path=/auth-callback, Max-Age=600", lfShow(flowCookie))
	}
	// The flow is bound to this browser by a cookie no other host can set.
	if !strings.HasPrefix(bindCookie.Name, "__Host-fief_bind_") || !bindCookie.HttpOnly || !bindCookie.Secure ||
		bindCookie.SameSite != http.SameSiteLaxMode || bindCookie.Path != "/" || bindCookie.Domain != "" ||
		bindCookie.MaxAge != int(fief.LoginFlowLifetime/time.Second) || len(bindCookie.Value) < 22 {
		t.Errorf("binding cookie %s, want __Host-fief_bind_*, HttpOnly, Secure, SameSite=Lax, Path=/, no Domain, Max-Age=600, 128 bits", lfShow(bindCookie))
	}

	// The user logs in; the callback exchanges the code with the verifier
	// (fieftest checks it against the challenge) and sets the session.
	resp := e.get(t, e.authorize(t, authURL).String())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/protected?tab=2" {
		t.Fatalf("callback: %d to %q, want 303 to /protected?tab=2; body %s", resp.StatusCode, resp.Header.Get("Location"), resp.body)
	}
	for k, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("callback: %s %q, want %q", k, got, want)
		}
	}
	session := lfFindCookie(resp, "__Host-fief_app_session")
	if session == nil {
		t.Fatalf("no session cookie in %q", resp.Header.Values("Set-Cookie"))
	}
	if !session.HttpOnly || !session.Secure || session.SameSite != http.SameSiteLaxMode || session.Path != "/" ||
		session.Domain != "" || session.MaxAge != 90*60 {
		t.Errorf("session cookie %s, want HttpOnly, Secure, SameSite=Lax, Path=/, no Domain, Max-Age=5400 (expires_in)", lfShow(session))
	}
	if info, err := e.client.ValidateAccessToken(t.Context(), session.Value); err != nil || info.UserID() != e.user.ID {
		t.Errorf("the session cookie does not hold the user's access token: %v", err)
	}
	if c := lfFindCookie(resp, flowCookie.Name); c == nil || c.MaxAge >= 0 || c.Path != "/auth-callback" || !c.Secure {
		t.Errorf("the flow cookie is not deleted: %v", c)
	}
	if c := lfFindCookie(resp, bindCookie.Name); c == nil || c.MaxAge >= 0 || c.Path != "/" || !c.Secure {
		t.Errorf("the binding cookie is not deleted: %v", c)
	}

	// Back on the page, which greets the user.
	resp = e.get(t, e.appURL+"/protected?tab=2")
	if resp.StatusCode != http.StatusOK || resp.body != lfEmail+" /protected?tab=2" {
		t.Fatalf("GET /protected: %d %q", resp.StatusCode, resp.body)
	}

	// Logout deletes the session and goes through Fief's logout back to the
	// application's home page.
	resp = e.do(t, nil, http.MethodPost, e.appURL+"/logout", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != e.client.LogoutURL(e.appURL+"/") {
		t.Fatalf("logout: %d to %q, want 303 to %s", resp.StatusCode, resp.Header.Get("Location"), e.client.LogoutURL(e.appURL+"/"))
	}
	if c := lfFindCookie(resp, session.Name); c == nil || c.MaxAge >= 0 || c.Value != "" || c.Path != "/" || !c.Secure || !c.HttpOnly {
		t.Errorf("the session cookie is not deleted: %v", c)
	}
	resp = e.get(t, resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != e.appURL+"/" {
		t.Errorf("Fief's logout: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	e.start(t, nil, "/protected") // logged out: sent to Fief again
}

func TestLoginFlowInsecureCookies(t *testing.T) {
	e := newLFEnv(t, lfOptions{insecure: true})
	if !strings.HasPrefix(e.appURL, "http://") {
		t.Fatal(e.appURL)
	}
	authURL, flowCookie, bindCookie := e.startBound(t, nil, "/protected")
	if !strings.HasPrefix(flowCookie.Name, "fief_flow_") || flowCookie.Secure || !flowCookie.HttpOnly || flowCookie.SameSite != http.SameSiteLaxMode {
		t.Errorf("flow cookie %s, want fief_flow_*, not Secure, HttpOnly, SameSite=Lax", lfShow(flowCookie))
	}
	if !strings.HasPrefix(bindCookie.Name, "fief_bind_") || bindCookie.Secure || !bindCookie.HttpOnly || bindCookie.Path != "/" {
		t.Errorf("binding cookie %s, want fief_bind_*, not Secure, HttpOnly, Path=/", lfShow(bindCookie))
	}
	resp := e.get(t, e.authorize(t, authURL).String())
	session := lfFindCookie(resp, "fief_app_session")
	if resp.StatusCode != http.StatusSeeOther || session == nil {
		t.Fatalf("callback: %d, cookies %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	if session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.MaxAge != 24*3600 {
		t.Errorf("session cookie %s, want not Secure, HttpOnly, SameSite=Lax, Max-Age=86400", lfShow(session))
	}
	if resp := e.get(t, e.appURL+"/protected"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.body, lfEmail) {
		t.Errorf("GET /protected: %d %q", resp.StatusCode, resp.body)
	}
	resp = e.do(t, nil, http.MethodPost, e.appURL+"/logout", nil)
	if c := lfFindCookie(resp, "fief_app_session"); c == nil || c.MaxAge >= 0 || c.Secure {
		t.Errorf("the session cookie is not deleted: %v", c)
	}
}

func TestLoginFlowParallelLogins(t *testing.T) {
	e := newLFEnv(t, lfOptions{})

	// Two tabs of one browser start a login each; both complete, in the
	// other order, and each comes back to its own page.
	authA, flowA := e.start(t, nil, "/login?return_to=/a")
	authB, flowB := e.start(t, nil, "/login?return_to=/b")
	if flowA.Name == flowB.Name {
		t.Fatalf("both flows use the cookie %s", flowA.Name)
	}
	callbackA, callbackB := e.authorize(t, authA), e.authorize(t, authB)
	for _, step := range []struct {
		callback *url.URL
		want     string
	}{{callbackB, "/b"}, {callbackA, "/a"}} {
		resp := e.get(t, step.callback.String())
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != step.want {
			t.Errorf("callback: %d to %q, want 303 to %s; body %s", resp.StatusCode, resp.Header.Get("Location"), step.want, resp.body)
		}
	}

	// Many browsers at once.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			hc := e.newBrowser(t)
			path := fmt.Sprintf("/protected?user=%d", i)
			authURL, _ := e.start(t, hc, path)
			resp := e.do(t, hc, http.MethodGet, e.authorize(t, authURL).String(), nil)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != path {
				t.Errorf("browser %d: callback %d to %q", i, resp.StatusCode, resp.Header.Get("Location"))
				return
			}
			if resp := e.do(t, hc, http.MethodGet, e.appURL+path, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("browser %d: GET %s: %d", i, path, resp.StatusCode)
			}
		})
	}
	wg.Wait()
}

func TestLoginFlowRedirectToLogin(t *testing.T) {
	e := newLFEnv(t, lfOptions{})
	tests := []struct {
		name     string
		method   string
		target   string
		header   http.Header
		wantFief bool
	}{
		{"GET navigation", http.MethodGet, "/protected?a=1&b=%2F", http.Header{"Sec-Fetch-Mode": {"navigate"}}, true},
		{"GET without fetch metadata", http.MethodGet, "/protected", nil, true},
		{"HEAD", http.MethodHead, "/protected", nil, true},
		{"POST", http.MethodPost, "/protected", nil, false},
		{"fetch", http.MethodGet, "/protected", http.Header{"Sec-Fetch-Mode": {"cors"}}, false},
		{"image", http.MethodGet, "/protected", http.Header{"Sec-Fetch-Mode": {"no-cors"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := e.newBrowser(t)
			resp := e.do(t, hc, tt.method, e.appURL+tt.target, tt.header)
			if !tt.wantFief {
				if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "Bearer" || len(resp.Cookies()) != 0 {
					t.Errorf("%d, WWW-Authenticate %q, cookies %q: want the default 401 and no cookie",
						resp.StatusCode, resp.Header.Get("WWW-Authenticate"), resp.Header.Values("Set-Cookie"))
				}
				return
			}
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), e.srv.URL+"/authorize?") {
				t.Fatalf("%d to %q, want 303 to Fief", resp.StatusCode, resp.Header.Get("Location"))
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			if tt.method == http.MethodGet {
				back := e.do(t, hc, http.MethodGet, e.authorize(t, lfParse(t, resp.Header.Get("Location"))).String(), nil)
				if back.Header.Get("Location") != tt.target {
					t.Errorf("back to %q, want %q", back.Header.Get("Location"), tt.target)
				}
			}
		})
	}

	// A request target that is not a path on the site returns home.
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/protected", nil)
	r.RequestURI = "//evil.com/x"
	e.flow.RedirectToLogin()(w, r, fief.ErrNoToken)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("status %d", w.Code)
	}
	jar := e.newBrowser(t)
	back := e.do(t, jar, http.MethodGet, e.authorize(t, lfParse(t, w.Header().Get("Location"))).String(), nil, w.Result().Cookies()...)
	if back.Header.Get("Location") != "/" {
		t.Errorf("back to %q, want /", back.Header.Get("Location"))
	}

	// Under http.StripPrefix the user still returns to the full path.
	w = httptest.NewRecorder()
	r = httptest.NewRequest(http.MethodGet, "/app/protected?x=1", nil)
	http.StripPrefix("/app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.flow.RedirectToLogin()(w, r, fief.ErrNoToken)
	})).ServeHTTP(w, r)
	back = e.do(t, e.newBrowser(t), http.MethodGet, e.authorize(t, lfParse(t, w.Header().Get("Location"))).String(), nil, w.Result().Cookies()...)
	if back.Header.Get("Location") != "/app/protected?x=1" {
		t.Errorf("back to %q, want /app/protected?x=1", back.Header.Get("Location"))
	}
}

func TestLoginFlowCallbackRefusals(t *testing.T) {
	e := newLFEnv(t, lfOptions{})
	t.Run("no code", func(t *testing.T) {
		authURL, _ := e.start(t, nil, "/protected")
		e.checkErrorPage(t, e.get(t, e.appURL+"/auth-callback?state="+url.QueryEscape(authURL.Query().Get("state"))),
			http.StatusBadRequest, lfMsgIncomplete)
	})
	t.Run("no state", func(t *testing.T) {
		callback := e.authorize(t, first(e.start(t, nil, "/protected")))
		e.checkErrorPage(t, e.get(t, e.appURL+"/auth-callback?code="+callback.Query().Get("code")), http.StatusBadRequest, lfMsgIncomplete)
	})
	t.Run("state twice", func(t *testing.T) {
		callback := e.authorize(t, first(e.start(t, nil, "/protected")))
		e.checkErrorPage(t, e.get(t, callback.String()+"&state=other"), http.StatusBadRequest, lfMsgIncomplete)
	})
	t.Run("nothing", func(t *testing.T) {
		e.checkErrorPage(t, e.get(t, e.appURL+"/auth-callback"), http.StatusBadRequest, lfMsgIncomplete)
	})
	t.Run("code refused by Fief", func(t *testing.T) {
		callback := e.authorize(t, first(e.start(t, nil, "/protected")))
		e.checkErrorPage(t, e.get(t, lfWithQuery(callback, "code", "stolen")), http.StatusBadRequest, lfMsgRefused)
	})
	t.Run("token endpoint down", func(t *testing.T) {
		callback := e.authorize(t, first(e.start(t, nil, "/protected")))
		e.srv.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: http.StatusInternalServerError, Times: 1})
		e.checkErrorPage(t, e.get(t, callback.String()), http.StatusBadGateway, lfMsgUnavailable)
	})
	t.Run("client credentials refused", func(t *testing.T) {
		callback := e.authorize(t, first(e.start(t, nil, "/protected")))
		e.srv.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: http.StatusBadRequest, Body: `{"error":"invalid_client"}`, Times: 1})
		e.checkErrorPage(t, e.get(t, callback.String()), http.StatusBadGateway, lfMsgUnavailable)
		if !strings.Contains(e.logs.String(), "level=WARN msg=\"fief: login failed: Fief refused the client credentials\"") {
			t.Errorf("no warning: %s", e.logs)
		}
	})
	t.Run("POST", func(t *testing.T) {
		resp := e.do(t, nil, http.MethodPost, e.appURL+"/auth-callback", nil)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" {
			t.Errorf("%d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
}

func TestLoginFlowTokenRefusedByMiddleware(t *testing.T) {
	// The middleware would refuse the new token (issued to another client):
	// the callback fails instead of sending the user round in circles.
	e := newLFEnv(t, lfOptions{})
	body, _ := json.Marshal(map[string]any{
		"access_token": e.srv.AccessToken(e.user.ID, fieftest.Audience("another-client")),
		"id_token":     e.srv.IDToken(e.user.ID),
		"token_type":   "bearer",
		"expires_in":   3600,
	})
	e.srv.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: http.StatusOK, Body: string(body), Times: 1})
	resp := e.login(t, "/protected")
	e.checkErrorPage(t, resp, http.StatusBadGateway, lfMsgRefused)
}

// TestLoginFlowScopesNotRequested edits the authorization URL: Fief grants
// the scopes it names, so a user could give his session scopes the
// application never asked for, which RequireScopes would then accept.
func TestLoginFlowScopesNotRequested(t *testing.T) {
	e := newLFEnv(t, lfOptions{config: func(c *fief.LoginFlowConfig) { c.Scopes = []string{"openid", "castles"} }})
	for _, scope := range []string{"openid castles admin", "admin castles openid", "openid offline_access"} {
		t.Run(scope, func(t *testing.T) {
			hc := e.newBrowser(t)
			authURL, _ := e.start(t, hc, "/protected")
			callback := e.authorize(t, lfParse(t, lfWithQuery(authURL, "scope", scope)))
			e.checkErrorPage(t, e.do(t, hc, http.MethodGet, callback.String(), nil), http.StatusBadRequest, lfMsgRefused)
			if resp := e.do(t, hc, http.MethodGet, e.appURL+"/protected", nil); resp.StatusCode != http.StatusSeeOther {
				t.Errorf("GET /protected after the refused login: %d %q, want 303 to Fief", resp.StatusCode, resp.body)
			}
		})
	}
	if !strings.Contains(e.logs.String(), "scopes the login did not request") {
		t.Errorf("no log of the refusal: %s", e.logs)
	}
	// Fewer scopes than requested are fine: the application checks the
	// scopes it needs with RequireScopes.
	for _, scope := range []string{"castles openid", "openid"} {
		t.Run(scope, func(t *testing.T) {
			hc := e.newBrowser(t)
			authURL, _ := e.start(t, hc, "/protected")
			callback := e.authorize(t, lfParse(t, lfWithQuery(authURL, "scope", scope)))
			if resp := e.do(t, hc, http.MethodGet, callback.String(), nil); resp.StatusCode != http.StatusSeeOther {
				t.Errorf("callback: %d; body %s", resp.StatusCode, resp.body)
			}
		})
	}
}

func TestLoginFlowTokenTooLargeForACookie(t *testing.T) {
	// A user with so many permissions that the access token does not fit in
	// a cookie: the browser would drop it and loop through Fief.
	e := newLFEnv(t, lfOptions{})
	perms := make([]string, 300)
	for i := range perms {
		perms[i] = fmt.Sprintf("castles:permission-%03d", i)
	}
	e.srv.SetPermissions(e.user.ID, perms...)
	resp := e.login(t, "/protected")
	e.checkErrorPage(t, resp, http.StatusBadGateway, lfMsgRefused)
	if !strings.Contains(e.logs.String(), "too large for a cookie") {
		t.Errorf("no warning: %s", e.logs)
	}
}

func TestLoginFlowFiefUnavailableAtLogin(t *testing.T) {
	e := newLFEnv(t, lfOptions{})
	e.srv.SetDown(true)
	resp := e.get(t, e.appURL+"/login")
	e.checkErrorPage(t, resp, http.StatusServiceUnavailable, lfMsgUnavailable)
	if len(resp.Cookies()) != 0 {
		t.Errorf("cookies set: %q", resp.Header.Values("Set-Cookie"))
	}
}

func TestLoginFlowCache(t *testing.T) {
	e := newLFEnv(t, lfOptions{cache: true})
	if resp := e.login(t, "/protected"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d; body %s", resp.StatusCode, resp.body)
	}
	info, ok, _ := e.cache.Get(t.Context(), e.user.ID)
	if !ok || info.Email() != lfEmail || info.Sub() != e.user.ID {
		t.Fatalf("cache after login: %v %v", info, ok)
	}
	if resp := e.get(t, e.appURL+"/protected"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.body, lfEmail) {
		t.Fatalf("GET /protected: %d %q", resp.StatusCode, resp.body)
	}
	if n := e.srv.Requests(fieftest.EndpointUserinfo); n != 0 {
		t.Errorf("%d userinfo calls, want 0: the ID token's claims serve", n)
	}

	resp := e.do(t, nil, http.MethodPost, e.appURL+"/logout", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), e.srv.URL+"/logout?") {
		t.Fatalf("logout: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, ok, _ := e.cache.Get(t.Context(), e.user.ID); ok {
		t.Error("the user's info is still cached after logout")
	}
	// A logout without a session, or with a forged one, is harmless.
	for _, c := range []*http.Cookie{nil, {Name: "__Host-fief_app_session", Value: "forged"}} {
		var cookies []*http.Cookie
		if c != nil {
			cookies = append(cookies, c)
		}
		noJar := &http.Client{Transport: e.app.Client().Transport, CheckRedirect: e.hc.CheckRedirect}
		if resp := e.do(t, noJar, http.MethodPost, e.appURL+"/logout", nil, cookies...); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("logout: %d", resp.StatusCode)
		}
	}
	if resp := e.do(t, nil, http.MethodPut, e.appURL+"/logout", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT /logout: %d", resp.StatusCode)
	}
}

// TestLoginFlowLogoutCrossSite checks that another site cannot log the
// user out (of the application and of Fief): logout answers POST only,
// and refuses a cross-origin one.
func TestLoginFlowLogoutCrossSite(t *testing.T) {
	e := newLFEnv(t, lfOptions{})
	// loggedIn returns a new browser with a session.
	loggedIn := func(t *testing.T) *http.Client {
		t.Helper()
		hc := e.newBrowser(t)
		authURL, _ := e.start(t, hc, "/protected")
		if resp := e.do(t, hc, http.MethodGet, e.authorize(t, authURL).String(), nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %d; body %s", resp.StatusCode, resp.body)
		}
		return hc
	}
	for _, tt := range []struct {
		name   string
		method string
		header http.Header
		status int
	}{
		// A link, an image or a navigation from anywhere.
		{"GET", http.MethodGet, http.Header{"Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"navigate"}}, http.StatusMethodNotAllowed},
		{"GET same-origin", http.MethodGet, http.Header{"Sec-Fetch-Site": {"same-origin"}}, http.StatusMethodNotAllowed},
		{"HEAD", http.MethodHead, nil, http.StatusMethodNotAllowed},
		// A form on another site, or on a sibling subdomain.
		{"POST cross-site", http.MethodPost, http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}, http.StatusForbidden},
		{"POST cross-site without Origin", http.MethodPost, http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"POST same-site", http.MethodPost, http.Header{"Sec-Fetch-Site": {"same-site"}, "Origin": {"https://www.example.com"}}, http.StatusForbidden},
		{"POST from another origin, old browser", http.MethodPost, http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hc := loggedIn(t)
			resp := e.do(t, hc, tt.method, e.appURL+"/logout", tt.header)
			if resp.StatusCode != tt.status {
				t.Errorf("%s /logout: %d, want %d", tt.method, resp.StatusCode, tt.status)
			}
			if tt.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != http.MethodPost {
				t.Errorf("Allow %q, want POST", resp.Header.Get("Allow"))
			}
			for _, c := range resp.Cookies() {
				if strings.Contains(c.Name, "fief_app_session") {
					t.Errorf("the session cookie is touched: %s", lfShow(c))
				}
			}
			if resp := e.do(t, hc, http.MethodGet, e.appURL+"/protected", nil); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.body, lfEmail) {
				t.Errorf("GET /protected after the refused logout: %d, want 200", resp.StatusCode)
			}
		})
	}

	// An old browser without Sec-Fetch-Site sends the application's origin
	// behind a proxy that changed the Host header: RedirectURI's origin is
	// trusted.
	r := httptest.NewRequest(http.MethodPost, "/logout", nil)
	r.Host = "app.internal:8080"
	r.Header.Set("Origin", e.appURL)
	w := httptest.NewRecorder()
	e.flow.Logout().ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther {
		t.Errorf("POST /logout from the application's origin through a proxy: %d, want 303", w.Code)
	}

	// The page's own form logs out.
	hc := loggedIn(t)
	resp := e.do(t, hc, http.MethodPost, e.appURL+"/logout", http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {e.appURL}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != e.client.LogoutURL(e.appURL+"/") {
		t.Fatalf("same-origin POST /logout: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if c := lfFindCookie(resp, "__Host-fief_app_session"); c == nil || c.MaxAge >= 0 {
		t.Errorf("the session cookie is not deleted: %v", c)
	}
	e.start(t, hc, "/protected") // logged out: sent to Fief again
}

func TestLoginFlowOptions(t *testing.T) {
	var pages []string
	e := newLFEnv(t, lfOptions{config: func(c *fief.LoginFlowConfig) {
		c.Scopes = []string{"openid", "offline_access"}
		c.SessionCookie = "sid"
		c.AfterLogout = "https://www.example.com/bye"
		c.ErrorPage = func(w http.ResponseWriter, _ *http.Request, status int, message string) {
			pages = append(pages, fmt.Sprint(status, " ", message))
			w.WriteHeader(status)
		}
	}})
	authURL, _ := e.start(t, nil, "/protected")
	if s := authURL.Query().Get("scope"); s != "openid offline_access" {
		t.Errorf("scope %q", s)
	}
	resp := e.get(t, e.authorize(t, authURL).String())
	if lfFindCookie(resp, "sid") == nil {
		t.Errorf("no sid cookie: %q", resp.Header.Values("Set-Cookie"))
	}
	if resp := e.get(t, e.appURL+"/protected"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /protected: %d", resp.StatusCode)
	}
	if resp := e.do(t, nil, http.MethodPost, e.appURL+"/logout", nil); resp.Header.Get("Location") != e.client.LogoutURL("https://www.example.com/bye") {
		t.Errorf("logout to %q", resp.Header.Get("Location"))
	}
	e.get(t, e.appURL+"/auth-callback")
	if len(pages) != 1 || pages[0] != "400 The login response is incomplete. Please log in again." {
		t.Errorf("error pages: %q", pages)
	}
}

func TestNewLoginFlowConfig(t *testing.T) {
	client, err := fief.New("https://fief.example.com", "id", "secret")
	if err != nil {
		t.Fatal(err)
	}
	const cb = "https://app.example.com/auth-callback"
	key := make([]byte, 32)
	tests := []struct {
		name string
		cfg  fief.LoginFlowConfig
		ok   bool
	}{
		{"minimal", fief.LoginFlowConfig{RedirectURI: cb}, true},
		{"local HTTP", fief.LoginFlowConfig{RedirectURI: "http://localhost:8000/cb", InsecureCookies: true}, true},
		{"no redirect URI", fief.LoginFlowConfig{}, false},
		{"relative redirect URI", fief.LoginFlowConfig{RedirectURI: "/auth-callback"}, false},
		{"other scheme", fief.LoginFlowConfig{RedirectURI: "ftp://app.example.com/cb"}, false},
		{"fragment", fief.LoginFlowConfig{RedirectURI: cb + "#x"}, false},
		{"HTTP without InsecureCookies", fief.LoginFlowConfig{RedirectURI: "http://app.example.com/cb"}, false},
		{"no openid scope", fief.LoginFlowConfig{RedirectURI: cb, Scopes: []string{"profile"}}, false},
		{"scope with space", fief.LoginFlowConfig{RedirectURI: cb, Scopes: []string{"openid", "a b"}}, false},
		{"short key", fief.LoginFlowConfig{RedirectURI: cb, CookieKey: make([]byte, 16)}, false},
		{"long key", fief.LoginFlowConfig{RedirectURI: cb, CookieKey: make([]byte, 64)}, true},
		{"bad cookie name", fief.LoginFlowConfig{RedirectURI: cb, SessionCookie: "a;b"}, false},
		{"__Host- cookie, insecure", fief.LoginFlowConfig{RedirectURI: cb, SessionCookie: "__Host-s", InsecureCookies: true}, false},
		{"__Host- cookie", fief.LoginFlowConfig{RedirectURI: cb, SessionCookie: "__Host-s"}, true},
		{"relative AfterLogout", fief.LoginFlowConfig{RedirectURI: cb, AfterLogout: "/bye"}, false},
		{"DefaultReturnTo off site", fief.LoginFlowConfig{RedirectURI: cb, DefaultReturnTo: "//evil.com"}, false},
		{"DefaultReturnTo", fief.LoginFlowConfig{RedirectURI: cb, DefaultReturnTo: "/dashboard"}, true},
		{"refresh", fief.LoginFlowConfig{RedirectURI: cb, CookieKey: key, RefreshSessions: true, RefreshMargin: time.Second, MaxSessionAge: time.Hour}, true},
		{"refresh without CookieKey", fief.LoginFlowConfig{RedirectURI: cb, RefreshSessions: true}, false},
		{"negative RefreshMargin", fief.LoginFlowConfig{RedirectURI: cb, CookieKey: key, RefreshSessions: true, RefreshMargin: -time.Second}, false},
		{"negative MaxSessionAge", fief.LoginFlowConfig{RedirectURI: cb, CookieKey: key, RefreshSessions: true, MaxSessionAge: -time.Second}, false},
		{"RefreshMargin without refresh", fief.LoginFlowConfig{RedirectURI: cb, RefreshMargin: time.Second}, false},
		{"MaxSessionAge without refresh", fief.LoginFlowConfig{RedirectURI: cb, MaxSessionAge: time.Hour}, false},
		{"RefreshCoordinator without refresh", fief.LoginFlowConfig{RedirectURI: cb, RefreshCoordinator: newMemCoordinator()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := fief.NewLoginFlow(client, tt.cfg)
			if (err == nil) != tt.ok || (f != nil) != tt.ok {
				t.Errorf("NewLoginFlow: %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "fief: NewLoginFlow: ") {
				t.Errorf("error %q", err)
			}
		})
	}
	if _, err := fief.NewLoginFlow(nil, fief.LoginFlowConfig{RedirectURI: cb}); err == nil {
		t.Error("NewLoginFlow(nil): no error")
	}
	// Refresh cookies outlive the process: a key made for it would end
	// every session at a restart, and on other instances.
	if _, err := fief.NewLoginFlow(client, fief.LoginFlowConfig{RedirectURI: cb, RefreshSessions: true}); err == nil ||
		!strings.Contains(err.Error(), "RefreshSessions needs a CookieKey") {
		t.Errorf("RefreshSessions without CookieKey: %v, want an error that says why", err)
	}
	// A client that refuses its own tokens would refuse every session.
	for _, tc := range []struct {
		opt fief.Option
		ok  bool
	}{
		{fief.WithAudiences("other"), false},
		{fief.WithAudiences("other", "id"), true},
		{fief.SkipAudienceCheck(), true},
	} {
		c, err := fief.New("https://fief.example.com", "id", "secret", tc.opt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fief.NewLoginFlow(c, fief.LoginFlowConfig{RedirectURI: cb}); (err == nil) != tc.ok {
			t.Errorf("audiences: NewLoginFlow = %v, want ok=%v", err, tc.ok)
		}
	}
}

func TestLoginFlowLogsNoSecrets(t *testing.T) {
	e := newLFEnv(t, lfOptions{})
	authURL, _ := e.start(t, nil, "/protected")
	callback := e.authorize(t, authURL)
	e.srv.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: http.StatusBadRequest, Body: `{"error":"invalid_grant"}`, Times: 1})
	e.get(t, callback.String())
	logs := e.logs.String()
	if !strings.Contains(logs, "Fief refused the code") {
		t.Errorf("no log of the refusal: %s", logs)
	}
	for _, secret := range []string{callback.Query().Get("code"), callback.Query().Get("state")} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain a code or state: %s", logs)
		}
	}
}
