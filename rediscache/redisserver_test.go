package rediscache_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// requireRedisEnv, when set to anything, turns a missing redis-server into a
// test failure instead of a skip. CI sets it.
const requireRedisEnv = "FIEF_REQUIRE_REDIS"

// redisServer is a redis-server process started by a test on a loopback
// port, killed when the test ends.
type redisServer struct {
	t    testing.TB
	bin  string
	Addr string // 127.0.0.1:port
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{} // closed when cmd has exited
}

// redisServerPath returns the path of redis-server, or skips the test (fails
// it when FIEF_REQUIRE_REDIS is set) when it is not in PATH.
func redisServerPath(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err == nil {
		return bin
	}
	if os.Getenv(requireRedisEnv) != "" {
		t.Fatalf("redis-server not found in PATH (%v), and %s is set: install Debian's redis-server (apt-get install redis-server)", err, requireRedisEnv)
	}
	t.Skipf("redis-server not found; install Debian's redis-server (apt-get install redis-server) or set %s=1 to make this a failure", requireRedisEnv)
	return ""
}

// startRedis starts a redis-server on a free 127.0.0.1 port, without
// persistence, with extra arguments (e.g. "--maxmemory", "10mb"), and waits
// until it answers PING. The server is killed when the test ends.
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	s := &redisServer{t: t, bin: redisServerPath(t)}
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs redis-server with s.args and waits for it to answer PING.
func (s *redisServer) start() error {
	cmd := exec.Command(s.bin, s.args...)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.out, s.done = cmd, out, done
	s.mu.Unlock()

	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server %v exited: %s", s.args, out)
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server on %s does not answer PING: %v; output: %s", s.Addr, err, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill kills the server and waits for it to exit. Killing a dead server does
// nothing.
func (s *redisServer) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Restart starts the server again on the same port after Kill.
func (s *redisServer) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// Client returns a new client of the server, closed when the test ends.
func (s *redisServer) Client() *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, ContextTimeoutEnabled: true})
	s.t.Cleanup(func() { rdb.Close() })
	return rdb
}

// TestMain silences go-redis's own log (dial errors while a test has killed
// its Redis, on purpose); the tests check the errors the cache returns.
func TestMain(m *testing.M) {
	redis.SetLogger(discardLogger{})
	os.Exit(m.Run())
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}
