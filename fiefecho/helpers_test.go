package fiefecho_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefecho"
	"github.com/fief-go/fief/fieftest"
	"github.com/labstack/echo/v4"
)

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

func newAuth(t testing.TB, c *fief.Client, opts ...fief.AuthOption) *fief.Authenticator {
	t.Helper()
	a, err := fief.NewAuthenticator(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func memCache(t testing.TB) *fief.MemoryCache {
	t.Helper()
	c, err := fief.NewMemoryCache(100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// env is a Fief with one user, an Authenticator for it, and an echo
// application served on loopback.
type env struct {
	fief *fieftest.Server
	user fieftest.User
	auth *fief.Authenticator
	e    *echo.Echo
	app  *httptest.Server
	runs atomic.Int32 // handler runs
}

func newEnv(t *testing.T, opts ...fief.AuthOption) *env {
	t.Helper()
	s := newServer(t)
	return newEnvWith(t, s, newAuth(t, newClient(t, s), opts...))
}

// newEnvWith serves an echo application (routes added later, before the
// first request) with auth.
func newEnvWith(t *testing.T, s *fieftest.Server, auth *fief.Authenticator) *env {
	t.Helper()
	ev := &env{fief: s, auth: auth, e: echo.New()}
	if s != nil {
		ev.user = s.AddUser(fieftest.User{
			Email:       "anne@bretagne.duchy",
			Fields:      map[string]any{"first_name": "Anne"},
			Permissions: []string{"castles:read"},
		})
	}
	ev.e.HideBanner, ev.e.HidePort = true, true
	ev.app = httptest.NewServer(ev.e)
	t.Cleanup(ev.app.Close)
	return ev
}

// token mints an access token of the env's user.
func (ev *env) token(opts ...fieftest.TokenOption) string {
	return ev.fief.AccessToken(ev.user.ID, opts...)
}

// identity is what the test handler saw, answered as JSON.
type identity struct {
	UserID       string `json:"user_id"`
	FromContext  string `json:"from_context"` // fief.AccessTokenInfoFromContext(c.Request().Context())
	FromStore    string `json:"from_store"`   // c.Get(AccessTokenInfoKey)
	Email        string `json:"email"`
	EmailStore   string `json:"email_store"`
	Tenant       string `json:"tenant"`
	TenantStore  string `json:"tenant_store"`
	HasUserInfo  bool   `json:"has_user_info"`
	Anonymous    bool   `json:"anonymous"`
	StoreEntries int    `json:"store_entries"`
}

// handler answers 200 with what the request's identity is, through every
// way of reading it, and counts its runs.
func (ev *env) handler(c echo.Context) error {
	ev.runs.Add(1)
	var id identity
	info, ok := fiefecho.AccessTokenInfo(c)
	id.UserID, id.Anonymous = info.UserID(), !ok
	if ctxInfo, ok := fief.AccessTokenInfoFromContext(c.Request().Context()); ok {
		id.FromContext = ctxInfo.UserID()
	}
	if v, ok := c.Get(fiefecho.AccessTokenInfoKey).(fief.AccessTokenInfo); ok {
		id.FromStore = v.UserID()
		id.StoreEntries++
	}
	user, ok := fiefecho.UserInfo(c)
	id.Email, id.HasUserInfo = user.Email(), ok
	if v, ok := c.Get(fiefecho.UserInfoKey).(fief.UserInfo); ok {
		id.EmailStore = v.Email()
		id.StoreEntries++
	}
	id.Tenant, _ = fiefecho.Tenant(c)
	if v, ok := c.Get(fiefecho.TenantKey).(string); ok {
		id.TenantStore = v
		id.StoreEntries++
	}
	return c.JSON(http.StatusOK, id)
}

// response is an answer with its body read.
type response struct {
	status int
	header http.Header
	body   string
}

// message returns the "message" of a JSON body, or "" if there is none.
func (r response) message() string {
	var m map[string]any
	if json.Unmarshal([]byte(r.body), &m) != nil {
		return ""
	}
	s, _ := m["message"].(string)
	return s
}

// identity decodes the test handler's answer.
func (r response) identity(t *testing.T) identity {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", r.status, r.body)
	}
	var id identity
	if err := json.Unmarshal([]byte(r.body), &id); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return id
}

// get requests path on the application with token as a Bearer token ("" for
// none) and header's extra fields.
func (ev *env) get(t *testing.T, path, token string, header ...string) response {
	t.Helper()
	return ev.do(t, http.MethodGet, path, token, header...)
}

func (ev *env) do(t *testing.T, method, path, token string, header ...string) response {
	t.Helper()
	resp, err := ev.try(t.Context(), method, path, token, header...)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// try is do for any goroutine: it returns the error.
func (ev *env) try(ctx context.Context, method, path, token string, header ...string) (response, error) {
	req, err := http.NewRequestWithContext(ctx, method, ev.app.URL+path, nil)
	if err != nil {
		return response{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{resp.StatusCode, resp.Header, string(b)}, nil
}

// noRedirects is an HTTP client that shows redirects instead of following
// them.
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}
