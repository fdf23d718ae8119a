package rediscache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fief-go/fief"
	"github.com/redis/go-redis/v9"
)

// Defaults of a Cache.
const (
	DefaultPrefix  = "fief:userinfo:"
	DefaultTTL     = time.Hour
	DefaultTimeout = 100 * time.Millisecond
)

// Cache is a fief.UserInfoCache on Redis. Create it with New; it is safe for
// concurrent use.
type Cache struct {
	client redis.UniversalClient
	prefix string
	ttl    time.Duration
	bounds
	logger *slog.Logger // nil: nothing is logged
}

// bounds is how long a call to Redis may take, besides its context.
type bounds struct {
	timeout    time.Duration // 0: calls are bounded by their context only
	timeoutErr error         // the cause of a call's own deadline
}

func newBounds(timeout time.Duration) bounds {
	b := bounds{timeout: timeout}
	if timeout > 0 {
		b.timeoutErr = fmt.Errorf("no answer from Redis within %v: %w", timeout, context.DeadlineExceeded)
	}
	return b
}

var _ fief.UserInfoCache = (*Cache)(nil)

// Option configures a Cache.
type Option func(*Cache) error

// WithPrefix sets the prefix of the keys (default DefaultPrefix,
// "fief:userinfo:"); a user's key is the prefix followed by the user ID.
// Give each application or Fief tenant sharing a Redis its own prefix.
func WithPrefix(prefix string) Option {
	return func(c *Cache) error {
		c.prefix = prefix
		return nil
	}
}

// WithTTL sets how long an entry lives after Set (default DefaultTTL, one
// hour): the longest a change made outside the application takes to be
// seen. It must be at least a millisecond, Redis's resolution.
func WithTTL(ttl time.Duration) Option {
	return func(c *Cache) error {
		if ttl < time.Millisecond {
			return fmt.Errorf("rediscache: WithTTL: ttl %v is less than a millisecond", ttl)
		}
		c.ttl = ttl
		return nil
	}
}

// WithTimeout bounds each call to Redis, in addition to the caller's
// context (default DefaultTimeout, 100ms). Zero leaves calls bounded by
// their context only; a negative d is refused.
func WithTimeout(d time.Duration) Option {
	return func(c *Cache) error {
		if d < 0 {
			return fmt.Errorf("rediscache: WithTimeout: negative timeout %v", d)
		}
		c.timeout = d
		return nil
	}
}

// WithLogger logs, at Warn level, what the Cache handles itself rather than
// returning: entries that are not user info, which Get deletes and treats as
// misses, and failures to delete them. Errors that Get, Set and Delete
// return are not logged here (the middleware logs them). By default
// nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *Cache) error {
		if l == nil {
			return errors.New("rediscache: WithLogger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// New returns a Cache storing users' info in client, which may be a
// single-node, Sentinel or Cluster client. The Cache does not close client.
// It fails if client is nil or an option is nil or invalid, and makes no
// request to Redis.
func New(client redis.UniversalClient, opts ...Option) (*Cache, error) {
	if isNil(client) {
		return nil, errors.New("rediscache: New: nil client")
	}
	c := &Cache{
		client: client,
		prefix: DefaultPrefix,
		ttl:    DefaultTTL,
		bounds: bounds{timeout: DefaultTimeout},
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("rediscache: New: nil option")
		}
		if err := o(c); err != nil {
			return nil, err
		}
	}
	c.bounds = newBounds(c.timeout)
	return c, nil
}

func isNil(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case nil:
		return true
	case *redis.Client:
		return c == nil
	case *redis.ClusterClient:
		return c == nil
	case *redis.Ring:
		return c == nil
	}
	return false
}

// Key returns the Redis key of user userID's entry.
func (c *Cache) Key(userID string) string { return c.prefix + userID }

// Get returns the user's info and true, or false on a miss: no entry, or an
// entry that is not user info ([fief.ParseUserInfo] refuses it), which Get
// deletes and logs (see WithLogger). A Redis failure or timeout is returned
// as an error.
func (c *Cache) Get(ctx context.Context, userID string) (fief.UserInfo, bool, error) {
	key := c.Key(userID)
	b, err := call(ctx, c.bounds, func(ctx context.Context) ([]byte, error) {
		return c.client.Get(ctx, key).Bytes()
	})
	if errors.Is(err, redis.Nil) {
		return fief.UserInfo{}, false, nil
	}
	if err != nil {
		return fief.UserInfo{}, false, fmt.Errorf("rediscache: GET: %w", err)
	}
	info, err := fief.ParseUserInfo(b)
	if err != nil {
		c.dropCorrupt(ctx, key, len(b), err)
		return fief.UserInfo{}, false, nil
	}
	return info, true, nil
}

// Set stores the user's info, its JSON object as Fief sent it, for the
// Cache's TTL, replacing any entry. It returns an error, without calling
// Redis, for the zero UserInfo, and Redis's error if the write fails or
// times out.
func (c *Cache) Set(ctx context.Context, userID string, info fief.UserInfo) error {
	if info.IsZero() {
		return errors.New("rediscache: SET: zero user info")
	}
	b, _ := info.MarshalJSON() // never fails for a UserInfo that is not zero
	key := c.Key(userID)
	_, err := call(ctx, c.bounds, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, c.client.Set(ctx, key, b, c.ttl).Err()
	})
	if err != nil {
		return fmt.Errorf("rediscache: SET: %w", err)
	}
	return nil
}

// Delete removes the user's entry, so that the next request on any instance
// fetches the user's info from Fief: call it after changing the user's
// profile, password or email address. Deleting a user that is not cached is
// not an error; a Redis failure or timeout is.
func (c *Cache) Delete(ctx context.Context, userID string) error {
	if err := c.del(ctx, c.Key(userID)); err != nil {
		return fmt.Errorf("rediscache: DEL: %w", err)
	}
	return nil
}

func (c *Cache) del(ctx context.Context, key string) error {
	_, err := call(ctx, c.bounds, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, c.client.Del(ctx, key).Err()
	})
	return err
}

// dropCorrupt deletes an entry that is not user info and logs it. Another
// instance may have replaced the entry in between with a good one, which is
// then deleted too: that costs one miss. The entry's content is not logged:
// it may hold personal data.
func (c *Cache) dropCorrupt(ctx context.Context, key string, size int, decodeErr error) {
	err := c.del(ctx, key)
	if c.logger == nil {
		return
	}
	c.logger.LogAttrs(ctx, slog.LevelWarn, "rediscache: entry is not user info; deleting it",
		slog.String("key", key), slog.Int("bytes", size), slog.String("error", decodeErr.Error()))
	if err != nil {
		c.logger.LogAttrs(ctx, slog.LevelWarn, "rediscache: deleting an entry that is not user info failed",
			slog.String("key", key), slog.String("error", err.Error()))
	}
}

// call runs fn, a Redis command, bounded by ctx and b's timeout.
// go-redis honours contexts for its socket I/O only when the client has
// ContextTimeoutEnabled, so fn runs in its own goroutine, which call
// abandons when the bound is reached: the command then finishes in the
// background (at once with ContextTimeoutEnabled, at the client's read or
// write timeout otherwise) and its result is dropped.
func call[T any](ctx context.Context, b bounds, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if ctx.Err() != nil {
		return zero, context.Cause(ctx)
	}
	if b.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, b.timeout, b.timeoutErr)
		defer cancel()
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1) // buffered: an abandoned fn does not block
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r = result{err: fmt.Errorf("redis command panicked: %v", p)}
			}
			done <- r
		}()
		r.v, r.err = fn(ctx)
	}()
	select {
	case r := <-done:
		if r.err != nil && !isReply(r.err) && ctx.Err() != nil {
			// The command failed because the bound was reached (with
			// ContextTimeoutEnabled, go-redis stops at the deadline
			// itself): say which bound.
			return zero, context.Cause(ctx)
		}
		return r.v, r.err
	case <-ctx.Done():
		select {
		case r := <-done: // answered just in time
			if r.err == nil || isReply(r.err) {
				return r.v, r.err
			}
		default:
		}
		return zero, context.Cause(ctx)
	}
}

// isReply reports whether err is Redis's answer (redis.Nil, an error reply
// such as WRONGTYPE or OOM) rather than a failure to get one.
func isReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
