package fief

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func refreshKeyOf(i int) [32]byte { return sha256.Sum256(fmt.Append(nil, i)) }

// The group makes one call per key for concurrent callers, remembers
// outcomes (not errors) for RefreshReuseWindow, bounded in number.
func TestRefreshGroup(t *testing.T) {
	var g refreshGroup
	g.recent.Max = maxRecentRefreshes // as NewLoginFlow bounds it
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }

	var calls atomic.Int32
	release := make(chan struct{})
	fn := func(context.Context) (*refreshOutcome, error) {
		calls.Add(1)
		<-release
		return &refreshOutcome{AccessToken: "a"}, nil
	}
	var wg sync.WaitGroup
	outs := make([]*refreshOutcome, 20)
	for i := range outs {
		wg.Go(func() { outs[i], _ = g.do(t.Context(), refreshKeyOf(0), now, fn) })
	}
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the other callers join the call
	close(release)
	wg.Wait()
	for _, o := range outs {
		if o != outs[0] || o.AccessToken != "a" {
			t.Fatalf("outcomes differ: %v", outs)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("%d calls, want 1", calls.Load())
	}
	// Remembered for the window, then gone.
	if o, _ := g.do(t.Context(), refreshKeyOf(0), now, fn); o != outs[0] || calls.Load() != 1 {
		t.Errorf("not remembered")
	}
	advance(RefreshReuseWindow)
	if _, _ = g.do(t.Context(), refreshKeyOf(0), now, fn); calls.Load() != 2 {
		t.Errorf("remembered beyond the window")
	}

	// Errors are not remembered.
	fail := func(context.Context) (*refreshOutcome, error) { calls.Add(1); return nil, errors.New("down") }
	calls.Store(0)
	for range 2 {
		if _, err := g.do(t.Context(), refreshKeyOf(1), now, fail); err == nil {
			t.Error("no error")
		}
	}
	if calls.Load() != 2 {
		t.Errorf("%d calls after two failures, want 2", calls.Load())
	}

	// Bounded: the oldest are forgotten first.
	ok := func(context.Context) (*refreshOutcome, error) { return &refreshOutcome{Refused: true}, nil }
	for i := range maxRecentRefreshes + 100 {
		_, _ = g.do(t.Context(), refreshKeyOf(10+i), now, ok)
	}
	g.mu.Lock()
	n := g.recent.Len()
	_, oldest := g.recent.Get(refreshKeyOf(10), now())
	_, newest := g.recent.Get(refreshKeyOf(10+maxRecentRefreshes+99), now())
	g.mu.Unlock()
	if n > maxRecentRefreshes || oldest || !newest {
		t.Errorf("%d outcomes remembered, oldest %v, newest %v; want at most %d, the newest", n, oldest, newest, maxRecentRefreshes)
	}
}

// NewLoginFlow bounds the memories of its flow: the consumed flows and the
// remembered refreshes.
func TestLoginFlowBounds(t *testing.T) {
	c, err := New("https://fief.example.com", "id", "secret")
	if err != nil {
		t.Fatal(err)
	}
	for _, refresh := range []bool{false, true} {
		cfg := LoginFlowConfig{RedirectURI: "https://app.example.com/cb", RefreshSessions: refresh, CookieKey: make([]byte, 32)}
		f, err := NewLoginFlow(c, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if f.consumed.set.Max != maxConsumed || f.refreshes.recent.Max != maxRecentRefreshes {
			t.Errorf("refresh %v: bounds %d and %d, want %d and %d", refresh, f.consumed.set.Max, f.refreshes.recent.Max, maxConsumed, maxRecentRefreshes)
		}
	}
}

// A caller that goes away does not stop the refresh: its result is
// remembered for the next request.
func TestRefreshGroupOutlivesCallers(t *testing.T) {
	var g refreshGroup
	release := make(chan struct{})
	var sawCancel atomic.Bool
	fn := func(ctx context.Context) (*refreshOutcome, error) {
		<-release
		sawCancel.Store(ctx.Err() != nil)
		return &refreshOutcome{AccessToken: "a"}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, err := g.do(ctx, refreshKeyOf(0), time.Now, fn); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the caller's cancellation", err)
	}
	close(release)
	for {
		g.mu.Lock()
		_, ok := g.recent.Get(refreshKeyOf(0), time.Now())
		g.mu.Unlock()
		if ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if sawCancel.Load() {
		t.Error("the refresh's context was canceled with its caller's")
	}
	o, err := g.do(context.Background(), refreshKeyOf(0), time.Now, fn)
	if err != nil || o.AccessToken != "a" {
		t.Errorf("next caller: %v, %v", o, err)
	}
}

// A panic in the refresh (a coordinator's, a cache's) re-panics in the
// callers, not in the refresh's goroutine.
func TestRefreshGroupPanic(t *testing.T) {
	var g refreshGroup
	defer func() {
		if p, ok := recover().(*refreshPanic); !ok || p.value != "boom" {
			t.Errorf("recovered %v, want the refresh's panic", p)
		}
	}()
	_, _ = g.do(context.Background(), refreshKeyOf(0), time.Now, func(context.Context) (*refreshOutcome, error) { panic("boom") })
	t.Error("no panic")
}
