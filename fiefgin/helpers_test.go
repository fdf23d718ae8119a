package fiefgin_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefgin"
	"github.com/fief-go/fief/fieftest"
	"github.com/gin-gonic/gin"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // no debug route listing on the tests' output
	os.Exit(m.Run())
}

// testKey is one RSA key shared by the tests' servers, so that each test
// does not pay for a key generation.
var testKey = sync.OnceValue(func() *rsa.PrivateKey { return fieftest.GenerateKey(2048) })

// newServer starts a fieftest server signing with testKey, closed with the
// test.
func newServer(t testing.TB, opts ...fieftest.Option) *fieftest.Server {
	t.Helper()
	return fieftest.NewTB(t, append([]fieftest.Option{fieftest.WithSigningKey(testKey())}, opts...)...)
}

func newClient(t testing.TB, s *fieftest.Server, opts ...fief.Option) *fief.Client {
	t.Helper()
	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func addUser(s *fieftest.Server, name string, perms ...string) fieftest.User {
	return s.AddUser(fieftest.User{
		Email:         name + "@bretagne.duchy",
		Password:      "herminetruc",
		EmailVerified: true,
		Permissions:   perms,
	})
}

// env is a fieftest server, a client for it and one user, anne, with the
// permission castles:read.
type env struct {
	s    *fieftest.Server
	c    *fief.Client
	user fieftest.User
}

func newEnv(t testing.TB) *env {
	t.Helper()
	s := newServer(t)
	return &env{s: s, c: newClient(t, s), user: addUser(s, "anne", "castles:read")}
}

func (e *env) auth(t testing.TB, opts ...fief.AuthOption) *fief.Authenticator {
	t.Helper()
	a, err := fief.NewAuthenticator(e.c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// token mints an access token of the env's user that meets reqs.
func (e *env) token(opts ...fieftest.TokenOption) string {
	base := []fieftest.TokenOption{fieftest.Scopes("openid", "castles"), fieftest.ACR("1"), fieftest.Permissions("castles:read")}
	return e.s.AccessToken(e.user.ID, append(base, opts...)...)
}

// reqs are the requirements of the test routes, which env's token meets.
var reqs = []fief.RouteOption{
	fief.RequireScopes("castles"), fief.RequireACR(fief.ACRLevelOne), fief.RequirePermissions("castles:read"),
}

func memCache(t testing.TB) *fief.MemoryCache {
	t.Helper()
	c, err := fief.NewMemoryCache(100, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seen is what the echo handler found about the request's identity, and
// where.
type seen struct {
	// From the accessors, which read c.Request.Context().
	User   string `json:"user"`
	Email  string `json:"email"`
	Tenant string `json:"tenant"`
	// From the gin.Context's keys (c.Get).
	KeyUser   string `json:"key_user"`
	KeyEmail  string `json:"key_email"`
	KeyTenant string `json:"key_tenant"`
	// Whether fief's functions find the info in c.Request.Context(), and
	// in the *gin.Context used as a context.Context.
	InRequestContext bool `json:"in_request_context"`
	InGinContext     bool `json:"in_gin_context"`
	UserInGinContext bool `json:"user_in_gin_context"`
	// Whether they find it in c.Copy() and in a context derived from c.
	InCopy    bool `json:"in_copy"`
	InDerived bool `json:"in_derived"`
	// Whether c.Value finds the info under its string key.
	ValueByKey bool `json:"value_by_key"`
}

// app is a gin engine served over loopback, whose echo handler counts its
// runs.
type app struct {
	URL    string
	Engine *gin.Engine
	runs   atomic.Int64
}

// Runs returns how many times the echo handler ran.
func (a *app) Runs() int { return int(a.runs.Load()) }

// Echo answers 200 with what it sees, as JSON.
func (a *app) Echo(c *gin.Context) {
	a.runs.Add(1)
	var s seen
	if info, ok := fiefgin.AccessTokenInfo(c); ok {
		s.User = info.UserID()
	}
	if user, ok := fiefgin.UserInfo(c); ok {
		s.Email = user.Email()
	}
	s.Tenant, _ = fiefgin.Tenant(c)
	if v, ok := c.Get(fiefgin.AccessTokenInfoKey); ok {
		s.KeyUser = v.(fief.AccessTokenInfo).UserID()
	}
	if v, ok := c.Get(fiefgin.UserInfoKey); ok {
		s.KeyEmail = v.(fief.UserInfo).Email()
	}
	if v, ok := c.Get(fiefgin.TenantKey); ok {
		s.KeyTenant = v.(string)
	}
	_, s.InRequestContext = fief.AccessTokenInfoFromContext(c.Request.Context())
	_, s.InGinContext = fief.AccessTokenInfoFromContext(c)
	_, s.UserInGinContext = fief.UserInfoFromContext(c)
	_, s.InCopy = fief.AccessTokenInfoFromContext(c.Copy())
	derived, cancel := context.WithTimeout(c, time.Minute)
	_, s.InDerived = fief.AccessTokenInfoFromContext(derived)
	cancel()
	_, s.ValueByKey = c.Value(fiefgin.AccessTokenInfoKey).(fief.AccessTokenInfo)
	c.JSON(http.StatusOK, s)
}

// serve builds a gin engine, with ContextWithFallback as fallback, lets
// routes register its routes (with a.Echo as handler), and serves it on
// 127.0.0.1 until the test ends.
func serve(t *testing.T, fallback bool, routes func(r *gin.Engine, a *app)) *app {
	t.Helper()
	a := &app{Engine: gin.New()}
	a.Engine.ContextWithFallback = fallback
	routes(a.Engine, a)
	ts := httptest.NewServer(a.Engine)
	t.Cleanup(ts.Close)
	a.URL = ts.URL
	return a
}

// answer is a response with its body read.
type answer struct {
	*http.Response
	Body string
}

// Seen decodes the echo handler's answer.
func (r answer) Seen(t *testing.T) seen {
	t.Helper()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", r.StatusCode, r.Body)
	}
	var s seen
	if err := json.Unmarshal([]byte(r.Body), &s); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	return s
}

// client never follows redirects.
var client = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// get sends GET target with the Authorization header authorization (none if
// empty).
func get(t *testing.T, target, authorization string) answer {
	t.Helper()
	return do(t, target, func(r *http.Request) {
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
	})
}

// do sends GET target, after edit has changed the request.
func do(t *testing.T, target string, edit func(*http.Request)) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp, string(b)}
}

func bearer(token string) string { return "Bearer " + token }

// refusal is a refused request's answer: status, WWW-Authenticate and the
// fixed body.
type refusal struct {
	status  int
	wwwAuth string
	body    string
}

// The root package's default answers.
var (
	refNoToken     = refusal{401, "Bearer", `{"detail":"Unauthorized"}`}
	refInvalid     = refusal{401, `Bearer error="invalid_token"`, `{"detail":"Unauthorized"}`}
	refForbidden   = refusal{403, `Bearer error="insufficient_scope"`, `{"detail":"Forbidden"}`}
	refUnavailable = refusal{503, "", `{"detail":"Service Unavailable"}`}
)

// check checks that resp is the refusal: status, WWW-Authenticate, the
// fixed JSON body, and Retry-After on a 503.
func (want refusal) check(t *testing.T, resp answer) {
	t.Helper()
	if resp.StatusCode != want.status || resp.Header.Get("WWW-Authenticate") != want.wwwAuth || resp.Body != want.body {
		t.Errorf("got %d WWW-Authenticate=%q body %q; want %d %q %q",
			resp.StatusCode, resp.Header.Get("WWW-Authenticate"), resp.Body, want.status, want.wwwAuth, want.body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no X-Content-Type-Options: nosniff")
	}
	if ra := resp.Header.Get("Retry-After"); (want.status == 503) != (ra == "5") {
		t.Errorf("Retry-After %q on a %d", ra, want.status)
	}
}

// mustPanic fails unless f panics.
func mustPanic(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", name)
		}
	}()
	f()
}
