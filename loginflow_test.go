package fief_test

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// The login flow's tests run the real thing: an application server
// (httptest, over TLS unless InsecureCookies) with the flow's handlers and
// CurrentUser, a fieftest server with its HTML login form, and a client with
// a cookie jar that stops at every redirect, so that each step's answer and
// cookies can be checked.

const (
	lfEmail    = "anne@bretagne.duchy"
	lfPassword = "herminetruc"
)

// The messages the tests expect on the error page.
const (
	lfMsgInvalidFlow = "This login attempt is invalid, has expired or was already completed."
	lfMsgIncomplete  = "The login response is incomplete."
	lfMsgRefused     = "The login could not be completed."
	lfMsgUnavailable = "Login is temporarily unavailable."
	lfMsgDenied      = "The login was cancelled or access was denied."
	lfMsgFiefError   = "The authentication server could not log you in."
)

var lfKey = sync.OnceValue(func() *rsa.PrivateKey { return fieftest.GenerateKey(2048) })

type lfEnv struct {
	srv    *fieftest.Server
	user   fieftest.User
	client *fief.Client
	cache  *fief.MemoryCache
	flow   *fief.LoginFlow
	app    *httptest.Server
	appURL string
	hc     *http.Client // with a cookie jar; never follows redirects
	logs   *bytes.Buffer
}

type lfOptions struct {
	insecure   bool
	cache      bool
	serverOpts []fieftest.Option
	clientOpts []fief.Option
	config     func(*fief.LoginFlowConfig)
}

// newLFEnv starts Fief and an application using a LoginFlow:
//
//	GET  /login, /auth-callback            the flow's handlers
//	POST /logout                           (mounted for every method)
//	GET  /protected                        CurrentUser; answers "email path?query"
//	POST /protected                        the same
func newLFEnv(t *testing.T, o lfOptions) *lfEnv {
	t.Helper()
	e := &lfEnv{logs: new(bytes.Buffer)}
	e.srv = fieftest.NewTB(t, append([]fieftest.Option{fieftest.WithSigningKey(lfKey())}, o.serverOpts...)...)
	e.user = e.srv.AddUser(fieftest.User{Email: lfEmail, Password: lfPassword, EmailVerified: true})
	var err error
	e.client, err = fief.New(e.srv.URL, e.srv.ClientID, e.srv.ClientSecret, o.clientOpts...)
	if err != nil {
		t.Fatal(err)
	}

	mux := http.NewServeMux()
	if o.insecure {
		e.app = httptest.NewServer(mux)
	} else {
		e.app = httptest.NewTLSServer(mux)
	}
	t.Cleanup(e.app.Close)
	e.appURL = e.app.URL

	cfg := fief.LoginFlowConfig{
		RedirectURI:     e.appURL + "/auth-callback",
		InsecureCookies: o.insecure,
		Logger:          slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	authOpts := []fief.AuthOption{}
	if o.cache {
		e.cache = memCache(t, 100, time.Hour)
		cfg.UserInfoCache = e.cache
		authOpts = append(authOpts, fief.WithUserInfoCache(e.cache))
	}
	if o.config != nil {
		o.config(&cfg)
	}
	e.flow, err = fief.NewLoginFlow(e.client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := fief.NewAuthenticator(e.client, append(authOpts,
		fief.WithExtractor(e.flow.Extractor()),
		fief.WithUnauthorizedHandler(e.flow.RedirectToLogin()))...)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("GET /login", e.flow.Login())
	mux.Handle("/auth-callback", e.flow.Callback())
	mux.Handle("/logout", e.flow.Logout())
	mux.Handle("/protected", auth.CurrentUser()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := fief.UserInfoFromContext(r.Context())
		fmt.Fprintf(w, "%s %s", user.Email(), r.URL.RequestURI())
	})))

	e.hc = e.newBrowser(t)
	return e
}

// newBrowser returns a client with its own cookie jar that trusts the
// application's certificate and does not follow redirects.
func (e *lfEnv) newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Transport:     e.app.Client().Transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// lfResponse is an answer with its body read.
type lfResponse struct {
	*http.Response
	body string
}

// do sends a request with hc (nil: e.hc) and extra cookies.
func (e *lfEnv) do(t *testing.T, hc *http.Client, method, target string, header http.Header, cookies ...*http.Cookie) lfResponse {
	t.Helper()
	if hc == nil {
		hc = e.hc
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return lfResponse{resp, string(b)}
}

func (e *lfEnv) get(t *testing.T, target string) lfResponse {
	t.Helper()
	return e.do(t, nil, http.MethodGet, target, nil)
}

// start requests path on the application and expects a redirect to Fief's
// authorization page, which it returns with the flow cookie set.
func (e *lfEnv) start(t *testing.T, hc *http.Client, path string) (authURL *url.URL, flowCookie *http.Cookie) {
	t.Helper()
	authURL, flowCookie, _ = e.startBound(t, hc, path)
	return authURL, flowCookie
}

// startBound is start that also returns the flow's binding cookie.
func (e *lfEnv) startBound(t *testing.T, hc *http.Client, path string) (authURL *url.URL, flowCookie, bindCookie *http.Cookie) {
	t.Helper()
	resp := e.do(t, hc, http.MethodGet, e.appURL+path, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET %s: status %d, want 303; body %s", path, resp.StatusCode, resp.body)
	}
	authURL = lfParse(t, resp.Header.Get("Location"))
	if !strings.HasPrefix(authURL.String(), e.srv.URL+"/authorize?") {
		t.Fatalf("GET %s: redirected to %s, want Fief's /authorize", path, authURL)
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			continue // the deletion of another flow's cookie
		}
		for prefix, found := range map[string]**http.Cookie{"fief_flow_": &flowCookie, "fief_bind_": &bindCookie} {
			if strings.Contains(c.Name, prefix) {
				if *found != nil {
					t.Fatalf("GET %s: several %s cookies", path, prefix)
				}
				*found = c
			}
		}
	}
	if flowCookie == nil || bindCookie == nil {
		t.Fatalf("GET %s: no flow cookie or no binding cookie in %q", path, resp.Header.Values("Set-Cookie"))
	}
	if _, id, _ := strings.Cut(flowCookie.Name, "fief_flow_"); !strings.HasSuffix(bindCookie.Name, "fief_bind_"+id) {
		t.Fatalf("GET %s: flow cookie %s with binding cookie %s", path, flowCookie.Name, bindCookie.Name)
	}
	return authURL, flowCookie, bindCookie
}

// authorize logs in on Fief's form and returns Fief's redirect to the
// callback.
func (e *lfEnv) authorize(t *testing.T, authURL *url.URL) *url.URL {
	t.Helper()
	callback, err := e.srv.Authorize(authURL.String(), lfEmail, lfPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(callback.String(), e.appURL+"/auth-callback?") || callback.Query().Get("code") == "" {
		t.Fatalf("Fief redirected to %s", callback)
	}
	return callback
}

// login runs a whole login from path and returns the callback's answer.
func (e *lfEnv) login(t *testing.T, path string) lfResponse {
	t.Helper()
	authURL, _ := e.start(t, nil, path)
	return e.get(t, e.authorize(t, authURL).String())
}

// checkErrorPage checks an error page: status, fixed message, no session
// cookie, no-store.
func (e *lfEnv) checkErrorPage(t *testing.T, resp lfResponse, status int, msg string) {
	t.Helper()
	if resp.StatusCode != status || !strings.Contains(resp.body, msg) {
		t.Errorf("status %d, want %d with %q; body %s", resp.StatusCode, status, msg, resp.body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, "fief_app_session") {
			t.Errorf("session cookie set on a failure: %s", lfShow(c))
		}
	}
	for _, leak := range []string{"fief:", "invalid_grant", "error_description", "Internal Server Error"} {
		if strings.Contains(resp.body, leak) {
			t.Errorf("the page reveals %q: %s", leak, resp.body)
		}
	}
}

func lfParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// lfFindCookie returns the cookie called name that resp sets, or nil.
func lfFindCookie(resp lfResponse, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// lfShow returns c as in a Set-Cookie header, without its value.
func lfShow(c *http.Cookie) string {
	r := *c
	if r.Value != "" {
		r.Value = "REDACTED"
	}
	return r.String()
}

// withQuery returns u with parameter k set to v.
func lfWithQuery(u *url.URL, k, v string) string {
	c := *u
	q := c.Query()
	q.Set(k, v)
	c.RawQuery = q.Encode()
	return c.String()
}

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

func TestLoginFlowFiefError(t *testing.T) {
	e := newLFEnv(t, lfOptions{})
	tests := []struct {
		name, errCode string
		status        int
		msg           string
	}{
		{"access denied", "access_denied", http.StatusBadRequest, lfMsgDenied},
		{"server error", "server_error", http.StatusBadGateway, lfMsgUnavailable},
		{"unknown code", "x_y", http.StatusBadRequest, lfMsgFiefError},
		{"attacker's markup", `"><script>alert(1)</script>`, http.StatusBadRequest, lfMsgFiefError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			authURL, flow := e.start(t, nil, "/protected")
			state := authURL.Query().Get("state")
			target := e.appURL + "/auth-callback?" + url.Values{
				"error":             {tt.errCode},
				"error_description": {`<img src=x onerror=alert(2)> Fief says no`},
				"state":             {state},
			}.Encode()
			resp := e.get(t, target)
			e.checkErrorPage(t, resp, tt.status, tt.msg)
			for _, s := range []string{"<script", "alert(", "onerror", "Fief says no", "x_y"} {
				if strings.Contains(resp.body, s) {
					t.Errorf("the page reflects %q: %s", s, resp.body)
				}
			}
			if c := lfFindCookie(resp, flow.Name); c == nil || c.MaxAge >= 0 {
				t.Error("the flow cookie is not deleted")
			}
			// The flow is over: its code, had there been one, is refused.
			e.checkErrorPage(t, e.get(t, e.appURL+"/auth-callback?code=x&state="+url.QueryEscape(state)), http.StatusBadRequest, lfMsgInvalidFlow)
		})
	}
	// Fief's real redirect with an error: Fief refuses prompt=none without
	// a session (login_required).
	authURL, _ := e.start(t, nil, "/protected")
	loc, err := e.srv.Authorize(lfWithQuery(authURL, "prompt", "none"), lfEmail, lfPassword)
	if err != nil || loc.Query().Get("error") != "login_required" {
		t.Fatalf("Fief's answer: %v %v", loc, err)
	}
	e.checkErrorPage(t, e.get(t, loc.String()), http.StatusBadRequest, "You need to log in to continue.")
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

// first returns its first argument.
func first[A, B any](a A, _ B) A { return a }

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
