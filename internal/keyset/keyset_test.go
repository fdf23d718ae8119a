package keyset

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strconv"
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
		if _, err := set.Get(context.Background(), "a", yes); err != nil {
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
	if _, err := set.Get(ctx, "a", yes); err != nil {
		t.Fatal(err)
	}
	// Rotation: "b" appears; the first request naming it refreshes.
	src.set(nil, "a", "b")
	if _, err := set.Get(ctx, "b", yes); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := src.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	// A flood of random kids inside the cooldown: no fetch, immediate failure.
	for i := 0; i < 1000; i++ {
		if _, err := set.Get(ctx, "random", yes); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("err = %v, want ErrUnknownKey", err)
		}
	}
	if n := src.fetches.Load(); n != 2 {
		t.Fatalf("fetches after flood = %d, want 2", n)
	}
	// After the cooldown one more fetch is allowed, then the cooldown again.
	clk.Add(time.Minute)
	set.Get(ctx, "random", yes)
	set.Get(ctx, "random2", yes)
	if n := src.fetches.Load(); n != 3 {
		t.Fatalf("fetches after cooldown = %d, want 3", n)
	}
	// Known keys never wait nor fetch.
	if _, err := set.Get(ctx, "a", yes); err != nil {
		t.Fatal(err)
	}
}

func TestNoRefreshWhenNotAllowed(t *testing.T) {
	src := &source{kids: []string{"a"}}
	set := New(Config{Fetch: src.fetch, Cooldown: 0})
	set.Get(context.Background(), "a", yes)
	if _, err := set.Get(context.Background(), "zzz", nil); !errors.Is(err, ErrUnknownKey) {
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
	set.Get(ctx, "a", yes)
	src.set(nil, "b")
	if _, err := set.Get(ctx, "b", yes); err != nil {
		t.Fatal(err)
	}
	if _, err := set.Get(ctx, "a", nil); !errors.Is(err, ErrUnknownKey) {
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
			if _, err := set.Get(ctx, "a", yes); err != nil {
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
			set.Get(ctx, "b", yes)
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
	set.Get(ctx, "a", yes)
	src.set(errors.New("connection refused"))
	if _, err := set.Get(ctx, "new", yes); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown kid with Fief down: %v", err)
	}
	if _, err := set.Get(ctx, "a", yes); err != nil {
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
	if _, err := set.Get(ctx, "a", yes); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if n := src.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	src.set(nil, "a")
	clk.Add(retryBackoff)
	if _, err := set.Get(ctx, "a", yes); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestWaiterHonoursContext(t *testing.T) {
	src := &source{kids: []string{"a"}, delay: 200 * time.Millisecond}
	set := New(Config{Fetch: src.fetch})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := set.Get(ctx, "a", yes); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	// The detached fetch still completes for later callers.
	time.Sleep(300 * time.Millisecond)
	if _, err := set.Get(context.Background(), "a", nil); err != nil {
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
	if set.Version(set.cfg.Now()) != 0 || set.Holds(Key{ID: "a", Public: testPub}) {
		t.Fatal("empty set")
	}
	k, _ := set.Get(ctx, "a", yes)
	v1 := set.Version(set.cfg.Now())
	if v1 == 0 || !set.Holds(k) || !set.Holds(Key{Public: testPub}) {
		t.Fatal("after first fetch")
	}
	src.set(nil, "b")
	set.Get(ctx, "b", yes)
	if set.Version(set.cfg.Now()) == v1 {
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
	if _, err := set.Get(ctx, "a", nil); err != nil {
		t.Fatal(err)
	}
	// Fief removes key a. Within MaxAge nothing is fetched.
	src.set(nil, "b")
	clk.Add(59 * time.Minute)
	if _, err := set.Get(ctx, "a", nil); err != nil {
		t.Fatalf("fresh set: %v", err)
	}
	if n := src.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	// Past MaxAge the next use still answers from the current keys, at
	// once, and starts one refresh in the background.
	clk.Add(time.Minute)
	if _, err := set.Get(ctx, "a", nil); err != nil {
		t.Fatalf("stale set answered with an error: %v", err)
	}
	for i := 0; i < 10; i++ {
		set.All(ctx) // a refresh is already running or just done: no other
	}
	waitFor(t, func() bool { return set.Version(set.cfg.Now()) == 2 })
	if n := src.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	if _, err := set.Get(ctx, "a", nil); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("removed key still trusted: %v", err)
	}
	// A failed background refresh keeps the keys and waits for the cooldown.
	src.set(errors.New("down"))
	clk.Add(time.Hour)
	set.Get(ctx, "b", nil)
	waitFor(t, func() bool { return src.fetches.Load() == 3 })
	for i := 0; i < 10; i++ {
		if _, err := set.Get(ctx, "b", nil); err != nil {
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

// TestRetryForKidMissedTwice checks the limits on refreshes for unknown
// kids: one per cooldown for kids named once, one per retry window for
// kids named again, every miss a repeat once too many kids were missed.
func TestRetryForKidMissedTwice(t *testing.T) {
	const cooldown = 10 * time.Second
	ctx := context.Background()
	setup := func(t *testing.T) (*source, *fakeClock, *Set) {
		src := &source{kids: []string{"a"}}
		clk := &fakeClock{t: time.Unix(1000, 0)}
		set := New(Config{Fetch: src.fetch, Cooldown: cooldown, Now: clk.Now})
		if _, err := set.Get(ctx, "a", yes); err != nil {
			t.Fatal(err)
		}
		set.Get(ctx, "forged", yes) // opens a cooldown window
		if n := src.fetches.Load(); n != 2 {
			t.Fatalf("fetches = %d, want 2", n)
		}
		return src, clk, set
	}
	t.Run("random kids: one fetch per cooldown", func(t *testing.T) {
		src, clk, set := setup(t)
		for i := 0; i < 9000; i++ { // beyond maxMissed: the set floods
			if i%1000 == 0 {
				clk.Add(cooldown / 10)
			}
			set.Get(ctx, "random-"+strconv.Itoa(i), yes)
		}
		// Flooded, every miss counts as a repeat: at most one retry per
		// retry window (the clock moved 9 of them, the flood began in the
		// fifth).
		if n := src.fetches.Load(); n > 2+5 {
			t.Fatalf("fetches = %d", n)
		}
	})
	t.Run("random kids below the flood bound", func(t *testing.T) {
		src, clk, set := setup(t)
		for i := 0; i < 900; i++ {
			if i%100 == 0 {
				clk.Add(cooldown / 10)
			}
			set.Get(ctx, "random-"+strconv.Itoa(i), yes)
		}
		if n := src.fetches.Load(); n != 2 {
			t.Fatalf("fetches = %d, want 2: kids named once must not cause retries", n)
		}
	})
	t.Run("repeated kids: one retry per retry window", func(t *testing.T) {
		src, clk, set := setup(t)
		for i := 0; i < 100; i++ {
			clk.Add(cooldown / 100)
			kid := "pair-" + strconv.Itoa(i)
			set.Get(ctx, kid, yes)
			set.Get(ctx, kid, yes)
		}
		// 100 pairs over the whole cooldown: 9 retry windows, plus the
		// next cooldown window's first fetch.
		if n := src.fetches.Load(); n < 2+9 || n > 2+11 {
			t.Fatalf("fetches = %d, want about 2+10", n)
		}
	})
	t.Run("a new kid named twice is fetched", func(t *testing.T) {
		src, clk, set := setup(t)
		src.set(nil, "a", "new")
		clk.Add(cooldown / 10)
		if _, err := set.Get(ctx, "new", yes); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("first miss: %v", err)
		}
		if _, err := set.Get(ctx, "new", yes); err != nil {
			t.Fatalf("second miss: %v", err)
		}
		if n := src.fetches.Load(); n != 3 {
			t.Fatalf("fetches = %d, want 3", n)
		}
	})
	t.Run("no retry right after the window opened", func(t *testing.T) {
		src, _, set := setup(t)
		src.set(nil, "a", "new")
		set.Get(ctx, "new", yes)
		if _, err := set.Get(ctx, "new", yes); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("retry inside the first retry window: %v", err)
		}
		if n := src.fetches.Load(); n != 2 {
			t.Fatalf("fetches = %d, want 2", n)
		}
	})
}

// TestStaleVersionStartsRefresh checks that Version, the cache-hit path,
// refreshes a stale set without taking the lock at every call.
func TestStaleVersionStartsRefresh(t *testing.T) {
	src := &source{kids: []string{"a"}}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	set := New(Config{Fetch: src.fetch, Cooldown: time.Minute, MaxAge: time.Hour, Now: clk.Now})
	ctx := context.Background()
	set.Get(ctx, "a", nil)
	src.set(nil, "b")
	clk.Add(2 * time.Hour)
	if v := set.Version(clk.Now()); v != 1 {
		t.Fatalf("Version = %d, want the current 1 at once", v)
	}
	waitFor(t, func() bool { return set.Version(clk.Now()) == 2 })
	if n := src.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	// Fief down and the set stale again: one attempt per cooldown.
	src.set(errors.New("down"))
	clk.Add(2 * time.Hour)
	set.Version(clk.Now())
	waitFor(t, func() bool { return src.fetches.Load() == 3 })
	for i := 0; i < 100; i++ {
		set.Version(clk.Now())
	}
	if n := src.fetches.Load(); n != 3 {
		t.Fatalf("fetches = %d, want 3", n)
	}
	clk.Add(time.Minute)
	set.Version(clk.Now())
	waitFor(t, func() bool { return src.fetches.Load() == 4 })
}

// yes approves every refresh.
func yes() bool { return true }

func TestMayRefreshIsAskedOnlyWhenAFetchCouldStart(t *testing.T) {
	src := &source{kids: []string{"a"}}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	set := New(Config{Fetch: src.fetch, Cooldown: time.Minute, Now: clk.Now})
	ctx := context.Background()
	set.Get(ctx, "a", yes)
	asked := 0
	no := func() bool { asked++; return false }
	set.Get(ctx, "x", no) // would start a fetch: asked, refused
	if asked != 1 || src.fetches.Load() != 1 {
		t.Fatalf("asked %d, fetches %d", asked, src.fetches.Load())
	}
	set.Get(ctx, "y", yes) // the window is still open: refused, so...
	set.Get(ctx, "z", no)  // ...this one is not asked
	if asked != 1 || src.fetches.Load() != 2 {
		t.Fatalf("asked %d, fetches %d", asked, src.fetches.Load())
	}
}
