package rediscache

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/fief-go/fief"
	"github.com/redis/go-redis/v9"
)

// Defaults of a RefreshCoordinator.
const (
	DefaultCoordinatorPrefix = "fief:refresh:"
	// DefaultLockTTL bounds one refresh: it is above the default timeout of
	// a fief.Client (10 s), which bounds the call to Fief.
	DefaultLockTTL = 15 * time.Second
	// DefaultCoordinatorTimeout bounds each call of a RefreshCoordinator to
	// Redis. It is longer than a Cache's (DefaultTimeout): a coordinator is
	// called once per refresh, not once per request, and giving up too
	// early costs more than the wait, since two instances may then refresh
	// one session and end it.
	DefaultCoordinatorTimeout = 500 * time.Millisecond
)

// Bounds of the waits for another instance's refresh.
const (
	firstPoll = 5 * time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// CoordinatorConfig configures a [RefreshCoordinator]. The zero value is
// the defaults.
type CoordinatorConfig struct {
	// Prefix starts every key of the coordinator (default
	// DefaultCoordinatorPrefix, "fief:refresh:"). Give each application
	// sharing a Redis its own.
	Prefix string
	// ResultTTL is how long the result of a refresh is handed to the
	// requests that still carry the spent refresh token (default
	// [fief.RefreshReuseWindow], 30 s). It must be at least a millisecond.
	ResultTTL time.Duration
	// LockTTL bounds one refresh, after which another instance may try
	// (default [DefaultLockTTL], 15 s). Keep it above the [fief.Client]'s
	// timeout ([fief.WithTimeout], 10 s by default): a refresh still running
	// when its lock expires may be repeated elsewhere with the same token,
	// which Fief refuses. It must be at least a second.
	LockTTL time.Duration
	// Timeout bounds each call to Redis, in addition to the caller's
	// context (default [DefaultCoordinatorTimeout], 500ms). It must not be
	// negative.
	Timeout time.Duration
	// Logger, when set, receives at Warn level the failures that Do handles
	// itself rather than returning: a result it could not store (other
	// instances then refresh on their own) or a lock it could not release.
	Logger *slog.Logger
}

// RefreshCoordinator is a [fief.RefreshCoordinator] on Redis: the
// instances of an application that share it refresh each session once,
// whichever instance its concurrent requests reach. Create it with
// [NewRefreshCoordinator] and set it as [fief.LoginFlowConfig]'s
// RefreshCoordinator, with the same CookieKey on every instance:
//
//	coord, err := rediscache.NewRefreshCoordinator(rdb, rediscache.CoordinatorConfig{})
//	flow, err := fief.NewLoginFlow(client, fief.LoginFlowConfig{
//		RedirectURI:        "https://app.example.com/auth-callback",
//		CookieKey:          cookieKey,
//		RefreshSessions:    true,
//		RefreshCoordinator: coord,
//	})
//
// # Protocol
//
// A refresh is known by its key, a keyed hash of the refresh token (the
// token itself never reaches Redis). Do runs one Lua script, atomically:
// it returns the result stored under prefix + "{key}:result" if there is
// one; else it takes the lock prefix + "{key}:lock" (SET NX with LockTTL
// and a random owner) and the caller refreshes; else another caller holds
// the lock, and Do polls again, from 5 ms up to every 100 ms, until the
// result appears, the lock is released or expires (then it takes it), or
// ctx ends. The winner stores its result for ResultTTL and releases its
// lock in a second script; a failed refresh (Fief unreachable) releases
// the lock without a result, so that a waiting caller tries. The braces
// are Redis Cluster hash tags: both keys of a refresh are in one slot.
//
// The result is opaque bytes sealed by the LoginFlow: it holds an access
// token and a refresh token, encrypted and authenticated under a key
// derived from the CookieKey, which Redis never sees.
//
// # Failures
//
// Every call to Redis is bounded by Timeout and the caller's context, as a
// Cache's are. When Redis cannot be used before the refresh (down, too
// slow, refusing the script), Do returns the error without refreshing, and
// the LoginFlow refreshes in its own process and logs the error at Warn
// level: requests still succeed, but two instances may then refresh one
// session at once, and one of them gets Fief's invalid_grant. When Redis
// fails after the refresh, Do returns the refresh's result anyway and logs
// the failure.
type RefreshCoordinator struct {
	client    redis.UniversalClient
	prefix    string
	resultTTL time.Duration
	lockTTL   time.Duration
	bounds
	logger *slog.Logger
}

var _ fief.RefreshCoordinator = (*RefreshCoordinator)(nil)

// NewRefreshCoordinator returns a RefreshCoordinator on client, which may
// be a single-node, Sentinel or Cluster client; it does not close client.
// It fails if client is nil or cfg invalid, and makes no request to Redis.
func NewRefreshCoordinator(client redis.UniversalClient, cfg CoordinatorConfig) (*RefreshCoordinator, error) {
	if isNil(client) {
		return nil, errors.New("rediscache: NewRefreshCoordinator: nil client")
	}
	c := &RefreshCoordinator{
		client:    client,
		prefix:    cfg.Prefix,
		resultTTL: cfg.ResultTTL,
		lockTTL:   cfg.LockTTL,
		logger:    cfg.Logger,
	}
	switch {
	case cfg.ResultTTL < 0 || cfg.ResultTTL > 0 && cfg.ResultTTL < time.Millisecond:
		return nil, fmt.Errorf("rediscache: NewRefreshCoordinator: ResultTTL %v is less than a millisecond", cfg.ResultTTL)
	case cfg.LockTTL < 0 || cfg.LockTTL > 0 && cfg.LockTTL < time.Second:
		return nil, fmt.Errorf("rediscache: NewRefreshCoordinator: LockTTL %v is less than a second", cfg.LockTTL)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("rediscache: NewRefreshCoordinator: negative Timeout %v", cfg.Timeout)
	case strings.ContainsAny(cfg.Prefix, "{}"):
		return nil, fmt.Errorf("rediscache: NewRefreshCoordinator: Prefix %q has a brace, which would change the keys' hash tag", cfg.Prefix)
	}
	if c.prefix == "" {
		c.prefix = DefaultCoordinatorPrefix
	}
	if c.resultTTL == 0 {
		c.resultTTL = fief.RefreshReuseWindow
	}
	if c.lockTTL == 0 {
		c.lockTTL = DefaultLockTTL
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultCoordinatorTimeout
	}
	c.bounds = newBounds(timeout)
	return c, nil
}

// Keys returns the Redis keys of the refresh key: its result and its lock.
func (c *RefreshCoordinator) Keys(key string) (result, lock string) {
	return c.prefix + "{" + key + "}:result", c.prefix + "{" + key + "}:lock"
}

// acquireScript returns {1, result} when the result is stored, {2} when it
// took the lock, {0} when another caller holds it.
var acquireScript = redis.NewScript(`
local r = redis.call('GET', KEYS[1])
if r then return {1, r} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {0}
`)

// publishScript stores the result and releases the lock if the caller
// still owns it.
var publishScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
`)

// releaseScript releases the lock if the caller still owns it.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Do implements [fief.RefreshCoordinator]: it returns the result stored for
// key by any instance, or calls refresh once across the instances and
// stores its result for ResultTTL, while the other callers wait for it.
// refresh runs with ctx bounded by LockTTL. When Redis cannot be used
// before refresh is called, Do returns an error wrapping Redis's without
// calling it.
func (c *RefreshCoordinator) Do(ctx context.Context, key string, refresh func(context.Context) ([]byte, error)) ([]byte, error) {
	if key == "" || strings.ContainsAny(key, "{}") {
		return nil, fmt.Errorf("rediscache: refresh coordinator: invalid key %q", key)
	}
	resultKey, lockKey := c.Keys(key)
	keys := []string{resultKey, lockKey}
	owner := rand.Text()
	poll := firstPoll
	for {
		res, err := call(ctx, c.bounds, func(ctx context.Context) ([]any, error) {
			return acquireScript.Run(ctx, c.client, keys, owner, c.lockTTL.Milliseconds()).Slice()
		})
		if err != nil {
			return nil, fmt.Errorf("rediscache: refresh coordinator: %w", err)
		}
		state, _ := res[0].(int64)
		switch state {
		case 1:
			if len(res) == 2 {
				if r, ok := res[1].(string); ok {
					return []byte(r), nil
				}
			}
			return nil, errors.New("rediscache: refresh coordinator: unexpected answer from the script")
		case 2:
			return c.refresh(ctx, key, keys, owner, refresh)
		}
		// Another caller refreshes.
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("rediscache: refresh coordinator: waiting for another instance's refresh: %w", context.Cause(ctx))
		case <-t.C:
		}
		poll = min(2*poll, maxPoll)
	}
}

// refresh calls refresh as the holder of the lock, then stores its result
// or releases the lock.
func (c *RefreshCoordinator) refresh(ctx context.Context, key string, keys []string, owner string, refresh func(context.Context) ([]byte, error)) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, c.lockTTL)
	b, err := refresh(rctx)
	cancel()
	// Redis is called even if ctx ended meanwhile: the result must reach the
	// other instances, and the lock be released.
	sctx := context.WithoutCancel(ctx)
	if err != nil {
		_, rerr := call(sctx, c.bounds, func(ctx context.Context) (any, error) {
			return releaseScript.Run(ctx, c.client, keys[1:], owner).Result()
		})
		if rerr != nil {
			c.warn(ctx, "rediscache: refresh coordinator: the lock of a failed refresh could not be released; others wait for its expiry", key, rerr)
		}
		return nil, err
	}
	_, perr := call(sctx, c.bounds, func(ctx context.Context) (any, error) {
		return publishScript.Run(ctx, c.client, keys, owner, b, c.resultTTL.Milliseconds()).Result()
	})
	if perr != nil {
		c.warn(ctx, "rediscache: refresh coordinator: the result of a refresh could not be stored; other instances refresh on their own", key, perr)
	}
	return b, nil
}

func (c *RefreshCoordinator) warn(ctx context.Context, msg, key string, err error) {
	if c.logger == nil {
		return
	}
	c.logger.LogAttrs(ctx, slog.LevelWarn, msg, slog.String("key", key), slog.String("error", err.Error()))
}
