// Package keyset caches a tenant's signing keys and refreshes them when a
// token names a key the cache does not know, at most once per cooldown.
package keyset

import (
	"context"
	"crypto/rsa"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fief-go/fief/internal/bg"
)

// ErrUnknownKey reports a key ID absent from the key set, even after a
// refresh (or with a refresh refused by the cooldown).
var ErrUnknownKey = errors.New("no key with this key ID in the tenant key set")

// retryBackoff is how long a failed first fetch is answered from memory
// before the next caller tries again.
const retryBackoff = time.Second

// Key is one RSA signing key.
type Key struct {
	ID     string
	Public *rsa.PublicKey
}

// Config configures a Set.
type Config struct {
	// Fetch downloads the current keys.
	Fetch func(ctx context.Context) ([]Key, error)
	// Cooldown is the minimum time between two refreshes triggered by
	// unknown key IDs.
	Cooldown time.Duration
	// Now returns the current time.
	Now func() time.Time
	// Background runs fetches; nil runs them in plain goroutines.
	Background *bg.Group
	// MaxAge, when positive, is the age after which the set is refreshed
	// in the background at its next use (while the current keys keep
	// serving), so that a key removed from the tenant stops being trusted
	// even if no token names an unknown key. Such refreshes share the
	// cooldown of the refreshes for unknown key IDs.
	MaxAge time.Duration
}

// Set is a cached key set. Reads are lock-free; refreshes are coalesced.
type Set struct {
	cfg  Config
	snap atomic.Pointer[snapshot]

	mu          sync.Mutex
	inflight    *call
	lastRefresh time.Time // start of the last refresh for an unknown key ID
	failedAt    time.Time // end of the last failed first fetch
	failErr     error
}

type snapshot struct {
	byID      map[string]Key
	all       []Key
	version   uint64
	fetchedAt time.Time
}

type call struct {
	done chan struct{}
	err  error
}

// New returns an empty Set; keys are fetched on first use.
func New(cfg Config) *Set {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Set{cfg: cfg}
}

// Get returns the key with ID kid. With allowRefresh, an unknown kid
// triggers one refresh, shared with concurrent callers, unless a refresh for
// an unknown kid started less than the cooldown ago: then it fails at once.
func (s *Set) Get(ctx context.Context, kid string, allowRefresh bool) (Key, error) {
	if snap := s.current(); snap != nil {
		if k, ok := snap.byID[kid]; ok {
			return k, nil
		}
		if !allowRefresh {
			return Key{}, ErrUnknownKey
		}
		if err := s.refresh(ctx, true); err != nil {
			return Key{}, err
		}
	} else if err := s.refresh(ctx, false); err != nil {
		return Key{}, err
	}
	if k, ok := s.snap.Load().byID[kid]; ok {
		return k, nil
	}
	return Key{}, ErrUnknownKey
}

// All returns every key, fetching the set if it was never fetched.
func (s *Set) All(ctx context.Context) ([]Key, error) {
	if snap := s.current(); snap != nil {
		return snap.all, nil
	}
	if err := s.refresh(ctx, false); err != nil {
		return nil, err
	}
	return s.snap.Load().all, nil
}

// current returns the current snapshot (nil before the first fetch) and,
// when it is older than MaxAge, starts a refresh in the background without
// waiting for it.
func (s *Set) current() *snapshot {
	snap := s.snap.Load()
	if snap == nil || s.cfg.MaxAge <= 0 {
		return snap
	}
	now := s.cfg.Now()
	if now.Sub(snap.fetchedAt) < s.cfg.MaxAge {
		return snap
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight != nil || (!s.lastRefresh.IsZero() && now.Sub(s.lastRefresh) < s.cfg.Cooldown) {
		return snap
	}
	c := &call{done: make(chan struct{})}
	if s.spawn(func(ctx context.Context) { s.fetch(ctx, c) }) == nil {
		s.lastRefresh = now
		s.inflight = c
	}
	return snap
}

// refresh fetches the keys. forced refreshes (unknown kid) are subject to
// the cooldown; a first fetch is retried after a short backoff on failure.
// It returns nil when a usable snapshot exists afterwards.
func (s *Set) refresh(ctx context.Context, forced bool) error {
	s.mu.Lock()
	c := s.inflight
	if c == nil {
		now := s.cfg.Now()
		switch {
		case forced && s.snap.Load() != nil && !s.lastRefresh.IsZero() && now.Sub(s.lastRefresh) < s.cfg.Cooldown:
			s.mu.Unlock()
			return ErrUnknownKey
		case s.snap.Load() == nil && s.failErr != nil && now.Sub(s.failedAt) < retryBackoff:
			err := s.failErr
			s.mu.Unlock()
			return err
		case s.snap.Load() != nil && !forced:
			s.mu.Unlock()
			return nil
		}
		c = &call{done: make(chan struct{})}
		if err := s.spawn(func(ctx context.Context) { s.fetch(ctx, c) }); err != nil {
			s.mu.Unlock()
			return err
		}
		if forced {
			s.lastRefresh = now
		}
		s.inflight = c
	}
	s.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if c.err != nil && s.snap.Load() == nil {
		return c.err
	}
	if c.err != nil {
		// Fief is unreachable but cached keys remain: the kid is unknown.
		return ErrUnknownKey
	}
	return nil
}

// spawn runs f detached from the caller: a fetch serves every waiter, so
// one caller's cancellation must not fail it.
func (s *Set) spawn(f func(context.Context)) error {
	if s.cfg.Background != nil {
		return s.cfg.Background.Go(f)
	}
	go f(context.Background())
	return nil
}

func (s *Set) fetch(ctx context.Context, c *call) {
	keys, err := s.cfg.Fetch(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		snap := &snapshot{byID: make(map[string]Key, len(keys)), all: keys, version: 1, fetchedAt: s.cfg.Now()}
		if old := s.snap.Load(); old != nil {
			snap.version = old.version + 1
		}
		for _, k := range keys {
			if k.ID != "" {
				snap.byID[k.ID] = k
			}
		}
		s.snap.Store(snap)
		s.failErr = nil
	} else if s.snap.Load() == nil {
		s.failErr, s.failedAt = err, s.cfg.Now()
	}
	s.inflight = nil
	c.err = err
	close(c.done)
}

// Version identifies the current key set: it changes each time a fetch
// replaces the set, and is 0 before the first one.
func (s *Set) Version() uint64 {
	if snap := s.snap.Load(); snap != nil {
		return snap.version
	}
	return 0
}

// Holds reports whether the current set still contains k: a key with the
// same ID and the same public key.
func (s *Set) Holds(k Key) bool {
	snap := s.snap.Load()
	if snap == nil {
		return false
	}
	if k.ID != "" {
		cur, ok := snap.byID[k.ID]
		return ok && cur.Public.Equal(k.Public)
	}
	for _, cur := range snap.all {
		if cur.Public.Equal(k.Public) {
			return true
		}
	}
	return false
}
