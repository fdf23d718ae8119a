package rediscache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/rediscache"
	"github.com/redis/go-redis/v9"
)

// refreshKey is a key as a LoginFlow makes them: 64 hex digits.
func refreshKey(i int) string { return fmt.Sprintf("%064x", i) }

func newCoordinator(t *testing.T, rdb redis.UniversalClient, cfg rediscache.CoordinatorConfig) *rediscache.RefreshCoordinator {
	t.Helper()
	c, err := rediscache.NewRefreshCoordinator(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// counter is a refresh function that counts its calls and answers
// "result-<n>" after a delay.
type counter struct {
	calls atomic.Int32
	delay time.Duration
}

func (c *counter) refresh(ctx context.Context) ([]byte, error) {
	n := c.calls.Add(1)
	select {
	case <-time.After(c.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return fmt.Appendf(nil, "result-%d", n), nil
}

// Callers on two instances (two clients, two coordinators) with one key
// make one refresh and all get its result; the result stays for
// ResultTTL, the lock is released.
func TestCoordinatorOneRefresh(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	rdb := srv.Client()
	coords := []*rediscache.RefreshCoordinator{
		newCoordinator(t, srv.Client(), rediscache.CoordinatorConfig{ResultTTL: 2 * time.Second}),
		newCoordinator(t, srv.Client(), rediscache.CoordinatorConfig{ResultTTL: 2 * time.Second}),
	}
	r := &counter{delay: 50 * time.Millisecond}
	const n = 30
	results := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			b, err := coords[i%2].Do(t.Context(), refreshKey(1), r.refresh)
			if err != nil {
				t.Error(err)
			}
			results[i] = string(b)
		})
	}
	close(start)
	wg.Wait()
	if r.calls.Load() != 1 {
		t.Fatalf("%d refreshes, want 1", r.calls.Load())
	}
	for i, res := range results {
		if res != "result-1" {
			t.Errorf("caller %d got %q", i, res)
		}
	}
	resultKey, lockKey := coords[0].Keys(refreshKey(1))
	if resultKey != "fief:refresh:{"+refreshKey(1)+"}:result" || lockKey != "fief:refresh:{"+refreshKey(1)+"}:lock" {
		t.Errorf("keys %q %q", resultKey, lockKey)
	}
	if v, err := rdb.Get(t.Context(), resultKey).Result(); err != nil || v != "result-1" {
		t.Errorf("GET %s = %q, %v", resultKey, v, err)
	}
	if ttl := rdb.PTTL(t.Context(), resultKey).Val(); ttl <= 0 || ttl > 2*time.Second {
		t.Errorf("result TTL %v, want at most ResultTTL", ttl)
	}
	if n := rdb.Exists(t.Context(), lockKey).Val(); n != 0 {
		t.Errorf("the lock is still held")
	}
	// Later callers get the stored result; after ResultTTL, a new refresh.
	if b, _ := coords[1].Do(t.Context(), refreshKey(1), r.refresh); string(b) != "result-1" || r.calls.Load() != 1 {
		t.Errorf("later caller: %q after %d refreshes", b, r.calls.Load())
	}
	time.Sleep(2100 * time.Millisecond)
	if b, _ := coords[1].Do(t.Context(), refreshKey(1), r.refresh); string(b) != "result-2" {
		t.Errorf("after ResultTTL: %q, want a new refresh", b)
	}
	// Other keys are independent.
	if b, _ := coords[0].Do(t.Context(), refreshKey(2), r.refresh); string(b) != "result-3" {
		t.Errorf("another key: %q", b)
	}
}

// A failed refresh is returned to its caller, stores nothing and releases
// the lock: a waiting caller refreshes in its turn.
func TestCoordinatorFailedRefresh(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	coord := newCoordinator(t, srv.Client(), rediscache.CoordinatorConfig{})
	var calls atomic.Int32
	down := errors.New("Fief unavailable")
	refresh := func(context.Context) ([]byte, error) {
		if calls.Add(1) == 1 {
			time.Sleep(100 * time.Millisecond)
			return nil, down
		}
		return []byte("ok"), nil
	}
	first := make(chan error, 1)
	go func() {
		_, err := coord.Do(t.Context(), refreshKey(1), refresh)
		first <- err
	}()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	b, err := coord.Do(t.Context(), refreshKey(1), refresh) // waits, then refreshes
	if err != nil || string(b) != "ok" || calls.Load() != 2 {
		t.Errorf("waiting caller: %q, %v after %d refreshes; want ok after 2", b, err, calls.Load())
	}
	if err := <-first; !errors.Is(err, down) {
		t.Errorf("first caller: %v, want the refresh's error", err)
	}
}

// A lock whose holder died (here: set by hand) expires after LockTTL, and
// a waiting caller then refreshes.
func TestCoordinatorLockExpiry(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	rdb := srv.Client()
	coord := newCoordinator(t, rdb, rediscache.CoordinatorConfig{LockTTL: time.Second})
	_, lockKey := coord.Keys(refreshKey(1))
	rdb.Set(t.Context(), lockKey, "a crashed instance", 500*time.Millisecond)
	r := &counter{}
	start := time.Now()
	b, err := coord.Do(t.Context(), refreshKey(1), r.refresh)
	if d := time.Since(start); err != nil || string(b) != "result-1" || d < 400*time.Millisecond {
		t.Errorf("Do = %q, %v after %v; want a refresh once the lock expired", b, err, d)
	}
	// A waiter gives up with its context, without refreshing.
	rdb.Set(t.Context(), lockKey, "another instance", time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := coord.Do(ctx, refreshKey(2), r.refresh); err != nil {
		t.Errorf("another key is not locked: %v", err)
	}
	_, lockKey = coord.Keys(refreshKey(3))
	rdb.Set(t.Context(), lockKey, "another instance", time.Minute)
	if _, err := coord.Do(ctx, refreshKey(3), r.refresh); !errors.Is(err, context.DeadlineExceeded) || r.calls.Load() != 2 {
		t.Errorf("waiter whose context ends: %v after %d refreshes; want its deadline, no refresh", err, r.calls.Load())
	}
}

// Redis down, or hanging: Do fails within the timeout, without calling
// refresh, so that the LoginFlow refreshes on its own.
func TestCoordinatorRedisUnavailable(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	down := newCoordinator(t, srv.Client(), rediscache.CoordinatorConfig{})
	srv.Kill()
	hangingClient := redis.NewClient(&redis.Options{Addr: blackhole(t)})
	t.Cleanup(func() { hangingClient.Close() })
	hanging := newCoordinator(t, hangingClient, rediscache.CoordinatorConfig{Timeout: 50 * time.Millisecond})
	for name, coord := range map[string]*rediscache.RefreshCoordinator{"down": down, "hanging": hanging} {
		t.Run(name, func(t *testing.T) {
			r := &counter{}
			start := time.Now()
			_, err := coord.Do(t.Context(), refreshKey(1), r.refresh)
			if err == nil || !strings.HasPrefix(err.Error(), "rediscache: refresh coordinator: ") || r.calls.Load() != 0 {
				t.Errorf("Do = %v after %d refreshes; want an error and no refresh", err, r.calls.Load())
			}
			if d := time.Since(start); d > rediscache.DefaultCoordinatorTimeout+5*time.Second { // hang guard
				t.Errorf("Do took %v", d)
			}
			if name == "hanging" && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("hanging Redis: %v, want the timeout", err)
			}
		})
	}
}

// Redis failing after the refresh: the result is returned anyway, and the
// failure logged.
func TestCoordinatorRedisFailsDuringRefresh(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	logger, logs := newLogger()
	coord := newCoordinator(t, srv.Client(), rediscache.CoordinatorConfig{Logger: logger})
	b, err := coord.Do(t.Context(), refreshKey(1), func(context.Context) ([]byte, error) {
		srv.Kill()
		return []byte("fresh tokens"), nil
	})
	if err != nil || string(b) != "fresh tokens" {
		t.Errorf("Do = %q, %v; want the refresh's result", b, err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "could not be stored") {
		t.Errorf("no warning: %s", logs)
	}
}

func TestNewRefreshCoordinatorErrors(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	for name, cfg := range map[string]rediscache.CoordinatorConfig{
		"short ResultTTL": {ResultTTL: time.Microsecond},
		"short LockTTL":   {LockTTL: 10 * time.Millisecond},
		"negative":        {Timeout: -time.Second},
		"brace in prefix": {Prefix: "app:{x}:"},
	} {
		if _, err := rediscache.NewRefreshCoordinator(rdb, cfg); err == nil || !strings.HasPrefix(err.Error(), "rediscache: NewRefreshCoordinator: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := rediscache.NewRefreshCoordinator(nil, rediscache.CoordinatorConfig{}); err == nil {
		t.Error("nil client accepted")
	}
	var nilClient *redis.Client
	if _, err := rediscache.NewRefreshCoordinator(nilClient, rediscache.CoordinatorConfig{}); err == nil {
		t.Error("nil *redis.Client accepted")
	}
	coord, err := rediscache.NewRefreshCoordinator(rdb, rediscache.CoordinatorConfig{Prefix: "app:"})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := coord.Keys("k"); r != "app:{k}:result" {
		t.Errorf("key %q", r)
	}
	if _, err := coord.Do(context.Background(), "a}b", nil); err == nil {
		t.Error("a key with a brace accepted")
	}
	var _ fief.RefreshCoordinator = coord
}
