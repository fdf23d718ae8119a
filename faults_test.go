package fief_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// upstreamMarker is planted in the bodies of faulty Fief answers: it must
// never reach an error text, a response or a log line.
const upstreamMarker = "UPSTREAM-SECRET-MARKER"

// faultApp is an application protected by the middleware, with Fief
// played by fieftest.
type faultApp struct {
	s    *fieftest.Server
	c    *fief.Client
	app  *httptest.Server
	user fieftest.User
	ran  atomic.Int64 // handler runs
}

// newFaultApp serves /token (Authenticated) and /user (CurrentUser with a
// memory cache) with a client of s made with opts.
func newFaultApp(t *testing.T, s *fieftest.Server, opts ...fief.Option) *faultApp {
	t.Helper()
	f := &faultApp{s: s, user: addNamedUser(s, fmt.Sprint("user", time.Now().UnixNano()), "castles:read")}
	var err error
	if f.c, err = fief.New(s.URL, s.ClientID, s.ClientSecret, opts...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.c.Close() })
	a, err := fief.NewAuthenticator(f.c, fief.WithUserInfoCache(memCache(t, 100, time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.ran.Add(1)
		mwEcho(w, r)
	})
	mux := http.NewServeMux()
	mux.Handle("/token", a.Authenticated()(h))
	mux.Handle("/user", a.CurrentUser()(h))
	f.app = httptest.NewServer(mux)
	t.Cleanup(f.app.Close)
	return f
}

// token mints a valid access token for the app's user.
func (f *faultApp) token(opts ...fieftest.TokenOption) string {
	return f.s.AccessToken(f.user.ID, opts...)
}

// get sends GET path with the bearer token (none if "").
func (f *faultApp) get(t *testing.T, path, token string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.app.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.app.Client().Do(req)
	if err != nil {
		t.Error(err) // not Fatal: get also runs on other goroutines
		return 0, http.Header{}, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// expect checks one answer.
func (f *faultApp) expect(t *testing.T, path, token string, want mwAnswer) {
	t.Helper()
	code, h, body := f.get(t, path, token)
	want.check(t, path, code, h, body)
	if want.status == 503 && h.Get("Retry-After") != "5" {
		t.Errorf("%s: Retry-After %q", path, h.Get("Retry-After"))
	}
}

func (f *faultApp) userAnswer(u fieftest.User) mwAnswer {
	return mwAnswer{200, "", "user=" + u.ID + " email=" + u.Email}
}

// roundTrip is one outbound request seen by watchTransport.
type roundTrip struct {
	path string
	err  error
}

// watchTransport reports every finished round trip and counts those in
// flight per path.
type watchTransport struct {
	base     http.RoundTripper
	done     chan roundTrip
	mu       sync.Mutex
	inflight map[string]int
}

func newWatchTransport() *watchTransport {
	return &watchTransport{base: http.DefaultTransport.(*http.Transport).Clone(), done: make(chan roundTrip, 4096), inflight: map[string]int{}}
}

func (w *watchTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w.mu.Lock()
	w.inflight[r.URL.Path]++
	w.mu.Unlock()
	resp, err := w.base.RoundTrip(r)
	w.mu.Lock()
	w.inflight[r.URL.Path]--
	w.mu.Unlock()
	select {
	case w.done <- roundTrip{r.URL.Path, err}:
	default:
	}
	return resp, err
}

func (w *watchTransport) active(path string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inflight[path]
}

// TestFaults plays Fief misbehaving in each way section 3 of the hardening
// issue lists, against the client and the middleware.
func TestFaults(t *testing.T) {
	t.Run("Fief down at start", func(t *testing.T) {
		s := newServer(t)
		s.SetDown(true)
		// The application starts: New and NewAuthenticator make no request.
		f := newFaultApp(t, s)
		if n := s.Requests(fieftest.EndpointDiscovery) + s.Requests(fieftest.EndpointJWKS); n != 0 {
			t.Fatalf("%d requests to Fief at start", n)
		}
		token := f.token()
		f.expect(t, "/token", token, ansUnavailable)
		f.expect(t, "/user", token, ansUnavailable)
		f.expect(t, "/token", "", ansNoToken) // a request without a token never needs Fief
		if f.ran.Load() != 0 {
			t.Fatal("the handler ran while Fief was down")
		}
		// Fief comes up: discovery and the key set are fetched lazily, no
		// restart needed.
		s.SetDown(false)
		eventually(t, "recovery", func() bool { code, _, _ := f.get(t, "/token", token); return code == 200 })
		f.expect(t, "/user", token, f.userAnswer(f.user))
	})

	t.Run("Fief down after warm-up", func(t *testing.T) {
		s := newServer(t)
		f := newFaultApp(t, s)
		token := f.token()
		f.expect(t, "/user", token, f.userAnswer(f.user))
		uncached := addNamedUser(s, "bertrand", "castles:read")
		other := s.AccessToken(uncached.ID)
		s.SetDown(true)
		defer s.SetDown(false)
		// Cached keys keep validating, offline; the cached user is served.
		f.expect(t, "/token", token, mwAnswer{200, "", "user=" + f.user.ID})
		f.expect(t, "/token", other, mwAnswer{200, "", "user=" + uncached.ID})
		f.expect(t, "/user", token, f.userAnswer(f.user))
		// A user-info cache miss needs userinfo: 503.
		f.expect(t, "/user", other, ansUnavailable)
		// A token naming a new key is just invalid while Fief is away.
		f.expect(t, "/token", f.token(fieftest.Header("kid", "rotated")), ansInvalid)
		s.SetDown(false)
		f.expect(t, "/user", other, f.userAnswer(uncached))
	})

	t.Run("slow Fief: timeouts are honoured", func(t *testing.T) {
		s := newServer(t)
		f := newFaultApp(t, s, fief.WithTimeout(200*time.Millisecond))
		token := f.token()
		f.expect(t, "/token", token, mwAnswer{200, "", "user=" + f.user.ID})
		s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Latency: 30 * time.Second})
		within(t, 2*time.Second, "CurrentUser with a slow userinfo", func() { f.expect(t, "/user", token, ansUnavailable) })
		within(t, 2*time.Second, "UserInfo", func() {
			if _, err := f.c.UserInfo(context.Background(), token); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("UserInfo: %v, want a deadline error", err)
			}
		})
		// A slow first discovery: 503 in bounded time, then recovery.
		s2 := newServer(t)
		s2.SetFault(fieftest.EndpointDiscovery, fieftest.Fault{Latency: 30 * time.Second, Times: 1})
		f2 := newFaultApp(t, s2, fief.WithTimeout(200*time.Millisecond))
		within(t, 2*time.Second, "Authenticated with a slow discovery", func() { f2.expect(t, "/token", f2.token(), ansUnavailable) })
		time.Sleep(1100 * time.Millisecond) // the discovery retry backoff
		f2.expect(t, "/token", f2.token(), mwAnswer{200, "", "user=" + f2.user.ID})
	})

	t.Run("slow Fief: request cancellation propagates", func(t *testing.T) {
		s := newServer(t)
		watch := newWatchTransport()
		// A long timeout: only the cancellation can end the call early.
		c, err := fief.New(s.URL, s.ClientID, s.ClientSecret,
			fief.WithHTTPClient(&http.Client{Transport: watch}), fief.WithTimeout(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		defer watch.base.(*http.Transport).CloseIdleConnections()
		a, err := fief.NewAuthenticator(c)
		if err != nil {
			t.Fatal(err)
		}
		u := addNamedUser(s, "anne", "castles:read")
		token := s.AccessToken(u.ID)
		var ran atomic.Bool
		returned := make(chan struct{})
		mw := a.CurrentUser()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran.Store(true) }))
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(returned)
			mw.ServeHTTP(w, r)
		}))
		defer app.Close()
		// Warm the keys so that the request reaches userinfo.
		if _, err := c.ValidateAccessToken(context.Background(), token); err != nil {
			t.Fatal(err)
		}
		s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Latency: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, app.URL, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		clientErr := make(chan error, 1)
		go func() {
			resp, err := app.Client().Do(req)
			if err == nil {
				resp.Body.Close()
			}
			clientErr <- err
		}()
		eventually(t, "the userinfo call", func() bool { return s.Requests(fieftest.EndpointUserinfo) == 1 })
		cancel()
		if err := <-clientErr; !errors.Is(err, context.Canceled) {
			t.Fatalf("client: %v", err)
		}
		select {
		case <-returned:
		case <-time.After(2 * time.Second):
			t.Fatal("the middleware did not return after the request was canceled")
		}
		if ran.Load() {
			t.Fatal("the handler ran")
		}
		// The outbound userinfo call was canceled too.
		select {
		case rt := <-watch.done:
			for rt.path != "/api/userinfo" {
				rt = <-watch.done
			}
			if !errors.Is(rt.err, context.Canceled) {
				t.Fatalf("userinfo round trip ended with %v", rt.err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the userinfo call to Fief was not canceled")
		}
	})

	t.Run("every endpoint: 5xx, invalid JSON, huge body, slow", testFaultEveryEndpoint)

	t.Run("key rotation", func(t *testing.T) {
		s := newServer(t)
		f := newFaultApp(t, s, fief.WithKeyRefreshCooldown(0))
		oldKID := s.KeyID()
		old := f.token()
		f.expect(t, "/token", old, mwAnswer{200, "", "user=" + f.user.ID})
		jwks := s.Requests(fieftest.EndpointJWKS)
		// A new kid is picked up without a restart: one key-set fetch.
		s.RotateKey()
		fresh := f.token()
		f.expect(t, "/token", fresh, mwAnswer{200, "", "user=" + f.user.ID})
		f.expect(t, "/token", old, mwAnswer{200, "", "user=" + f.user.ID}) // still published
		if n := s.Requests(fieftest.EndpointJWKS) - jwks; n != 1 {
			t.Fatalf("%d key-set fetches for one rotation", n)
		}
		// The old key is removed; the next refresh (here: the one a token
		// with yet another new kid triggers) drops it, and its tokens are
		// refused, also those the verified-token cache held.
		s.RemoveKey(oldKID)
		s.RotateKey()
		f.expect(t, "/token", f.token(), mwAnswer{200, "", "user=" + f.user.ID})
		f.expect(t, "/token", old, ansInvalid)
		f.expect(t, "/token", fresh, mwAnswer{200, "", "user=" + f.user.ID})
	})

	t.Run("key rotation within the cooldown", func(t *testing.T) {
		s := newServer(t)
		f := newFaultApp(t, s) // the default cooldown
		f.expect(t, "/token", f.token(), mwAnswer{200, "", "user=" + f.user.ID})
		s.RotateKey()
		f.expect(t, "/token", f.token(), mwAnswer{200, "", "user=" + f.user.ID})
		// A second rotation within DefaultKeyRefreshCooldown is only seen
		// once the cooldown has passed.
		s.RotateKey()
		jwks := s.Requests(fieftest.EndpointJWKS)
		f.expect(t, "/token", f.token(), ansInvalid)
		if n := s.Requests(fieftest.EndpointJWKS) - jwks; n != 0 {
			t.Fatalf("%d key-set fetches within the cooldown", n)
		}
	})

	t.Run("kid flood", testFaultKidFlood)
}

// testFaultEveryEndpoint makes each endpoint the client calls fail in each
// way and checks the error: wrapped with the endpoint's context, a
// *RequestError for an error status, ErrDiscovery for discovery and the
// key set, a deadline error when slow, never the body's text, never a
// panic, always in bounded time.
func testFaultEveryEndpoint(t *testing.T) {
	s := newServer(t)
	u := addNamedUser(s, "anne", "castles:read")
	opts := []fief.Option{fief.WithTimeout(200 * time.Millisecond)}
	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	token := s.AccessToken(u.ID, fieftest.ACR("1"))
	if _, err := c.ValidateAccessToken(ctx, token); err != nil {
		t.Fatal(err)
	}
	code := func() string {
		return s.IssueCode(fieftest.CodeRequest{UserID: u.ID, RedirectURI: redirectURI, Scopes: []string{"openid", "offline_access"}})
	}
	tokens, _, err := c.AuthCallback(ctx, code(), redirectURI, "")
	if err != nil {
		t.Fatal(err)
	}
	// fresh returns a client that has fetched nothing yet.
	fresh := func() *fief.Client {
		fc, err := fief.New(s.URL, s.ClientID, s.ClientSecret, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fc.Close() })
		return fc
	}
	endpoints := []struct {
		ep        fieftest.Endpoint
		name      string // RequestError.Endpoint
		discovery bool   // errors wrap ErrDiscovery
		call      func() error
	}{
		{fieftest.EndpointDiscovery, "discovery", true, func() error { _, err := fresh().ValidateAccessToken(ctx, token); return err }},
		{fieftest.EndpointJWKS, "jwks", true, func() error { _, err := fresh().ValidateAccessToken(ctx, token); return err }},
		{fieftest.EndpointToken, "token", false, func() error { _, _, err := c.AuthCallback(ctx, code(), redirectURI, ""); return err }},
		{fieftest.EndpointToken, "token", false, func() error { _, _, err := c.AuthRefreshToken(ctx, tokens.RefreshToken); return err }},
		{fieftest.EndpointUserinfo, "userinfo", false, func() error { _, err := c.UserInfo(ctx, token); return err }},
		{fieftest.EndpointProfile, "profile", false, func() error { _, err := c.UpdateProfile(ctx, token, map[string]any{"x": 1}); return err }},
		{fieftest.EndpointPassword, "password", false, func() error { _, err := c.ChangePassword(ctx, token, "correct horse battery"); return err }},
		{fieftest.EndpointEmailChange, "email_change", false, func() error { _, err := c.EmailChange(ctx, token, "anne@rennes.duchy"); return err }},
		{fieftest.EndpointEmailVerify, "email_verify", false, func() error { _, err := c.EmailVerify(ctx, token, "123456"); return err }},
	}
	huge := `{"sub":"` + upstreamMarker + strings.Repeat("a", 2<<20) + `"}`
	faults := []struct {
		name   string
		fault  fieftest.Fault
		status int  // a *RequestError with this status, or none
		slow   bool // a deadline error
	}{
		{"500", fieftest.Fault{Status: 500, Body: `{"detail":"database password is hunter2 ` + upstreamMarker + `"}`}, 500, false},
		{"503 HTML", fieftest.Fault{Status: 503, Body: "<html>" + upstreamMarker + "</html>"}, 503, false},
		{"500 huge", fieftest.Fault{Status: 500, Body: huge}, 0, false},
		{"invalid JSON", fieftest.Fault{Status: 200, Body: `{"` + upstreamMarker + `": `}, 0, false},
		{"JSON but not an object", fieftest.Fault{Status: 200, Body: `["` + upstreamMarker + `"]`}, 0, false},
		{"2 MiB body", fieftest.Fault{Status: 200, Body: huge}, 0, false},
		{"slow", fieftest.Fault{Latency: 30 * time.Second}, 0, true},
		{"connection dropped", fieftest.Fault{Down: true}, 0, false},
	}
	for _, e := range endpoints {
		for _, fl := range faults {
			t.Run(fmt.Sprintf("%s %s", e.name, fl.name), func(t *testing.T) {
				s.SetFault(e.ep, fl.fault)
				defer s.ClearFault(e.ep)
				var err error
				within(t, 3*time.Second, "the call", func() { err = e.call() })
				if err == nil {
					t.Fatal("no error")
				}
				var re *fief.RequestError
				isRE := errors.As(err, &re)
				switch {
				case fl.status != 0 && (!isRE || re.StatusCode != fl.status || re.Endpoint != e.name):
					t.Errorf("err = %v, want a RequestError %d from %s", err, fl.status, e.name)
				case fl.status != 0 && len(re.Body) > 2100:
					t.Errorf("RequestError.Body holds %d bytes", len(re.Body))
				case fl.status == 0 && isRE && fl.fault.Status != 500:
					t.Errorf("err = %v, want no RequestError", err)
				case fl.slow && !errors.Is(err, context.DeadlineExceeded):
					t.Errorf("err = %v, want a deadline error", err)
				case e.discovery && !errors.Is(err, fief.ErrDiscovery):
					t.Errorf("err = %v, want ErrDiscovery", err)
				case !strings.Contains(err.Error(), e.name):
					t.Errorf("err = %v: the endpoint is not named", err)
				}
				checkErrorText(t, err, token, tokens.RefreshToken, tokens.IDToken, s.ClientSecret, "correct horse battery")
			})
		}
	}
}

// checkErrorText fails if err's text holds the upstream marker or any of
// secrets.
func checkErrorText(t *testing.T, err error, secrets ...string) {
	t.Helper()
	text := err.Error()
	if strings.Contains(text, upstreamMarker) {
		t.Errorf("the error quotes Fief's answer: %s", text)
	}
	for _, secret := range secrets {
		if secret != "" && strings.Contains(text, secret) {
			t.Errorf("the error holds a secret: %s", text)
		}
	}
	var re *fief.RequestError
	if errors.As(err, &re) && strings.Contains(re.Error(), upstreamMarker) {
		t.Errorf("RequestError.Error quotes the body: %s", re.Error())
	}
}

// testFaultKidFlood floods the middleware with tokens naming random keys
// while the key-set endpoint hangs, and checks that the flood costs at
// most one fetch per cooldown and that no request with a known key waits
// for it; requests naming unknown keys fail, at once outside the fetch.
func testFaultKidFlood(t *testing.T) {
	s := newServer(t)
	watch := newWatchTransport()
	defer watch.base.(*http.Transport).CloseIdleConnections()
	const timeout = 1500 * time.Millisecond
	f := newFaultApp(t, s, fief.WithHTTPClient(&http.Client{Transport: watch}), fief.WithTimeout(timeout))
	valid := f.token()
	okAnswer := mwAnswer{200, "", "user=" + f.user.ID}
	f.expect(t, "/token", valid, okAnswer)
	if n := s.Requests(fieftest.EndpointJWKS); n != 1 {
		t.Fatalf("%d key-set fetches at warm-up", n)
	}
	// From now on the key set hangs until the client gives up.
	s.SetFault(fieftest.EndpointJWKS, fieftest.Fault{Latency: time.Minute})
	const jwksPath = "/.well-known/jwks.json"

	flood := func(n int, tag string) *sync.WaitGroup {
		var wg sync.WaitGroup
		for i := range n {
			tok := f.token(fieftest.Header("kid", fmt.Sprintf("%s-%d", tag, i)))
			wg.Go(func() { f.expect(t, "/token", tok, ansInvalid) })
		}
		return &wg
	}
	first := flood(200, "first")
	eventually(t, "the refresh", func() bool { return watch.active(jwksPath) == 1 })
	// While the refresh hangs, requests with the known key go through:
	// they never wait on it.
	for range 20 {
		f.expect(t, "/token", valid, okAnswer)
	}
	if watch.active(jwksPath) != 1 {
		t.Fatal("the refresh ended before the requests with a known key: they may have waited on it")
	}
	first.Wait() // the flood's requests waited at most for the one refresh (timeout)
	// Within the cooldown, unknown kids fail at once: no fetch, no wait
	// (the key set still hangs, so waiting for a fetch would show).
	within(t, 5*time.Second, "the second flood", func() { flood(500, "second").Wait() })
	if n := s.Requests(fieftest.EndpointJWKS); n != 2 {
		t.Fatalf("%d key-set fetches, want 2 (warm-up, one refresh)", n)
	}
	if watch.active(jwksPath) != 0 {
		t.Fatal("a key-set fetch is in flight after the cooldown started")
	}
	if f.ran.Load() != 1+20 {
		t.Fatalf("the handler ran %d times", f.ran.Load())
	}
}
