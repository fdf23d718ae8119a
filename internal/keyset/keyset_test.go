package keyset

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var testPub = func() *rsa.PublicKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return &k.PublicKey
}()

// source serves a mutable list of key IDs and counts fetches.
type source struct {
	mu      sync.Mutex
	kids    []string
	err     error
	delay   time.Duration
	fetches atomic.Int32
}

func (s *source) fetch(ctx context.Context) ([]Key, error) {
	s.fetches.Add(1)
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	keys := make([]Key, len(s.kids))
	for i, k := range s.kids {
		keys[i] = Key{ID: k, Public: testPub}
	}
	return keys, nil
}

func (s *source) set(err error, kids ...string) {
	s.mu.Lock()
	s.kids, s.err = kids, err
	s.mu.Unlock()
}

func TestGetFetchesOnceAndCaches(t *testing.T) {
	src := &source{kids: []string{"a"}}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	set := New(Config{Fetch: src.fetch, Cooldown: time.Minute, Now: clk.Now})
	for i := 0; i < 10; i++ {
		if _, err := set.Get(context.Background(), "a", true); err != nil {
			t.Fatal(err)
		}
	}
	if n := src.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
}

func TestUnknownKidRefreshesOncePerCooldown(t *testing.T) {
	src := &source{kids: []string{"a"}}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	set := New(Config{Fetch: src.fetch, Cooldown: time.Minute, Now: clk.Now})
	ctx := context.Background()
	if _, err := set.Get(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	// Rotation: "b" appears; the first request naming it refreshes.
	src.set(nil, "a", "b")
	if _, err := set.Get(ctx, "b", true); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := src.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	// A flood of random kids inside the cooldown: no fetch, immediate failure.
	for i := 0; i < 1000; i++ {
		if _, err := set.Get(ctx, "random", true); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("err = %v, want ErrUnknownKey", err)
		}
	}
	if n := src.fetches.Load(); n != 2 {
		t.Fatalf("fetches after flood = %d, want 2", n)
	}
	// After the cooldown one more fetch is allowed, then the cooldown again.
	clk.Add(time.Minute)
	set.Get(ctx, "random", true)
	set.Get(ctx, "random2", true)
	if n := src.fetches.Load(); n != 3 {
		t.Fatalf("fetches after cooldown = %d, want 3", n)
	}
	// Known keys never wait nor fetch.
	if _, err := set.Get(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
}

func TestNoRefreshWhenNotAllowed(t *testing.T) {
	src := &source{kids: []string{"a"}}
	set := New(Config{Fetch: src.fetch, Cooldown: 0})
	set.Get(context.Background(), "a", true)
	if _, err := set.Get(context.Background(), "zzz", false); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v", err)
	}
	if n := src.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
}

func TestRemovedKeyDisappearsAfterRefresh(t *testing.T) {
	src := &source{kids: []string{"a"}}
	set := New(Config{Fetch: src.fetch, Cooldown: 0})
	ctx := context.Background()
	set.Get(ctx, "a", true)
	src.set(nil, "b")
	if _, err := set.Get(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	if _, err := set.Get(ctx, "a", false); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("removed key still served: %v", err)
	}
}

func TestConcurrentMissesCoalesce(t *testing.T) {
	src := &source{kids: []string{"a"}, delay: 50 * time.Millisecond}
	set := New(Config{Fetch: src.fetch, Cooldown: time.Hour})
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := set.Get(ctx, "a", true); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := src.fetches.Load(); n != 1 {
		t.Fatalf("first fetch: %d fetches, want 1", n)
	}
	src.set(nil, "a", "b")
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			set.Get(ctx, "b", true)
		}()
	}
	wg.Wait()
	if n := src.fetches.Load(); n != 2 {
		t.Fatalf("refresh: %d fetches, want 2", n)
	}
}

func TestFiefDownKeepsCachedKeys(t *testing.T) {
	src := &source{kids: []string{"a"}}
	set := New(Config{Fetch: src.fetch, Cooldown: 0})
	ctx := context.Background()
	set.Get(ctx, "a", true)
	src.set(errors.New("connection refused"))
	if _, err := set.Get(ctx, "new", true); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown kid with Fief down: %v", err)
	}
	if _, err := set.Get(ctx, "a", true); err != nil {
		t.Fatalf("cached key with Fief down: %v", err)
	}
	if keys, err := set.All(ctx); err != nil || len(keys) != 1 {
		t.Fatalf("All = %v, %v", keys, err)
	}
}

func TestFirstFetchFailureIsRetriedAfterBackoff(t *testing.T) {
	boom := errors.New("connection refused")
	src := &source{err: boom}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	set := New(Config{Fetch: src.fetch, Cooldown: time.Hour, Now: clk.Now})
	ctx := context.Background()
	if _, err := set.All(ctx); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	// Within the backoff the error is answered from memory.
	if _, err := set.Get(ctx, "a", true); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if n := src.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	src.set(nil, "a")
	clk.Add(retryBackoff)
	if _, err := set.Get(ctx, "a", true); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestWaiterHonoursContext(t *testing.T) {
	src := &source{kids: []string{"a"}, delay: 200 * time.Millisecond}
	set := New(Config{Fetch: src.fetch})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := set.Get(ctx, "a", true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	// The detached fetch still completes for later callers.
	time.Sleep(300 * time.Millisecond)
	if _, err := set.Get(context.Background(), "a", false); err != nil {
		t.Fatal(err)
	}
	if n := src.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
}

func TestVersionAndHolds(t *testing.T) {
	src := &source{kids: []string{"a"}}
	set := New(Config{Fetch: src.fetch, Cooldown: 0})
	ctx := context.Background()
	if set.Version() != 0 || set.Holds(Key{ID: "a", Public: testPub}) {
		t.Fatal("empty set")
	}
	k, _ := set.Get(ctx, "a", true)
	v1 := set.Version()
	if v1 == 0 || !set.Holds(k) || !set.Holds(Key{Public: testPub}) {
		t.Fatal("after first fetch")
	}
	src.set(nil, "b")
	set.Get(ctx, "b", true)
	if set.Version() == v1 {
		t.Fatal("version unchanged after refresh")
	}
	if set.Holds(k) {
		t.Fatal("removed key still held")
	}
}

func TestStaleSetRefreshesInBackground(t *testing.T) {
	src := &source{kids: []string{"a"}}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	set := New(Config{Fetch: src.fetch, Cooldown: time.Minute, MaxAge: time.Hour, Now: clk.Now})
	ctx := context.Background()
	if _, err := set.Get(ctx, "a", false); err != nil {
		t.Fatal(err)
	}
	// Fief removes key a. Within MaxAge nothing is fetched.
	src.set(nil, "b")
	clk.Add(59 * time.Minute)
	if _, err := set.Get(ctx, "a", false); err != nil {
		t.Fatalf("fresh set: %v", err)
	}
	if n := src.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	// Past MaxAge the next use still answers from the current keys, at
	// once, and starts one refresh in the background.
	clk.Add(time.Minute)
	if _, err := set.Get(ctx, "a", false); err != nil {
		t.Fatalf("stale set answered with an error: %v", err)
	}
	for i := 0; i < 10; i++ {
		set.All(ctx) // a refresh is already running or just done: no other
	}
	waitFor(t, func() bool { return set.Version() == 2 })
	if n := src.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	if _, err := set.Get(ctx, "a", false); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("removed key still trusted: %v", err)
	}
	// A failed background refresh keeps the keys and waits for the cooldown.
	src.set(errors.New("down"))
	clk.Add(time.Hour)
	set.Get(ctx, "b", false)
	waitFor(t, func() bool { return src.fetches.Load() == 3 })
	for i := 0; i < 10; i++ {
		if _, err := set.Get(ctx, "b", false); err != nil {
			t.Fatalf("keys lost after a failed refresh: %v", err)
		}
	}
	if n := src.fetches.Load(); n != 3 {
		t.Fatalf("fetches = %d within the cooldown, want 3", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
