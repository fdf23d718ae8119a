package fief_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// waitGoroutines polls until at most n goroutines run (for at most 3 s)
// and fails with their stacks otherwise.
func waitGoroutines(t *testing.T, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			var stacks bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Fatalf("%s: %d goroutines, want at most %d:\n%s", what, runtime.NumGoroutine(), n, stacks.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConcurrentRequestsAndClose sends 1,000 simultaneous requests through
// CurrentUser (run it with -race): valid tokens of 50 users behind a cache
// of 20 (hits, misses, evictions), invalid, expired and forbidden tokens,
// and valid tokens of users Fief does not know (a userinfo call each).
// Then, once the client is closed, no goroutine is left behind.
func TestConcurrentRequestsAndClose(t *testing.T) {
	s := fieftest.New(fieftest.WithSigningKey(testKey()))
	defer s.Close()
	const users = 50
	type user struct{ id, email, token string }
	us := make([]user, users)
	for i := range us {
		u := addNamedUser(s, fmt.Sprint("concurrent", i), "castles:read")
		us[i] = user{u.ID, u.Email, s.AccessToken(u.ID, fieftest.Scopes("openid", "castles"))}
	}
	strangers := make([]string, 20) // valid tokens, unknown to Fief
	for i := range strangers {
		strangers[i] = s.AccessToken(fmt.Sprintf("00000000-0000-4000-8000-%012d", i), fieftest.Scopes("openid", "castles"))
	}
	invalid := s.AccessToken(us[0].id, fieftest.Scopes("openid", "castles"), fieftest.SignWith(foreignKey()))
	expired := s.AccessToken(us[0].id, fieftest.Scopes("openid", "castles"), fieftest.ExpiresIn(-time.Hour))
	forbidden := s.AccessToken(us[0].id, fieftest.Scopes("openid"))

	// The baseline: Fief is up, nothing else.
	runtime.GC()
	base := runtime.NumGoroutine()

	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	a, err := fief.NewAuthenticator(c, fief.WithUserInfoCache(memCache(t, 20, time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(a.CurrentUser(fief.RequireScopes("castles"))(mwEcho))
	transport := &http.Transport{MaxConnsPerHost: 100, MaxIdleConnsPerHost: 100}
	hc := &http.Client{Transport: transport, Timeout: 30 * time.Second}

	const n = 1000
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		u := us[i%users]
		token, want, body := u.token, 200, "user="+u.id+" email="+u.email
		switch i % 8 {
		case 4:
			token, want, body = invalid, 401, `{"detail":"Unauthorized"}`
		case 5:
			token, want, body = expired, 401, `{"detail":"Unauthorized"}`
		case 6:
			token, want, body = strangers[i%len(strangers)], 401, `{"detail":"Unauthorized"}`
		case 7:
			token, want, body = forbidden, 403, `{"detail":"Forbidden"}`
		}
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodGet, app.URL, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := hc.Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want || string(got) != body {
				t.Errorf("request %d: %d %q, want %d %q", i, resp.StatusCode, got, want, body)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := s.Requests(fieftest.EndpointDiscovery); n != 1 {
		t.Errorf("%d discovery requests, want 1", n)
	}
	// The first fetch, and one refresh for the unknown kid of the invalid
	// token (once per cooldown).
	if n := s.Requests(fieftest.EndpointJWKS); n != 2 {
		t.Errorf("%d key-set requests, want 2", n)
	}
	// Each user and each stranger needs at least one call; concurrent
	// misses of one user share theirs.
	calls := s.Requests(fieftest.EndpointUserinfo)
	if calls < users+len(strangers) || calls > n/2+n/8 {
		t.Errorf("%d userinfo calls", calls)
	}
	t.Logf("%d requests, %d userinfo calls", n, calls)

	app.Close()
	hc.CloseIdleConnections()
	// Close stops the client's background work and closes its connections
	// to Fief: with Fief still up, the goroutines return to the baseline.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, base, "after Close")
}

// TestCloseWithHost: Close closes the connections of the client New made
// also when WithHost wraps its transport.
func TestCloseWithHost(t *testing.T) {
	s := fieftest.New(fieftest.WithSigningKey(testKey()))
	defer s.Close()
	u := addNamedUser(s, "anne", "castles:read")
	token := s.AccessToken(u.ID)
	runtime.GC()
	base := runtime.NumGoroutine()
	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret, fief.WithHost("fief.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UserInfo(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitGoroutines(t, base, "after Close")
}
