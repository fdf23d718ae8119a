package fief

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/fief-go/fief/internal/expiring"
)

// RefreshReuseWindow is how long the outcome of a session refresh is handed
// to the requests that still carry the refresh token it spent: requests
// that the browser sent before it received the rotated cookies, which would
// otherwise refresh with a token Fief no longer accepts and log the user
// out. It is also the default lifetime of the results a Redis
// [RefreshCoordinator] shares (rediscache.RefreshCoordinator).
const RefreshReuseWindow = 30 * time.Second

// RefreshCoordinator makes the instances of an application refresh each
// session once, whichever instance its concurrent requests reach. Fief
// rotates refresh tokens: of two refreshes with one token, the second gets
// invalid_grant, which would end the session. Within one process a
// [LoginFlow] already collapses concurrent refreshes of a session into one
// and remembers the outcome for [RefreshReuseWindow]; a coordinator extends
// that across the processes that share it. Set it as
// [LoginFlowConfig].RefreshCoordinator; package
// github.com/fief-go/fief/rediscache has one on Redis.
//
// Implementations must be safe for concurrent use.
type RefreshCoordinator interface {
	// Do returns the outcome of the refresh identified by key: a result
	// stored for key by any process sharing the coordinator, or else the
	// result of calling refresh, stored for others to find for a short time
	// (about [RefreshReuseWindow]), while concurrent callers with the same
	// key, in any process, wait for it instead of calling refresh
	// themselves.
	//
	// key is a keyed hash of the refresh token (64 hexadecimal digits),
	// never the token; the result is opaque bytes, sealed by the LoginFlow
	// (AES-256-GCM under a key derived from its CookieKey): it holds tokens
	// but the coordinator cannot read them. Do calls refresh at most once
	// and, if it does, returns only after refresh has returned: refresh's
	// result when it succeeded (even if storing it failed), or its error,
	// which is not stored, so that a waiting caller may try again.
	//
	// When it cannot coordinate (its store is down or too slow) Do returns
	// an error without calling refresh: the LoginFlow logs it at Warn level
	// and refreshes in its own process. Do is bounded by ctx.
	Do(ctx context.Context, key string, refresh func(context.Context) ([]byte, error)) ([]byte, error)
}

// refreshOutcome is the outcome of a refresh: the new tokens, or Fief's
// refusal (invalid_grant). Failures that a later attempt may overcome
// (Fief unreachable) are errors instead, never shared nor remembered.
type refreshOutcome struct {
	Refused      bool   `json:"refused,omitempty"`
	AccessToken  string `json:"access_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"` // "" when Fief issued none
	Expiry       int64  `json:"expiry,omitempty"`        // of the access token, Unix seconds
	Lifetime     int64  `json:"lifetime,omitempty"`      // of the access token, seconds
}

// Bounds of the in-process refreshes.
const (
	// maxRecentRefreshes bounds the outcomes a LoginFlow remembers: each
	// holds an access token and a refresh token, a few KiB at most.
	maxRecentRefreshes = 4096
	// refreshFlightTimeout bounds one refresh, coordination included. The
	// call to Fief is bounded by the client's timeout too.
	refreshFlightTimeout = 30 * time.Second
)

// refreshGroup collapses the concurrent refreshes of one refresh token, by
// key, into one call, and remembers each outcome (a success or a refusal)
// for RefreshReuseWindow. Its lock is taken only by requests that refresh.
// The zero refreshGroup remembers outcomes without bound: NewLoginFlow
// bounds its flow's to maxRecentRefreshes.
type refreshGroup struct {
	mu     sync.Mutex
	calls  map[[32]byte]*refreshCall
	recent expiring.Map[*refreshOutcome]
}

// refreshCall is one refresh in progress. Unlike the userinfo flight, it
// is not canceled when its callers go away: once a refresh token has been
// sent to Fief it is spent, and only the answer lets the session go on.
type refreshCall struct {
	done  chan struct{}
	out   *refreshOutcome // set before done is closed
	err   error
	panic any
}

// do returns the outcome of fn for key: a remembered one, that of a call in
// progress, or that of a new call of fn, made in its own goroutine with a
// context that carries ctx's values, not its cancellation, and is bounded by
// refreshFlightTimeout. Each caller waits no longer than its own ctx. now is
// the flow's clock.
func (g *refreshGroup) do(ctx context.Context, key [32]byte, now func() time.Time, fn func(context.Context) (*refreshOutcome, error)) (*refreshOutcome, error) {
	g.mu.Lock()
	if out, ok := g.recent.Get(key, now()); ok {
		g.mu.Unlock()
		return out, nil
	}
	c, ok := g.calls[key]
	if !ok {
		c = &refreshCall{done: make(chan struct{})}
		if g.calls == nil {
			g.calls = make(map[[32]byte]*refreshCall)
		}
		g.calls[key] = c
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshFlightTimeout)
		go g.run(callCtx, cancel, key, c, now, fn)
	}
	g.mu.Unlock()

	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	if c.panic != nil {
		panic(c.panic)
	}
	return c.out, c.err
}

func (g *refreshGroup) run(ctx context.Context, cancel context.CancelFunc, key [32]byte, c *refreshCall, now func() time.Time, fn func(context.Context) (*refreshOutcome, error)) {
	defer func() {
		if v := recover(); v != nil {
			// A panicking coordinator or cache must not crash the process
			// from this goroutine: the callers re-panic.
			c.out, c.err, c.panic = nil, nil, &refreshPanic{value: v, stack: debug.Stack()}
		}
		cancel()
		g.mu.Lock()
		if g.calls[key] == c {
			delete(g.calls, key)
		}
		if c.panic == nil && c.err == nil {
			g.remember(key, c.out, now())
		}
		g.mu.Unlock()
		close(c.done)
	}()
	c.out, c.err = fn(ctx)
}

// remember keeps out for key until RefreshReuseWindow after now, dropping
// expired outcomes and, beyond g.recent.Max, the oldest. g.mu is held.
func (g *refreshGroup) remember(key [32]byte, out *refreshOutcome, now time.Time) {
	g.recent.Put(key, out, now, now.Add(RefreshReuseWindow))
}

// refreshPanic is what the callers of a refresh whose work panicked panic
// with: the value and the stack of the refresh's goroutine.
type refreshPanic struct {
	value any
	stack []byte
}

func (p *refreshPanic) Error() string {
	return fmt.Sprintf("fief: session refresh panicked: %v\n\n%s", p.value, p.stack)
}
