package rediscache_test

import (
	"context"
	"os"
	"testing"

	"github.com/fief-go/fief/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server process started by a test on a loopback
// port (see package internal/redistest), killed when the test ends. Its
// Kill and Restart methods stop it and start it again on the same port.
type redisServer struct {
	*redistest.Server
	t testing.TB
}

// startRedis starts a redis-server on a free 127.0.0.1 port, without
// persistence, with extra arguments (e.g. "--maxmemory", "10mb"). Without
// redis-server in PATH it skips the test, or fails it when
// FIEF_REQUIRE_REDIS is set.
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	return &redisServer{Server: redistest.Start(t, extra...), t: t}
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
