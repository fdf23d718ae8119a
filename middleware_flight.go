package fief

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
)

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
