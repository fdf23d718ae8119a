// Package bg runs the client's background fetches with a lifecycle: they
// are detached from the request that started them (so a cancelled request
// does not fail the others that wait for the same fetch) but end with the
// client's Close, which waits for them.
package bg

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed reports a fetch requested after Close.
var ErrClosed = errors.New("fief: client closed")

// Group tracks background goroutines. The zero value is not usable; create
// it with New.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// New returns an open Group.
func New() *Group {
	ctx, cancel := context.WithCancel(context.Background())
	return &Group{ctx: ctx, cancel: cancel}
}

// Go runs f in a goroutine with the group's context, or returns ErrClosed.
func (g *Group) Go(f func(ctx context.Context)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f(g.ctx)
	}()
	return nil
}

// Close cancels the running goroutines' context and waits for them.
// Later calls to Go fail. Close is idempotent.
func (g *Group) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.cancel()
	g.wg.Wait()
}
