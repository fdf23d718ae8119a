// Package tokencache remembers tokens whose signature and claims were
// verified, so that a token seen again skips the RSA and JSON work.
//
// Reads are lock-free (sync.Map); only inserts that overflow the bound take
// a lock, to evict. Entries are keyed by the full token: a token is its own
// proof, so two tokens never share an entry, and an entry cannot be reached
// without presenting the exact bytes that were verified.
package tokencache

import (
	"sync"
	"sync/atomic"
	"time"
)

// Entry is a verified token's cached result.
type Entry[V any] struct {
	// Value is the verification result; it is shared by every hit and must
	// not be modified.
	Value V
	// Expiry is when the entry stops being served (the token's exp).
	Expiry time.Time
	// version is the key-set version under which the entry was last known
	// good; a hit under another version re-checks the entry's key.
	version atomic.Uint64
}

// Cache is a bounded set of verified tokens. The zero value is not usable;
// create it with New.
type Cache[V any] struct {
	max int
	m   sync.Map // string -> *Entry[V]
	n   atomic.Int64
	mu  sync.Mutex // serialises evictions
}

// New returns a cache holding at most max entries (max > 0).
func New[V any](max int) *Cache[V] {
	return &Cache[V]{max: max}
}

// Get returns the entry of token if it is present and not expired at now.
// keyVersion is the key set's current version and stillValid re-checks an
// entry created under another version; an entry that fails it is dropped.
func (c *Cache[V]) Get(token string, now time.Time, keyVersion uint64, stillValid func(V) bool) (*Entry[V], bool) {
	v, ok := c.m.Load(token)
	if !ok {
		return nil, false
	}
	e := v.(*Entry[V])
	if !now.Before(e.Expiry) {
		c.delete(token, e)
		return nil, false
	}
	if e.version.Load() != keyVersion {
		if !stillValid(e.Value) {
			c.delete(token, e)
			return nil, false
		}
		e.version.Store(keyVersion)
	}
	return e, true
}

// Put remembers token's verification result until expiry.
func (c *Cache[V]) Put(token string, value V, expiry time.Time, keyVersion uint64, now time.Time) {
	if !now.Before(expiry) {
		return
	}
	e := &Entry[V]{Value: value, Expiry: expiry}
	e.version.Store(keyVersion)
	if _, loaded := c.m.Swap(token, e); !loaded {
		if c.n.Add(1) > int64(c.max) {
			c.evict(now)
		}
	}
}

// Len returns the number of entries.
func (c *Cache[V]) Len() int { return int(c.n.Load()) }

func (c *Cache[V]) delete(token string, e *Entry[V]) {
	if c.m.CompareAndDelete(token, e) {
		c.n.Add(-1)
	}
}

// evict brings the cache back to 90 % of its bound: expired entries first,
// then arbitrary ones (sync.Map iterates in no particular order). Its cost
// is amortised over the 10 % of the bound inserted between two evictions.
func (c *Cache[V]) evict(now time.Time) {
	// Inserts that find another goroutine evicting skip it; the evicting
	// goroutine looks again once it is done, so that they cannot leave the
	// cache over its bound.
	for c.n.Load() > int64(c.max) {
		if !c.mu.TryLock() {
			return // another goroutine is evicting, and will look again
		}
		c.evictLocked(now)
		c.mu.Unlock()
	}
}

// evictLocked does one eviction pass; c.mu is held.
func (c *Cache[V]) evictLocked(now time.Time) {
	target := int64(c.max) * 9 / 10
	c.m.Range(func(k, v any) bool {
		if e := v.(*Entry[V]); !now.Before(e.Expiry) {
			c.delete(k.(string), e)
		}
		return true
	})
	c.m.Range(func(k, v any) bool {
		if c.n.Load() <= target {
			return false
		}
		c.delete(k.(string), v.(*Entry[V]))
		return true
	})
}
