// Package redistest starts throwaway redis-server processes for tests: each
// on a free 127.0.0.1 port, without persistence, killed when the test ends.
//
// A test that needs Redis calls Start. When redis-server is not in PATH the
// test is skipped, with a message saying how to install it, unless
// FIEF_REQUIRE_REDIS is set (CI sets it): then the test fails instead.
//
// The package talks to Redis over its wire protocol directly (a PING), so
// that it depends on no Redis client.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RequireEnv, when set to anything, turns a missing redis-server into a
// test failure instead of a skip.
const RequireEnv = "FIEF_REQUIRE_REDIS"

// startTimeout bounds the wait for a new redis-server to answer PING.
const startTimeout = 5 * time.Second

// Server is a redis-server process started by Start.
type Server struct {
	// Addr is the server's address, 127.0.0.1:port.
	Addr string

	t    testing.TB
	bin  string
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start starts a redis-server on a free 127.0.0.1 port, without
// persistence, with extra command-line arguments (e.g. "--maxmemory",
// "10mb"), and waits until it answers PING. The server is killed when the
// test ends; on Linux the kernel also kills it if the test binary dies
// without running its cleanups.
//
// Without redis-server in PATH, Start skips the test, or fails it when
// FIEF_REQUIRE_REDIS is set.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	s := &Server{t: t, bin: serverPath(t)}
	t.Cleanup(s.Kill)
	var err error
	for range 5 { // another process may take the free port before redis-server does
		var port int
		if port, err = freePort(); err != nil {
			t.Fatal(err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.args = append([]string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no",
			"--dir", t.TempDir(), "--loglevel", "warning",
		}, extra...)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatal(err)
	return nil
}

// serverPath returns the path of redis-server, or skips the test (fails it
// when FIEF_REQUIRE_REDIS is set) when it is not in PATH.
func serverPath(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err == nil {
		return bin
	}
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("redis-server not found in PATH (%v), and %s is set: install Debian's redis-server (apt-get install redis-server)", err, RequireEnv)
	}
	t.Skipf("redis-server not found; install Debian's redis-server (apt-get install redis-server) or set %s=1 to make this a failure", RequireEnv)
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs redis-server with s.args and waits for it to answer PING.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, s.args...)
	out := new(syncBuffer) // the server's output, for error messages
	cmd.Stdout, cmd.Stderr = out, out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: starting redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		err := Ping(s.Addr, 200*time.Millisecond)
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redistest: redis-server %v exited: %s", s.args, out)
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redistest: redis-server on %s does not answer PING: %v; output: %s", s.Addr, err, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill kills the server and waits for it to exit. Killing a dead server
// does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart kills the server, if it runs, and starts it again on the same
// port, empty (there is no persistence). It fails the test if the server
// does not start.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// Ping sends PING to the Redis server at addr and reports an error unless
// it answers PONG within timeout.
func Ping(addr string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("redistest: PING answered %q", line)
	}
	return nil
}

// syncBuffer is a bytes.Buffer safe for concurrent use: exec copies
// redis-server's output into it while start may read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
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
