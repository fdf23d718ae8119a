package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStartKillRestart(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Errorf("Addr %q, want a 127.0.0.1 port", s.Addr)
	}
	if err := Ping(s.Addr, time.Second); err != nil {
		t.Fatalf("PING a started server: %v", err)
	}
	s.Kill()
	if err := Ping(s.Addr, time.Second); err == nil {
		t.Fatal("a killed server answers PING")
	}
	s.Kill() // killing a dead server does nothing
	addr := s.Addr
	s.Restart()
	if s.Addr != addr {
		t.Errorf("restarted on %s, want %s", s.Addr, addr)
	}
	if err := Ping(s.Addr, time.Second); err != nil {
		t.Fatalf("PING a restarted server: %v", err)
	}
}

func TestExtraArguments(t *testing.T) {
	s := Start(t, "--maxmemory", "10mb")
	reply := command(t, s.Addr, "CONFIG", "GET", "maxmemory")
	if !strings.Contains(reply, "10485760") {
		t.Errorf("CONFIG GET maxmemory = %q, want 10485760", reply)
	}
	if reply := command(t, s.Addr, "CONFIG", "GET", "save"); !strings.Contains(reply, "$0\r\n") {
		t.Errorf("CONFIG GET save = %q, want no persistence", reply)
	}
}

// The server dies with the test that started it.
func TestKilledAtCleanup(t *testing.T) {
	var addr string
	t.Run("server", func(t *testing.T) { addr = Start(t).Addr })
	if addr == "" {
		t.Skip("the subtest skipped")
	}
	if err := Ping(addr, time.Second); err == nil {
		t.Errorf("the server on %s outlived its test", addr)
	}
}

func TestServerThatCannotStart(t *testing.T) {
	serverPath(t) // skips without redis-server
	tb := runFake(t, func(tb testing.TB) { Start(tb, "--no-such-option", "x") })
	if !strings.Contains(tb.failed, "exited") {
		t.Errorf("failure %q, want the server's exit", tb.failed)
	}
}

func TestMissingRedisServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())

	t.Setenv(RequireEnv, "")
	tb := runFake(t, func(tb testing.TB) { Start(tb) })
	if tb.failed != "" || !strings.Contains(tb.skipped, "redis-server not found") ||
		!strings.Contains(tb.skipped, "apt-get install redis-server") || !strings.Contains(tb.skipped, RequireEnv+"=1") {
		t.Errorf("without %s: skipped %q, failed %q; want a skip saying how to install redis-server", RequireEnv, tb.skipped, tb.failed)
	}

	t.Setenv(RequireEnv, "1")
	tb = runFake(t, func(tb testing.TB) { Start(tb) })
	if tb.skipped != "" || !strings.Contains(tb.failed, "redis-server not found in PATH") || !strings.Contains(tb.failed, RequireEnv+" is set") {
		t.Errorf("with %s: skipped %q, failed %q; want a failure", RequireEnv, tb.skipped, tb.failed)
	}
}

// fakeTB records Skip and Fatal instead of ending the real test; it passes
// the rest (TempDir, Cleanup, Helper) to the real test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Fatal(args ...any) {
	f.failed = fmt.Sprint(args...)
	runtime.Goexit()
}

// runFake runs fn with a fakeTB in its own goroutine, which Skip and Fatal
// end, and returns the fakeTB.
func runFake(t *testing.T, fn func(testing.TB)) *fakeTB {
	tb := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	return tb
}

// command sends a command to the Redis server at addr and returns its raw
// answer.
func command(t *testing.T, addr string, args ...string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	req := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		req += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	reply, err := readReply(bufio.NewReader(conn))
	if err != nil {
		t.Fatalf("reading the answer to %v: %v", args, err)
	}
	return reply
}

// readReply reads one RESP2 answer and returns it as sent.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	switch line[0] {
	case '$': // a bulk string: its length, then its bytes and CRLF
		n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
		if err != nil || n < 0 {
			return line, err
		}
		data := make([]byte, n+2)
		if _, err := io.ReadFull(r, data); err != nil {
			return "", err
		}
		return line + string(data), nil
	case '*': // an array: its length, then its elements
		n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
		if err != nil {
			return "", err
		}
		for range n {
			elem, err := readReply(r)
			if err != nil {
				return "", err
			}
			line += elem
		}
	}
	return line, nil
}
