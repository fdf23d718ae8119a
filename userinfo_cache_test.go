package fief

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// cacheClock is a settable clock for MemoryCache.now.
type cacheClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *cacheClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *cacheClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestCache(maxEntries int, ttl time.Duration) (*MemoryCache, *cacheClock) {
	clock := &cacheClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c, err := NewMemoryCache(maxEntries, ttl)
	if err != nil {
		panic(err)
	}
	c.now = clock.Now
	return c, clock
}

func cachedUser(id string) UserInfo {
	return userWithEmail(id, id+"@bretagne.duchy")
}

func userWithEmail(id, email string) UserInfo {
	b, _ := json.Marshal(map[string]any{"sub": id, "email": email, "fields": map[string]any{"first_name": "Anne"}})
	u, err := ParseUserInfo(b)
	if err != nil {
		panic(err)
	}
	return u
}

// has reports whether the cache holds a live entry for id.
func cacheHas(t *testing.T, c *MemoryCache, id string) bool {
	t.Helper()
	info, ok, err := c.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	if ok && info.Sub() != id {
		t.Fatalf("Get(%s) = %v", id, info)
	}
	return ok
}

func TestMemoryCacheGetSetDelete(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(10, time.Minute)
	if cacheHas(t, c, "a") {
		t.Fatal("empty cache has a")
	}
	if err := c.Set(ctx, "a", cachedUser("a")); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Get(ctx, "a")
	if err != nil || !ok || !reflect.DeepEqual(got, cachedUser("a")) {
		t.Fatalf("Get = %v, %v, %v; want %v", got, ok, err, cachedUser("a"))
	}
	// Set replaces.
	replaced := userWithEmail("a", "new@bretagne.duchy")
	if err := c.Set(ctx, "a", replaced); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := c.Get(ctx, "a"); got.Email() != "new@bretagne.duchy" || c.Len() != 1 {
		t.Fatalf("after replace: %v, Len %d", got, c.Len())
	}
	if err := c.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if cacheHas(t, c, "a") || c.Len() != 0 {
		t.Fatalf("a still cached after Delete (Len %d)", c.Len())
	}
	if err := c.Delete(ctx, "never-set"); err != nil {
		t.Fatalf("Delete of an absent user: %v", err)
	}
}

func TestMemoryCacheBoundAndLRU(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(3, time.Minute)
	for _, id := range []string{"a", "b", "c"} {
		c.Set(ctx, id, cachedUser(id))
	}
	// Reading a makes b the least recently used.
	if !cacheHas(t, c, "a") {
		t.Fatal("a missing")
	}
	c.Set(ctx, "d", cachedUser("d"))
	if c.Len() != 3 {
		t.Fatalf("Len = %d, want the bound 3", c.Len())
	}
	if cacheHas(t, c, "b") {
		t.Fatal("b (least recently used) was not evicted")
	}
	for _, id := range []string{"a", "c", "d"} {
		if !cacheHas(t, c, id) {
			t.Fatalf("%s evicted, want only b evicted", id)
		}
	}
	// Updating an entry also counts as a use: now a is the oldest.
	c.Set(ctx, "c", cachedUser("c"))
	c.Set(ctx, "d", cachedUser("d"))
	c.Set(ctx, "e", cachedUser("e"))
	if cacheHas(t, c, "a") {
		t.Fatal("a was not evicted")
	}

	// A bound of one keeps the last user only.
	one, _ := newTestCache(1, time.Minute)
	for i := range 100 {
		one.Set(ctx, fmt.Sprint(i), cachedUser(fmt.Sprint(i)))
	}
	if one.Len() != 1 || !cacheHas(t, one, "99") {
		t.Fatalf("bound 1: Len %d", one.Len())
	}
}

func TestMemoryCacheTTL(t *testing.T) {
	ctx := context.Background()
	c, clock := newTestCache(10, time.Minute)
	c.Set(ctx, "a", cachedUser("a"))
	clock.Advance(59 * time.Second)
	c.Set(ctx, "b", cachedUser("b"))
	if !cacheHas(t, c, "a") {
		t.Fatal("a expired before its TTL")
	}
	clock.Advance(time.Second) // a is exactly one TTL old
	if cacheHas(t, c, "a") {
		t.Fatal("a still cached at its TTL")
	}
	if c.Len() != 1 {
		t.Fatalf("expired entry not removed on read: Len %d", c.Len())
	}
	// Reading does not extend the TTL; setting does.
	clock.Advance(30 * time.Second)
	c.Set(ctx, "b", cachedUser("b"))
	clock.Advance(59 * time.Second)
	if !cacheHas(t, c, "b") {
		t.Fatal("Set did not restart b's TTL")
	}
	clock.Advance(time.Second)
	if cacheHas(t, c, "b") {
		t.Fatal("b still cached after its TTL")
	}
}

func TestMemoryCacheConcurrentUse(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(16, time.Minute)
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprint((g + i) % 40)
				switch i % 4 {
				case 0, 1:
					if info, ok, _ := c.Get(ctx, id); ok {
						if info.Sub() != id {
							t.Errorf("Get(%s) returned %s", id, info.Sub())
						}
					}
				case 2:
					c.Set(ctx, id, cachedUser(id))
				case 3:
					c.Delete(ctx, id)
				}
			}
		})
	}
	wg.Wait()
	if n := c.Len(); n > 16 {
		t.Fatalf("Len = %d, above the bound", n)
	}
}

func TestNewMemoryCacheErrors(t *testing.T) {
	for _, tc := range []struct {
		max int
		ttl time.Duration
	}{{0, time.Minute}, {-1, time.Minute}, {1, 0}, {1, -time.Second}} {
		if c, err := NewMemoryCache(tc.max, tc.ttl); err == nil || c != nil {
			t.Errorf("NewMemoryCache(%d, %v) = %v, %v; want an error", tc.max, tc.ttl, c, err)
		}
	}
}

// TestUserInfoIsAValue: what ParseUserInfo was given, and what MarshalJSON
// returns, can be modified without changing the UserInfo, nor the cache
// holding it.
func TestUserInfoIsAValue(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(10, time.Minute)
	in := []byte(`{"sub":"a","email":"a@bretagne.duchy","fields":{"address":{"city":"Nantes"}}}`)
	u, err := ParseUserInfo(in)
	if err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, "a", u)
	copy(in[8:], "evil")
	out, _ := u.MarshalJSON()
	copy(out[8:], "evil")
	u.Fields()["address"].(map[string]any)["city"] = "Evil"
	got, _, _ := c.Get(ctx, "a")
	b, _ := got.MarshalJSON()
	if string(b) != `{"sub":"a","email":"a@bretagne.duchy","fields":{"address":{"city":"Nantes"}}}` {
		t.Fatalf("cached user info changed: %s", b)
	}
}
