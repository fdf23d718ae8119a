package fief

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// UserInfoCache stores users' info between requests for
// [Authenticator.CurrentUser], keyed by user ID ([AccessTokenInfo.UserID]).
// Implementations must be safe for concurrent use. A [UserInfo] is an
// immutable value: keep it as is, or store its JSON form
// ([UserInfo.MarshalJSON]) and read it back with [ParseUserInfo].
//
// CurrentUser treats a Get error as a miss and ignores a Set error; both are
// logged (see [WithLogger]).
type UserInfoCache interface {
	// Get returns the user's info and true, or false when it is not cached.
	Get(ctx context.Context, userID string) (info UserInfo, ok bool, err error)
	// Set stores the user's info.
	Set(ctx context.Context, userID string, info UserInfo) error
	// Delete removes the user's info, so that the next request fetches it
	// from Fief: call it after changing the user's profile, password or
	// email address. Deleting a user that is not cached is not an error.
	Delete(ctx context.Context, userID string) error
}

// MemoryCache is a [UserInfoCache] in the process's memory, bounded in
// entries, least recently used ones evicted first, each entry expiring a
// fixed time after it was stored. Create it with [NewMemoryCache]; it is
// safe for concurrent use.
type MemoryCache struct {
	max int
	ttl time.Duration
	now func() time.Time // time.Now; tests replace it

	mu      sync.Mutex
	entries map[string]*memEntry
	lru     memEntry // sentinel of the recency list: lru.next is the most recently used
}

type memEntry struct {
	key        string
	info       UserInfo
	expires    time.Time
	prev, next *memEntry
}

// NewMemoryCache returns a MemoryCache that holds at most maxEntries users'
// info, each for ttl. It fails if maxEntries or ttl is not positive.
func NewMemoryCache(maxEntries int, ttl time.Duration) (*MemoryCache, error) {
	if maxEntries < 1 {
		return nil, fmt.Errorf("fief: NewMemoryCache: maxEntries %d is not positive", maxEntries)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("fief: NewMemoryCache: ttl %v is not positive", ttl)
	}
	c := &MemoryCache{
		max:     maxEntries,
		ttl:     ttl,
		now:     time.Now,
		entries: make(map[string]*memEntry),
	}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	return c, nil
}

// Get returns the user's info if it is cached and has not expired. It
// never fails.
func (c *MemoryCache) Get(_ context.Context, userID string) (UserInfo, bool, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[userID]
	if !ok {
		c.mu.Unlock()
		return UserInfo{}, false, nil
	}
	if !now.Before(e.expires) {
		c.remove(e)
		c.mu.Unlock()
		return UserInfo{}, false, nil
	}
	c.unlink(e)
	c.pushFront(e)
	info := e.info
	c.mu.Unlock()
	return info, true, nil
}

// Set stores the user's info for the cache's TTL, evicting the least
// recently used entries beyond the bound. It never fails.
func (c *MemoryCache) Set(_ context.Context, userID string, info UserInfo) error {
	expires := c.now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[userID]; ok {
		e.info, e.expires = info, expires
		c.unlink(e)
		c.pushFront(e)
		return nil
	}
	e := &memEntry{key: userID, info: info, expires: expires}
	c.entries[userID] = e
	c.pushFront(e)
	for len(c.entries) > c.max {
		c.remove(c.lru.prev)
	}
	return nil
}

// Delete removes the user's info. It never fails.
func (c *MemoryCache) Delete(_ context.Context, userID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[userID]; ok {
		c.remove(e)
	}
	return nil
}

// Len returns the number of entries held, counting expired entries that
// have not been read or evicted since they expired.
func (c *MemoryCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *MemoryCache) pushFront(e *memEntry) {
	e.prev, e.next = &c.lru, c.lru.next
	e.prev.next, e.next.prev = e, e
}

func (c *MemoryCache) unlink(e *memEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *MemoryCache) remove(e *memEntry) {
	c.unlink(e)
	delete(c.entries, e.key)
}

// flightGroup collapses concurrent userinfo calls for one user into one.
// Its lock is taken only on cache misses.
type flightGroup struct {
	mu      sync.Mutex
	flights map[string]*flight
}

// flight is one userinfo call. Its context is canceled when every request
// waiting for it has gone away.
type flight struct {
	done    chan struct{}
	cancel  context.CancelFunc
	waiters int // guarded by flightGroup.mu

	info  UserInfo // set before done is closed
	err   error
	panic any // what fn panicked with, re-raised in every caller
}

// do returns the result of fn for key, calling it once for all concurrent
// callers with the same key. fn runs in its own goroutine, with a context
// that carries the first caller's values and is canceled when every caller
// has returned; each caller waits no longer than its own ctx. If fn panics,
// every caller panics with the same value, as with x/sync/singleflight: in
// its own goroutine (a request's, which net/http recovers), not in fn's,
// which would crash the process.
func (g *flightGroup) do(ctx context.Context, key string, fn func(context.Context) (UserInfo, error)) (UserInfo, error) {
	g.mu.Lock()
	f, ok := g.flights[key]
	if !ok {
		callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		if g.flights == nil {
			g.flights = make(map[string]*flight)
		}
		g.flights[key] = f
		go g.run(callCtx, key, f, fn)
	}
	f.waiters++
	g.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		g.mu.Lock()
		f.waiters--
		if f.waiters == 0 {
			// Nobody wants the answer any more: stop the call, and let the
			// next request start a new one.
			f.cancel()
			if g.flights[key] == f {
				delete(g.flights, key)
			}
		}
		g.mu.Unlock()
		return UserInfo{}, ctx.Err()
	}
	if f.panic != nil {
		panic(f.panic)
	}
	return f.info, f.err
}

func (g *flightGroup) run(ctx context.Context, key string, f *flight, fn func(context.Context) (UserInfo, error)) {
	defer func() {
		if v := recover(); v != nil {
			// A panicking cache must not crash the process from this
			// goroutine, nor leave requests waiting forever: the callers
			// re-panic.
			f.info, f.err, f.panic = UserInfo{}, nil, &flightPanic{value: v, stack: debug.Stack()}
		}
		f.cancel()
		g.mu.Lock()
		if g.flights[key] == f {
			delete(g.flights, key)
		}
		g.mu.Unlock()
		close(f.done)
	}()
	f.info, f.err = fn(ctx)
}

// flightPanic is what the callers of a flight whose fn panicked panic
// with: the value and the stack of the flight's goroutine.
type flightPanic struct {
	value any
	stack []byte
}

func (p *flightPanic) Error() string {
	return fmt.Sprintf("fief: user info lookup panicked: %v\n\n%s", p.value, p.stack)
}
