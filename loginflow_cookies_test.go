package fief_test

import (
	"bytes"
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

func TestLoginFlowTamperedState(t *testing.T) {
	e := newLFEnv(t, lfOptions{})
	authURL, _ := e.start(t, nil, "/protected")
	callback := e.authorize(t, authURL)
	state := callback.Query().Get("state")

	for name, forged := range map[string]string{
		"one character changed": state[:len(state)-1] + string(rune('A'+(state[len(state)-1]-'A'+1)%26)),
		"random":                "forged",
		"extended":              state + "A",
		"script":                `<script>alert(1)</script>`,
	} {
		t.Run(name, func(t *testing.T) {
			resp := e.get(t, lfWithQuery(callback, "state", forged))
			e.checkErrorPage(t, resp, http.StatusBadRequest, lfMsgInvalidFlow)
			if strings.Contains(resp.body, "<script>alert") {
				t.Error("the page reflects the state")
			}
		})
	}
	// The forgeries did not spoil the real flow.
	if resp := e.get(t, callback.String()); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/protected" {
		t.Errorf("the real callback after forgeries: %d to %q; body %s", resp.StatusCode, resp.Header.Get("Location"), resp.body)
	}
	if !strings.Contains(e.logs.String(), "no cookie for this state") {
		t.Errorf("no log of the refusal: %s", e.logs)
	}
}

func TestLoginFlowForgedCookie(t *testing.T) {
	e := newLFEnv(t, lfOptions{config: func(c *fief.LoginFlowConfig) { c.CookieKey = bytes.Repeat([]byte{1}, 32) }})
	// other is the same application on another key.
	other, err := fief.NewLoginFlow(e.client, fief.LoginFlowConfig{RedirectURI: e.appURL + "/auth-callback", CookieKey: bytes.Repeat([]byte{2}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	noJar := &http.Client{Transport: e.app.Client().Transport, CheckRedirect: e.hc.CheckRedirect}

	// changed returns value with a character changed.
	changed := func(value string) string {
		b := []byte(value)
		b[len(b)/2] ^= 'A' ^ 'B'
		if b[len(b)/2] == value[len(b)/2] {
			b[len(b)/2] = 'x'
		}
		return string(b)
	}
	// The cases change the flow's cookies (a nil cookie is not sent).
	tests := []struct {
		name    string
		cookies func(t *testing.T, flow, bind *http.Cookie) (*http.Cookie, *http.Cookie)
	}{
		{"value changed", func(_ *testing.T, flow, bind *http.Cookie) (*http.Cookie, *http.Cookie) {
			return &http.Cookie{Name: flow.Name, Value: changed(flow.Value)}, bind
		}},
		{"value cut", func(_ *testing.T, flow, bind *http.Cookie) (*http.Cookie, *http.Cookie) {
			return &http.Cookie{Name: flow.Name, Value: flow.Value[:len(flow.Value)-4]}, bind
		}},
		{"not base64", func(_ *testing.T, flow, bind *http.Cookie) (*http.Cookie, *http.Cookie) {
			return &http.Cookie{Name: flow.Name, Value: "!!!!"}, bind
		}},
		{"sealed by another key", func(t *testing.T, flow, bind *http.Cookie) (*http.Cookie, *http.Cookie) {
			// The other flow's cookies, for a state the attacker chose, moved
			// under this flow's names: the key (and the names) differ.
			w := httptest.NewRecorder()
			other.Login().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/login", nil))
			var otherFlow, otherBind string
			for _, c := range w.Result().Cookies() {
				if strings.Contains(c.Name, "fief_flow_") {
					otherFlow = c.Value
				} else if strings.Contains(c.Name, "fief_bind_") {
					otherBind = c.Value
				}
			}
			return &http.Cookie{Name: flow.Name, Value: otherFlow}, &http.Cookie{Name: bind.Name, Value: otherBind}
		}},
		{"another flow's cookies under these names", func(t *testing.T, flow, bind *http.Cookie) (*http.Cookie, *http.Cookie) {
			_, c, b := e.startBound(t, noJar, "/protected")
			return &http.Cookie{Name: flow.Name, Value: c.Value}, &http.Cookie{Name: bind.Name, Value: b.Value}
		}},
		{"no binding cookie", func(_ *testing.T, flow, _ *http.Cookie) (*http.Cookie, *http.Cookie) {
			return flow, nil
		}},
		{"binding cookie changed", func(_ *testing.T, flow, bind *http.Cookie) (*http.Cookie, *http.Cookie) {
			return flow, &http.Cookie{Name: bind.Name, Value: changed(bind.Value)}
		}},
		{"another browser's binding cookie", func(t *testing.T, flow, bind *http.Cookie) (*http.Cookie, *http.Cookie) {
			_, _, b := e.startBound(t, noJar, "/protected")
			return flow, &http.Cookie{Name: bind.Name, Value: b.Value}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			authURL, flow, bind := e.startBound(t, noJar, "/protected")
			callback := e.authorize(t, authURL)
			before := e.srv.Requests(fieftest.EndpointToken)
			var cookies []*http.Cookie
			if f, b := tt.cookies(t, flow, bind); b != nil {
				cookies = append(cookies, f, b)
			} else {
				cookies = append(cookies, f)
			}
			resp := e.do(t, noJar, http.MethodGet, callback.String(), nil, cookies...)
			e.checkErrorPage(t, resp, http.StatusBadRequest, lfMsgInvalidFlow)
			if n := e.srv.Requests(fieftest.EndpointToken) - before; n != 0 {
				t.Errorf("%d token requests, want none", n)
			}
			if c := lfFindCookie(resp, flow.Name); c == nil || c.MaxAge >= 0 {
				t.Errorf("the bad flow cookie is not deleted")
			}
			// The genuine cookies still work.
			if resp := e.do(t, noJar, http.MethodGet, callback.String(), nil, flow, bind); resp.StatusCode != http.StatusSeeOther {
				t.Errorf("the genuine cookies after the forgery: %d; body %s", resp.StatusCode, resp.body)
			}
		})
	}

	// The same key on another instance accepts the flow: what several
	// instances of one application need.
	t.Run("same key on another instance", func(t *testing.T) {
		twin, err := fief.NewLoginFlow(e.client, fief.LoginFlowConfig{RedirectURI: e.appURL + "/auth-callback", CookieKey: bytes.Repeat([]byte{1}, 32)})
		if err != nil {
			t.Fatal(err)
		}
		authURL, flow, bind := e.startBound(t, noJar, "/login?return_to=/somewhere")
		callback := e.authorize(t, authURL)
		r := httptest.NewRequest(http.MethodGet, callback.String(), nil)
		r.AddCookie(&http.Cookie{Name: flow.Name, Value: flow.Value})
		r.AddCookie(&http.Cookie{Name: bind.Name, Value: bind.Value})
		w := httptest.NewRecorder()
		twin.Callback().ServeHTTP(w, r)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/somewhere" {
			t.Errorf("twin callback: %d to %q; body %s", w.Code, w.Header().Get("Location"), w.Body)
		}
	})
}

// TestLoginFlowPlantedFlowCookie plays a login CSRF: a sibling subdomain
// (or script on one) can set a __Secure- cookie with Domain=<parent
// domain>, so an attacker can plant the authentic flow cookie of his own
// login in the victim's browser and send her to his callback URL, which
// would log her in as him. A flow opens only in the browser that started
// it, which holds its __Host- binding cookie: a cookie no sibling can set.
func TestLoginFlowPlantedFlowCookie(t *testing.T) {
	e := newLFEnv(t, lfOptions{})
	const attackerEmail, attackerPassword = "mallory@evil.example", "mallorytruc"
	e.srv.AddUser(fieftest.User{Email: attackerEmail, Password: attackerPassword, EmailVerified: true})

	// The victim is logged in, and has a login of her own in progress in
	// another tab.
	victim := e.newBrowser(t)
	authURL, _ := e.start(t, victim, "/protected")
	if resp := e.do(t, victim, http.MethodGet, e.authorize(t, authURL).String(), nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the victim's login: %d; body %s", resp.StatusCode, resp.body)
	}
	pending, _ := e.start(t, victim, "/login?return_to=/pending")

	// The attacker starts a login in his own browser and logs in at Fief as
	// himself, but does not follow Fief's redirect to the callback.
	attacker := e.newBrowser(t)
	attackerAuth, attackerFlow := e.start(t, attacker, "/login?return_to=/protected")
	attackerCallback, err := e.srv.Authorize(attackerAuth.String(), attackerEmail, attackerPassword)
	if err != nil || attackerCallback.Query().Get("code") == "" {
		t.Fatalf("the attacker's login at Fief: %v %v", attackerCallback, err)
	}

	// He plants his flow cookie in the victim's browser (a Domain= cookie
	// is sent like this one, beside her own cookies) and sends her to his
	// callback URL.
	tokenCalls := e.srv.Requests(fieftest.EndpointToken)
	resp := e.do(t, victim, http.MethodGet, attackerCallback.String(), nil, attackerFlow)
	e.checkErrorPage(t, resp, http.StatusBadRequest, lfMsgInvalidFlow) // and no Set-Cookie for the session
	if n := e.srv.Requests(fieftest.EndpointToken) - tokenCalls; n != 0 {
		t.Errorf("%d token requests for the planted flow, want none", n)
	}
	if !strings.Contains(e.logs.String(), "no binding cookie for this flow") {
		t.Errorf("no log of the refusal: %s", e.logs)
	}
	if resp := e.do(t, victim, http.MethodGet, e.appURL+"/protected", nil); resp.StatusCode != http.StatusOK || resp.body != lfEmail+" /protected" {
		t.Errorf("the victim's GET /protected after the attack: %d %q, want 200 %q", resp.StatusCode, resp.body, lfEmail+" /protected")
	}
	// Her own login in progress still completes.
	if resp := e.do(t, victim, http.MethodGet, e.authorize(t, pending).String(), nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/pending" {
		t.Errorf("the victim's own pending login: %d to %q; body %s", resp.StatusCode, resp.Header.Get("Location"), resp.body)
	}

	// The planted flow was genuine: in the attacker's own browser it
	// completes.
	if resp := e.do(t, attacker, http.MethodGet, attackerCallback.String(), nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the attacker's callback in his own browser: %d; body %s", resp.StatusCode, resp.body)
	}
	if resp := e.do(t, attacker, http.MethodGet, e.appURL+"/protected", nil); !strings.HasPrefix(resp.body, attackerEmail) {
		t.Errorf("the attacker's GET /protected: %d %q", resp.StatusCode, resp.body)
	}
}

func TestLoginFlowReplay(t *testing.T) {
	e := newLFEnv(t, lfOptions{})
	authURL, flow, bind := e.startBound(t, nil, "/protected")
	callback := e.authorize(t, authURL)
	if resp := e.get(t, callback.String()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first callback: %d; body %s", resp.StatusCode, resp.body)
	}
	tokenCalls := e.srv.Requests(fieftest.EndpointToken)

	// The browser deleted the flow cookie: a reload fails.
	e.checkErrorPage(t, e.get(t, callback.String()), http.StatusBadRequest, lfMsgInvalidFlow)
	// An attacker who kept the cookies and the URL fails too, before any
	// request to Fief.
	noJar := &http.Client{Transport: e.app.Client().Transport, CheckRedirect: e.hc.CheckRedirect}
	e.checkErrorPage(t, e.do(t, noJar, http.MethodGet, callback.String(), nil, flow, bind), http.StatusBadRequest, lfMsgInvalidFlow)
	if n := e.srv.Requests(fieftest.EndpointToken) - tokenCalls; n != 0 {
		t.Errorf("%d token requests for replays, want none", n)
	}
	if !strings.Contains(e.logs.String(), "flow replayed") {
		t.Errorf("no log of the replay: %s", e.logs)
	}

	// Concurrent replays of a fresh callback: exactly one wins.
	authURL, flow, bind = e.startBound(t, noJar, "/protected")
	callback = e.authorize(t, authURL)
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			resp := e.do(t, noJar, http.MethodGet, callback.String(), nil, flow, bind)
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[http.StatusSeeOther] != 1 || statuses[http.StatusBadRequest] != 7 {
		t.Errorf("statuses of 8 concurrent callbacks: %v, want one 303 and seven 400", statuses)
	}
}

// TestLoginFlowPendingLoginsCapped starts more logins in one browser than
// the flow keeps, as a browser restoring many tabs does: each login in
// progress adds cookies for LoginFlowLifetime, and without a cap they push
// the callback's Cookie header over the 8 KiB many servers and proxies
// accept (431 Request Header Fields Too Large). The oldest logins are
// dropped, the newest complete.
func TestLoginFlowPendingLoginsCapped(t *testing.T) {
	const (
		maxPending = 4 // the cap the LoginFlow doc states
		started    = maxPending + 3
	)
	e := newLFEnv(t, lfOptions{})
	callbackURL := lfParse(t, e.appURL+"/auth-callback")
	for _, tt := range []struct {
		name      string
		returnTo  func(i int) string
		maxHeader int // bytes of the callback's Cookie header
	}{
		{"typical return paths", func(i int) string { return fmt.Sprintf("/castles/brest/towers?page=%d&sort=name", i) }, 1024},
		{"longest return paths", func(i int) string { return fmt.Sprintf("/%03d/", i) + strings.Repeat("x", 507) }, 4096},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hc := e.newBrowser(t)
			authURLs := make([]*url.URL, started)
			var flowBytes int
			for i := range authURLs {
				var flow, bind *http.Cookie
				authURLs[i], flow, bind = e.startBound(t, hc, "/login?return_to="+url.QueryEscape(tt.returnTo(i)))
				flowBytes = len(flow.Name) + 1 + len(flow.Value) + len(bind.Name) + 1 + len(bind.Value)
			}
			var flows, pairs []string
			for _, c := range hc.Jar.Cookies(callbackURL) {
				if strings.Contains(c.Name, "fief_flow_") {
					flows = append(flows, c.Name)
				}
				pairs = append(pairs, c.Name+"="+c.Value)
			}
			header := strings.Join(pairs, "; ")
			t.Logf("one login's cookies: %d bytes; the callback's Cookie header with %d logins started: %d cookies, %d bytes", flowBytes, started, len(pairs), len(header))
			if len(flows) > maxPending {
				t.Errorf("%d flow cookies for the callback after %d logins, want at most %d", len(flows), started, maxPending)
			}
			if len(header) >= tt.maxHeader {
				t.Errorf("the callback's Cookie header has %d bytes, want less than %d", len(header), tt.maxHeader)
			}

			// The newest logins complete, each to its page; the oldest fail.
			for i := started - 1; i >= 0; i-- {
				resp := e.do(t, hc, http.MethodGet, e.authorize(t, authURLs[i]).String(), nil)
				if i >= started-maxPending {
					if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tt.returnTo(i) {
						t.Errorf("login %d of %d: %d to %q, want 303 to its page; body %s", i+1, started, resp.StatusCode, resp.Header.Get("Location"), resp.body)
					}
					continue
				}
				e.checkErrorPage(t, resp, http.StatusBadRequest, lfMsgInvalidFlow)
			}
		})
	}
}

func TestLoginFlowExpired(t *testing.T) {
	e := newLFEnv(t, lfOptions{})
	var (
		mu     sync.Mutex
		offset time.Duration
	)
	fief.SetLoginFlowClock(e.flow, func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(offset)
	})
	setOffset := func(d time.Duration) { mu.Lock(); offset = d; mu.Unlock() }

	authURL, _ := e.start(t, nil, "/protected")
	callback := e.authorize(t, authURL)
	setOffset(fief.LoginFlowLifetime + time.Second)
	e.checkErrorPage(t, e.get(t, callback.String()), http.StatusBadRequest, lfMsgInvalidFlow)
	if !strings.Contains(e.logs.String(), "flow expired") {
		t.Errorf("no log of the expiry: %s", e.logs)
	}

	setOffset(0)
	authURL, _ = e.start(t, nil, "/protected")
	callback = e.authorize(t, authURL)
	setOffset(fief.LoginFlowLifetime - 5*time.Second)
	if resp := e.get(t, callback.String()); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("callback just before expiry: %d; body %s", resp.StatusCode, resp.body)
	}
}

func TestLoginFlowReturnTo(t *testing.T) {
	e := newLFEnv(t, lfOptions{config: func(c *fief.LoginFlowConfig) { c.DefaultReturnTo = "/home" }})
	tests := []struct {
		returnTo, want string
	}{
		{"/account", "/account"},
		{"/search?q=a%20b&x=1", "/search?q=a%20b&x=1"},
		{"/a/b#frag", "/a/b#frag"},
		{"/", "/"},
		{"", "/home"},
		{"//evil.com", "/home"},
		{"//evil.com/path", "/home"},
		{"///evil.com", "/home"},
		{"https://evil.com", "/home"},
		{"https:evil.com", "/home"},
		{"http:/evil.com", "/home"},
		{"evil.com", "/home"},
		{"/\\evil.com", "/home"},
		{"\\/evil.com", "/home"},
		{"/%2F%2Fevil.com", "/home"},
		{"/%2f/evil.com", "/home"},
		{"/%5Cevil.com", "/home"},
		{"/a\\b", "/home"},
		{"javascript:alert(1)", "/home"},
		{"/\t/evil.com", "/home"},
		{"/\n/evil.com", "/home"},
		{"/%09/evil.com", "/home"},
		{"/%0d%0aSet-Cookie:x=y", "/home"},
		{" /account", "/home"},
		{"/café", "/home"},
		{"/%zz", "/home"},
		{"/" + strings.Repeat("x", 2000), "/home"},
		{"/" + strings.Repeat("y", 511), "/" + strings.Repeat("y", 511)}, // 512 bytes, the longest kept
		{"/" + strings.Repeat("z", 512), "/home"},
		{"/%E2%80%AE", "/%E2%80%AE"},
		{"/a/../b", "/b"}, // cleaned by http.Redirect, still on site
	}
	for _, tt := range tests {
		t.Run(tt.returnTo, func(t *testing.T) {
			resp := e.login(t, "/login?return_to="+url.QueryEscape(tt.returnTo))
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tt.want {
				t.Errorf("callback: %d to %q, want 303 to %q; body %s", resp.StatusCode, resp.Header.Get("Location"), tt.want, resp.body)
			}
		})
	}
}
