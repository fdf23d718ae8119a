package fiefotel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefotel"
	"github.com/fief-go/fief/fieftest"
	"go.opentelemetry.io/otel/metric/noop"
)

// The cost of the hooks on the request path, in one run:
//
//	go test -run '^$' -bench . -benchmem -count 5 .

// cachedRequest is one request through Authenticated with a token the
// verified-token cache knows: the middleware's hot path.
type cachedRequest struct {
	h http.Handler
	r *http.Request
	w *httptest.ResponseRecorder
}

type served struct{ n int64 }

func (s *served) ServeHTTP(http.ResponseWriter, *http.Request) { s.n++ }

// newCachedRequest returns the hot path of a client with opts, warmed.
func newCachedRequest(tb testing.TB, s *fieftest.Server, tok string, next http.Handler, opts ...fief.Option) *cachedRequest {
	tb.Helper()
	c := newClient(tb, s, opts...)
	a := newAuthenticator(tb, c)
	cr := &cachedRequest{
		h: a.Authenticated(fief.RequireScopes("castles"))(next),
		r: httptest.NewRequest(http.MethodGet, "/castles", nil),
		w: httptest.NewRecorder(),
	}
	cr.r.Header.Set("Authorization", "Bearer "+tok)
	cr.h.ServeHTTP(cr.w, cr.r) // first sight
	if cr.w.Code != http.StatusOK {
		tb.Fatalf("status %d", cr.w.Code)
	}
	return cr
}

// hookSetups are the configurations the benchmarks compare: no hooks,
// hooks that do nothing, fiefotel on OpenTelemetry's no-op provider, and
// fiefotel on the SDK.
func hookSetups(tb testing.TB) []struct {
	name string
	opts []fief.Option
} {
	noopHooks, err := fiefotel.NewHooks(fiefotel.WithMeterProvider(noop.NewMeterProvider()))
	if err != nil {
		tb.Fatal(err)
	}
	return []struct {
		name string
		opts []fief.Option
	}{
		{"no-hooks", nil},
		{"empty-funcs", []fief.Option{fief.WithHooks(&fief.Hooks{
			TokenChecked:      func(context.Context, fief.TokenCheck) {},
			Fetched:           func(context.Context, fief.Fetch) {},
			UserInfoFetched:   func(context.Context, fief.UserInfoFetch) {},
			UserInfoCacheRead: func(context.Context, fief.CacheRead) {},
			LoginDone:         func(context.Context, fief.LoginResult) {},
		})}},
		{"fiefotel-noop-provider", []fief.Option{fief.WithHooks(noopHooks)}},
		{"fiefotel-sdk", []fief.Option{fief.WithHooks(newMeter(tb).hooks)}},
	}
}

func benchFixture(tb testing.TB) (*fieftest.Server, string) {
	s := newServer(tb)
	u := addUser(s)
	return s, s.AccessToken(u.ID, fieftest.Scopes("openid", "castles"))
}

// BenchmarkCachedRequest: the middleware's cached request with each hook
// setup, serially and from parallel goroutines.
func BenchmarkCachedRequest(b *testing.B) {
	s, tok := benchFixture(b)
	for _, setup := range hookSetups(b) {
		b.Run(setup.name, func(b *testing.B) {
			next := &served{}
			cr := newCachedRequest(b, s, tok, next, setup.opts...)
			next.n = 0
			b.ReportAllocs()
			for b.Loop() {
				cr.h.ServeHTTP(cr.w, cr.r)
			}
			if next.n != int64(b.N) {
				b.Fatalf("%d of %d requests served", next.n, b.N)
			}
		})
	}
	for _, setup := range hookSetups(b) {
		b.Run(setup.name+"-parallel", func(b *testing.B) {
			var total atomic.Int64
			h := newCachedRequest(b, s, tok, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				total.Add(1)
			}), setup.opts...).h
			total.Store(0)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := httptest.NewRequest(http.MethodGet, "/castles", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				w := httptest.NewRecorder()
				for pb.Next() {
					h.ServeHTTP(w, r)
				}
			})
			if total.Load() != int64(b.N) {
				b.Fatalf("%d of %d requests served", total.Load(), b.N)
			}
		})
	}
}

// BenchmarkTokenChecked: the TokenChecked hook alone, on the SDK.
func BenchmarkTokenChecked(b *testing.B) {
	hooks := newMeter(b).hooks
	ctx := context.Background()
	e := fief.TokenCheck{Outcome: fief.OutcomeOK, Cached: true, Duration: 300 * time.Nanosecond}
	b.ReportAllocs()
	for b.Loop() {
		hooks.TokenChecked(ctx, e)
	}
}

// TestAllocs: the request-path hooks allocate nothing on the SDK, and a
// cached request costs with fiefotel's hooks the two allocations it costs
// without hooks (the request's copy and its context value).
func TestAllocs(t *testing.T) {
	hooks := newMeter(t).hooks
	ctx := context.Background()
	for name, f := range map[string]func(){
		"TokenChecked": func() {
			hooks.TokenChecked(ctx, fief.TokenCheck{Outcome: fief.OutcomeInsufficient, Cached: true, Duration: time.Microsecond})
		},
		"UserInfoCacheRead": func() { hooks.UserInfoCacheRead(ctx, fief.CacheRead{Result: "hit"}) },
		"UserInfoFetched": func() {
			hooks.UserInfoFetched(ctx, fief.UserInfoFetch{Outcome: fief.OutcomeOK, Duration: time.Millisecond})
		},
		"Fetched": func() {
			hooks.Fetched(ctx, fief.Fetch{Resource: "discovery", URL: "https://fief.example/x", Outcome: fief.OutcomeOK, Duration: time.Millisecond})
		},
		"LoginDone": func() { hooks.LoginDone(ctx, fief.LoginResult{Outcome: fief.OutcomeDenied}) },
	} {
		f() // the data point's first measurement creates it
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations per call", name, n)
		}
	}

	s, tok := benchFixture(t)
	for _, setup := range hookSetups(t) {
		cr := newCachedRequest(t, s, tok, &served{}, setup.opts...)
		if n := testing.AllocsPerRun(100, func() { cr.h.ServeHTTP(cr.w, cr.r) }); n != 2 {
			t.Errorf("%s: %v allocations per cached request, want 2", setup.name, n)
		}
	}
}
