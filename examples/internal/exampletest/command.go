package exampletest

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// Command is an example's command, its run function, running in the
// background of a test.
type Command struct {
	out    syncBuffer
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned err
	err    error
}

// StartCommand calls run in a goroutine, with a context that Stop (or the
// end of the test) cancels and an output that WaitFor and Output read.
func StartCommand(t testing.TB, run func(ctx context.Context, out io.Writer) error) *Command {
	ctx, cancel := context.WithCancel(t.Context())
	c := &Command{cancel: cancel, done: make(chan struct{})}
	go func() {
		c.err = run(ctx, &c.out)
		close(c.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
		}
	})
	return c
}

// Output returns what the command has written so far.
func (c *Command) Output() string { return c.out.String() }

// WaitFor waits until the command's output contains s, and returns the
// output. It fails the test when the command returns first, or after 10
// seconds.
func (c *Command) WaitFor(t testing.TB, s string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		if out := c.out.String(); strings.Contains(out, s) {
			return out
		}
		select {
		case <-c.done:
			t.Fatalf("run returned %v; no %q in the output:\n%s", c.err, s, &c.out)
		case <-timeout:
			t.Fatalf("no %q in the output:\n%s", s, &c.out)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Stop cancels the command's context and waits for run to return, which
// it must do with nil within 15 seconds.
func (c *Command) Stop(t testing.TB) {
	t.Helper()
	c.cancel()
	select {
	case <-c.done:
		if c.err != nil {
			t.Fatalf("run: %v", c.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context was canceled")
	}
}

// syncBuffer is a strings.Builder safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
