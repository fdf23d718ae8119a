package fief_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// TestDecisionTable runs every row of the reference decision table through
// Authenticated and CurrentUser, optional or not, over real HTTP.
func TestDecisionTable(t *testing.T) {
	e := newEnv(t)
	a := e.auth(t, fief.WithUserInfoCache(memCache(t, 10, time.Minute)))
	mux := http.NewServeMux()
	mux.Handle("/token", a.Authenticated(mwRouteOpts()...)(mwEcho))
	mux.Handle("/token-optional", a.Authenticated(mwRouteOpts(fief.Optional())...)(mwEcho))
	mux.Handle("/user", a.CurrentUser(mwRouteOpts()...)(mwEcho))
	mux.Handle("/user-optional", a.CurrentUser(mwRouteOpts(fief.Optional())...)(mwEcho))
	app := httptest.NewServer(mux)
	defer app.Close()

	valid := mwAnswer{200, "", "user=" + e.user.ID}
	validUser := mwAnswer{200, "", "user=" + e.user.ID + " email=anne@bretagne.duchy"}
	other := fieftest.GenerateKey(2048)
	tests := []struct {
		name     string
		header   string   // Authorization header; "" = none
		strict   mwAnswer // Authenticated and CurrentUser
		optional mwAnswer
	}{
		{"no token", "", ansNoToken, ansAnonymous},
		{"not a bearer header", "Basic YW5uZTpoZXJtaW5l", ansNoToken, ansAnonymous},
		{"bearer without token", "Bearer", ansNoToken, ansAnonymous},
		{"garbage token", "Bearer not.a.jwt", ansInvalid, ansAnonymous},
		{"signed by another key", "Bearer " + e.token(fieftest.SignWith(other)), ansInvalid, ansAnonymous},
		{"other issuer", "Bearer " + e.token(fieftest.Claim("iss", "https://evil.example")), ansInvalid, ansAnonymous},
		{"alg none", "Bearer " + e.token(fieftest.Header("alg", "none")), ansInvalid, ansAnonymous},
		{"expired", "Bearer " + e.token(fieftest.ExpiresIn(-time.Hour)), ansInvalid, ansAnonymous},
		{"too large", "Bearer " + strings.Repeat("a", fief.MaxTokenLength+1), ansInvalid, ansAnonymous},
		{"missing scope", "Bearer " + e.token(fieftest.Scopes("openid")), ansForbidden, ansForbidden},
		{"ACR too low", "Bearer " + e.token(fieftest.ACR("0")), ansForbidden, ansForbidden},
		{"missing permission", "Bearer " + e.token(fieftest.Permissions()), ansForbidden, ansForbidden},
		{"valid", "Bearer " + e.token(), valid, valid},
		{"valid, lower-case scheme", "bearer " + e.token(), valid, valid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, route := range []struct {
				path string
				want mwAnswer
			}{
				{"/token", tc.strict},
				{"/token-optional", tc.optional},
				{"/user", mwUserAnswer(tc.strict, validUser)},
				{"/user-optional", mwUserAnswer(tc.optional, validUser)},
			} {
				req, _ := http.NewRequest(http.MethodGet, app.URL+route.path, nil)
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				resp, err := app.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				route.want.check(t, route.path, resp.StatusCode, resp.Header, string(body))
			}
		})
	}
	if n := e.s.Requests(fieftest.EndpointUserinfo); n != 1 {
		t.Errorf("userinfo called %d times, want 1 (then cached)", n)
	}
}

func TestFiefUnavailable(t *testing.T) {
	e := newEnv(t)
	cache := memCache(t, 10, time.Minute)
	a := e.auth(t)
	cached := e.auth(t, fief.WithUserInfoCache(cache))
	token := e.token()

	// Fief is down before the first request: no discovery, no key set.
	e.s.SetDown(true)
	for name, h := range map[string]http.Handler{
		"Authenticated":          a.Authenticated(mwRouteOpts()...)(mwEcho),
		"Authenticated optional": a.Authenticated(mwRouteOpts(fief.Optional())...)(mwEcho),
		"CurrentUser":            a.CurrentUser(mwRouteOpts()...)(mwEcho),
		"CurrentUser optional":   cached.CurrentUser(mwRouteOpts(fief.Optional())...)(mwEcho),
	} {
		w := mwServe(h, token)
		ansUnavailable.check(t, name, w.Code, w.Header(), w.Body.String())
		if w.Header().Get("Retry-After") != "5" {
			t.Errorf("%s: Retry-After %q", name, w.Header().Get("Retry-After"))
		}
	}
	// A request without a token never needs Fief: 401 at once.
	w := mwServe(a.Authenticated()(mwEcho), "")
	ansNoToken.check(t, "no token, Fief down", w.Code, w.Header(), w.Body.String())

	// Fief is back: failures were not cached (once the 1 s retry backoff
	// of discovery has passed).
	e.s.SetDown(false)
	time.Sleep(1100 * time.Millisecond)
	w = mwServe(cached.CurrentUser()(mwEcho), token)
	if w.Code != 200 {
		t.Fatalf("Fief back: %d %s", w.Code, w.Body)
	}

	// Fief goes down again: tokens are still validated offline with the
	// cached keys, cached users are still served, the rest is 503.
	e.s.SetDown(true)
	for _, tc := range []struct {
		name string
		h    http.Handler
		want int
	}{
		{"Authenticated", a.Authenticated(mwRouteOpts()...)(mwEcho), 200},
		{"CurrentUser, cached", cached.CurrentUser()(mwEcho), 200},
		{"CurrentUser, no cache", a.CurrentUser()(mwEcho), 503},
		{"CurrentUser, Refresh", cached.CurrentUser(fief.Refresh())(mwEcho), 503},
	} {
		if w := mwServe(tc.h, token); w.Code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, w.Code, w.Body, tc.want)
		}
	}
}

// TestUserinfoAnswers: how CurrentUser answers each kind of userinfo
// failure, on strict and optional routes.
func TestUserinfoAnswers(t *testing.T) {
	e := newEnv(t, fief.WithTimeout(300*time.Millisecond))
	a := e.auth(t)
	strict := a.CurrentUser()(mwEcho)
	optional := a.CurrentUser(fief.Optional())(mwEcho)
	token := e.token()
	if w := mwServe(strict, token); w.Code != 200 { // warm discovery and keys
		t.Fatalf("warm-up: %d %s", w.Code, w.Body)
	}
	tests := []struct {
		name             string
		fault            fieftest.Fault
		strict, optional mwAnswer
	}{
		{"401", fieftest.Fault{Status: 401}, ansUnauthorized, ansAnonymous},
		{"403", fieftest.Fault{Status: 403}, ansUnauthorized, ansAnonymous},
		{"400", fieftest.Fault{Status: 400, Body: `{"detail":"bad"}`}, ansUnauthorized, ansAnonymous},
		{"408", fieftest.Fault{Status: 408}, ansUnavailable, ansUnavailable},
		{"429", fieftest.Fault{Status: 429}, ansUnavailable, ansUnavailable},
		{"500", fieftest.Fault{Status: 500, Body: "Internal Server Error: db password is hunter2"}, ansUnavailable, ansUnavailable},
		{"502", fieftest.Fault{Status: 502}, ansUnavailable, ansUnavailable},
		{"not JSON", fieftest.Fault{Status: 200, Body: "<html>hello</html>"}, ansUnavailable, ansUnavailable},
		{"JSON array", fieftest.Fault{Status: 200, Body: `[1,2]`}, ansUnavailable, ansUnavailable},
		{"another user", fieftest.Fault{Status: 200, Body: `{"sub":"4b6a1bde-0d8c-4f3d-9d32-3f1a2c0b0e11","email":"x@y"}`}, ansUnavailable, ansUnavailable},
		{"connection dropped", fieftest.Fault{Down: true}, ansUnavailable, ansUnavailable},
		{"timeout", fieftest.Fault{Latency: 5 * time.Second}, ansUnavailable, ansUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.s.SetFault(fieftest.EndpointUserinfo, tc.fault)
			defer e.s.ClearFault(fieftest.EndpointUserinfo)
			w := mwServe(strict, token)
			tc.strict.check(t, "strict", w.Code, w.Header(), w.Body.String())
			w = mwServe(optional, token)
			tc.optional.check(t, "optional", w.Code, w.Header(), w.Body.String())
		})
	}

	// A token Fief no longer accepts because the user was deleted.
	t.Run("deleted user", func(t *testing.T) {
		e.s.DeleteUser(e.user.ID)
		w := mwServe(strict, token)
		ansUnauthorized.check(t, "strict", w.Code, w.Header(), w.Body.String())
		w = mwServe(optional, token)
		ansAnonymous.check(t, "optional", w.Code, w.Header(), w.Body.String())
		// Authenticated validates offline and still accepts the token.
		if w := mwServe(a.Authenticated()(mwEcho), token); w.Code != 200 {
			t.Errorf("Authenticated: %d", w.Code)
		}
	})
}

func TestCurrentUserCache(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cache := memCache(t, 10, time.Minute)
	a := e.auth(t, fief.WithUserInfoCache(cache))
	uncached := e.auth(t)
	token := e.token()
	calls := func() int { return e.s.Requests(fieftest.EndpointUserinfo) }
	get := func(t *testing.T, h http.Handler, wantBody string) {
		t.Helper()
		w := mwServe(h, token)
		if w.Code != 200 || w.Body.String() != wantBody {
			t.Fatalf("got %d %q, want 200 %q", w.Code, w.Body, wantBody)
		}
	}
	wantBody := "user=" + e.user.ID + " email=anne@bretagne.duchy"

	t.Run("miss then hit", func(t *testing.T) {
		e.s.ResetRequests()
		h := a.CurrentUser()(mwEcho)
		get(t, h, wantBody)
		get(t, h, wantBody)
		if calls() != 1 {
			t.Fatalf("userinfo called %d times for two requests, want 1", calls())
		}
		if info, ok, _ := cache.Get(ctx, e.user.ID); !ok || info.Email() != "anne@bretagne.duchy" {
			t.Fatalf("cache holds %v, %v", info, ok)
		}
	})
	t.Run("Refresh", func(t *testing.T) {
		e.s.ResetRequests()
		h := a.CurrentUser(fief.Refresh())(mwEcho)
		get(t, h, wantBody)
		get(t, h, wantBody)
		if calls() != 2 {
			t.Fatalf("userinfo called %d times for two Refresh requests, want 2", calls())
		}
	})
	t.Run("Refresh updates the cache", func(t *testing.T) {
		if _, err := e.c.UpdateProfile(ctx, token, map[string]any{"first_name": "Claude"}); err != nil {
			t.Fatal(err)
		}
		name := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, _ := fief.UserInfoFromContext(r.Context())
			fmt.Fprint(w, u.Fields()["first_name"])
		})
		get(t, a.CurrentUser()(name), "anne") // stale, from the cache
		get(t, a.CurrentUser(fief.Refresh())(name), "Claude")
		e.s.ResetRequests()
		get(t, a.CurrentUser()(name), "Claude") // fresh, from the cache
		if calls() != 0 {
			t.Fatalf("userinfo called %d times after Refresh filled the cache", calls())
		}
	})
	t.Run("Delete evicts", func(t *testing.T) {
		e.s.ResetRequests()
		if err := cache.Delete(ctx, e.user.ID); err != nil {
			t.Fatal(err)
		}
		h := a.CurrentUser()(mwEcho)
		get(t, h, wantBody)
		get(t, h, wantBody)
		if calls() != 1 {
			t.Fatalf("userinfo called %d times after Delete, want 1", calls())
		}
	})
	t.Run("no cache", func(t *testing.T) {
		e.s.ResetRequests()
		h := uncached.CurrentUser()(mwEcho)
		get(t, h, wantBody)
		get(t, h, wantBody)
		if calls() != 2 {
			t.Fatalf("userinfo called %d times without a cache, want 2", calls())
		}
	})
	t.Run("handlers cannot corrupt the cache", func(t *testing.T) {
		vandal := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, _ := fief.UserInfoFromContext(r.Context())
			u.Fields()["first_name"] = "Evil"
			b, _ := u.MarshalJSON()
			copy(b, "[evil")
		})
		mwServe(a.CurrentUser()(vandal), token)
		mwServe(a.CurrentUser(fief.Refresh())(vandal), token)
		get(t, a.CurrentUser()(mwEcho), wantBody)
	})
}

// brokenCache fails every call.
type brokenCache struct{ gets, sets atomic.Int32 }

func (c *brokenCache) Get(context.Context, string) (fief.UserInfo, bool, error) {
	c.gets.Add(1)
	return fief.UserInfo{}, false, errors.New("redis: connection refused")
}

func (c *brokenCache) Set(context.Context, string, fief.UserInfo) error {
	c.sets.Add(1)
	return errors.New("redis: connection refused")
}

func (c *brokenCache) Delete(context.Context, string) error { return nil }

// TestCacheErrors: a failing cache is a miss, logged, never a failed request.
func TestCacheErrors(t *testing.T) {
	e := newEnv(t)
	var logs bytes.Buffer
	cache := &brokenCache{}
	a := e.auth(t, fief.WithUserInfoCache(cache), fief.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	h := a.CurrentUser()(mwEcho)
	token := e.token()
	for range 2 {
		if w := mwServe(h, token); w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	if cache.gets.Load() != 2 || cache.sets.Load() != 2 || e.s.Requests(fieftest.EndpointUserinfo) != 2 {
		t.Fatalf("gets %d sets %d userinfo %d, want 2 each", cache.gets.Load(), cache.sets.Load(), e.s.Requests(fieftest.EndpointUserinfo))
	}
	out := logs.String()
	for _, want := range []string{"level=WARN", "cache read failed", "cache write failed", "connection refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, token) {
		t.Fatal("token in the logs")
	}
}

// blockingCache misses, but only once n requests are all inside Get, so
// that they all reach the userinfo call together.
type blockingCache struct {
	n       int
	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func (c *blockingCache) Get(ctx context.Context, _ string) (fief.UserInfo, bool, error) {
	c.mu.Lock()
	if c.arrived++; c.arrived == c.n {
		close(c.all)
	}
	c.mu.Unlock()
	<-c.all
	return fief.UserInfo{}, false, nil
}

func (c *blockingCache) Set(context.Context, string, fief.UserInfo) error { return nil }

func (c *blockingCache) Delete(context.Context, string) error { return nil }

// TestConcurrentMissesShareOneCall: simultaneous cache misses of one user,
// each with its own token, make a single userinfo call, and every handler
// reads the same immutable value without racing.
func TestConcurrentMissesShareOneCall(t *testing.T) {
	const n = 20
	e := newEnv(t)
	a := e.auth(t, fief.WithUserInfoCache(&blockingCache{n: n, all: make(chan struct{})}))
	mutate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := fief.UserInfoFromContext(r.Context())
		if !ok {
			http.Error(w, "no user", 500)
			return
		}
		email := u.Email()
		u.Fields()["first_name"] = "changed" // a fresh map: no race
		fmt.Fprint(w, email)
	})
	h := a.CurrentUser()(mutate)
	if w := mwServe(a.Authenticated()(mwEcho), e.token()); w.Code != 200 { // warm keys
		t.Fatal(w.Code)
	}
	// Hold the userinfo mwAnswer so that every request joins the first call.
	e.s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Latency: 200 * time.Millisecond})
	var wg sync.WaitGroup
	for i := range n {
		token := e.token(fieftest.Claim("jti", fmt.Sprint(i)))
		wg.Go(func() {
			if w := mwServe(h, token); w.Code != 200 || w.Body.String() != "anne@bretagne.duchy" {
				t.Errorf("request %d: %d %q", i, w.Code, w.Body)
			}
		})
	}
	wg.Wait()
	if calls := e.s.Requests(fieftest.EndpointUserinfo); calls != 1 {
		t.Fatalf("userinfo called %d times for %d concurrent misses, want 1", calls, n)
	}
}

// TestParallelRequests hammers both middlewares from 200 goroutines over
// real HTTP (run it with -race).
func TestParallelRequests(t *testing.T) {
	e := newEnv(t)
	a := e.auth(t, fief.WithUserInfoCache(memCache(t, 100, time.Minute)))
	mux := http.NewServeMux()
	mux.Handle("GET /token", a.Authenticated(mwRouteOpts()...)(mwEcho))
	mux.Handle("GET /user", a.CurrentUser(mwRouteOpts()...)(mwEcho))
	app := httptest.NewServer(mux)
	defer app.Close()

	const users = 10
	tokens := make([]string, users)
	ids := make([]string, users)
	for i := range users {
		u := addNamedUser(e.s, fmt.Sprint("user", i), "castles:read")
		ids[i] = u.ID
		tokens[i] = e.s.AccessToken(u.ID, fieftest.Scopes("openid", "castles"), fieftest.ACR("1"))
	}
	forbidden := e.s.AccessToken(ids[0], fieftest.Scopes("openid"), fieftest.ACR("1"))
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			u := (i / 5) % users
			path, token, want, body := "/token", tokens[u], 200, "user="+ids[u]
			switch i % 5 {
			case 1, 2:
				path, body = "/user", fmt.Sprintf("user=%s email=user%d@bretagne.duchy", ids[u], u)
			case 3:
				token, want, body = "garbage", 401, `{"detail":"Unauthorized"}`
			case 4:
				token, want, body = forbidden, 403, `{"detail":"Forbidden"}`
			}
			req, _ := http.NewRequest(http.MethodGet, app.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := app.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want || string(got) != body {
				t.Errorf("request %d %s: %d %q, want %d %q", i, path, resp.StatusCode, got, want, body)
			}
		})
	}
	wg.Wait()
	// 80 CurrentUser requests for 10 users: the cache and the shared calls
	// keep the userinfo calls near one per user.
	if calls := e.s.Requests(fieftest.EndpointUserinfo); calls < users || calls > 40 {
		t.Errorf("userinfo called %d times for %d users", calls, users)
	}
}

func TestExtractorsThroughMiddleware(t *testing.T) {
	e := newEnv(t)
	token := e.token()
	errCustom := errors.New("two tokens in the session")
	var gotErr error
	capture := fief.WithUnauthorizedHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		gotErr = err
		w.WriteHeader(401)
	})
	tests := []struct {
		name      string
		extractor fief.Extractor
		prepare   func(r *http.Request)
		want      int
		wantErr   error // passed to the unauthorized handler
	}{
		{"cookie", fief.CookieToken("fief_token"), func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "fief_token", Value: token})
		}, 200, nil},
		{"cookie missing", fief.CookieToken("fief_token"), func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "other", Value: token})
			r.Header.Set("Authorization", "Bearer "+token) // not looked at
		}, 401, fief.ErrNoToken},
		{"cookie too large", fief.CookieToken("fief_token"), func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "fief_token", Value: strings.Repeat("a", fief.MaxTokenLength+1)})
		}, 401, fief.ErrTokenTooLarge},
		{"query", fief.QueryToken("access_token"), func(r *http.Request) {
			r.URL.RawQuery = "access_token=" + token
		}, 200, nil},
		{"query twice", fief.QueryToken("access_token"), func(r *http.Request) {
			r.URL.RawQuery = "access_token=" + token + "&access_token=" + token
		}, 401, fief.ErrMalformedAuthorization},
		{"first of: header wins", fief.FirstToken(fief.BearerToken(), fief.CookieToken("fief_token")), func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+token)
			r.AddCookie(&http.Cookie{Name: "fief_token", Value: "garbage"})
		}, 200, nil},
		{"first of: cookie when no header", fief.FirstToken(fief.BearerToken(), fief.CookieToken("fief_token")), func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "fief_token", Value: token})
		}, 200, nil},
		{"first of: error stops", fief.FirstToken(fief.BearerToken(), fief.CookieToken("fief_token")), func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer "+token)
			r.Header.Add("Authorization", "Bearer "+token)
			r.AddCookie(&http.Cookie{Name: "fief_token", Value: token})
		}, 401, fief.ErrMalformedAuthorization},
		{"custom", fief.ExtractorFunc(func(r *http.Request) (string, error) { return r.Header.Get("X-Token"), nil }), func(r *http.Request) {
			r.Header.Set("X-Token", token)
		}, 200, nil},
		{"custom error", fief.ExtractorFunc(func(*http.Request) (string, error) { return token, errCustom }), nil, 401, errCustom},
		{"custom oversized token", fief.ExtractorFunc(func(*http.Request) (string, error) {
			return strings.Repeat("a", fief.MaxTokenLength+1), nil
		}), nil, 401, fief.ErrTokenTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := e.auth(t, fief.WithExtractor(tc.extractor), capture)
			r := httptest.NewRequest(http.MethodGet, "/castles", nil)
			if tc.prepare != nil {
				tc.prepare(r)
			}
			gotErr = nil
			w := httptest.NewRecorder()
			a.Authenticated(mwRouteOpts()...)(mwEcho).ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d %s, want %d", w.Code, w.Body, tc.want)
			}
			if tc.wantErr != nil && !errors.Is(gotErr, tc.wantErr) {
				t.Fatalf("unauthorized handler got %v, want %v", gotErr, tc.wantErr)
			}
			if tc.want == 401 && !errors.Is(gotErr, fief.ErrNoToken) && !errors.Is(gotErr, fief.ErrAccessTokenInvalid) {
				t.Fatalf("extractor error %v does not wrap ErrAccessTokenInvalid", gotErr)
			}
			// Optional routes let extractor failures through anonymously.
			w = httptest.NewRecorder()
			a.Authenticated(mwRouteOpts(fief.Optional())...)(mwEcho).ServeHTTP(w, r)
			if tc.want == 401 && (w.Code != 200 || w.Body.String() != "anonymous") {
				t.Fatalf("optional: %d %q", w.Code, w.Body)
			}
		})
	}
}

// TestCustomHandlers: a web application redirects to Fief's login page, hides
// forbidden resources and has its own error page.
func TestCustomHandlers(t *testing.T) {
	e := newEnv(t)
	const callback = "https://app.bretagne.duchy/auth-callback"
	var unauthorizedErr, forbiddenErr, unavailableErr error
	a := e.auth(t,
		fief.WithExtractor(fief.CookieToken("fief_token")),
		fief.WithUnauthorizedHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			unauthorizedErr = err
			authURL, err := e.c.AuthURL(r.Context(), callback, fief.AuthURLOptions{Scopes: []string{"openid"}})
			if err != nil {
				http.Error(w, "login unavailable", http.StatusServiceUnavailable)
				return
			}
			http.Redirect(w, r, authURL, http.StatusTemporaryRedirect)
		}),
		fief.WithForbiddenHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			forbiddenErr = err
			http.NotFound(w, r)
		}),
		fief.WithUnavailableHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			unavailableErr = err
			http.Error(w, "try again", http.StatusBadGateway)
		}),
	)
	h := a.CurrentUser(mwRouteOpts()...)(mwEcho)
	withCookie := func(token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/castles", nil)
		if token != "" {
			r.AddCookie(&http.Cookie{Name: "fief_token", Value: token})
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	wantLocation, err := e.c.AuthURL(context.Background(), callback, fief.AuthURLOptions{Scopes: []string{"openid"}})
	if err != nil {
		t.Fatal(err)
	}

	w := withCookie("")
	if w.Code != http.StatusTemporaryRedirect || w.Header().Get("Location") != wantLocation {
		t.Fatalf("no token: %d Location %q, want 307 %q", w.Code, w.Header().Get("Location"), wantLocation)
	}
	if !errors.Is(unauthorizedErr, fief.ErrNoToken) {
		t.Fatalf("no token: handler got %v", unauthorizedErr)
	}
	w = withCookie(e.token(fieftest.ExpiresIn(-time.Hour)))
	if w.Code != http.StatusTemporaryRedirect || !errors.Is(unauthorizedErr, fief.ErrAccessTokenExpired) {
		t.Fatalf("expired: %d, handler got %v", w.Code, unauthorizedErr)
	}
	w = withCookie(e.token(fieftest.Permissions()))
	if w.Code != http.StatusNotFound || !errors.Is(forbiddenErr, fief.ErrAccessTokenMissingPermission) {
		t.Fatalf("forbidden: %d, handler got %v", w.Code, forbiddenErr)
	}
	e.s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: 503})
	w = withCookie(e.token())
	var re *fief.RequestError
	if w.Code != http.StatusBadGateway || !errors.As(unavailableErr, &re) || re.StatusCode != 503 {
		t.Fatalf("unavailable: %d, handler got %v", w.Code, unavailableErr)
	}
	e.s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: 401})
	w = withCookie(e.token())
	if w.Code != http.StatusTemporaryRedirect || !errors.Is(unauthorizedErr, fief.ErrAccessTokenInvalid) || !errors.As(unauthorizedErr, &re) || re.StatusCode != 401 {
		t.Fatalf("userinfo 401: %d, handler got %v", w.Code, unauthorizedErr)
	}

	// The unavailable handler gets discovery failures too.
	down := newEnv(t)
	down.s.SetDown(true)
	var gotErr error
	a2 := down.auth(t, fief.WithUnavailableHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		gotErr = err
		w.WriteHeader(http.StatusBadGateway)
	}))
	if w := mwServe(a2.Authenticated()(mwEcho), down.token()); w.Code != http.StatusBadGateway || !errors.Is(gotErr, fief.ErrDiscovery) {
		t.Fatalf("discovery failure: %d, handler got %v", w.Code, gotErr)
	}

	// An http.Handler as an error handler.
	a3 := e.auth(t, fief.WithUnauthorizedHandler(fief.ErrorHandlerFunc(func(w http.ResponseWriter, r *http.Request, _ error) {
		http.NotFoundHandler().ServeHTTP(w, r)
	})))
	if w := mwServe(a3.Authenticated()(mwEcho), ""); w.Code != http.StatusNotFound {
		t.Fatalf("http.Handler adapter: %d", w.Code)
	}
}

// TestServeMuxPatterns: the middleware works around and inside Go 1.22
// ServeMux patterns, and path values survive it.
func TestServeMuxPatterns(t *testing.T) {
	e := newEnv(t)
	a := e.auth(t)
	item := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := fief.AccessTokenInfoFromContext(r.Context())
		who := "anonymous"
		if ok {
			who = info.UserID()
		}
		fmt.Fprintf(w, "item %s for %s", r.PathValue("id"), who)
	})
	inner := http.NewServeMux()
	inner.Handle("GET /items/{id}", a.Authenticated(fief.RequireScopes("castles"))(item))
	outer := http.NewServeMux()
	outer.Handle("GET /items/{id}", item)
	for name, h := range map[string]http.Handler{
		"inside the mux": inner,
		"around the mux": a.Authenticated(fief.Optional())(outer),
		"inside and out": a.Authenticated(fief.Optional())(inner),
	} {
		t.Run(name, func(t *testing.T) {
			app := httptest.NewServer(h)
			defer app.Close()
			req, _ := http.NewRequest(http.MethodGet, app.URL+"/items/42", nil)
			req.Header.Set("Authorization", "Bearer "+e.token())
			resp, err := app.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := "item 42 for " + e.user.ID; resp.StatusCode != 200 || string(body) != want {
				t.Fatalf("%d %q, want %q", resp.StatusCode, body, want)
			}
		})
	}
	// The mux still answers 405 for another method, before authentication.
	w := httptest.NewRecorder()
	inner.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/items/42", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", w.Code)
	}
}

// TestRequestNotMutated: the handler gets a copy of the request with a new
// context; the caller's request is untouched.
func TestRequestNotMutated(t *testing.T) {
	e := newEnv(t)
	a := e.auth(t, fief.WithUserInfoCache(memCache(t, 10, time.Minute)))
	for name, mw := range map[string]func(http.Handler) http.Handler{
		"Authenticated": a.Authenticated(),
		"CurrentUser":   a.CurrentUser(),
	} {
		r := httptest.NewRequest(http.MethodGet, "/castles", nil)
		r.Header.Set("Authorization", "Bearer "+e.token())
		ctx := r.Context()
		var inner *http.Request
		mw(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { inner = r })).ServeHTTP(httptest.NewRecorder(), r)
		if inner == nil || inner == r {
			t.Fatalf("%s: handler got the caller's request", name)
		}
		if r.Context() != ctx {
			t.Fatalf("%s: the caller's request context changed", name)
		}
		if _, ok := fief.AccessTokenInfoFromContext(r.Context()); ok {
			t.Fatalf("%s: info in the caller's context", name)
		}
		if _, ok := fief.AccessTokenInfoFromContext(inner.Context()); !ok {
			t.Fatalf("%s: no info in the handler's context", name)
		}
	}
	if _, ok := fief.AccessTokenInfoFromContext(context.Background()); ok {
		t.Fatal("info in an empty context")
	}
	if _, ok := fief.UserInfoFromContext(context.Background()); ok {
		t.Fatal("user info in an empty context")
	}
}

// TestLogs: Fief failures are logged at Warn, refusals at Debug, and no log
// line ever holds a token.
func TestLogs(t *testing.T) {
	e := newEnv(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := e.auth(t, fief.WithLogger(logger))
	h := a.CurrentUser(mwRouteOpts()...)(mwEcho)
	tokens := []string{
		e.token(),
		e.token(fieftest.ExpiresIn(-time.Hour)),
		e.token(fieftest.Scopes("openid")),
		e.token(fieftest.SignWith(fieftest.GenerateKey(2048))),
	}
	for _, tok := range tokens {
		mwServe(h, tok)
	}
	e.s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: 500})
	mwServe(h, tokens[0])
	e.s.SetDown(true)
	mwServe(h, tokens[0])

	out := logs.String()
	for _, tok := range tokens {
		// Any 20-byte piece of a token's signature or payload would do.
		for _, part := range strings.Split(tok, ".") {
			if len(part) >= 20 && strings.Contains(out, part[len(part)-20:]) {
				t.Fatalf("token text in the logs:\n%s", out)
			}
		}
	}
	for _, want := range []string{
		`"level":"WARN","msg":"fief: cannot authenticate request: Fief unavailable"`,
		`"level":"DEBUG","msg":"fief: request unauthorized"`,
		`"level":"DEBUG","msg":"fief: request forbidden"`,
		`access token expired`,
		`userinfo request failed with status 500`,
		`"path":"/castles"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
	// Without WithLogger nothing is logged and nothing breaks.
	if w := mwServe(e.auth(t).Authenticated()(mwEcho), "garbage"); w.Code != 401 {
		t.Fatal(w.Code)
	}
}

func TestConstruction(t *testing.T) {
	e := newEnv(t)
	if _, err := fief.NewAuthenticator(nil); err == nil {
		t.Error("NewAuthenticator(nil) succeeded")
	}
	for name, opt := range map[string]fief.AuthOption{
		"nil option":                nil,
		"WithExtractor(nil)":        fief.WithExtractor(nil),
		"WithUserInfoCache(nil)":    fief.WithUserInfoCache(nil),
		"WithUnauthorizedHandler":   fief.WithUnauthorizedHandler(nil),
		"WithForbiddenHandler(nil)": fief.WithForbiddenHandler(nil),
		"WithUnavailableHandler":    fief.WithUnavailableHandler(nil),
		"WithLogger(nil)":           fief.WithLogger(nil),
	} {
		if _, err := fief.NewAuthenticator(e.c, opt); err == nil {
			t.Errorf("%s: NewAuthenticator succeeded", name)
		}
	}
	a := e.auth(t)
	for name, f := range map[string]func(){
		"Authenticated(Refresh())":     func() { a.Authenticated(fief.Refresh()) },
		"Authenticated(nil)":           func() { a.Authenticated(nil) },
		"CurrentUser(nil Requirement)": func() { a.CurrentUser(fief.Requirement(nil)) },
		"Authenticated()(nil)":         func() { a.Authenticated()(nil) },
		"CurrentUser()(nil)":           func() { a.CurrentUser()(nil) },
		"CookieToken(\"\")":            func() { fief.CookieToken("") },
		"QueryToken(\"\")":             func() { fief.QueryToken("") },
		"FirstToken(nil)":              func() { fief.FirstToken(fief.BearerToken(), nil) },
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
	// Construction makes no request.
	if n := e.s.Requests(fieftest.EndpointDiscovery); n != 0 {
		t.Errorf("%d discovery requests at construction", n)
	}
}
