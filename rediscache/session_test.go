package rediscache_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
	"github.com/fief-go/fief/rediscache"
	"github.com/redis/go-redis/v9"
)

// webApp is one instance of a web application that logs users in with a
// fief.LoginFlow refreshing sessions, coordinated on Redis:
// GET /page answers "token=<SHA-256 of the access token, 8 bytes hex>".
type webApp struct {
	ts   *httptest.Server
	logs *syncBuffer
}

const (
	sessionCookie = "__Host-fief_app_session"
	refreshCookie = "__Host-fief_app_session_refresh"
)

func newWebApp(t *testing.T, srv *fieftest.Server, rdb redis.UniversalClient, cookieKey []byte) *webApp {
	t.Helper()
	client, err := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	coord, err := rediscache.NewRefreshCoordinator(rdb, rediscache.CoordinatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var handler http.Handler
	a := &webApp{ts: httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))}
	t.Cleanup(a.ts.Close)
	logger, logs := newLogger()
	a.logs = logs
	flow, err := fief.NewLoginFlow(client, fief.LoginFlowConfig{
		RedirectURI:        a.ts.URL + "/auth-callback",
		CookieKey:          cookieKey,
		RefreshSessions:    true,
		RefreshCoordinator: coord,
		Logger:             logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := fief.NewAuthenticator(client, fief.WithExtractor(flow.Extractor()), fief.WithUnauthorizedHandler(flow.RedirectToLogin()))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /auth-callback", flow.Callback())
	mux.Handle("GET /page", auth.Authenticated()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := fief.AccessTokenInfoFromContext(r.Context())
		fmt.Fprint(w, "token="+tokenID(info.AccessToken()))
	})))
	handler = flow.Session()(mux)
	return a
}

func tokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// client returns an HTTP client of the instance that does not follow
// redirects, with jar (nil: none).
func (a *webApp) client(jar http.CookieJar) *http.Client {
	return &http.Client{
		Transport:     a.ts.Client().Transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       20 * time.Second,
	}
}

// logIn logs the user in through the instance and returns the refresh
// cookie the callback set.
func (a *webApp) logIn(t *testing.T, srv *fieftest.Server, user fieftest.User) *http.Cookie {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := a.client(jar)
	resp, err := hc.Get(a.ts.URL + "/page")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	callback, err := srv.Authorize(resp.Header.Get("Location"), user.Email, user.Password)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = hc.Get(callback.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == refreshCookie && c.MaxAge > 0 {
			return c
		}
	}
	t.Fatalf("login: %s, no refresh cookie in %q", resp.Status, resp.Header.Values("Set-Cookie"))
	return nil
}

// answer is what a request of a burst got.
type answer struct {
	status   int
	location string
	body     string
	session  string // the session cookie set, if any
}

// burst sends n concurrent GET /page requests carrying only refresh (a
// session whose access token the browsers dropped as expired), spread over
// the instances, released together.
func burst(t *testing.T, apps []*webApp, n int, refresh *http.Cookie) []answer {
	t.Helper()
	answers := make([]answer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		a := apps[i%len(apps)]
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, a.ts.URL+"/page", nil)
			req.AddCookie(&http.Cookie{Name: refresh.Name, Value: refresh.Value})
			<-start
			resp, err := a.client(nil).Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			answers[i] = answer{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(b)}
			for _, c := range resp.Cookies() {
				if c.Name == sessionCookie && c.MaxAge > 0 {
					answers[i].session = c.Value
				}
			}
		})
	}
	close(start)
	wg.Wait()
	return answers
}

// TestSessionRefreshAcrossInstances runs two instances of a web
// application sharing a real redis-server: a burst of concurrent requests
// carrying one expired session, spread over both, all succeed with one
// refresh at Fief. With Redis killed, the instances refresh on their own:
// every request still succeeds or cleanly starts a login, none fails, and
// the fallback is logged. Redis back, one refresh again.
func TestSessionRefreshAcrossInstances(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	srv := fieftest.NewTB(t)
	user := addUser(srv)
	key := []byte("0123456789abcdef0123456789abcdef")
	apps := []*webApp{newWebApp(t, srv, rs.Client(), key), newWebApp(t, srv, rs.Client(), key)}
	const n = 40

	refresh := apps[0].logIn(t, srv, user)
	calls := srv.Requests(fieftest.EndpointToken)
	answers := burst(t, apps, n, refresh)
	refreshes := srv.Requests(fieftest.EndpointToken) - calls
	tokens := map[string]bool{}
	for i, a := range answers {
		if a.status != http.StatusOK || a.session == "" || a.body != "token="+tokenID(a.session) {
			t.Errorf("request %d (instance %d): %d %q, want 200 with the refreshed session", i, i%2, a.status, a.body)
		}
		tokens[a.session] = true
	}
	t.Logf("Redis up: %d concurrent requests over 2 instances with one expired session: %d answered 200, %d refresh request(s) at Fief, %d distinct access token(s)",
		n, count(answers, http.StatusOK), refreshes, len(tokens))
	if refreshes != 1 || len(tokens) != 1 {
		t.Fatalf("%d refreshes at Fief and %d distinct tokens, want 1 and 1; logs:\n%s\n%s", refreshes, len(tokens), apps[0].logs, apps[1].logs)
	}

	// Redis stopped: each instance refreshes on its own (once, for all its
	// requests); the one that comes second gets invalid_grant, and its
	// requests start a login. No request fails.
	refresh = apps[0].logIn(t, srv, user)
	rs.Kill()
	calls = srv.Requests(fieftest.EndpointToken)
	answers = burst(t, apps, n, refresh)
	refreshes = srv.Requests(fieftest.EndpointToken) - calls
	ok, relogin := count(answers, http.StatusOK), 0
	for i, a := range answers {
		switch {
		case a.status == http.StatusOK:
		case a.status == http.StatusSeeOther && strings.HasPrefix(a.location, srv.URL+"/authorize?"):
			relogin++
		default:
			t.Errorf("request %d (instance %d) with Redis down: %d to %q, want 200 or a login", i, i%2, a.status, a.location)
		}
	}
	t.Logf("Redis down: %d concurrent requests over 2 instances with one expired session: %d answered 200, %d started a login, %d refresh request(s) at Fief",
		n, ok, relogin, refreshes)
	if refreshes < 1 || refreshes > 2 || ok < n/2 {
		t.Errorf("%d refreshes at Fief, %d requests served; want 1 or 2 (one per instance) and at least %d", refreshes, ok, n/2)
	}
	for i, a := range apps {
		if !strings.Contains(a.logs.String(), `level=WARN msg="fief: session refresh: the refresh coordinator failed; refreshing in this process"`) {
			t.Errorf("instance %d did not log the fallback:\n%s", i, a.logs)
		}
	}

	// Redis back: coordinated again.
	rs.Restart()
	refresh = apps[1].logIn(t, srv, user)
	calls = srv.Requests(fieftest.EndpointToken)
	answers = burst(t, apps, n, refresh)
	if refreshes := srv.Requests(fieftest.EndpointToken) - calls; refreshes != 1 || count(answers, http.StatusOK) != n {
		t.Errorf("Redis back: %d refreshes, %d of %d served; want 1 and all", refreshes, count(answers, http.StatusOK), n)
	}
}

func count(answers []answer, status int) int {
	n := 0
	for _, a := range answers {
		if a.status == status {
			n++
		}
	}
	return n
}
