package fief_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// recorder is a fief.Hooks that records every event.
type recorder struct {
	mu      sync.Mutex
	checks  []fief.TokenCheck
	fetches []fief.Fetch
	infos   []fief.UserInfoFetch
	reads   []string
	logins  []fief.Outcome
}

func (r *recorder) hooks() *fief.Hooks {
	return &fief.Hooks{
		TokenChecked: func(_ context.Context, e fief.TokenCheck) { r.mu.Lock(); r.checks = append(r.checks, e); r.mu.Unlock() },
		Fetched:      func(_ context.Context, e fief.Fetch) { r.mu.Lock(); r.fetches = append(r.fetches, e); r.mu.Unlock() },
		UserInfoFetched: func(_ context.Context, e fief.UserInfoFetch) {
			r.mu.Lock()
			r.infos = append(r.infos, e)
			r.mu.Unlock()
		},
		UserInfoCacheRead: func(_ context.Context, e fief.CacheRead) {
			r.mu.Lock()
			r.reads = append(r.reads, e.Result)
			r.mu.Unlock()
		},
		LoginDone: func(_ context.Context, e fief.LoginResult) {
			r.mu.Lock()
			r.logins = append(r.logins, e.Outcome)
			r.mu.Unlock()
		},
	}
}

func (r *recorder) lastCheck(t *testing.T) fief.TokenCheck {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.checks) == 0 {
		t.Fatal("no token check reported")
	}
	return r.checks[len(r.checks)-1]
}

// TestHooks: every event the hooks promise, with its outcome.
func TestHooks(t *testing.T) {
	rec := &recorder{}
	s := newServer(t)
	u := addNamedUser(s, "anne", "castles:read")
	c := newClient(t, s, fief.WithHooks(rec.hooks()))
	a, err := fief.NewAuthenticator(c, fief.WithUserInfoCache(memCache(t, 10, time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	valid := s.AccessToken(u.ID, fieftest.Scopes("openid", "castles"))
	for _, tc := range []struct {
		name   string
		route  *fief.Route
		token  string
		want   fief.Outcome
		cached bool
	}{
		{"first sight", a.Route(), valid, fief.OutcomeOK, false},
		{"seen before", a.Route(), valid, fief.OutcomeOK, true},
		{"no token", a.Route(), "", fief.OutcomeNoToken, false},
		{"invalid", a.Route(), "not.a.token", fief.OutcomeInvalid, false},
		{"expired", a.Route(), s.AccessToken(u.ID, fieftest.ExpiresIn(-time.Hour)), fief.OutcomeExpired, false},
		{"insufficient", a.Route(fief.RequireScopes("admin")), valid, fief.OutcomeInsufficient, true},
		{"optional, no token", a.Route(fief.Optional()), "", fief.OutcomeNoToken, false},
	} {
		tc.route.Authenticate(ctx, tc.token)
		if got := rec.lastCheck(t); got.Outcome != tc.want || got.Cached != tc.cached || got.Duration <= 0 {
			t.Errorf("%s: %+v, want outcome %s, cached %v", tc.name, got, tc.want, tc.cached)
		}
	}
	if _, err := c.ValidateAccessToken(ctx, valid, fief.RequirePermissions("castles:delete")); err == nil {
		t.Fatal("missing permission accepted")
	}
	if got := rec.lastCheck(t); got.Outcome != fief.OutcomeInsufficient || !got.Cached {
		t.Errorf("ValidateAccessToken: %+v", got)
	}

	// Fetches: discovery and the key set, once each so far.
	rec.mu.Lock()
	var resources []string
	for _, f := range rec.fetches {
		if f.Outcome != fief.OutcomeOK || f.URL == "" {
			t.Errorf("fetch %+v", f)
		}
		resources = append(resources, f.Resource)
	}
	rec.mu.Unlock()
	if !slices.Equal(resources, []string{"discovery", "jwks"}) {
		t.Fatalf("fetches %v", resources)
	}

	// CurrentUser: a miss and a userinfo call, then a hit.
	cu := a.Route(fief.LoadUserInfo())
	cu.Authenticate(ctx, valid)
	cu.Authenticate(ctx, valid)
	rec.mu.Lock()
	if !slices.Equal(rec.reads, []string{"miss", "hit"}) || len(rec.infos) != 1 || rec.infos[0].Outcome != fief.OutcomeOK {
		t.Errorf("cache reads %v, userinfo calls %+v", rec.reads, rec.infos)
	}
	rec.mu.Unlock()
	// A userinfo call Fief refuses.
	gone := addNamedUser(s, "gone")
	tok := s.AccessToken(gone.ID)
	s.DeleteUser(gone.ID)
	cu.Authenticate(ctx, tok)
	rec.mu.Lock()
	if last := rec.infos[len(rec.infos)-1]; last.Outcome != fief.OutcomeRefused {
		t.Errorf("refused userinfo: %+v", last)
	}
	rec.mu.Unlock()
	if got := rec.lastCheck(t); got.Outcome != fief.OutcomeInvalid {
		t.Errorf("token of a deleted user: %+v", got)
	}
	// 429 is "later", not a refusal: an error for the userinfo call, the
	// check unavailable, as the middleware's 503 says.
	busy := addNamedUser(s, "busy")
	s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: http.StatusTooManyRequests, Times: 1})
	cu.Authenticate(ctx, s.AccessToken(busy.ID))
	rec.mu.Lock()
	if last := rec.infos[len(rec.infos)-1]; last.Outcome != fief.OutcomeError {
		t.Errorf("userinfo answered 429: %+v, want error", last)
	}
	rec.mu.Unlock()
	if got := rec.lastCheck(t); got.Outcome != fief.OutcomeUnavailable {
		t.Errorf("userinfo answered 429: check %+v, want unavailable", got)
	}

	// Fief down: a failed fetch, an unavailable check.
	s2 := newServer(t)
	rec2 := &recorder{}
	c2 := newClient(t, s2, fief.WithHooks(rec2.hooks()))
	a2, _ := fief.NewAuthenticator(c2)
	s2.SetDown(true)
	a2.Route().Authenticate(ctx, s2.AccessToken(addUser(s2).ID))
	if got := rec2.lastCheck(t); got.Outcome != fief.OutcomeUnavailable {
		t.Errorf("Fief down: %+v", got)
	}
	rec2.mu.Lock()
	if len(rec2.fetches) == 0 || rec2.fetches[0].Outcome != fief.OutcomeError || rec2.fetches[0].Resource != "discovery" {
		t.Errorf("fetches with Fief down: %+v", rec2.fetches)
	}
	rec2.mu.Unlock()
}

// TestHooksCountUnreadableTokens: a request whose token cannot be read
// (several Authorization values, a token too large in the header, an
// extractor's error) is a token check too, reported once, as invalid,
// through every entry point.
func TestHooksCountUnreadableTokens(t *testing.T) {
	rec := &recorder{}
	s := newServer(t)
	c := newClient(t, s, fief.WithHooks(rec.hooks()))
	failing := fief.ExtractorFunc(func(*http.Request) (string, error) { return "", errors.New("unreadable cookie") })
	bearer, err := fief.NewAuthenticator(c)
	if err != nil {
		t.Fatal(err)
	}
	custom, err := fief.NewAuthenticator(c, fief.WithExtractor(failing))
	if err != nil {
		t.Fatal(err)
	}
	big := "Bearer " + strings.Repeat("a", fief.MaxTokenLength+1)
	twoHeaders := httptest.NewRequest("GET", "/", nil)
	twoHeaders.Header.Add("Authorization", "Bearer a.b.c")
	twoHeaders.Header.Add("Authorization", "Bearer d.e.f")
	bigHeader := httptest.NewRequest("GET", "/", nil)
	bigHeader.Header.Set("Authorization", big)
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"AuthenticateAuthorization, two values": func() error {
			_, err := bearer.Route().AuthenticateAuthorization(ctx, []string{"Bearer a.b.c", "Bearer d.e.f"})
			return err
		},
		"AuthenticateAuthorization, too large": func() error {
			_, err := bearer.Route().AuthenticateAuthorization(ctx, []string{big})
			return err
		},
		"AuthenticateRequest, two headers": func() error { _, err := bearer.Route().AuthenticateRequest(twoHeaders); return err },
		"AuthenticateRequest, too large":   func() error { _, err := bearer.Route().AuthenticateRequest(bigHeader); return err },
		"AuthenticateRequest, extractor error": func() error {
			_, err := custom.Route().AuthenticateRequest(httptest.NewRequest("GET", "/", nil))
			return err
		},
	} {
		rec.mu.Lock()
		rec.checks = nil
		rec.mu.Unlock()
		if err := call(); !errors.Is(err, fief.ErrUnauthenticated) {
			t.Errorf("%s: %v, want ErrUnauthenticated", name, err)
		}
		rec.mu.Lock()
		if len(rec.checks) != 1 || rec.checks[0].Outcome != fief.OutcomeInvalid || rec.checks[0].Duration <= 0 {
			t.Errorf("%s: token checks reported %+v, want one, invalid, timed", name, rec.checks)
		}
		rec.mu.Unlock()
	}
}

// TestNoHooksNoCost: without hooks, a cached request through the
// middleware allocates only the context and the request copy it must.
func TestNoHooksNoCost(t *testing.T) {
	e := newEnv(t)
	a := e.auth(t)
	h := a.Authenticated()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tok := e.token()
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	w := &nopWriter{}
	h.ServeHTTP(w, r) // first sight
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); n != 2 {
		t.Fatalf("%.0f allocations per cached request, want 2 (r.WithContext and context.WithValue)", n)
	}
}

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// TestLoginHooks: every way a LoginFlow callback ends is reported once,
// with its outcome; requests that are no login are not reported.
func TestLoginHooks(t *testing.T) {
	rec := &recorder{}
	failLogin := false
	e := newLFEnv(t, lfOptions{
		clientOpts: []fief.Option{fief.WithHooks(rec.hooks())},
		config: func(c *fief.LoginFlowConfig) {
			c.OnLogin = func(context.Context, *fief.Tokens, fief.UserInfo) error {
				if failLogin {
					return errors.New("the application's database is down")
				}
				return nil
			}
		},
	})
	last := func(t *testing.T, want fief.Outcome) {
		t.Helper()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.logins) != 1 || rec.logins[0] != want {
			t.Errorf("logins reported %v, want [%s]", rec.logins, want)
		}
		rec.logins = nil
	}
	// Each login in a browser of its own, not yet logged in.
	var hc *http.Client
	get := func(t *testing.T, target string) lfResponse { return e.do(t, hc, http.MethodGet, target, nil) }
	callback := func(t *testing.T) *url.URL {
		hc = e.newBrowser(t)
		return e.authorize(t, first(e.start(t, hc, "/protected")))
	}

	t.Run("ok", func(t *testing.T) {
		if resp := get(t, callback(t).String()); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("callback: %d %s", resp.StatusCode, resp.body)
		}
		last(t, fief.OutcomeOK)
	})
	t.Run("denied", func(t *testing.T) {
		hc = e.newBrowser(t)
		authURL, _ := e.start(t, hc, "/protected")
		get(t, e.appURL+"/auth-callback?error=access_denied&state="+url.QueryEscape(authURL.Query().Get("state")))
		last(t, fief.OutcomeDenied)
	})
	t.Run("Fief's server error", func(t *testing.T) {
		hc = e.newBrowser(t)
		authURL, _ := e.start(t, hc, "/protected")
		get(t, e.appURL+"/auth-callback?error=temporarily_unavailable&state="+url.QueryEscape(authURL.Query().Get("state")))
		last(t, fief.OutcomeUnavailable)
	})
	t.Run("invalid flow", func(t *testing.T) {
		get(t, lfWithQuery(callback(t), "state", "forged"))
		last(t, fief.OutcomeInvalid)
	})
	t.Run("incomplete", func(t *testing.T) {
		get(t, e.appURL+"/auth-callback")
		last(t, fief.OutcomeInvalid)
	})
	t.Run("code refused", func(t *testing.T) {
		get(t, lfWithQuery(callback(t), "code", "stolen"))
		last(t, fief.OutcomeRefused)
	})
	t.Run("unavailable", func(t *testing.T) {
		cb := callback(t)
		e.srv.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: http.StatusInternalServerError, Times: 1})
		get(t, cb.String())
		last(t, fief.OutcomeUnavailable)
	})
	t.Run("token endpoint timing out (408)", func(t *testing.T) {
		cb := callback(t)
		e.srv.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: http.StatusRequestTimeout, Times: 1})
		if resp := get(t, cb.String()); resp.StatusCode != http.StatusBadGateway {
			t.Errorf("callback: %d, want 502 (Fief unavailable)", resp.StatusCode)
		}
		last(t, fief.OutcomeUnavailable)
	})
	t.Run("OnLogin failed", func(t *testing.T) {
		cb := callback(t)
		failLogin = true
		defer func() { failLogin = false }()
		if resp := get(t, cb.String()); resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("callback: %d", resp.StatusCode)
		}
		last(t, fief.OutcomeError)
	})
	t.Run("not a login", func(t *testing.T) {
		e.do(t, nil, http.MethodPost, e.appURL+"/auth-callback", nil)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.logins) != 0 {
			t.Errorf("a POST to the callback reported %v", rec.logins)
		}
	})
}
