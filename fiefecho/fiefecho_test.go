package fiefecho_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefecho"
	"github.com/fief-go/fief/fieftest"
	"github.com/labstack/echo/v4"
)

// The requirements of the test routes, and a token meeting them.
var reqs = []fief.RouteOption{
	fief.RequireScopes("castles"), fief.RequireACR(fief.ACRLevelOne), fief.RequirePermissions("castles:read"),
}

func goodToken(opts ...fieftest.TokenOption) func(*env) string {
	return func(ev *env) string {
		base := []fieftest.TokenOption{fieftest.Scopes("openid", "castles"), fieftest.ACR("1"), fieftest.Permissions("castles:read")}
		return ev.token(append(base, opts...)...)
	}
}

func literal(s string) func(*env) string { return func(*env) string { return s } }

// refusal is a request the middleware refuses, and the answer it must get.
type refusal struct {
	name      string
	opts      []fief.RouteOption // the route's; reqs when nil
	token     func(*env) string  // nil: none
	header    []string           // extra request header fields
	method    string             // GET when empty
	down      bool               // Fief unreachable from the start
	status    int
	challenge string // WWW-Authenticate
	cause     error  // the cause the Internal error wraps, besides the class
}

func refusals() []refusal {
	const (
		bearer       = "Bearer"
		invalidToken = `Bearer error="invalid_token"`
		insufficient = `Bearer error="insufficient_scope"`
	)
	return []refusal{
		{name: "no token", status: 401, challenge: bearer, cause: fief.ErrNoToken},
		{name: "another scheme", header: []string{"Authorization", "Basic YW5uZTpoZXJtaW5l"}, status: 401, challenge: bearer, cause: fief.ErrNoToken},
		{name: "garbage", token: literal("garbage"), status: 401, challenge: invalidToken, cause: fief.ErrAccessTokenInvalid},
		{name: "too large", token: literal(strings.Repeat("a", fief.MaxTokenLength+1)), status: 401, challenge: invalidToken, cause: fief.ErrTokenTooLarge},
		{name: "two Authorization headers", token: goodToken(), header: []string{"Authorization", "Bearer x"}, status: 401, challenge: invalidToken, cause: fief.ErrMalformedAuthorization},
		{name: "expired", token: goodToken(fieftest.ExpiresIn(-time.Hour)), status: 401, challenge: invalidToken, cause: fief.ErrAccessTokenExpired},
		{name: "forged signature", token: func(ev *env) string { tok := goodToken()(ev); return tok[:len(tok)-4] + "AAAA" }, status: 401, challenge: invalidToken, cause: fief.ErrAccessTokenInvalid},
		{name: "HEAD, no token", method: http.MethodHead, status: 401, challenge: bearer, cause: fief.ErrNoToken},
		{name: "optional, forbidden", opts: append([]fief.RouteOption{fief.Optional()}, reqs...), token: goodToken(fieftest.Scopes("openid")), status: 403, challenge: insufficient, cause: fief.ErrAccessTokenMissingScope},
		{name: "missing scope", token: goodToken(fieftest.Scopes("openid")), status: 403, challenge: insufficient, cause: fief.ErrAccessTokenMissingScope},
		{name: "ACR too low", token: goodToken(fieftest.ACR("0")), status: 403, challenge: insufficient, cause: fief.ErrAccessTokenACRTooLow},
		{name: "missing permission", token: goodToken(fieftest.Permissions()), status: 403, challenge: insufficient, cause: fief.ErrAccessTokenMissingPermission},
		{name: "Fief unreachable", token: goodToken(), down: true, status: 503, cause: fief.ErrDiscovery},
	}
}

// refusalEnvs returns an env whose Fief answers and one whose Fief is down,
// with the route /r/<i> of every refusal i on the right one.
func refusalEnvs(t *testing.T, rs []refusal) (up, down *env) {
	t.Helper()
	up, down = newEnv(t), newEnv(t)
	down.fief.SetDown(true)
	for i, r := range rs {
		ev, opts := up, r.opts
		if r.down {
			ev = down
		}
		if opts == nil {
			opts = reqs
		}
		ev.e.Add(cmpOr(r.method, http.MethodGet), fmt.Sprintf("/r/%d", i), ev.handler, fiefecho.Authenticated(ev.auth, opts...))
	}
	return up, down
}

func (r refusal) send(t *testing.T, up, down *env, i int) response {
	t.Helper()
	ev := up
	if r.down {
		ev = down
	}
	token := ""
	if r.token != nil {
		token = r.token(ev)
	}
	return ev.do(t, cmpOr(r.method, http.MethodGet), fmt.Sprintf("/r/%d", i), token, r.header...)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestRefusalsThroughDefaultHTTPErrorHandler: every refusal reaches echo's
// DefaultHTTPErrorHandler, which renders the status and the fixed message
// as {"message":...} and keeps the headers the middleware set; the handler
// never runs.
func TestRefusalsThroughDefaultHTTPErrorHandler(t *testing.T) {
	rs := refusals()
	up, down := refusalEnvs(t, rs)
	for i, r := range rs {
		t.Run(r.name, func(t *testing.T) {
			resp := r.send(t, up, down, i)
			if resp.status != r.status {
				t.Fatalf("status %d, want %d; body %s", resp.status, r.status, resp.body)
			}
			if got := resp.header.Get("WWW-Authenticate"); got != r.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, r.challenge)
			}
			wantRetry := ""
			if r.status == http.StatusServiceUnavailable {
				wantRetry = "5"
			}
			if got := resp.header.Get("Retry-After"); got != wantRetry {
				t.Errorf("Retry-After %q, want %q", got, wantRetry)
			}
			if r.method == http.MethodHead {
				if resp.body != "" {
					t.Errorf("HEAD answered a body: %q", resp.body)
				}
				return
			}
			if want := `{"message":"` + http.StatusText(r.status) + `"}` + "\n"; resp.body != want {
				t.Errorf("body %q, want %q", resp.body, want)
			}
			if ct := resp.header.Get("Content-Type"); ct != echo.MIMEApplicationJSON {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	if n := up.runs.Load() + down.runs.Load(); n != 0 {
		t.Fatalf("the handler ran %d times after refusals", n)
	}
}

// TestRefusalsThroughCustomHTTPErrorHandler: the application's
// HTTPErrorHandler gets an *echo.HTTPError with the status code, the fixed
// message, and an Internal error wrapping the class and the cause, which
// errors.Is also finds through the HTTPError itself.
func TestRefusalsThroughCustomHTTPErrorHandler(t *testing.T) {
	rs := refusals()
	up, down := refusalEnvs(t, rs)
	var mu sync.Mutex
	var got error
	for _, ev := range []*env{up, down} {
		ev.e.HTTPErrorHandler = func(err error, c echo.Context) {
			mu.Lock()
			got = err
			mu.Unlock()
			_ = c.String(599, "custom") // the application's own rendering
		}
	}
	classes := map[int]error{401: fief.ErrUnauthenticated, 403: fief.ErrForbidden, 503: fief.ErrUnavailable}
	for i, r := range rs {
		t.Run(r.name, func(t *testing.T) {
			resp := r.send(t, up, down, i)
			if resp.status != 599 {
				t.Fatalf("status %d, want the custom handler's 599", resp.status)
			}
			if h := resp.header.Get("WWW-Authenticate"); h != r.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", h, r.challenge)
			}
			mu.Lock()
			err := got
			mu.Unlock()
			var he *echo.HTTPError
			if !errors.As(err, &he) {
				t.Fatalf("error %T %v, want *echo.HTTPError", err, err)
			}
			if he.Code != r.status || he.Message != http.StatusText(r.status) {
				t.Errorf("HTTPError %d %q, want %d %q", he.Code, he.Message, r.status, http.StatusText(r.status))
			}
			class := classes[r.status]
			if he.Internal == nil || !errors.Is(he.Internal, class) || !errors.Is(he.Internal, r.cause) {
				t.Fatalf("Internal %v, want %v and %v", he.Internal, class, r.cause)
			}
			if !errors.Is(err, class) || !errors.Is(err, r.cause) {
				t.Errorf("errors.Is through the HTTPError: %v", err)
			}
		})
	}
	if n := up.runs.Load() + down.runs.Load(); n != 0 {
		t.Fatalf("the handler ran %d times after refusals", n)
	}
}

// TestAuthenticated: a valid token reaches the handler with its info in
// the request's context, the accessors and the echo context's store.
func TestAuthenticated(t *testing.T) {
	ev := newEnv(t)
	ev.e.GET("/castles", ev.handler, fiefecho.Authenticated(ev.auth, reqs...))
	ev.e.GET("/open", ev.handler)
	id := ev.get(t, "/castles", goodToken()(ev)).identity(t)
	want := identity{UserID: ev.user.ID, FromContext: ev.user.ID, FromStore: ev.user.ID, StoreEntries: 1}
	if id != want {
		t.Fatalf("identity %+v, want %+v", id, want)
	}
	// The same request, then one on a route without the middleware: the
	// echo context (pooled) keeps nothing of the previous request.
	id = ev.get(t, "/open", goodToken()(ev)).identity(t)
	if want := (identity{Anonymous: true}); id != want {
		t.Fatalf("route without the middleware: %+v", id)
	}
}

// TestExtractor: the middleware reads the token where the Authenticator's
// Extractor says, here a cookie.
func TestExtractor(t *testing.T) {
	s := newServer(t)
	ev := newEnvWith(t, s, newAuth(t, newClient(t, s), fief.WithExtractor(fief.CookieToken("session"))))
	ev.e.GET("/castles", ev.handler, fiefecho.Authenticated(ev.auth))
	tok := ev.token()
	if id := ev.get(t, "/castles", "", "Cookie", "session="+tok).identity(t); id.UserID != ev.user.ID {
		t.Fatalf("cookie: %+v", id)
	}
	if resp := ev.get(t, "/castles", tok); resp.status != 401 || resp.header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("Authorization header, not looked at: %d %q", resp.status, resp.header.Get("WWW-Authenticate"))
	}
}

// TestOptional: requests without a usable token reach the handler
// anonymously; a valid one is authenticated; forbidden stays forbidden.
func TestOptional(t *testing.T) {
	ev := newEnv(t)
	ev.e.GET("/castles", ev.handler, fiefecho.Authenticated(ev.auth, append([]fief.RouteOption{fief.Optional()}, reqs...)...))
	ev.e.GET("/me", ev.handler, fiefecho.CurrentUser(ev.auth, fief.Optional()))
	for _, tc := range []struct{ name, path, token string }{
		{"no token", "/castles", ""},
		{"garbage", "/castles", "garbage"},
		{"expired", "/castles", goodToken(fieftest.ExpiresIn(-time.Hour))(ev)},
		{"CurrentUser, no token", "/me", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if id := ev.get(t, tc.path, tc.token).identity(t); id != (identity{Anonymous: true}) {
				t.Fatalf("identity %+v, want anonymous", id)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		if id := ev.get(t, "/castles", goodToken()(ev)).identity(t); id.UserID != ev.user.ID || id.FromStore != ev.user.ID {
			t.Fatalf("identity %+v", id)
		}
	})
	t.Run("CurrentUser, valid", func(t *testing.T) {
		if id := ev.get(t, "/me", ev.token()).identity(t); id.Email != ev.user.Email || id.EmailStore != ev.user.Email {
			t.Fatalf("identity %+v", id)
		}
	})
	t.Run("forbidden", func(t *testing.T) {
		if resp := ev.get(t, "/castles", goodToken(fieftest.Permissions())(ev)); resp.status != 403 || resp.message() != "Forbidden" {
			t.Fatalf("%d %s", resp.status, resp.body)
		}
	})
}

// TestCurrentUser: the user's info from Fief's userinfo endpoint, then
// from the MemoryCache; Refresh always asks Fief; a user Fief refuses is
// unauthenticated.
func TestCurrentUser(t *testing.T) {
	ev := newEnv(t, fief.WithUserInfoCache(memCache(t)))
	ev.e.GET("/me", ev.handler, fiefecho.CurrentUser(ev.auth, reqs...))
	ev.e.GET("/me/fresh", ev.handler, fiefecho.CurrentUser(ev.auth, fief.Refresh()))
	ev.e.GET("/castles", ev.handler, fiefecho.Authenticated(ev.auth))
	tok := goodToken()(ev)
	want := identity{
		UserID: ev.user.ID, FromContext: ev.user.ID, FromStore: ev.user.ID,
		Email: ev.user.Email, EmailStore: ev.user.Email, HasUserInfo: true, StoreEntries: 2,
	}
	for pass := 1; pass <= 2; pass++ {
		if id := ev.get(t, "/me", tok).identity(t); id != want {
			t.Fatalf("pass %d: identity %+v, want %+v", pass, id, want)
		}
		if n := ev.fief.Requests(fieftest.EndpointUserinfo); n != 1 {
			t.Fatalf("pass %d: %d userinfo requests, want 1 (then the cache)", pass, n)
		}
	}
	if id := ev.get(t, "/me/fresh", tok).identity(t); id != want || ev.fief.Requests(fieftest.EndpointUserinfo) != 2 {
		t.Fatalf("Refresh: %+v, %d userinfo requests", id, ev.fief.Requests(fieftest.EndpointUserinfo))
	}
	if id := ev.get(t, "/castles", tok).identity(t); id.HasUserInfo || id.Email != "" {
		t.Fatalf("Authenticated loaded the user's info: %+v", id)
	}
	t.Run("user refused by Fief", func(t *testing.T) {
		gone := ev.fief.AddUser(fieftest.User{Email: "gone@bretagne.duchy"})
		tok := ev.fief.AccessToken(gone.ID)
		ev.fief.DeleteUser(gone.ID)
		before := ev.runs.Load()
		resp := ev.get(t, "/me/fresh", tok)
		if resp.status != 401 || resp.header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` || resp.message() != "Unauthorized" {
			t.Fatalf("%d %q %s", resp.status, resp.header.Get("WWW-Authenticate"), resp.body)
		}
		if ev.runs.Load() != before {
			t.Fatal("the handler ran")
		}
	})
	t.Run("userinfo unavailable", func(t *testing.T) {
		u := ev.fief.AddUser(fieftest.User{Email: "later@bretagne.duchy"})
		ev.fief.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: http.StatusBadGateway})
		defer ev.fief.ClearFaults()
		resp := ev.get(t, "/me", ev.fief.AccessToken(u.ID, fieftest.Scopes("openid", "castles"), fieftest.ACR("1"), fieftest.Permissions("castles:read")))
		if resp.status != 503 || resp.header.Get("Retry-After") != "5" || resp.message() != "Service Unavailable" {
			t.Fatalf("%d %q %s", resp.status, resp.header.Get("Retry-After"), resp.body)
		}
	})
}

// TestSkipper: requests the Skipper picks reach the handler without
// authentication; the others are authenticated.
func TestSkipper(t *testing.T) {
	ev := newEnv(t)
	mw := fiefecho.Middleware(ev.auth.Route(), fiefecho.Config{
		Skipper: func(c echo.Context) bool { return c.Path() == "/health" },
	})
	ev.e.Use(mw)
	ev.e.GET("/health", ev.handler)
	ev.e.GET("/castles", ev.handler)
	if id := ev.get(t, "/health", "").identity(t); !id.Anonymous {
		t.Fatalf("skipped: %+v", id)
	}
	if id := ev.get(t, "/health", ev.token()).identity(t); !id.Anonymous {
		t.Fatalf("skipped, with a token: %+v", id)
	}
	if resp := ev.get(t, "/castles", ""); resp.status != 401 {
		t.Fatalf("not skipped: %d", resp.status)
	}
	if id := ev.get(t, "/castles", ev.token()).identity(t); id.UserID != ev.user.ID {
		t.Fatalf("not skipped, with a token: %+v", id)
	}
}

// TestGroup: middleware on a group protects its routes, and its unknown
// paths too (echo runs group middleware before its 404), without touching
// the routes outside; route middleware adds requirements within the group.
func TestGroup(t *testing.T) {
	ev := newEnv(t)
	api := ev.e.Group("/api", fiefecho.Authenticated(ev.auth))
	api.GET("/castles", ev.handler)
	api.DELETE("/castles/:id", ev.handler, fiefecho.Authenticated(ev.auth, fief.RequirePermissions("castles:delete")))
	ev.e.GET("/public", ev.handler)
	tok := ev.token()
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
	}{
		{"group route, no token", http.MethodGet, "/api/castles", "", 401},
		{"group route", http.MethodGet, "/api/castles", tok, 200},
		{"route requirement", http.MethodDelete, "/api/castles/3", tok, 403},
		{"route requirement met", http.MethodDelete, "/api/castles/3", ev.token(fieftest.Permissions("castles:delete")), 200},
		{"unknown path in the group, no token", http.MethodGet, "/api/nowhere", "", 401},
		{"unknown path in the group", http.MethodGet, "/api/nowhere", tok, 404},
		{"outside the group", http.MethodGet, "/public", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp := ev.do(t, tc.method, tc.path, tc.token); resp.status != tc.status {
				t.Fatalf("%d, want %d; %s", resp.status, tc.status, resp.body)
			}
		})
	}
}

// TestErrorHandler: a Config.ErrorHandler redirects browsers to the login
// page and hands API requests to DefaultErrorHandler; the handler never
// runs either way.
func TestErrorHandler(t *testing.T) {
	ev := newEnv(t)
	ev.e.GET("/castles", ev.handler, fiefecho.Middleware(ev.auth.Route(reqs...), fiefecho.Config{
		ErrorHandler: func(err error, c echo.Context) error {
			if errors.Is(err, fief.ErrUnauthenticated) && strings.Contains(c.Request().Header.Get("Accept"), "text/html") {
				return c.Redirect(http.StatusSeeOther, "/login?return_to=/castles")
			}
			return fiefecho.DefaultErrorHandler(err, c)
		},
	}))
	html := []string{"Accept", "text/html,application/xhtml+xml"}
	if resp := ev.get(t, "/castles", "", html...); resp.status != 303 || resp.header.Get("Location") != "/login?return_to=/castles" {
		t.Fatalf("browser: %d %q", resp.status, resp.header.Get("Location"))
	}
	if resp := ev.get(t, "/castles", ""); resp.status != 401 || resp.message() != "Unauthorized" {
		t.Fatalf("API: %d %s", resp.status, resp.body)
	}
	if resp := ev.get(t, "/castles", ev.token(), html...); resp.status != 403 || resp.message() != "Forbidden" {
		t.Fatalf("browser, forbidden: %d %s", resp.status, resp.body)
	}
	if n := ev.runs.Load(); n != 0 {
		t.Fatalf("the handler ran %d times", n)
	}
}

// TestAuthenticatorErrorHandler: with AuthenticatorErrorHandler, the
// Authenticator's configured handlers answer: a LoginFlow's redirect to
// Fief's login page for a browser without a session, its step-up login for
// an ACR too low, the defaults it keeps for the other requests, a handler of
// the application's when Fief is unavailable; Authenticated, on the same
// Authenticator, still answers with DefaultErrorHandler. The handler runs
// for the valid session only.
func TestAuthenticatorErrorHandler(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s)
	flow, err := fief.NewLoginFlow(c, fief.LoginFlowConfig{
		RedirectURI:     "http://127.0.0.1:8000/auth-callback",
		InsecureCookies: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	auth := newAuth(t, c,
		fief.WithExtractor(flow.Extractor()),
		fief.WithUnauthorizedHandler(flow.RedirectToLogin()),
		fief.WithForbiddenHandler(flow.RedirectToStepUp()),
		fief.WithUnavailableHandler(func(w http.ResponseWriter, _ *http.Request, _ error) {
			http.Error(w, "Come back later.", http.StatusServiceUnavailable)
		}),
	)
	ev := newEnvWith(t, s, auth)
	answers := fiefecho.Config{ErrorHandler: fiefecho.AuthenticatorErrorHandler(auth)}
	ev.e.GET("/protected", ev.handler, fiefecho.Middleware(auth.Route(append(reqs, fief.LoadUserInfo())...), answers))
	ev.e.GET("/default", ev.handler, fiefecho.Authenticated(auth, reqs...))
	session := func(token string) []string {
		return []string{"Cookie", (&http.Cookie{Name: "fief_app_session", Value: token}).String()}
	}
	toFief := func(resp response) url.Values {
		t.Helper()
		loc := resp.header.Get("Location")
		if resp.status != http.StatusSeeOther || !strings.HasPrefix(loc, s.URL+"/authorize?") {
			t.Fatalf("%d to %q, want 303 to Fief's login page", resp.status, loc)
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		return u.Query()
	}

	if q := toFief(ev.get(t, "/protected?tab=castles", "")); q.Get("acr_values") != "" {
		t.Errorf("no session: a login with acr_values %q", q.Get("acr_values"))
	}
	if resp := ev.get(t, "/default", ""); resp.status != 401 || resp.message() != "Unauthorized" {
		t.Errorf("Authenticated, no session: %d %s, want DefaultErrorHandler's 401", resp.status, resp.body)
	}
	if resp := ev.get(t, "/protected", "", "Sec-Fetch-Mode", "cors"); resp.status != 401 ||
		resp.header.Get("WWW-Authenticate") != "Bearer" || resp.body != `{"detail":"Unauthorized"}` {
		t.Errorf("no session, not a navigation: %d %q %s, want the Authenticator's default 401", resp.status, resp.header.Get("WWW-Authenticate"), resp.body)
	}
	low := goodToken(fieftest.ACR("0"))(ev)
	if q := toFief(ev.get(t, "/protected", "", session(low)...)); q.Get("acr_values") != "1" {
		t.Errorf("ACR too low: a login with acr_values %q, want 1", q.Get("acr_values"))
	}
	if resp := ev.get(t, "/protected", "", session(goodToken(fieftest.Permissions())(ev))...); resp.status != 403 ||
		resp.header.Get("WWW-Authenticate") != `Bearer error="insufficient_scope"` || resp.body != `{"detail":"Forbidden"}` {
		t.Errorf("missing permission: %d %q %s, want the Authenticator's default 403", resp.status, resp.header.Get("WWW-Authenticate"), resp.body)
	}
	if id := ev.get(t, "/protected", "", session(goodToken()(ev))...).identity(t); id.Email != ev.user.Email {
		t.Errorf("session: %+v", id)
	}
	ev.fief.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: http.StatusInternalServerError})
	other := s.AddUser(fieftest.User{Email: "jean@anjou.duchy", Permissions: []string{"castles:read"}})
	token := s.AccessToken(other.ID, fieftest.Scopes("castles"), fieftest.ACR("1"), fieftest.Permissions("castles:read"))
	if resp := ev.get(t, "/protected", "", session(token)...); resp.status != 503 || resp.body != "Come back later.\n" {
		t.Errorf("unavailable: %d %q", resp.status, resp.body)
	}
	if n := ev.runs.Load(); n != 1 {
		t.Errorf("the handler ran %d times, want 1", n)
	}
}

// TestMultiTenant: one Authenticator for two Fief tenants; each tenant's
// tokens are accepted with the tenant's name visible, and a token of an
// unknown issuer is refused without any request to Fief.
func TestMultiTenant(t *testing.T) {
	sa := fieftest.NewTB(t, fieftest.WithIssuer("https://fief.test/bretagne"))
	sb := fieftest.NewTB(t, fieftest.WithIssuer("https://fief.test/anjou"))
	auth, err := fief.NewMultiTenantAuthenticator([]fief.Tenant{
		{Name: "bretagne", Client: newClient(t, sa, fief.WithIssuer(sa.Issuer()))},
		{Name: "anjou", Client: newClient(t, sb, fief.WithIssuer(sb.Issuer()))},
	}, fief.WithUserInfoCache(memCache(t)))
	if err != nil {
		t.Fatal(err)
	}
	ev := newEnvWith(t, nil, auth)
	ev.e.GET("/me", ev.handler, fiefecho.CurrentUser(auth))
	for _, tc := range []struct {
		tenant string
		s      *fieftest.Server
	}{{"bretagne", sa}, {"anjou", sb}} {
		u := tc.s.AddUser(fieftest.User{Email: "anne@" + tc.tenant + ".duchy"})
		id := ev.get(t, "/me", tc.s.AccessToken(u.ID)).identity(t)
		if id.Tenant != tc.tenant || id.TenantStore != tc.tenant || id.UserID != u.ID || id.Email != u.Email {
			t.Fatalf("tenant %s: %+v", tc.tenant, id)
		}
	}
	requests := func() int {
		n := 0
		for _, s := range []*fieftest.Server{sa, sb} {
			for _, e := range []fieftest.Endpoint{fieftest.EndpointDiscovery, fieftest.EndpointJWKS, fieftest.EndpointUserinfo} {
				n += s.Requests(e)
			}
		}
		return n
	}
	before := requests()
	u := sa.AddUser(fieftest.User{Email: "mallory@bretagne.duchy"})
	resp := ev.get(t, "/me", sa.AccessToken(u.ID, fieftest.Claim("iss", "https://evil.example")))
	if resp.status != 401 || resp.header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` || resp.message() != "Unauthorized" {
		t.Fatalf("unknown issuer: %d %q %s", resp.status, resp.header.Get("WWW-Authenticate"), resp.body)
	}
	if n := requests() - before; n != 0 {
		t.Fatalf("%d requests to Fief for an unknown issuer", n)
	}
	if n := ev.runs.Load(); n != 2 {
		t.Fatalf("the handler ran %d times, want 2", n)
	}
}

// TestConcurrent: many requests at once, accepted and refused, through one
// middleware (run with -race).
func TestConcurrent(t *testing.T) {
	ev := newEnv(t, fief.WithUserInfoCache(memCache(t)))
	ev.e.GET("/me", ev.handler, fiefecho.CurrentUser(ev.auth, reqs...))
	good, bad := goodToken()(ev), goodToken(fieftest.Permissions())(ev)
	var wg sync.WaitGroup
	errs := make(chan string, 40)
	for i := range 40 {
		wg.Go(func() {
			tok, want := good, 200
			switch i % 3 {
			case 1:
				tok, want = bad, 403
			case 2:
				tok, want = "", 401
			}
			resp, err := ev.try(t.Context(), http.MethodGet, "/me", tok)
			switch {
			case err != nil:
				errs <- fmt.Sprintf("request %d: %v", i, err)
			case resp.status != want:
				errs <- fmt.Sprintf("request %d: %d, want %d", i, resp.status, want)
			case want == 200 && !strings.Contains(resp.body, ev.user.Email):
				errs <- fmt.Sprintf("request %d: %s", i, resp.body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestConstructorsPanic: a nil Authenticator, Route or option is a
// programmer's error, refused when the middleware is built.
func TestConstructorsPanic(t *testing.T) {
	auth := newEnv(t).auth
	for name, f := range map[string]func(){
		"Authenticated(nil)":             func() { fiefecho.Authenticated(nil) },
		"CurrentUser(nil)":               func() { fiefecho.CurrentUser(nil) },
		"Middleware(nil)":                func() { fiefecho.Middleware(nil, fiefecho.Config{}) },
		"AuthenticatorErrorHandler(nil)": func() { fiefecho.AuthenticatorErrorHandler(nil) },
		"Authenticated nil option":       func() { fiefecho.Authenticated(auth, nil) },
		"CurrentUser nil option":         func() { fiefecho.CurrentUser(auth, fief.Optional(), nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}

// TestCurrentUserKeepsOptions: CurrentUser adds LoadUserInfo without
// writing into the caller's slice of options.
func TestCurrentUserKeepsOptions(t *testing.T) {
	ev := newEnv(t)
	opts := make([]fief.RouteOption, 1, 4)
	opts[0] = fief.Optional()
	spare := opts[:2]
	spare[1] = fief.RequireScopes("marker")
	fiefecho.CurrentUser(ev.auth, opts...)
	ev.e.GET("/castles", ev.handler, fiefecho.Authenticated(ev.auth, spare...))
	if resp := ev.get(t, "/castles", ev.token()); resp.status != 403 {
		t.Fatalf("the caller's options changed: %d %s", resp.status, resp.body)
	}
}
