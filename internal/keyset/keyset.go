// Package keyset caches a tenant's signing keys and refreshes them when a
// token names a key the cache does not know, or when the set grows old.
//
// Refreshes for unknown key IDs are rate-limited so that forged tokens
// cannot turn into a stream of fetches, without letting them keep a
// genuinely new key out:
//
//   - an unknown kid triggers a fetch at most once per cooldown window;
//   - a kid missed a second time since the last fetch (a new key is named
//     by every token signed with it; a forged kid is typically named once)
//     triggers one more fetch, at most once per retry window, a tenth of the
//     cooldown. The kids missed since the last fetch are remembered by hash,
//     up to maxMissed; beyond that every miss counts as a repeat.
//
// So a flood of tokens with random kids costs one fetch per cooldown, a
// flood repeating each kid one fetch per retry window, and a new key is
// trusted at the latest by the first request naming it that comes a retry
// window after the last fetch and after an earlier request naming it.
package keyset

import (
	"context"
	"crypto/rsa"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fief-go/fief/internal/bg"
)

// ErrUnknownKey reports a key ID absent from the key set, even after a
// refresh (or with a refresh refused by the rate limits).
var ErrUnknownKey = errors.New("no key with this key ID in the tenant key set")

// retryBackoff is how long a failed first fetch is answered from memory
// before the next caller tries again.
const retryBackoff = time.Second

// maxMissed bounds the kids remembered as missed since the last fetch.
const maxMissed = 4096

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
	// kids missed once; a tenth of it separates the retries for kids missed
	// twice.
	Cooldown time.Duration
	// Now returns the current time.
	Now func() time.Time
	// Background runs fetches; nil runs them in plain goroutines.
	Background *bg.Group
	// MaxAge, when positive, is the age after which the set is refreshed
	// in the background at its next use, a cache hit included (while the
	// current keys keep serving), so that a key removed from the tenant
	// stops being trusted even if no token names an unknown key. Such
	// refreshes open a cooldown window like those for unknown kids.
	MaxAge time.Duration
	// Initial, when not empty, is the set before any fetch, as if fetched
	// at New.
	Initial []Key
}

// Set is a cached key set. Reads are lock-free; refreshes are coalesced.
type Set struct {
	cfg   Config
	retry time.Duration // Cooldown / 10
	seed  maphash.Seed
	snap  atomic.Pointer[snapshot]
	// ageCheck is the Unix time in nanoseconds before which a stale set
	// is not refreshed again, so that cache hits on a stale set (Fief
	// down, say) take no lock.
	ageCheck atomic.Int64

	mu          sync.Mutex
	inflight    *call
	windowStart time.Time           // start of the last refresh opening a cooldown window
	lastRetry   time.Time           // start of the last refresh for a kid missed twice
	missed      map[uint64]struct{} // hashes of the kids missed since the last fetch
	flooded     bool                // missed overflowed since the last fetch
	failedAt    time.Time           // end of the last failed first fetch
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
	s := &Set{cfg: cfg, retry: cfg.Cooldown / 10, seed: maphash.MakeSeed()}
	if len(cfg.Initial) > 0 {
		s.snap.Store(newSnapshot(cfg.Initial, 1, cfg.Now()))
	}
	return s
}

func newSnapshot(keys []Key, version uint64, at time.Time) *snapshot {
	snap := &snapshot{byID: make(map[string]Key, len(keys)), all: keys, version: version, fetchedAt: at}
	for _, k := range keys {
		if k.ID != "" {
			snap.byID[k.ID] = k
		}
	}
	return snap
}

// Get returns the key with ID kid. An unknown kid may trigger a refresh,
// shared with concurrent callers, within the limits the package describes,
// if mayRefresh approves it: it is called only when the limits would let a
// fetch start, so that its work (deciding whether the token naming kid is
// worth a fetch) is not done for misses refused anyway. A nil mayRefresh
// never refreshes. A miss refused fails at once.
func (s *Set) Get(ctx context.Context, kid string, mayRefresh func() bool) (Key, error) {
	if snap := s.current(s.cfg.Now()); snap != nil {
		if k, ok := snap.byID[kid]; ok {
			return k, nil
		}
		if mayRefresh == nil {
			return Key{}, ErrUnknownKey
		}
		if err := s.refresh(ctx, kid, mayRefresh); err != nil {
			return Key{}, err
		}
	} else if err := s.first(ctx); err != nil {
		return Key{}, err
	}
	if k, ok := s.snap.Load().byID[kid]; ok {
		return k, nil
	}
	return Key{}, ErrUnknownKey
}

// All returns every key, fetching the set if it was never fetched.
func (s *Set) All(ctx context.Context) ([]Key, error) {
	if snap := s.current(s.cfg.Now()); snap != nil {
		return snap.all, nil
	}
	if err := s.first(ctx); err != nil {
		return nil, err
	}
	return s.snap.Load().all, nil
}

// Version identifies the key set current at now: it changes each time a
// fetch replaces the set, and is 0 before the first one. Like every read,
// it starts a background refresh when the set is older than MaxAge.
func (s *Set) Version(now time.Time) uint64 {
	if snap := s.current(now); snap != nil {
		return snap.version
	}
	return 0
}

// current returns the current snapshot (nil before the first fetch) and,
// when it is older than MaxAge, starts a refresh in the background without
// waiting for it.
func (s *Set) current(now time.Time) *snapshot {
	snap := s.snap.Load()
	if snap == nil || s.cfg.MaxAge <= 0 || now.Sub(snap.fetchedAt) < s.cfg.MaxAge || now.UnixNano() < s.ageCheck.Load() {
		return snap
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := now.Add(max(s.cfg.Cooldown, retryBackoff))
	switch {
	case s.inflight != nil:
	case !s.windowStart.IsZero() && now.Sub(s.windowStart) < s.cfg.Cooldown:
		next = s.windowStart.Add(s.cfg.Cooldown)
	default:
		// Nobody waits for an age refresh: the current keys keep serving.
		if _, err := s.start(); err == nil {
			s.windowStart = now
		}
	}
	s.ageCheck.Store(next.UnixNano())
	return snap
}

// first fetches the set if no fetch ever succeeded, retrying a failure
// after retryBackoff.
func (s *Set) first(ctx context.Context) error {
	s.mu.Lock()
	c := s.inflight
	if c == nil {
		if s.snap.Load() != nil {
			s.mu.Unlock()
			return nil
		}
		if s.failErr != nil && s.cfg.Now().Sub(s.failedAt) < retryBackoff {
			err := s.failErr
			s.mu.Unlock()
			return err
		}
		var err error
		if c, err = s.start(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.mu.Unlock()
	return s.wait(ctx, c)
}

// refresh fetches the set for the unknown kid if the rate limits and
// mayRefresh allow it, or joins a fetch in flight. It returns nil when a
// snapshot fetched after the miss exists.
func (s *Set) refresh(ctx context.Context, kid string, mayRefresh func() bool) error {
	s.mu.Lock()
	c := s.inflight
	if c == nil {
		now := s.cfg.Now()
		h := maphash.String(s.seed, kid)
		_, again := s.missed[h]
		primary := s.windowStart.IsZero() || now.Sub(s.windowStart) >= s.cfg.Cooldown
		retry := !primary && (again || s.flooded) && now.Sub(s.windowStart) >= s.retry && now.Sub(s.lastRetry) >= s.retry
		switch {
		case (primary || retry) && !mayRefresh():
			// Not worth a fetch, nor remembering.
			s.mu.Unlock()
			return ErrUnknownKey
		case primary:
			s.windowStart = now
		case retry:
			s.lastRetry = now
		default:
			s.remember(h)
			s.mu.Unlock()
			return ErrUnknownKey
		}
		var err error
		if c, err = s.start(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.mu.Unlock()
	switch err := s.wait(ctx, c); {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	// Fief is unreachable but cached keys remain: the kid is unknown.
	return ErrUnknownKey
}

// remember records a missed kid's hash; s.mu must be held.
func (s *Set) remember(h uint64) {
	if s.flooded {
		return
	}
	if len(s.missed) >= maxMissed {
		s.flooded, s.missed = true, nil
		return
	}
	if s.missed == nil {
		s.missed = make(map[uint64]struct{})
	}
	s.missed[h] = struct{}{}
}

// start launches a fetch; s.mu must be held.
func (s *Set) start() (*call, error) {
	c := &call{done: make(chan struct{})}
	if err := s.spawn(func(ctx context.Context) { s.fetch(ctx, c) }); err != nil {
		return nil, err
	}
	s.inflight = c
	return c, nil
}

// wait waits for c, or for ctx, and returns c's error.
func (s *Set) wait(ctx context.Context, c *call) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
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
		version := uint64(1)
		if old := s.snap.Load(); old != nil {
			version = old.version + 1
		}
		s.snap.Store(newSnapshot(keys, version, s.cfg.Now()))
		s.failErr = nil
		s.missed, s.flooded = nil, false
	} else if s.snap.Load() == nil {
		s.failErr, s.failedAt = err, s.cfg.Now()
	}
	s.inflight = nil
	c.err = err
	close(c.done)
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
