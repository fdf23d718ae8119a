package fief

import (
	"context"
	"fmt"
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
