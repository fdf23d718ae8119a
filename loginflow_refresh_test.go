package fief_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// burst sends n concurrent GET requests of path with cookies, spread over
// the instances envs, released together, and returns their answers.
func burst(t *testing.T, envs []*lfEnv, n int, path string, cookies ...*http.Cookie) []lfResponse {
	t.Helper()
	responses := make([]lfResponse, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		e := envs[i%len(envs)]
		wg.Go(func() {
			<-start
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.appURL+path, nil)
			if err != nil {
				t.Error(err)
				return
			}
			for _, c := range cookies {
				req.AddCookie(c)
			}
			resp, err := e.bare().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			responses[i] = lfResponse{resp, buf.String()}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return responses
}

// TestSessionRefreshConcurrent is the rotation race within one process:
// a burst of requests with one expired session makes one refresh, all get
// its result, and so do requests that still carry the spent refresh token
// for RefreshReuseWindow. After that, the spent token is refused by Fief
// (as a stolen one replayed would be) and the session ends.
func TestSessionRefreshConcurrent(t *testing.T) {
	e := newLFEnv(t, lfOptions{refresh: true})
	clock := newTestClock()
	fief.SetLoginFlowClock(e.flow, clock.Now)
	_, _, refresh := e.loggedIn(t)
	calls := e.srv.Requests(fieftest.EndpointToken)

	const n = 40
	responses := burst(t, []*lfEnv{e}, n, "/token", refresh)
	tokens := map[string]int{}
	for _, resp := range responses {
		session, _ := e.checkRefreshed(t, resp, "", refresh.Value)
		tokens[session.Value]++
	}
	if got := e.srv.Requests(fieftest.EndpointToken) - calls; got != 1 || len(tokens) != 1 {
		t.Fatalf("%d requests: %d token requests and %d distinct access tokens, want 1 and 1", n, got, len(tokens))
	}
	t.Logf("%d concurrent requests with one expired session: %d refresh at Fief", n, e.srv.Requests(fieftest.EndpointToken)-calls)

	// Late requests with the spent token get the same outcome.
	clock.Add(fief.RefreshReuseWindow - time.Second)
	for range 3 {
		session, _ := e.checkRefreshed(t, e.send(t, "/token", nil, refresh), "", refresh.Value)
		tokens[session.Value]++
	}
	if got := e.srv.Requests(fieftest.EndpointToken) - calls; got != 1 || len(tokens) != 1 {
		t.Errorf("late requests: %d token requests and %d distinct tokens, want 1 and 1", got, len(tokens))
	}

	// After the window, the spent token is Fief's to refuse.
	clock.Add(2 * time.Second)
	resp := e.send(t, "/protected", nil, refresh)
	e.checkLoginStarted(t, resp)
	checkCleared(t, resp)
	if !strings.Contains(e.logs.String(), "Fief refused the refresh token") {
		t.Errorf("no log of the refusal: %s", e.logs)
	}
}

// memCoordinator is a RefreshCoordinator in memory, shared by the
// LoginFlows of a test as a Redis one is by the instances of an
// application.
type memCoordinator struct {
	mu      sync.Mutex
	results map[string][]byte
	running map[string]chan struct{}
	calls   int      // of refresh
	keys    []string // every key Do was given
	fail    error    // returned at once, without calling refresh
	garbage bool     // answer garbage, without calling refresh
}

func newMemCoordinator() *memCoordinator {
	return &memCoordinator{results: map[string][]byte{}, running: map[string]chan struct{}{}}
}

func (c *memCoordinator) Do(ctx context.Context, key string, refresh func(context.Context) ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	c.keys = append(c.keys, key)
	switch {
	case c.fail != nil:
		c.mu.Unlock()
		return nil, c.fail
	case c.garbage:
		c.mu.Unlock()
		return []byte("garbage from another application"), nil
	}
	for {
		if r, ok := c.results[key]; ok {
			c.mu.Unlock()
			return r, nil
		}
		ch, busy := c.running[key]
		if !busy {
			break
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c.mu.Lock()
	}
	ch := make(chan struct{})
	c.running[key] = ch
	c.calls++
	c.mu.Unlock()
	b, err := refresh(ctx)
	c.mu.Lock()
	delete(c.running, key)
	if err == nil {
		c.results[key] = b
	}
	close(ch)
	c.mu.Unlock()
	return b, err
}

// TestSessionRefreshCoordinator runs two instances of an application (two
// LoginFlows with one CookieKey) sharing a coordinator: a burst of requests
// with one expired session, spread over both, makes one refresh at Fief;
// the coordinator sees neither the refresh token nor the tokens in clear.
// A coordinator that fails makes each instance refresh on its own; one
// whose result does not open refreshes nothing.
func TestSessionRefreshCoordinator(t *testing.T) {
	coord := newMemCoordinator()
	config := func(c *fief.LoginFlowConfig) {
		c.CookieKey = bytes.Repeat([]byte{7}, 32)
		c.RefreshCoordinator = coord
	}
	a := newLFEnv(t, lfOptions{refresh: true, config: config})
	b := newLFEnv(t, lfOptions{refresh: true, config: config, instanceOf: a})
	_, _, refresh := a.loggedIn(t)
	rt := fief.RefreshTokenOf(a.flow, refresh.Value)
	calls := a.srv.Requests(fieftest.EndpointToken)

	const n = 40
	responses := burst(t, []*lfEnv{a, b}, n, "/token", refresh)
	tokens := map[string]bool{}
	var access, rotated []string
	for _, resp := range responses {
		session, newRefresh := a.checkRefreshed(t, resp, "", refresh.Value)
		tokens[session.Value] = true
		access = append(access, session.Value)
		rotated = append(rotated, fief.RefreshTokenOf(a.flow, newRefresh.Value))
	}
	got := a.srv.Requests(fieftest.EndpointToken) - calls
	t.Logf("%d concurrent requests over two instances: %d refresh at Fief, %d coordinated refresh, %d distinct access tokens", n, got, coord.calls, len(tokens))
	if got != 1 || coord.calls != 1 || len(tokens) != 1 {
		t.Fatalf("%d token requests, %d coordinated refreshes, %d distinct access tokens; want 1, 1, 1", got, coord.calls, len(tokens))
	}
	coord.mu.Lock()
	for _, k := range coord.keys {
		if len(k) != 64 || strings.Trim(k, "0123456789abcdef") != "" || strings.Contains(k, rt) {
			t.Errorf("coordinator key %q: want 64 hex digits", k)
		}
	}
	for k, v := range coord.results {
		for _, secret := range append([]string{rt, rotated[0]}, strings.Split(access[0], ".")...) {
			if bytes.Contains(v, []byte(secret)) {
				t.Errorf("the result stored under %s holds a token in clear", k)
			}
		}
	}
	coord.mu.Unlock()

	// The coordinator fails: each instance refreshes on its own, and says so.
	_, _, refresh = a.loggedIn(t)
	coord.mu.Lock()
	coord.fail = errors.New("the coordinator's store is down")
	coord.mu.Unlock()
	b.checkRefreshed(t, b.send(t, "/token", nil, refresh), "", refresh.Value)
	if !strings.Contains(b.logs.String(), `level=WARN msg="fief: session refresh: the refresh coordinator failed; refreshing in this process" error="the coordinator's store is down"`) {
		t.Errorf("no warning: %s", b.logs)
	}

	// A result that does not open: no refresh, the session kept for later.
	_, _, refresh = a.loggedIn(t)
	coord.mu.Lock()
	coord.fail, coord.garbage = nil, true
	coord.mu.Unlock()
	calls = a.srv.Requests(fieftest.EndpointToken)
	resp := b.send(t, "/protected", nil, refresh)
	b.checkLoginStarted(t, resp)
	if c := lfFindCookie(resp, lfRefreshCookie); c != nil {
		t.Errorf("the refresh cookie is touched: %s", lfShow(c))
	}
	if n := a.srv.Requests(fieftest.EndpointToken) - calls; n != 0 {
		t.Errorf("%d token requests", n)
	}
	if !strings.Contains(b.logs.String(), "unusable result from the refresh coordinator") {
		t.Errorf("no warning: %s", b.logs)
	}
}
