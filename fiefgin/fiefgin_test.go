package fiefgin_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefgin"
	"github.com/fief-go/fief/fieftest"
	"github.com/gin-gonic/gin"
)

// engineSettings are gin's two settings of ContextWithFallback, which
// decide whether fief's functions find the identity in a *gin.Context.
var engineSettings = []bool{false, true}

func settingName(fallback bool) string {
	return fmt.Sprintf("ContextWithFallback=%v", fallback)
}

// TestAuthenticated runs every outcome of a route with requirements over
// HTTP, on both engine settings: the refusals with the default answers and
// without running the handler, the accepted requests with the identity
// where the documentation says.
func TestAuthenticated(t *testing.T) {
	e := newEnv(t)
	auth := e.auth(t)
	valid := e.token()
	tests := []struct {
		name          string
		authorization []string // the Authorization headers
		want          refusal  // zero: accepted
	}{
		{"no token", nil, refNoToken},
		{"other scheme", []string{"Basic YW5uZTpoZXJtaW5ldHJ1Yw=="}, refNoToken},
		{"garbage", []string{bearer("garbage")}, refInvalid},
		{"forged signature", []string{bearer(valid[:len(valid)-4] + "AAAA")}, refInvalid},
		{"expired", []string{bearer(e.token(fieftest.ExpiresIn(-time.Hour)))}, refInvalid},
		{"too large", []string{bearer(strings.Repeat("a", fief.MaxTokenLength+1))}, refInvalid},
		{"two Authorization headers", []string{bearer(valid), bearer(valid)}, refInvalid},
		{"missing scope", []string{bearer(e.token(fieftest.Scopes("openid")))}, refForbidden},
		{"ACR too low", []string{bearer(e.token(fieftest.ACR("0")))}, refForbidden},
		{"missing permission", []string{bearer(e.token(fieftest.Permissions()))}, refForbidden},
		{"valid", []string{bearer(valid)}, refusal{}},
		{"valid, scheme in lower case", []string{"bearer " + valid}, refusal{}},
	}
	for _, fallback := range engineSettings {
		t.Run(settingName(fallback), func(t *testing.T) {
			a := serve(t, fallback, func(r *gin.Engine, a *app) {
				r.GET("/castles", fiefgin.Authenticated(auth, reqs...), a.Echo)
			})
			accepted := 0
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					before := a.Runs()
					resp := do(t, a.URL+"/castles", func(r *http.Request) {
						for _, v := range tt.authorization {
							r.Header.Add("Authorization", v)
						}
					})
					if tt.want.status != 0 {
						tt.want.check(t, resp)
						if a.Runs() != before {
							t.Fatal("the handler ran after a refusal")
						}
						return
					}
					accepted++
					s := resp.Seen(t)
					want := seen{
						User: e.user.ID, KeyUser: e.user.ID,
						InRequestContext: true, InGinContext: fallback, ValueByKey: true,
						InCopy: fallback, InDerived: fallback,
					}
					if s != want {
						t.Errorf("seen %+v, want %+v", s, want)
					}
				})
			}
			if a.Runs() != accepted {
				t.Errorf("the handler ran %d times for %d accepted requests", a.Runs(), accepted)
			}
		})
	}
}

// TestUnavailable: Fief unreachable before the key set's first fetch is a
// 503 with Retry-After and the fixed body, and the handler does not run.
func TestUnavailable(t *testing.T) {
	e := newEnv(t)
	auth := e.auth(t)
	a := serve(t, false, func(r *gin.Engine, a *app) {
		r.GET("/castles", fiefgin.Authenticated(auth, reqs...), a.Echo)
		r.GET("/me", fiefgin.CurrentUser(auth), a.Echo)
	})
	e.s.SetDown(true)
	refUnavailable.check(t, get(t, a.URL+"/castles", bearer(e.token())))
	refUnavailable.check(t, get(t, a.URL+"/me", bearer(e.token())))
	// Without a token, Fief is not needed to refuse.
	refNoToken.check(t, get(t, a.URL+"/castles", ""))
	if a.Runs() != 0 {
		t.Fatalf("the handler ran %d times", a.Runs())
	}
}

// TestOptional: requests without a usable token go through anonymously,
// with nothing in the context or the keys; valid ones carry the identity;
// a valid token short of a requirement is still refused.
func TestOptional(t *testing.T) {
	e := newEnv(t)
	auth := e.auth(t, fief.WithUserInfoCache(memCache(t)))
	gone := addUser(e.s, "jean")
	goneToken := e.s.AccessToken(gone.ID)
	e.s.DeleteUser(gone.ID) // valid offline, refused by Fief's userinfo
	for _, fallback := range engineSettings {
		t.Run(settingName(fallback), func(t *testing.T) {
			a := serve(t, fallback, func(r *gin.Engine, a *app) {
				r.GET("/optional", fiefgin.Authenticated(auth, fief.Optional()), a.Echo)
				r.GET("/optional-user", fiefgin.CurrentUser(auth, fief.Optional()), a.Echo)
				r.GET("/optional-admin", fiefgin.Authenticated(auth, fief.Optional(), fief.RequireScopes("admin")), a.Echo)
			})
			for name, authorization := range map[string]string{
				"no token": "",
				"garbage":  bearer("garbage"),
				"expired":  bearer(e.token(fieftest.ExpiresIn(-time.Hour))),
			} {
				for _, path := range []string{"/optional", "/optional-user"} {
					if s := get(t, a.URL+path, authorization).Seen(t); s != (seen{}) {
						t.Errorf("%s %s: %+v, want anonymous", name, path, s)
					}
				}
			}
			if s := get(t, a.URL+"/optional-user", bearer(goneToken)).Seen(t); s != (seen{}) {
				t.Errorf("token Fief refuses: %+v, want anonymous", s)
			}
			s := get(t, a.URL+"/optional", bearer(e.token())).Seen(t)
			if s.User != e.user.ID || s.KeyUser != e.user.ID || s.InGinContext != fallback {
				t.Errorf("valid token: %+v", s)
			}
			s = get(t, a.URL+"/optional-user", bearer(e.token())).Seen(t)
			if s.Email != e.user.Email || s.KeyEmail != e.user.Email || s.UserInGinContext != fallback {
				t.Errorf("valid token, user info: %+v", s)
			}

			// Optional lets the 401 cases through, not the 403 ones.
			before := a.Runs()
			refForbidden.check(t, get(t, a.URL+"/optional-admin", bearer(e.token())))
			if a.Runs() != before {
				t.Error("the handler ran after a refusal")
			}
			if s := get(t, a.URL+"/optional-admin", "").Seen(t); s != (seen{}) {
				t.Errorf("no token, a requirement: %+v, want anonymous", s)
			}
		})
	}
}

// TestCurrentUser: the user's info, from Fief once and then from the
// MemoryCache, reaches the handler through the accessors, the keys and (with
// ContextWithFallback) the gin.Context; a token Fief refuses is a 401;
// Fief's userinfo failing is a 503; Refresh always asks Fief.
func TestCurrentUser(t *testing.T) {
	for _, fallback := range engineSettings {
		t.Run(settingName(fallback), func(t *testing.T) {
			e := newEnv(t)
			auth := e.auth(t, fief.WithUserInfoCache(memCache(t)))
			a := serve(t, fallback, func(r *gin.Engine, a *app) {
				r.GET("/me", fiefgin.CurrentUser(auth, reqs...), a.Echo)
				r.GET("/me/fresh", fiefgin.CurrentUser(auth, fief.Refresh()), a.Echo)
			})
			token := bearer(e.token())
			want := seen{
				User: e.user.ID, Email: e.user.Email, KeyUser: e.user.ID, KeyEmail: e.user.Email,
				InRequestContext: true, InGinContext: fallback, UserInGinContext: fallback, ValueByKey: true,
				InCopy: fallback, InDerived: fallback,
			}
			for range 3 {
				if s := get(t, a.URL+"/me", token).Seen(t); s != want {
					t.Fatalf("seen %+v, want %+v", s, want)
				}
			}
			if n := e.s.Requests(fieftest.EndpointUserinfo); n != 1 {
				t.Errorf("%d userinfo calls for 3 requests, want 1 (the cache)", n)
			}
			for range 2 {
				if s := get(t, a.URL+"/me/fresh", token).Seen(t); s.Email != e.user.Email {
					t.Fatalf("Refresh: %+v", s)
				}
			}
			if n := e.s.Requests(fieftest.EndpointUserinfo); n != 3 {
				t.Errorf("%d userinfo calls, want 3: Refresh skips the cache", n)
			}

			runs := a.Runs()
			refForbidden.check(t, get(t, a.URL+"/me", bearer(e.token(fieftest.Permissions()))))
			gone := addUser(e.s, "jean", "castles:read")
			goneToken := e.s.AccessToken(gone.ID, fieftest.Scopes("castles"), fieftest.ACR("1"), fieftest.Permissions("castles:read"))
			e.s.DeleteUser(gone.ID)
			refInvalid.check(t, get(t, a.URL+"/me", bearer(goneToken)))
			e.s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: http.StatusBadGateway})
			refUnavailable.check(t, get(t, a.URL+"/me/fresh", token))
			if a.Runs() != runs {
				t.Errorf("the handler ran %d times after refusals", a.Runs()-runs)
			}
		})
	}
}

// TestCookieExtractor: the Authenticator's extractor applies: the token is
// read from the cookie, and an Authorization header is not looked at.
func TestCookieExtractor(t *testing.T) {
	e := newEnv(t)
	auth := e.auth(t, fief.WithExtractor(fief.CookieToken("session")))
	a := serve(t, false, func(r *gin.Engine, a *app) {
		r.GET("/castles", fiefgin.Authenticated(auth, reqs...), a.Echo)
	})
	cookie := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "session", Value: v}) }
	}
	if s := do(t, a.URL+"/castles", cookie(e.token())).Seen(t); s.User != e.user.ID || s.KeyUser != e.user.ID {
		t.Errorf("cookie: %+v", s)
	}
	refNoToken.check(t, get(t, a.URL+"/castles", bearer(e.token())))
	refInvalid.check(t, do(t, a.URL+"/castles", cookie("forged")))
	refForbidden.check(t, do(t, a.URL+"/castles", cookie(e.token(fieftest.Scopes("openid")))))
	if a.Runs() != 1 {
		t.Errorf("the handler ran %d times, want 1", a.Runs())
	}
}

// TestMultiTenant: one Authenticator for two Fief tenants accepts the
// tokens of both, the tenant visible to the handler; a token of an unknown
// issuer is refused without a request to any Fief.
func TestMultiTenant(t *testing.T) {
	sa := newServer(t, fieftest.WithIssuer("https://fief.test/bretagne"))
	sb := newServer(t, fieftest.WithIssuer("https://fief.test/anjou"))
	var tenants []fief.Tenant
	for name, s := range map[string]*fieftest.Server{"bretagne": sa, "anjou": sb} {
		tenants = append(tenants, fief.Tenant{Name: name, Client: newClient(t, s, fief.WithIssuer(s.Issuer()))})
	}
	auth, err := fief.NewMultiTenantAuthenticator(tenants, fief.WithUserInfoCache(memCache(t)))
	if err != nil {
		t.Fatal(err)
	}
	ua, ub := addUser(sa, "anne"), addUser(sb, "jean")
	for _, fallback := range engineSettings {
		t.Run(settingName(fallback), func(t *testing.T) {
			a := serve(t, fallback, func(r *gin.Engine, a *app) {
				r.GET("/castles", fiefgin.Authenticated(auth), a.Echo)
				r.GET("/me", fiefgin.CurrentUser(auth), a.Echo)
			})
			for _, tc := range []struct {
				tenant string
				s      *fieftest.Server
				u      fieftest.User
			}{{"bretagne", sa, ua}, {"anjou", sb, ub}} {
				token := bearer(tc.s.AccessToken(tc.u.ID))
				s := get(t, a.URL+"/castles", token).Seen(t)
				if s.User != tc.u.ID || s.Tenant != tc.tenant || s.KeyTenant != tc.tenant {
					t.Errorf("tenant %s: %+v", tc.tenant, s)
				}
				s = get(t, a.URL+"/me", token).Seen(t)
				if s.Email != tc.u.Email || s.Tenant != tc.tenant {
					t.Errorf("tenant %s, user info: %+v", tc.tenant, s)
				}
			}

			requests := func() (n int) {
				for _, s := range []*fieftest.Server{sa, sb} {
					for _, ep := range []fieftest.Endpoint{fieftest.EndpointDiscovery, fieftest.EndpointJWKS, fieftest.EndpointUserinfo} {
						n += s.Requests(ep)
					}
				}
				return n
			}
			before, runs := requests(), a.Runs()
			for _, iss := range []string{"https://evil.example", sa.URL, ""} {
				refInvalid.check(t, get(t, a.URL+"/me", bearer(sa.AccessToken(ua.ID, fieftest.Claim("iss", iss)))))
			}
			if n := requests() - before; n != 0 {
				t.Errorf("%d requests to Fief for unknown issuers", n)
			}
			if a.Runs() != runs {
				t.Error("the handler ran for an unknown issuer")
			}
		})
	}
}

// TestGroup: the middleware on a route group protects every route of the
// group, and only those; a route may add CurrentUser on top of the group's
// requirements.
func TestGroup(t *testing.T) {
	e := newEnv(t)
	auth := e.auth(t, fief.WithUserInfoCache(memCache(t)))
	a := serve(t, false, func(r *gin.Engine, a *app) {
		r.GET("/public", a.Echo)
		api := r.Group("/api", fiefgin.Authenticated(auth, fief.RequireScopes("castles")))
		api.GET("/castles", a.Echo)
		api.GET("/me", fiefgin.CurrentUser(auth), a.Echo)
		admin := api.Group("/admin", fiefgin.Authenticated(auth, fief.RequirePermissions("castles:delete")))
		admin.GET("/castles", a.Echo)
	})

	if s := get(t, a.URL+"/public", "").Seen(t); s != (seen{}) {
		t.Errorf("public: %+v", s)
	}
	for _, path := range []string{"/api/castles", "/api/me", "/api/admin/castles"} {
		refNoToken.check(t, get(t, a.URL+path, ""))
		refForbidden.check(t, get(t, a.URL+path, bearer(e.token(fieftest.Scopes("openid")))))
	}
	if a.Runs() != 1 || e.s.Requests(fieftest.EndpointUserinfo) != 0 {
		t.Fatalf("runs %d, userinfo calls %d after the group's refusals; want 1 and 0",
			a.Runs(), e.s.Requests(fieftest.EndpointUserinfo))
	}

	token := bearer(e.token())
	if s := get(t, a.URL+"/api/castles", token).Seen(t); s.User != e.user.ID || s.Email != "" {
		t.Errorf("/api/castles: %+v", s)
	}
	if s := get(t, a.URL+"/api/me", token).Seen(t); s.User != e.user.ID || s.Email != e.user.Email || s.KeyEmail != e.user.Email {
		t.Errorf("/api/me: %+v", s)
	}
	refForbidden.check(t, get(t, a.URL+"/api/admin/castles", token))
	admin := e.s.AccessToken(e.user.ID, fieftest.Scopes("castles"), fieftest.Permissions("castles:delete"))
	if s := get(t, a.URL+"/api/admin/castles", bearer(admin)).Seen(t); s.User != e.user.ID {
		t.Errorf("/api/admin/castles: %+v", s)
	}
	if a.Runs() != 4 {
		t.Errorf("runs %d, want 4", a.Runs())
	}
}

// TestRefusalAborts: a refusal aborts the chain: the handlers after the
// middleware do not run, the ones before it see the chain aborted and the
// status written.
func TestRefusalAborts(t *testing.T) {
	e := newEnv(t)
	auth := e.auth(t)
	var after, handler atomic.Int64
	var seenStatus atomic.Int64
	var seenAborted atomic.Bool
	a := serve(t, false, func(r *gin.Engine, a *app) {
		r.Use(func(c *gin.Context) {
			c.Next()
			seenAborted.Store(c.IsAborted())
			seenStatus.Store(int64(c.Writer.Status()))
		})
		r.GET("/castles",
			fiefgin.Authenticated(auth, reqs...),
			func(*gin.Context) { after.Add(1) },
			func(c *gin.Context) { handler.Add(1); c.String(http.StatusOK, "castles") })
	})
	for _, tc := range []struct {
		token string
		want  refusal
	}{
		{"", refNoToken},
		{bearer("garbage"), refInvalid},
		{bearer(e.token(fieftest.Permissions())), refForbidden},
	} {
		tc.want.check(t, get(t, a.URL+"/castles", tc.token))
		if !seenAborted.Load() || seenStatus.Load() != int64(tc.want.status) {
			t.Errorf("the outer middleware saw aborted=%v status %d; want true, %d", seenAborted.Load(), seenStatus.Load(), tc.want.status)
		}
	}
	if after.Load() != 0 || handler.Load() != 0 {
		t.Fatalf("after a refusal, the next middleware ran %d times, the handler %d", after.Load(), handler.Load())
	}
	if resp := get(t, a.URL+"/castles", bearer(e.token())); resp.StatusCode != 200 || resp.Body != "castles" {
		t.Fatalf("valid: %d %s", resp.StatusCode, resp.Body)
	}
	if after.Load() != 1 || handler.Load() != 1 || seenAborted.Load() || seenStatus.Load() != 200 {
		t.Fatalf("valid: next %d, handler %d, aborted %v, status %d", after.Load(), handler.Load(), seenAborted.Load(), seenStatus.Load())
	}
}

// TestConfiguredAnswers: the Authenticator's own answers apply, such as a
// LoginFlow's redirect to Fief's login page for a browser without a
// session; a refusal still aborts the chain.
func TestConfiguredAnswers(t *testing.T) {
	e := newEnv(t)
	flow, err := fief.NewLoginFlow(e.c, fief.LoginFlowConfig{
		RedirectURI:     "http://127.0.0.1:8000/auth-callback",
		InsecureCookies: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	auth := e.auth(t,
		fief.WithExtractor(flow.Extractor()),
		fief.WithUnauthorizedHandler(flow.RedirectToLogin()),
		fief.WithForbiddenHandler(func(w http.ResponseWriter, _ *http.Request, _ error) {
			http.Error(w, "You may not see these castles.", http.StatusForbidden)
		}),
		fief.WithUnavailableHandler(func(w http.ResponseWriter, _ *http.Request, _ error) {
			http.Error(w, "Come back later.", http.StatusServiceUnavailable)
		}),
	)
	a := serve(t, false, func(r *gin.Engine, a *app) {
		r.GET("/protected", fiefgin.CurrentUser(auth, reqs...), a.Echo)
	})

	resp := get(t, a.URL+"/protected?tab=castles", "")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, e.s.URL+"/authorize?") {
		t.Errorf("no session: %d to %q, want 303 to Fief's login page", resp.StatusCode, loc)
	}
	session := func(token string) func(*http.Request) {
		return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "fief_app_session", Value: token}) }
	}
	if resp := do(t, a.URL+"/protected", session(e.token(fieftest.Permissions()))); resp.StatusCode != 403 || resp.Body != "You may not see these castles.\n" {
		t.Errorf("forbidden: %d %q", resp.StatusCode, resp.Body)
	}
	if s := do(t, a.URL+"/protected", session(e.token())).Seen(t); s.Email != e.user.Email {
		t.Errorf("session: %+v", s)
	}
	e.s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: http.StatusInternalServerError})
	e.s.ResetRequests()
	other := addUser(e.s, "jean", "castles:read")
	token := e.s.AccessToken(other.ID, fieftest.Scopes("castles"), fieftest.ACR("1"), fieftest.Permissions("castles:read"))
	if resp := do(t, a.URL+"/protected", session(token)); resp.StatusCode != 503 || resp.Body != "Come back later.\n" {
		t.Errorf("unavailable: %d %q", resp.StatusCode, resp.Body)
	}
	if a.Runs() != 1 {
		t.Errorf("the handler ran %d times, want 1", a.Runs())
	}
}

// TestAccessorsOutsideTheMiddleware: without the middleware, or without a
// request, the accessors find nothing; an identity put into the request's
// context by a handler test is found.
func TestAccessorsOutsideTheMiddleware(t *testing.T) {
	if _, ok := fiefgin.AccessTokenInfo(nil); ok {
		t.Error("AccessTokenInfo(nil)")
	}
	c, _ := gin.CreateTestContext(nil)
	if _, ok := fiefgin.UserInfo(c); ok {
		t.Error("UserInfo without a request")
	}
	if _, ok := fiefgin.Tenant(c); ok {
		t.Error("Tenant without a request")
	}
	c.Request, _ = http.NewRequest(http.MethodGet, "/", nil)
	if _, ok := fiefgin.AccessTokenInfo(c); ok {
		t.Error("AccessTokenInfo without the middleware")
	}
	info := fief.NewAccessTokenInfo(fief.AccessTokenValues{UserID: "anne", Permissions: []string{"castles:read"}})
	c.Request = c.Request.WithContext(fief.ContextWithAccessTokenInfo(c.Request.Context(), info))
	if got, ok := fiefgin.AccessTokenInfo(c); !ok || got.UserID() != "anne" {
		t.Errorf("AccessTokenInfo from a test's context: %v, %v", got, ok)
	}
}

// TestPanics: programmer errors are refused when the middleware is built.
func TestPanics(t *testing.T) {
	auth := newEnv(t).auth(t)
	for name, f := range map[string]func(){
		"Authenticated(nil)":             func() { fiefgin.Authenticated(nil) },
		"CurrentUser(nil)":               func() { fiefgin.CurrentUser(nil) },
		"Authenticated(auth, nil)":       func() { fiefgin.Authenticated(auth, nil) },
		"CurrentUser(auth, nil)":         func() { fiefgin.CurrentUser(auth, nil) },
		"Authenticated(LoadUserInfo)":    func() { fiefgin.Authenticated(auth, fief.LoadUserInfo()) },
		"Authenticated(Refresh)":         func() { fiefgin.Authenticated(auth, fief.Refresh()) },
		"Authenticated(nil Requirement)": func() { fiefgin.Authenticated(auth, fief.Requirement(nil)) },
	} {
		mustPanic(t, name, f)
	}
}

// TestCurrentUserKeepsOptions: CurrentUser adds LoadUserInfo without
// writing into the caller's slice of options.
func TestCurrentUserKeepsOptions(t *testing.T) {
	e := newEnv(t)
	auth := e.auth(t)
	opts := make([]fief.RouteOption, 1, 4)
	opts[0] = fief.Optional()
	spare := opts[:2]
	spare[1] = fief.RequireScopes("marker")
	fiefgin.CurrentUser(auth, opts...)
	a := serve(t, false, func(r *gin.Engine, a *app) {
		r.GET("/castles", fiefgin.Authenticated(auth, spare...), a.Echo)
	})
	refForbidden.check(t, get(t, a.URL+"/castles", bearer(e.token())))
}
