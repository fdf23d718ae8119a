package rediscache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	client     redis.UniversalClient
	prefix     string
	ttl        time.Duration
	timeout    time.Duration // 0: calls are bounded by their context only
	timeoutErr error         // the cause of a call's own deadline
	logger     *slog.Logger  // nil: nothing is logged
}

var _ fief.UserInfoCache = (*Cache)(nil)

// Option configures a Cache.
type Option func(*Cache)

// WithPrefix sets the prefix of the keys (default DefaultPrefix,
// "fief:userinfo:"); a user's key is the prefix followed by the user ID.
// Give each application or Fief tenant sharing a Redis its own prefix.
func WithPrefix(prefix string) Option {
	return func(c *Cache) { c.prefix = prefix }
}

// WithTTL sets how long an entry lives after Set (default DefaultTTL, one
// hour): the longest a change made outside the application takes to be
// seen. It panics if ttl is less than a millisecond, Redis's resolution.
func WithTTL(ttl time.Duration) Option {
	if ttl < time.Millisecond {
		panic(fmt.Sprintf("rediscache: WithTTL: ttl %v is less than a millisecond", ttl))
	}
	return func(c *Cache) { c.ttl = ttl }
}

// WithTimeout bounds each call to Redis, in addition to the caller's
// context (default DefaultTimeout, 100ms). Zero leaves calls bounded by
// their context only. It panics if d is negative.
func WithTimeout(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("rediscache: WithTimeout: negative timeout %v", d))
	}
	return func(c *Cache) { c.timeout = d }
}

// WithLogger logs, at Warn level, what the Cache handles itself rather than
// returning: entries that are not user info, which Get deletes and treats as
// misses, and failures to delete them. Errors that Get, Set and Delete
// return are not logged here (the middleware logs them). A nil logger, the
// default, logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(c *Cache) { c.logger = l }
}

// New returns a Cache storing users' info in client, which may be a
// single-node, Sentinel or Cluster client. The Cache does not close client.
// New panics if client or an option is nil.
func New(client redis.UniversalClient, opts ...Option) *Cache {
	if isNil(client) {
		panic("rediscache: New: nil client")
	}
	c := &Cache{
		client:  client,
		prefix:  DefaultPrefix,
		ttl:     DefaultTTL,
		timeout: DefaultTimeout,
	}
	for _, o := range opts {
		if o == nil {
			panic("rediscache: New: nil option")
		}
		o(c)
	}
	if c.timeout > 0 {
		c.timeoutErr = fmt.Errorf("no answer from Redis within %v: %w", c.timeout, context.DeadlineExceeded)
	}
	return c
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
// entry that is not a JSON object, which Get deletes and logs (see
// WithLogger). The UserInfo is freshly decoded and belongs to the caller;
// its numbers are json.Number. A Redis failure or timeout is returned as an
// error.
func (c *Cache) Get(ctx context.Context, userID string) (fief.UserInfo, bool, error) {
	key := c.Key(userID)
	b, err := call(ctx, c, func(ctx context.Context) ([]byte, error) {
		return c.client.Get(ctx, key).Bytes()
	})
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("rediscache: GET: %w", err)
	}
	info, err := decode(b)
	if err != nil {
		c.dropCorrupt(ctx, key, len(b), err)
		return nil, false, nil
	}
	return info, true, nil
}

// Set stores the user's info for the Cache's TTL, replacing any entry. It
// returns an error, without calling Redis, if info is nil or cannot be
// encoded as JSON, and Redis's error if the write fails or times out.
func (c *Cache) Set(ctx context.Context, userID string, info fief.UserInfo) error {
	if info == nil {
		return errors.New("rediscache: SET: nil user info")
	}
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("rediscache: SET: encoding user info: %w", err)
	}
	key := c.Key(userID)
	_, err = call(ctx, c, func(ctx context.Context) (struct{}, error) {
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
	_, err := call(ctx, c, func(ctx context.Context) (struct{}, error) {
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

// decode decodes an entry: one JSON object, numbers as json.Number, as
// Fief's answers are decoded.
func decode(b []byte) (fief.UserInfo, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var info fief.UserInfo
	if err := dec.Decode(&info); err != nil {
		return nil, err
	}
	if info == nil {
		return nil, errors.New("null instead of a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	return info, nil
}

// call runs fn, a Redis command, bounded by ctx and the Cache's timeout.
// go-redis honours contexts for its socket I/O only when the client has
// ContextTimeoutEnabled, so fn runs in its own goroutine, which call
// abandons when the bound is reached: the command then finishes in the
// background (at once with ContextTimeoutEnabled, at the client's read or
// write timeout otherwise) and its result is dropped.
func call[T any](ctx context.Context, c *Cache, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if ctx.Err() != nil {
		return zero, context.Cause(ctx)
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.timeout, c.timeoutErr)
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
