package fief

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFlightGroupCollapsesCalls(t *testing.T) {
	var g flightGroup
	var calls atomic.Int32
	release := make(chan struct{})
	fn := func(context.Context) (UserInfo, error) {
		calls.Add(1)
		<-release
		return cachedUser("a"), nil
	}
	const n = 50
	results := make(chan UserInfo, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			info, err := g.do(context.Background(), "a", fn)
			if err != nil {
				t.Error(err)
			}
			results <- info
		})
	}
	waitUntil(t, func() bool { return g.waiters("a") == n })
	close(release)
	wg.Wait()
	close(results)
	if c := calls.Load(); c != 1 {
		t.Fatalf("%d calls for %d concurrent callers, want 1", c, n)
	}
	for info := range results {
		if info.Sub() != "a" {
			t.Fatalf("result %v", info)
		}
	}
	if g.waiters("a") != -1 {
		t.Fatal("finished flight still registered")
	}
}

func TestFlightGroupErrorsAndKeys(t *testing.T) {
	var g flightGroup
	boom := errors.New("boom")
	_, err := g.do(context.Background(), "a", func(context.Context) (UserInfo, error) { return UserInfo{}, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	// A failed call is not remembered.
	info, err := g.do(context.Background(), "a", func(context.Context) (UserInfo, error) { return cachedUser("a"), nil })
	if err != nil || info.Sub() != "a" {
		t.Fatalf("second call: %v, %v", info, err)
	}
	// Different keys do not share.
	var calls atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	for _, id := range []string{"x", "y", "z"} {
		wg.Go(func() {
			g.do(context.Background(), id, func(context.Context) (UserInfo, error) {
				calls.Add(1)
				<-release
				return cachedUser(id), nil
			})
		})
	}
	waitUntil(t, func() bool { return calls.Load() == 3 })
	close(release)
	wg.Wait()
}

// TestFlightGroupCancellation: a caller that goes away does not cancel the
// call for the others; when all have gone, the call is canceled and the next
// caller starts a new one.
func TestFlightGroupCancellation(t *testing.T) {
	var g flightGroup
	release := make(chan struct{})
	callCtx := make(chan context.Context, 2)
	fn := func(ctx context.Context) (UserInfo, error) {
		callCtx <- ctx
		select {
		case <-release:
			return cachedUser("a"), nil
		case <-ctx.Done():
			return UserInfo{}, ctx.Err()
		}
	}
	type key struct{}
	leaderCtx, cancelLeader := context.WithCancel(context.WithValue(context.Background(), key{}, "trace"))
	leaderErr := make(chan error, 1)
	go func() {
		_, err := g.do(leaderCtx, "a", fn)
		leaderErr <- err
	}()
	ctx := <-callCtx
	if ctx.Value(key{}) != "trace" {
		t.Fatal("the call's context lost the first caller's values")
	}
	followerDone := make(chan UserInfo, 1)
	go func() {
		info, err := g.do(context.Background(), "a", fn)
		if err != nil {
			t.Error(err)
		}
		followerDone <- info
	}()
	waitUntil(t, func() bool { return g.waiters("a") == 2 })
	cancelLeader()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader err = %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the call was canceled while a caller still waits")
	}
	close(release)
	if info := <-followerDone; info.Sub() != "a" {
		t.Fatalf("follower got %v", info)
	}

	// Every caller goes away: the call is canceled.
	c1, cancel1 := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	block := func(ctx context.Context) (UserInfo, error) {
		callCtx <- ctx
		<-ctx.Done()
		return UserInfo{}, ctx.Err()
	}
	go func() { _, err := g.do(c1, "b", block); errc <- err }()
	ctx = <-callCtx
	cancel1()
	<-errc
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("call not canceled after every caller left")
	}
	// The next caller does not join the canceled call.
	info, err := g.do(context.Background(), "b", func(context.Context) (UserInfo, error) { return cachedUser("b"), nil })
	if err != nil || info.Sub() != "b" {
		t.Fatalf("after cancellation: %v, %v", info, err)
	}
}

// TestFlightGroupPanic: a panic in the flight's goroutine (a user's cache,
// say) is re-raised in every caller, as x/sync/singleflight does, and the
// group stays usable.
func TestFlightGroupPanic(t *testing.T) {
	var g flightGroup
	release := make(chan struct{})
	const n = 3
	panics := make(chan any, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			defer func() { panics <- recover() }()
			g.do(context.Background(), "a", func(context.Context) (UserInfo, error) {
				<-release
				panic("cache exploded")
			})
		})
	}
	waitUntil(t, func() bool { return g.waiters("a") == n })
	close(release)
	wg.Wait()
	close(panics)
	for p := range panics {
		if p == nil || !strings.Contains(fmt.Sprint(p), "cache exploded") || !strings.Contains(fmt.Sprint(p), "goroutine") {
			t.Fatalf("caller recovered %v, want the panic with its stack", p)
		}
	}
	info, err := g.do(context.Background(), "a", func(context.Context) (UserInfo, error) { return cachedUser("a"), nil })
	if err != nil || info.Sub() != "a" {
		t.Fatalf("after panic: %v, %v", info, err)
	}
}

// waiters returns the number of callers waiting for key's flight, -1 when
// there is none.
func (g *flightGroup) waiters(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.flights[key]; ok {
		return f.waiters
	}
	return -1
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
