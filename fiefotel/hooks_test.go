package fiefotel_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefotel"
	"github.com/fief-go/fief/fieftest"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

const (
	checkDuration = "fief.token.check.duration"
	fetchDuration = "fief.fetch.duration"
	keySetAge     = "fief.keyset.age"
	userDuration  = "fief.userinfo.duration"
	cacheReads    = "fief.userinfo.cache.reads"
	logins        = "fief.logins"
)

// check names a data point of fief.token.check.duration.
func check(o fief.Outcome, cached bool) string {
	return fmt.Sprintf("fief.outcome=%s,fief.token.cached=%v", o, cached)
}

// fetch names a data point of fief.fetch.duration.
func fetch(resource string, o fief.Outcome) string {
	return fmt.Sprintf("fief.outcome=%s,fief.resource=%s", o, resource)
}

func outcome(o fief.Outcome) string { return "fief.outcome=" + string(o) }

// TestTokenChecks: every outcome of a token check, on first sight and
// from the verified-token cache, as a real Authenticator reports them.
func TestTokenChecks(t *testing.T) {
	t.Parallel()
	m := newMeter(t)
	s := newServer(t)
	u := addUser(s, "castles:read")
	c := newClient(t, s, fief.WithHooks(m.hooks))
	a := newAuthenticator(t, c)
	ctx := context.Background()
	valid := s.AccessToken(u.ID, fieftest.Scopes("openid", "castles"))

	for _, tc := range []struct {
		name  string
		route *fief.Route
		token string
		ok    bool
	}{
		{"first sight", a.Route(), valid, true},
		{"seen before", a.Route(fief.RequireScopes("castles")), valid, true},
		{"no token", a.Route(), "", false},
		{"optional, no token", a.Route(fief.Optional()), "", true},
		{"not a JWT", a.Route(), "not.a.token", false},
		{"too large", a.Route(), strings.Repeat("a", fief.MaxTokenLength+1), false},
		{"forged", a.Route(), s.AccessToken(u.ID, fieftest.SignWith(fieftest.GenerateKey(2048))), false},
		{"expired", a.Route(), s.AccessToken(u.ID, fieftest.ExpiresIn(-time.Hour)), false},
		{"missing scope", a.Route(fief.RequireScopes("admin")), valid, false},
		{"ACR too low", a.Route(fief.RequireACR(fief.ACRLevelOne)), valid, false},
	} {
		if _, err := tc.route.Authenticate(ctx, tc.token); (err == nil) != tc.ok {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	if _, err := c.ValidateAccessToken(ctx, valid, fief.RequirePermissions("castles:delete")); err == nil {
		t.Fatal("missing permission accepted")
	}
	if _, err := c.ValidateAccessToken(ctx, s.AccessToken(u.ID, fieftest.Permissions("castles:read"))); err != nil {
		t.Fatal(err)
	}

	got := m.collect(t)
	equal(t, checkDuration, got.counts(t, checkDuration), map[string]uint64{
		check(fief.OutcomeOK, false):          2, // valid, the permissions token
		check(fief.OutcomeOK, true):           1,
		check(fief.OutcomeNoToken, false):     2, // the optional route's too
		check(fief.OutcomeInvalid, false):     3, // not a JWT, too large, forged
		check(fief.OutcomeExpired, false):     1,
		check(fief.OutcomeInsufficient, true): 3, // scope, ACR, permission
	})
	points := got.histograms(t, checkDuration)
	// A cache hit skips the RSA work: far below the first sight.
	first, hit := points[check(fief.OutcomeOK, false)], points[check(fief.OutcomeOK, true)]
	if hit.Sum >= first.Sum/2 {
		t.Errorf("cached check took %vs, two first sights %vs", hit.Sum, first.Sum)
	}
	if bounds := hit.Bounds; bounds[0] != 0.000001 || bounds[len(bounds)-1] != 10 {
		t.Errorf("bucket boundaries %v", bounds)
	}
}

// TestUnavailable: Fief down before the first fetch makes the check
// unavailable and the discovery fetch an error; once Fief is back the
// fetches succeed and the key set's age appears.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	m := newMeter(t)
	s := newServer(t)
	tok := s.AccessToken(addUser(s).ID)
	c := newClient(t, s, fief.WithHooks(m.hooks))
	route := newAuthenticator(t, c).Route()
	ctx := context.Background()

	s.SetDown(true)
	if _, err := route.Authenticate(ctx, tok); !errors.Is(err, fief.ErrUnavailable) {
		t.Fatalf("Fief down: %v", err)
	}
	got := m.collect(t)
	equal(t, checkDuration, got.counts(t, checkDuration), map[string]uint64{check(fief.OutcomeUnavailable, false): 1})
	fetches := got.counts(t, fetchDuration)
	if fetches[fetch("discovery", fief.OutcomeError)] == 0 || len(fetches) != 1 {
		t.Errorf("fetches with Fief down: %v", fetches)
	}
	if ages := got.gauge(t, keySetAge); len(ages) != 0 {
		t.Errorf("key-set age before any key set: %v", ages)
	}

	s.SetDown(false)
	waitOK(t, route, tok) // a failed first fetch is answered from memory for a moment
	got = m.collect(t)
	fetches = got.counts(t, fetchDuration)
	if fetches[fetch("discovery", fief.OutcomeOK)] != 1 || fetches[fetch("jwks", fief.OutcomeOK)] != 1 {
		t.Errorf("fetches once Fief is back: %v", fetches)
	}
	if ages := got.gauge(t, keySetAge); len(ages) != 1 {
		t.Errorf("key-set ages once Fief is back: %v", ages)
	}
}

// waitOK authenticates tok on route until it succeeds, for a few seconds.
func waitOK(t *testing.T, route *fief.Route, tok string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := route.Authenticate(context.Background(), tok)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFetches: discovery and key-set fetches by outcome, the key set's
// failure and its later fetches (a rotation).
func TestFetches(t *testing.T) {
	t.Parallel()
	m := newMeter(t)
	s := newServer(t)
	u := addUser(s)
	c := newClient(t, s, fief.WithHooks(m.hooks), fief.WithKeyRefreshCooldown(0))
	route := newAuthenticator(t, c).Route()
	ctx := context.Background()

	s.SetFault(fieftest.EndpointJWKS, fieftest.Fault{Status: http.StatusInternalServerError, Times: 1})
	if _, err := route.Authenticate(ctx, s.AccessToken(u.ID)); !errors.Is(err, fief.ErrUnavailable) {
		t.Fatalf("key set failing: %v", err)
	}
	equal(t, fetchDuration, m.collect(t).counts(t, fetchDuration), map[string]uint64{
		fetch("discovery", fief.OutcomeOK): 1,
		fetch("jwks", fief.OutcomeError):   1,
	})

	waitOK(t, route, s.AccessToken(u.ID))
	s.RotateKey()
	waitOK(t, route, s.AccessToken(u.ID)) // an unknown kid: a second fetch
	got := m.collect(t)
	equal(t, fetchDuration, got.counts(t, fetchDuration), map[string]uint64{
		fetch("discovery", fief.OutcomeOK): 1,
		fetch("jwks", fief.OutcomeError):   1,
		fetch("jwks", fief.OutcomeOK):      2,
	})
	if n := s.Requests(fieftest.EndpointJWKS); n != 3 {
		t.Errorf("%d key-set requests, 3 fetches reported", n)
	}
	if b := got.histograms(t, fetchDuration)[fetch("jwks", fief.OutcomeOK)].Bounds; b[0] != 0.0005 || b[len(b)-1] != 10 {
		t.Errorf("bucket boundaries %v", b)
	}
}

// TestKeySetAge: one series per key set from its first fetch on, the time
// since its last successful fetch.
func TestKeySetAge(t *testing.T) {
	t.Parallel()
	m := newMeter(t)
	s1, s2 := newServer(t), newServer(t)
	c1 := newClient(t, s1, fief.WithHooks(m.hooks), fief.WithKeyRefreshCooldown(0))
	c2 := newClient(t, s2, fief.WithHooks(m.hooks))
	ctx := context.Background()
	u1, u2 := addUser(s1), addUser(s2)
	if ages := m.collect(t).gauge(t, keySetAge); len(ages) != 0 {
		t.Fatalf("ages before any fetch: %v", ages)
	}

	start := time.Now()
	for _, v := range []struct {
		c  *fief.Client
		s  *fieftest.Server
		id string
	}{{c1, s1, u1.ID}, {c2, s2, u2.ID}} {
		if _, err := v.c.ValidateAccessToken(ctx, v.s.AccessToken(v.id)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	ages := m.collect(t).gauge(t, keySetAge)
	url1 := string(semconv.URLFullKey) + "=" + s1.URL + "/.well-known/jwks.json"
	url2 := string(semconv.URLFullKey) + "=" + s2.URL + "/.well-known/jwks.json"
	elapsed := time.Since(start).Seconds()
	if len(ages) != 2 {
		t.Fatalf("ages %v, want one per key set", ages)
	}
	for _, u := range []string{url1, url2} {
		if age, ok := ages[u]; !ok || age < 0.020 || age > elapsed {
			t.Errorf("age of {%s}: %v (present: %v), want within [0.02, %v]", u, age, ok, elapsed)
		}
	}

	// A new fetch of the first set (a rotation) makes it young again.
	s1.RotateKey()
	if _, err := c1.ValidateAccessToken(ctx, s1.AccessToken(u1.ID)); err != nil {
		t.Fatal(err)
	}
	again := m.collect(t).gauge(t, keySetAge)
	if again[url1] >= ages[url1] || again[url2] <= ages[url2] {
		t.Errorf("after a fetch of the first set: %v, before: %v", again, ages)
	}
}

// failingCache is a UserInfoCache whose reads fail.
type failingCache struct{ fief.UserInfoCache }

func (failingCache) Get(context.Context, string) (fief.UserInfo, bool, error) {
	return fief.UserInfo{}, false, errors.New("cache down")
}

// TestUserInfo: userinfo calls by outcome and cache reads by result, on
// CurrentUser routes.
func TestUserInfo(t *testing.T) {
	t.Parallel()
	m := newMeter(t)
	s := newServer(t)
	c := newClient(t, s, fief.WithHooks(m.hooks))
	cache := memCache(t)
	a := newAuthenticator(t, c, fief.WithUserInfoCache(cache))
	current, refresh := a.Route(fief.LoadUserInfo()), a.Route(fief.Refresh())
	ctx := context.Background()
	u := addUser(s)
	tok := s.AccessToken(u.ID)

	for _, tc := range []struct {
		name  string
		route *fief.Route
		token string
		fault bool // userinfo answers 500 once
		err   error
	}{
		{"miss", current, tok, false, nil},
		{"hit", current, tok, false, nil},
		{"refresh", refresh, tok, false, nil},
		{"Fief failing", current, s.AccessToken(addUser(s).ID), true, fief.ErrUnavailable},
		{"deleted user", current, deletedUserToken(s), false, fief.ErrUnauthenticated},
	} {
		if tc.fault {
			s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: http.StatusInternalServerError, Times: 1})
		}
		if _, err := tc.route.Authenticate(ctx, tc.token); !errors.Is(err, tc.err) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	if _, err := c.UserInfo(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// A cache that cannot be read: an error, then a call to Fief.
	broken := newAuthenticator(t, c, fief.WithUserInfoCache(failingCache{cache})).Route(fief.LoadUserInfo())
	if _, err := broken.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}

	got := m.collect(t)
	equal(t, userDuration, got.counts(t, userDuration), map[string]uint64{
		outcome(fief.OutcomeOK):      4, // miss, refresh, UserInfo, broken cache
		outcome(fief.OutcomeError):   1,
		outcome(fief.OutcomeRefused): 1,
	})
	equal(t, cacheReads, got.sums(t, cacheReads, "{read}"), map[string]int64{
		"fief.cache.result=hit":   1,
		"fief.cache.result=miss":  3, // miss, Fief failing, deleted user
		"fief.cache.result=error": 1,
	})
	equal(t, checkDuration, got.counts(t, checkDuration), map[string]uint64{
		check(fief.OutcomeOK, false):          1,
		check(fief.OutcomeOK, true):           3, // hit, refresh, broken cache
		check(fief.OutcomeUnavailable, false): 1, // userinfo failing, on a new token
		check(fief.OutcomeInvalid, false):     1, // a user Fief no longer knows
	})
	if n := s.Requests(fieftest.EndpointUserinfo); n != 6 {
		t.Errorf("%d userinfo requests, 6 calls reported", n)
	}
}

// deletedUserToken returns a valid token of a user Fief then deletes.
func deletedUserToken(s *fieftest.Server) string {
	u := addUser(s)
	tok := s.AccessToken(u.ID)
	s.DeleteUser(u.ID)
	return tok
}

// TestLogins: LoginDone, called as a LoginFlow's callback calls it, for
// every outcome of a login.
func TestLogins(t *testing.T) {
	t.Parallel()
	m := newMeter(t)
	ctx := context.Background()
	want := map[string]int64{}
	for i, o := range []fief.Outcome{
		fief.OutcomeOK, fief.OutcomeDenied, fief.OutcomeInvalid, fief.OutcomeRefused,
		fief.OutcomeUnavailable, fief.OutcomeError,
	} {
		for range i + 1 {
			m.hooks.LoginDone(ctx, fief.LoginResult{Outcome: o})
		}
		want[outcome(o)] = int64(i + 1)
	}
	equal(t, logins, m.collect(t).sums(t, logins, "{login}"), want)
}

// TestLoginFlowLogins: logins through a real LoginFlow and Fief's login
// form, one that succeeds and one the user cancels, counted by outcome.
func TestLoginFlowLogins(t *testing.T) {
	t.Parallel()
	m := newMeter(t)
	s := newServer(t)
	u := addUser(s)
	c := newClient(t, s, fief.WithHooks(m.hooks))
	app := httptest.NewServer(nil)
	t.Cleanup(app.Close)
	flow, err := fief.NewLoginFlow(c, fief.LoginFlowConfig{RedirectURI: app.URL + "/callback", InsecureCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/login", flow.Login())
	mux.Handle("/callback", flow.Callback())
	app.Config.Handler = mux

	// login starts a login in a new browser and returns Fief's
	// authorization URL.
	login := func(t *testing.T) (*http.Client, *url.URL) {
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := hc.Get(app.URL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		authURL, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("GET /login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		return hc, authURL
	}
	status := func(t *testing.T, hc *http.Client, target string) int {
		resp, err := hc.Get(target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	hc, authURL := login(t)
	callback, err := s.Authorize(authURL.String(), u.Email, "herminetruc")
	if err != nil {
		t.Fatal(err)
	}
	if got := status(t, hc, callback.String()); got != http.StatusSeeOther {
		t.Fatalf("callback: %d, want 303", got)
	}
	hc, authURL = login(t)
	cancelled := app.URL + "/callback?error=access_denied&state=" + url.QueryEscape(authURL.Query().Get("state"))
	if got := status(t, hc, cancelled); got != http.StatusBadRequest {
		t.Fatalf("cancelled login: %d, want 400", got)
	}
	equal(t, logins, m.collect(t).sums(t, logins, "{login}"), map[string]int64{
		outcome(fief.OutcomeOK):     1,
		outcome(fief.OutcomeDenied): 1,
	})
}

// TestUnknownValues: values a later version of fief may report are
// recorded as they come.
func TestUnknownValues(t *testing.T) {
	t.Parallel()
	m := newMeter(t)
	ctx := context.Background()
	m.hooks.TokenChecked(ctx, fief.TokenCheck{Outcome: "later", Cached: true, Duration: time.Millisecond})
	m.hooks.Fetched(ctx, fief.Fetch{Resource: "later", URL: "https://fief.example/later", Outcome: fief.OutcomeOK, Duration: time.Millisecond})
	m.hooks.Fetched(ctx, fief.Fetch{Resource: "jwks", URL: "https://fief.example/jwks", Outcome: "later", Duration: time.Millisecond})
	m.hooks.UserInfoFetched(ctx, fief.UserInfoFetch{Outcome: "later", Duration: time.Millisecond})
	m.hooks.UserInfoCacheRead(ctx, fief.CacheRead{Result: "later"})
	m.hooks.LoginDone(ctx, fief.LoginResult{Outcome: "later"})

	got := m.collect(t)
	equal(t, checkDuration, got.counts(t, checkDuration), map[string]uint64{check("later", true): 1})
	equal(t, fetchDuration, got.counts(t, fetchDuration), map[string]uint64{
		fetch("later", fief.OutcomeOK): 1,
		fetch("jwks", "later"):         1,
	})
	equal(t, userDuration, got.counts(t, userDuration), map[string]uint64{outcome("later"): 1})
	equal(t, cacheReads, got.sums(t, cacheReads, "{read}"), map[string]int64{"fief.cache.result=later": 1})
	equal(t, logins, got.sums(t, logins, "{login}"), map[string]int64{outcome("later"): 1})
	if ages := got.gauge(t, keySetAge); len(ages) != 0 {
		t.Errorf("ages of key sets never fetched successfully: %v", ages)
	}
}

// TestConcurrent: many goroutines through the middleware, CurrentUser
// included, while the metrics are collected; every request is counted.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	m := newMeter(t)
	s := newServer(t)
	c := newClient(t, s, fief.WithHooks(m.hooks))
	a := newAuthenticator(t, c, fief.WithUserInfoCache(memCache(t)))
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	handlers := []http.Handler{a.Authenticated()(ok), a.CurrentUser()(ok)}
	const goroutines, requests, tokens = 32, 50, 8
	toks := make([]string, tokens)
	for i := range toks {
		toks[i] = s.AccessToken(addUser(s).ID)
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	collector := make(chan struct{})
	go func() { // collections concurrent with the recordings
		defer close(collector)
		for {
			select {
			case <-stop:
				return
			default:
				var rm metricdata.ResourceMetrics
				if err := m.reader.Collect(context.Background(), &rm); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	for g := range goroutines {
		wg.Go(func() {
			for i := range requests {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				want := http.StatusUnauthorized // every fifth request has no token
				if i%5 != 4 {
					r.Header.Set("Authorization", "Bearer "+toks[(g+i)%tokens])
					want = http.StatusOK
				}
				w := httptest.NewRecorder()
				handlers[g%2].ServeHTTP(w, r)
				if w.Code != want {
					t.Errorf("status %d, want %d", w.Code, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-collector

	got := m.collect(t)
	counts := got.counts(t, checkDuration)
	var total uint64
	for _, n := range counts {
		total += n
	}
	if total != goroutines*requests || counts[check(fief.OutcomeNoToken, false)] != goroutines*requests/5 {
		t.Errorf("%d checks of %d requests: %v", total, goroutines*requests, counts)
	}
	reads := got.sums(t, cacheReads, "{read}")
	if reads["fief.cache.result=hit"]+reads["fief.cache.result=miss"] != goroutines/2*requests*4/5 {
		t.Errorf("cache reads %v", reads)
	}
	fetches := got.counts(t, fetchDuration)
	if fetches[fetch("discovery", fief.OutcomeOK)] != 1 || fetches[fetch("jwks", fief.OutcomeOK)] != 1 {
		t.Errorf("fetches %v", fetches)
	}
}

// TestNewHooks: the options, the meter's scope, and the global provider
// by default.
func TestNewHooks(t *testing.T) {
	if _, err := fiefotel.NewHooks(fiefotel.WithMeterProvider(nil)); err == nil {
		t.Error("WithMeterProvider(nil) accepted")
	}
	if _, err := fiefotel.NewHooks(nil); err == nil {
		t.Error("a nil Option accepted")
	}

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	otel.SetMeterProvider(mp)
	hooks, err := fiefotel.NewHooks()
	if err != nil {
		t.Fatal(err)
	}
	if hooks.TokenChecked == nil || hooks.Fetched == nil || hooks.UserInfoFetched == nil ||
		hooks.UserInfoCacheRead == nil || hooks.LoginDone == nil {
		t.Fatalf("hooks %+v: a function is missing", hooks)
	}
	hooks.LoginDone(context.Background(), fief.LoginResult{Outcome: fief.OutcomeOK})

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if len(rm.ScopeMetrics) != 1 {
		t.Fatalf("scopes %+v", rm.ScopeMetrics)
	}
	sm := rm.ScopeMetrics[0]
	if sm.Scope.Name != fiefotel.ScopeName || sm.Scope.SchemaURL != semconv.SchemaURL {
		t.Errorf("scope %+v", sm.Scope)
	}
	if len(sm.Metrics) != 1 || sm.Metrics[0].Name != logins {
		t.Errorf("metrics %+v", sm.Metrics)
	}
}
