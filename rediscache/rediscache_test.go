package rediscache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/rediscache"
	"github.com/redis/go-redis/v9"
)

// richJSON is user info with every kind of value Fief's userinfo endpoint
// gives: nested objects, arrays, numbers beyond float64, escapes.
func richJSON(sub string) string {
	return `{"sub":"` + sub + `","email":"anne@bretagne.duchy","email_verified":true,"is_active":false,` +
		`"tenant_id":"7c3f4a1e-2b9d-4c57-8a0e-6f1d2c3b4a59","fields":{` +
		`"first_name":"Anne <&> de Bretagne \u00e9\u2028","birthdate":"1477-01-25",` +
		`"last_seen":"2025-06-01T12:34:56.789+02:00","big":12345678901234567890,"neg":-9223372036854775809,` +
		`"ratio":1.5,"exp":6.02214076e23,"zero":0,"onboarded":false,"nickname":null,"empty_string":"",` +
		`"address":{"city":"Nantes","coords":[47.2184,-1.5536],"extra":{}},` +
		`"tags":["duchess","queen",null,true,2],"empty":[]}}`
}

func richInfo(sub string) fief.UserInfo { return userInfo(richJSON(sub)) }

// userInfo parses a JSON object.
func userInfo(s string) fief.UserInfo {
	u, err := fief.ParseUserInfo([]byte(s))
	if err != nil {
		panic(err)
	}
	return u
}

// jsonOf returns the JSON form of u.
func jsonOf(u fief.UserInfo) string {
	b, _ := u.MarshalJSON()
	return string(b)
}

// claim returns one claim of u.
func claim(u fief.UserInfo, name string) any {
	var m map[string]any
	u.Claims(&m)
	return m[name]
}

func newCache(t *testing.T, srv *redisServer, opts ...rediscache.Option) (*rediscache.Cache, *redis.Client) {
	t.Helper()
	rdb := srv.Client()
	c, err := rediscache.New(rdb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, rdb
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	cache, rdb := newCache(t, srv)
	ctx := context.Background()

	if _, ok, err := cache.Get(ctx, "u1"); ok || err != nil {
		t.Fatalf("Get before Set = ok %v, err %v; want a miss", ok, err)
	}
	want := richInfo("u1")
	if err := cache.Set(ctx, "u1", richInfo("u1")); err != nil {
		t.Fatal(err)
	}
	got, ok, err := cache.Get(ctx, "u1")
	if !ok || err != nil {
		t.Fatalf("Get after Set = ok %v, err %v", ok, err)
	}
	if jsonOf(got) != jsonOf(want) {
		t.Errorf("round trip changed the info:\n got %s\nwant %s", jsonOf(got), jsonOf(want))
	}
	// Numbers keep their exact text.
	fields := got.Fields()
	for k, v := range map[string]string{"big": "12345678901234567890", "neg": "-9223372036854775809", "ratio": "1.5", "exp": "6.02214076e23"} {
		if n, ok := fields[k].(json.Number); !ok || string(n) != v {
			t.Errorf("fields[%q] = %#v, want json.Number(%q)", k, fields[k], v)
		}
	}

	// The entry is the JSON object, byte for byte, under prefix + user ID.
	if cache.Key("u1") != "fief:userinfo:u1" {
		t.Errorf("Key = %q", cache.Key("u1"))
	}
	raw, err := rdb.Get(ctx, "fief:userinfo:u1").Result()
	if err != nil || raw != richJSON("u1") {
		t.Errorf("stored entry = %q, %v", raw, err)
	}

	// Set replaces an entry.
	if err := cache.Set(ctx, "u1", userInfo(`{"sub":"u1","email":"new@example.com"}`)); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := cache.Get(ctx, "u1"); got.Email() != "new@example.com" || got.Fields() != nil {
		t.Errorf("after a second Set: %v", got)
	}
}

// The zero UserInfo is refused before Redis is called.
func TestSetZero(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	cache, _ := newCache(t, srv)
	ctx := context.Background()
	if err := cache.Set(ctx, "bad", fief.UserInfo{}); err == nil || !strings.HasPrefix(err.Error(), "rediscache: SET:") {
		t.Errorf("Set(zero) = %v, want an error", err)
	}
	if _, ok, _ := cache.Get(ctx, "bad"); ok {
		t.Error("a refused Set stored something")
	}
}

func TestTTLExpiry(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	const ttl = 300 * time.Millisecond
	cache, rdb := newCache(t, srv, rediscache.WithTTL(ttl))
	ctx := context.Background()
	if err := cache.Set(ctx, "u", richInfo("u")); err != nil {
		t.Fatal(err)
	}
	pttl, err := rdb.PTTL(ctx, cache.Key("u")).Result()
	if err != nil || pttl <= 0 || pttl > ttl {
		t.Fatalf("PTTL = %v, %v; want in (0, %v]", pttl, err, ttl)
	}
	if _, ok, err := cache.Get(ctx, "u"); !ok || err != nil {
		t.Fatalf("Get before the TTL = %v, %v", ok, err)
	}
	time.Sleep(ttl + 100*time.Millisecond)
	if _, ok, err := cache.Get(ctx, "u"); ok || err != nil {
		t.Fatalf("Get after the TTL = %v, %v; want a miss", ok, err)
	}
	if n, _ := rdb.Exists(ctx, cache.Key("u")).Result(); n != 0 {
		t.Error("the entry still exists after its TTL")
	}

	// The default TTL is an hour.
	def, _ := newCache(t, srv)
	def.Set(ctx, "d", richInfo("d"))
	if pttl, _ := rdb.PTTL(ctx, def.Key("d")).Result(); pttl <= time.Hour-time.Minute || pttl > time.Hour {
		t.Errorf("default PTTL = %v, want about an hour", pttl)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	cache, _ := newCache(t, srv)
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if err := cache.Set(ctx, id, richInfo(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cache.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := cache.Get(ctx, "a"); ok {
		t.Error("a is still cached after Delete")
	}
	if _, ok, _ := cache.Get(ctx, "b"); !ok {
		t.Error("Delete(a) evicted b")
	}
	if err := cache.Delete(ctx, "never-cached"); err != nil {
		t.Errorf("Delete of a user not cached = %v", err)
	}
}

func TestPrefix(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	rdb := srv.Client()
	ctx := context.Background()
	app1, _ := rediscache.New(rdb, rediscache.WithPrefix("app1:"))
	app2, _ := rediscache.New(rdb, rediscache.WithPrefix("app2:"))
	app1.Set(ctx, "u", userInfo(`{"sub":"u","app":"1"}`))
	app2.Set(ctx, "u", userInfo(`{"sub":"u","app":"2"}`))
	for _, c := range []struct {
		cache *rediscache.Cache
		key   string
		app   string
	}{{app1, "app1:u", "1"}, {app2, "app2:u", "2"}} {
		if c.cache.Key("u") != c.key {
			t.Errorf("Key = %q, want %q", c.cache.Key("u"), c.key)
		}
		if got, ok, _ := c.cache.Get(ctx, "u"); !ok || claim(got, "app") != c.app {
			t.Errorf("%s: Get = %v, %v", c.key, got, ok)
		}
	}
	app1.Delete(ctx, "u")
	if _, ok, _ := app2.Get(ctx, "u"); !ok {
		t.Error("deleting under one prefix deleted under the other")
	}
	if keys, _ := rdb.Keys(ctx, "*").Result(); len(keys) != 1 || keys[0] != "app2:u" {
		t.Errorf("keys = %v", keys)
	}
}

// syncBuffer is a bytes.Buffer for a slog handler shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func newLogger() (*slog.Logger, *syncBuffer) {
	buf := new(syncBuffer)
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// An entry that is not a JSON object is a miss: Get deletes it and logs it,
// and returns no error (which the middleware would log again).
func TestCorruptEntry(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	logger, logs := newLogger()
	cache, rdb := newCache(t, srv, rediscache.WithLogger(logger))
	ctx := context.Background()
	for i, raw := range []string{
		"", "not json", "null", "[]", `"a string"`, "42", `{"sub":"u"`, `{"sub":"u"} trailing`,
		`{"sub":"u"}}`, `{"sub":"u"}{}`, "\xff\xfe", `{"sub":"secret@example.com",`,
	} {
		key := cache.Key("u")
		if err := rdb.Set(ctx, key, raw, 0).Err(); err != nil {
			t.Fatal(err)
		}
		info, ok, err := cache.Get(ctx, "u")
		if ok || err != nil || !info.IsZero() {
			t.Errorf("%q: Get = %v, %v, %v; want a miss without error", raw, info, ok, err)
		}
		if n, _ := rdb.Exists(ctx, key).Result(); n != 0 {
			t.Errorf("%q: the entry was not deleted", raw)
		}
		if got := strings.Count(logs.String(), "level=WARN"); got != i+1 {
			t.Errorf("%q: %d warnings logged in all, want %d:\n%s", raw, got, i+1, logs)
		}
	}
	if !strings.Contains(logs.String(), "key=fief:userinfo:u") {
		t.Errorf("the warnings do not name the key:\n%s", logs)
	}
	if strings.Contains(logs.String(), "secret@example.com") {
		t.Errorf("the warnings show the entry's content:\n%s", logs)
	}

	// Without a logger, the same.
	quiet, _ := newCache(t, srv)
	rdb.Set(ctx, quiet.Key("q"), "garbage", 0)
	if _, ok, err := quiet.Get(ctx, "q"); ok || err != nil {
		t.Errorf("without logger: Get = %v, %v", ok, err)
	}

	// An entry of another Redis type is a Redis error, returned.
	rdb.HSet(ctx, cache.Key("h"), "a", "b")
	if _, ok, err := cache.Get(ctx, "h"); ok || err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Errorf("hash entry: Get = %v, %v; want a WRONGTYPE error", ok, err)
	}
	// which Set repairs.
	if err := cache.Set(ctx, "h", richInfo("h")); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := cache.Get(ctx, "h"); !ok || err != nil {
		t.Errorf("after Set over a hash: Get = %v, %v", ok, err)
	}
}

// Redis evicts entries under memory pressure (they all have a TTL, so
// volatile-lru applies), which are then misses; under noeviction, a full
// Redis refuses Set with an error, and Get keeps working.
func TestMaxmemoryEviction(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	cache, rdb := newCache(t, srv, rediscache.WithTimeout(time.Second))
	ctx := context.Background()
	used, err := usedMemory(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	limit := used + 1<<20
	if err := rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(limit, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "volatile-lru").Err(); err != nil {
		t.Fatal(err)
	}

	const n = 400 // about 3.2 MB of entries for 1 MB of room
	big := userInfo(`{"sub":"big","fields":{"bio":"` + strings.Repeat("x", 8<<10) + `"}}`)
	for i := range n {
		id := fmt.Sprint("user-", i)
		if err := cache.Set(ctx, id, big); err != nil {
			t.Fatalf("Set %d under volatile-lru: %v", i, err)
		}
	}
	size, _ := rdb.DBSize(ctx).Result()
	if size == 0 || size >= n {
		t.Fatalf("%d entries kept of %d: Redis did not evict", size, n)
	}
	hits := 0
	for i := range n {
		if _, ok, err := cache.Get(ctx, fmt.Sprint("user-", i)); err != nil {
			t.Fatal(err)
		} else if ok {
			hits++
		}
	}
	// Reads use memory too (output buffers), and Redis evicts before any
	// command when above maxmemory: some entries may go while reading.
	if hits == 0 || int64(hits) > size {
		t.Errorf("%d hits, %d keys", hits, size)
	}
	if _, ok, _ := cache.Get(ctx, fmt.Sprint("user-", n-1)); !ok {
		t.Error("the last entry written was evicted")
	}
	t.Logf("volatile-lru: %d of %d entries kept", size, n)

	// noeviction: a full Redis refuses writes.
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	var setErr error
	for i := range 2 * n {
		if setErr = cache.Set(ctx, fmt.Sprint("more-", i), big); setErr != nil {
			break
		}
	}
	if setErr == nil || !strings.HasPrefix(setErr.Error(), "rediscache: SET:") || !strings.Contains(setErr.Error(), "OOM") {
		t.Errorf("Set into a full Redis under noeviction = %v, want an OOM error", setErr)
	}
	if _, ok, err := cache.Get(ctx, fmt.Sprint("user-", n-1)); !ok || err != nil {
		t.Errorf("Get from a full Redis = %v, %v", ok, err)
	}
}

func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO memory: %q", info)
}

// Failures are returned, wrapped, and not logged by the cache.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	logger, logs := newLogger()
	cache, _ := newCache(t, srv, rediscache.WithLogger(logger))
	ctx := context.Background()
	if err := cache.Set(ctx, "u", richInfo("u")); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	for _, c := range []struct {
		op string
		fn func() error
	}{
		{"GET", func() error {
			info, ok, err := cache.Get(ctx, "u")
			if ok || !info.IsZero() {
				t.Errorf("Get with Redis down = %v, %v", info, ok)
			}
			return err
		}},
		{"SET", func() error { return cache.Set(ctx, "u", richInfo("u")) }},
		{"DEL", func() error { return cache.Delete(ctx, "u") }},
	} {
		start := time.Now()
		err := c.fn()
		if err == nil || !strings.HasPrefix(err.Error(), "rediscache: "+c.op+": ") {
			t.Errorf("%s with Redis down = %v, want an error", c.op, err)
		}
		if d := time.Since(start); d > rediscache.DefaultTimeout+5*time.Second { // hang guard
			t.Errorf("%s with Redis down took %v", c.op, d)
		}
	}
	if logs.String() != "" {
		t.Errorf("the cache logged errors it returned:\n%s", logs)
	}
}

// blackhole listens on a loopback port, accepts connections and never
// answers: a Redis that hangs.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// A Redis that does not answer costs each call the cache's timeout, even
// with go-redis's default options, which ignore context deadlines for
// socket I/O; and each call is bounded by its context too. No redis-server
// needed.
func TestCallsAreBounded(t *testing.T) {
	t.Parallel()
	addr := blackhole(t)
	for _, cte := range []bool{false, true} {
		t.Run(fmt.Sprint("ContextTimeoutEnabled=", cte), func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: cte})
			t.Cleanup(func() { rdb.Close() })
			const timeout = 50 * time.Millisecond
			cache, _ := rediscache.New(rdb, rediscache.WithTimeout(timeout))
			ops := map[string]func(context.Context) error{
				"GET": func(ctx context.Context) error { _, _, err := cache.Get(ctx, "u"); return err },
				"SET": func(ctx context.Context) error { return cache.Set(ctx, "u", richInfo("u")) },
				"DEL": func(ctx context.Context) error { return cache.Delete(ctx, "u") },
			}
			for op, fn := range ops {
				start := time.Now()
				err := fn(context.Background())
				d := time.Since(start)
				if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "within 50ms") {
					t.Errorf("%s: err = %v, want the cache's deadline", op, err)
				}
				// Timers never fire early; the upper bound only guards hangs.
				if d < timeout || d > timeout+5*time.Second {
					t.Errorf("%s took %v with a %v timeout", op, d, timeout)
				}

				// The caller's shorter deadline wins.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
				err = fn(ctx)
				cancel()
				// The error names the deadline that fired: the context's.
				if !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "within") {
					t.Errorf("%s with a 10ms context: err = %v, want the context's deadline", op, err)
				}

				// A canceled context: no call.
				ctx, cancel = context.WithCancel(context.Background())
				cancel()
				if err := fn(ctx); !errors.Is(err, context.Canceled) {
					t.Errorf("%s with a canceled context: err = %v", op, err)
				}
			}
		})
	}
}

// WithTimeout(0) leaves calls bounded by their context only.
func TestNoTimeout(t *testing.T) {
	t.Parallel()
	addr := blackhole(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	cache, _ := rediscache.New(rdb, rediscache.WithTimeout(0))
	ctx, cancel := context.WithTimeout(context.Background(), 2*rediscache.DefaultTimeout)
	defer cancel()
	_, _, err := cache.Get(ctx, "u")
	// Had the default timeout applied, Get would have returned before the
	// context's deadline.
	if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() == nil {
		t.Errorf("Get = %v (context: %v); want the context's deadline", err, ctx.Err())
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	cache, _ := newCache(t, srv, rediscache.WithTimeout(2*time.Second))
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				id := fmt.Sprint("u", (g+i)%5)
				switch i % 3 {
				case 0:
					if err := cache.Set(ctx, id, richInfo(id)); err != nil {
						t.Error(err)
					}
				case 1:
					if info, ok, err := cache.Get(ctx, id); err != nil {
						t.Error(err)
					} else if ok && jsonOf(info) != richJSON(id) {
						t.Errorf("Get(%s) = %v", id, info)
					}
				case 2:
					if err := cache.Delete(ctx, id); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { rdb.Close() })
	for name, opts := range map[string]struct {
		client redis.UniversalClient
		opts   []rediscache.Option
	}{
		"nil client":       {nil, nil},
		"nil option":       {rdb, []rediscache.Option{nil}},
		"zero TTL":         {rdb, []rediscache.Option{rediscache.WithTTL(0)}},
		"sub-ms TTL":       {rdb, []rediscache.Option{rediscache.WithTTL(time.Microsecond)}},
		"negative timeout": {rdb, []rediscache.Option{rediscache.WithTimeout(-time.Second)}},
		"negative TTL":     {rdb, []rediscache.Option{rediscache.WithTTL(-time.Second)}},
		"nil logger":       {rdb, []rediscache.Option{rediscache.WithLogger(nil)}},
		"nil typed client": {(*redis.Client)(nil), nil},
		"nil cluster":      {(*redis.ClusterClient)(nil), nil},
		"nil ring":         {(*redis.Ring)(nil), nil},
	} {
		if c, err := rediscache.New(opts.client, opts.opts...); err == nil || c != nil {
			t.Errorf("%s: New = %v, %v; want an error", name, c, err)
		}
	}
	// Valid edge values are accepted.
	if _, err := rediscache.New(rdb, rediscache.WithTTL(time.Millisecond), rediscache.WithTimeout(0),
		rediscache.WithPrefix("")); err != nil {
		t.Error(err)
	}
}
