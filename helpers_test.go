package fief_test

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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

const redirectURI = "https://www.bretagne.duchy/callback"

// newClient returns a client for the server's default confidential client.
func newClient(t testing.TB, s *fieftest.Server, opts ...fief.Option) *fief.Client {
	t.Helper()
	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func addUser(s *fieftest.Server, perms ...string) fieftest.User {
	return s.AddUser(fieftest.User{
		Email:         fmt.Sprintf("anne-%d@bretagne.duchy", time.Now().UnixNano()),
		Password:      "herminetruc",
		EmailVerified: true,
		Fields:        map[string]any{"first_name": "Anne"},
		Permissions:   perms,
	})
}

// newWarmClient returns a server with one user, a client that has fetched
// discovery and the key set, and a valid token of that user.
func newWarmClient(t *testing.T, opts ...fief.Option) (*fieftest.Server, fieftest.User, *fief.Client, string) {
	t.Helper()
	s := fieftest.NewTB(t)
	u := addUser(s)
	c := newClient(t, s, opts...)
	tok := s.AccessToken(u.ID)
	if _, err := c.ValidateAccessToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	return s, u, c, tok
}

// login drives Fief's login page like a browser and returns the code.
func login(t *testing.T, s *fieftest.Server, authURL string, u fieftest.User) (code, state string) {
	t.Helper()
	loc, err := s.Authorize(authURL, u.Email, u.Password)
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if q.Get("code") == "" {
		t.Fatalf("no code in redirect %s", loc.Redacted())
	}
	return q.Get("code"), q.Get("state")
}

func requestError(t *testing.T, err error, status int, bodyPart string) {
	t.Helper()
	var re *fief.RequestError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want *fief.RequestError", err)
	}
	if re.StatusCode != status || !strings.Contains(re.Body, bodyPart) {
		t.Fatalf("RequestError = %d %q, want %d containing %q", re.StatusCode, re.Body, status, bodyPart)
	}
}

// memCache returns a MemoryCache of n entries for ttl.
func memCache(t testing.TB, n int, ttl time.Duration) *fief.MemoryCache {
	t.Helper()
	c, err := fief.NewMemoryCache(n, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// claim returns one claim of u, decoded (numbers as float64), or nil.
func claim(u fief.UserInfo, name string) any {
	var m map[string]any
	if err := u.Claims(&m); err != nil {
		return nil
	}
	return m[name]
}

// testKey is one RSA key shared by the tests' servers, so that each test
// does not pay for a key generation (Fief's own keys have 4096 bits: the
// benchmarks use one).
var testKey = sync.OnceValue(func() *rsa.PrivateKey { return fieftest.GenerateKey(2048) })

// newServer starts a fieftest server signing with testKey, closed with the
// test.
func newServer(t testing.TB, opts ...fieftest.Option) *fieftest.Server {
	t.Helper()
	return fieftest.NewTB(t, append([]fieftest.Option{fieftest.WithSigningKey(testKey())}, opts...)...)
}

// testEnv is a fieftest server, a client for it and one user.
type testEnv struct {
	s    *fieftest.Server
	c    *fief.Client
	user fieftest.User
}

func newEnv(t testing.TB, opts ...fief.Option) *testEnv {
	t.Helper()
	s := newServer(t)
	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{s: s, c: c, user: addNamedUser(s, "anne", "castles:read")}
}

func addNamedUser(s *fieftest.Server, name string, perms ...string) fieftest.User {
	return s.AddUser(fieftest.User{
		Email:         name + "@bretagne.duchy",
		Password:      "herminetruc",
		EmailVerified: true,
		Fields:        map[string]any{"first_name": name},
		Permissions:   perms,
	})
}

func (e *testEnv) auth(t testing.TB, opts ...fief.AuthOption) *fief.Authenticator {
	t.Helper()
	a, err := fief.NewAuthenticator(e.c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// token mints an access token for the env's user that meets mwReqs.
func (e *testEnv) token(opts ...fieftest.TokenOption) string {
	base := []fieftest.TokenOption{fieftest.Scopes("openid", "castles"), fieftest.ACR("1"), fieftest.Permissions("castles:read")}
	return e.s.AccessToken(e.user.ID, append(base, opts...)...)
}

// mwReqs are the requirements of the test routes.
var mwReqs = []fief.RouteOption{
	fief.RequireScopes("castles"), fief.RequireACR(fief.ACRLevelOne), fief.RequirePermissions("castles:read"),
}

func mwRouteOpts(extra ...fief.RouteOption) []fief.RouteOption {
	return append(append([]fief.RouteOption(nil), mwReqs...), extra...)
}

// mwEcho answers 200 with what the middleware put in the context.
var mwEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	info, okInfo := fief.AccessTokenInfoFromContext(r.Context())
	user, okUser := fief.UserInfoFromContext(r.Context())
	switch {
	case okInfo && okUser:
		fmt.Fprintf(w, "user=%s email=%s", info.UserID(), user.Email())
	case okInfo:
		fmt.Fprintf(w, "user=%s", info.UserID())
	case okUser:
		fmt.Fprint(w, "user info without token info")
	default:
		fmt.Fprint(w, "anonymous")
	}
})

// serve runs one request with the bearer token (none if "") through h.
func mwServe(h http.Handler, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/castles", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

type mwAnswer struct {
	status int
	wwwAuth,
	body string
}

func (a mwAnswer) check(t *testing.T, what string, status int, h http.Header, body string) {
	t.Helper()
	if status != a.status || h.Get("WWW-Authenticate") != a.wwwAuth || body != a.body {
		t.Errorf("%s: got %d WWW-Authenticate=%q body %q; want %d %q %q",
			what, status, h.Get("WWW-Authenticate"), body, a.status, a.wwwAuth, a.body)
	}
	if a.status >= 400 && h.Get("Content-Type") != "application/json" {
		t.Errorf("%s: Content-Type %q", what, h.Get("Content-Type"))
	}
}

var (
	ansNoToken      = mwAnswer{401, "Bearer", `{"detail":"Unauthorized"}`}
	ansInvalid      = mwAnswer{401, `Bearer error="invalid_token"`, `{"detail":"Unauthorized"}`}
	ansForbidden    = mwAnswer{403, `Bearer error="insufficient_scope"`, `{"detail":"Forbidden"}`}
	ansUnavailable  = mwAnswer{503, "", `{"detail":"Service Unavailable"}`}
	ansAnonymous    = mwAnswer{200, "", "anonymous"}
	ansUnauthorized = ansInvalid
)

func mwUserAnswer(a, validUser mwAnswer) mwAnswer {
	if a.status == 200 && a.body != "anonymous" {
		return validUser
	}
	return a
}

// eventually polls cond for at most 5 s (a hang guard, not a speed
// requirement).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// within fails if f has not returned after d (a hang guard).
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s still running after %v", what, d)
	}
}

// testClock is a settable clock for fief.WithClock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

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

// lfRefreshKey is the CookieKey of the envs with RefreshSessions.
var lfRefreshKey = []byte("fief-go test key of refreshed sessions")

type lfEnv struct {
	srv    *fieftest.Server
	user   fieftest.User
	client *fief.Client
	cache  *fief.MemoryCache
	flow   *fief.LoginFlow
	app    *httptest.Server
	appURL string
	hc     *http.Client // with a cookie jar; never follows redirects
	logs   *syncBuffer
}

type lfOptions struct {
	insecure   bool
	cache      bool
	refresh    bool   // RefreshSessions, and the application behind flow.Session()
	instanceOf *lfEnv // another env whose Fief and user to share: a second instance
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
//	GET  /token                            Authenticated; answers "acr=<ACR> token=<SHA-256 of the token, 8 bytes hex>"
//	GET  /strong                           the same, requiring ACR 1 (forbidden: RedirectToStepUp)
//	GET  /scoped                           the same, requiring the scope "admin"
//	GET  /optional                         Optional; answers "anonymous" or as /token
//
// With o.refresh, the flow refreshes sessions and the application is
// behind flow.Session().
func newLFEnv(t *testing.T, o lfOptions) *lfEnv {
	t.Helper()
	e := &lfEnv{logs: new(syncBuffer)}
	if o.instanceOf != nil {
		e.srv, e.user = o.instanceOf.srv, o.instanceOf.user
	} else {
		e.srv = newServer(t, o.serverOpts...)
		e.user = e.srv.AddUser(fieftest.User{Email: lfEmail, Password: lfPassword, EmailVerified: true})
	}
	var err error
	e.client, err = fief.New(e.srv.URL, e.srv.ClientID, e.srv.ClientSecret, o.clientOpts...)
	if err != nil {
		t.Fatal(err)
	}

	mux := http.NewServeMux()
	var handler http.Handler = mux // flow.Session()(mux) with o.refresh
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) })
	if o.insecure {
		e.app = httptest.NewServer(serve)
	} else {
		e.app = httptest.NewTLSServer(serve)
	}
	t.Cleanup(e.app.Close)
	e.appURL = e.app.URL

	cfg := fief.LoginFlowConfig{
		RedirectURI:     e.appURL + "/auth-callback",
		InsecureCookies: o.insecure,
		Logger:          slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RefreshSessions: o.refresh,
	}
	authOpts := []fief.AuthOption{}
	if o.refresh {
		cfg.CookieKey = lfRefreshKey // refresh cookies need a configured key
	}
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
		fief.WithUnauthorizedHandler(e.flow.RedirectToLogin()),
		fief.WithForbiddenHandler(e.flow.RedirectToStepUp()))...)
	if err != nil {
		t.Fatal(err)
	}
	if o.refresh {
		handler = e.flow.Session()(mux)
	}
	tokenEcho := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := fief.AccessTokenInfoFromContext(r.Context())
		if !ok {
			fmt.Fprint(w, "anonymous")
			return
		}
		fmt.Fprintf(w, "acr=%s token=%s", info.ACR(), lfTokenID(info.AccessToken()))
	})
	mux.Handle("GET /token", auth.Authenticated()(tokenEcho))
	mux.Handle("GET /strong", auth.Authenticated(fief.RequireACR(fief.ACRLevelOne))(tokenEcho))
	mux.Handle("GET /scoped", auth.Authenticated(fief.RequireScopes("admin"))(tokenEcho))
	mux.Handle("GET /optional", auth.Authenticated(fief.Optional())(tokenEcho))
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

// lfTokenID identifies a token in the answers of /token: the first 8 bytes
// of its SHA-256, in hex.
func lfTokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// first returns its first argument.
func first[A, B any](a A, _ B) A { return a }
