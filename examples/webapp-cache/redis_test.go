package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/examples/internal/exampletest"
	"github.com/fief-go/fief/fieftest"
	"github.com/fief-go/fief/internal/redistest"
	"github.com/fief-go/fief/rediscache"
	"github.com/redis/go-redis/v9"
)

// The command with REDIS_URL set, as on a server: the login stores the
// user's info in Redis, the protected page is served from there without a
// call to Fief, the logout deletes the entry, and the command closes its
// Redis client when it stops.
func TestRunWithRedis(t *testing.T) {
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	t.Setenv("REDIS_URL", "redis://"+rs.Addr+"/0")
	t.Setenv("APP_COOKIE_KEY", "")
	// Fief as if real, configured by the environment, so that the test
	// drives its login form and counts its userinfo calls.
	srv := fieftest.NewTB(t)
	user := srv.AddUser(fieftest.User{Email: devfief.DemoEmail, Password: devfief.DemoPassword, EmailVerified: true})
	t.Setenv("FIEF_BASE_URL", srv.URL)
	t.Setenv("FIEF_CLIENT_ID", srv.ClientID)
	t.Setenv("FIEF_CLIENT_SECRET", srv.ClientSecret)

	cmd := exampletest.StartCommand(t, func(ctx context.Context, out io.Writer) error {
		return run(ctx, out, "127.0.0.1:0", "", "")
	})
	appURL := waitForURL(t, cmd)
	if want := "Cache:     Redis at " + rs.Addr + ", database 0 (from REDIS_URL)"; !strings.Contains(cmd.Output(), want) {
		t.Errorf("output lacks %q:\n%s", want, cmd.Output())
	}

	// Log in.
	b := exampletest.NewBrowser(t)
	callback := b.LogIn(t, srv, appURL+"/protected")
	if resp, body := b.Get(t, callback.String()); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/protected" {
		t.Fatalf("GET /auth-callback: %s to %q; body %s", resp.Status, resp.Header.Get("Location"), body)
	}

	// The login put the user's info into Redis, under rediscache's key, for
	// the app's TTL.
	key := rediscache.DefaultPrefix + user.ID
	raw, err := rdb.Get(t.Context(), key).Result()
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	var entry fief.UserInfo
	if err := json.Unmarshal([]byte(raw), &entry); err != nil || entry.Sub() != user.ID || entry.Email() != devfief.DemoEmail {
		t.Errorf("Redis entry %s = %s (%v), want the user's info", key, raw, err)
	}
	if ttl, err := rdb.TTL(t.Context(), key).Result(); err != nil || ttl <= 0 || ttl > cacheTTL {
		t.Errorf("TTL %s = %v, %v; want at most %v", key, ttl, err, cacheTTL)
	}

	// The protected page is served from Redis: no userinfo call.
	for range 2 {
		resp, body := b.Get(t, appURL+"/protected")
		exampletest.CheckGreeting(t, resp, body)
	}
	if n := srv.Requests(fieftest.EndpointUserinfo); n != 0 {
		t.Errorf("%d userinfo calls, want 0: the pages are served from Redis", n)
	}

	// Logout deletes the entry.
	if resp, _ := b.Do(t, http.MethodPost, appURL+"/logout"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("POST /logout: %s", resp.Status)
	}
	if n, err := rdb.Exists(t.Context(), key).Result(); err != nil || n != 0 {
		t.Errorf("EXISTS %s after logout = %d, %v; want 0", key, n, err)
	}

	// Stopping the command closes its connections to Redis: only this
	// test's remains.
	cmd.Stop(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		clients, err := rdb.ClientList(t.Context()).Result()
		if err != nil {
			t.Fatal(err)
		}
		n := strings.Count(strings.TrimSpace(clients), "\n") + 1
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to Redis after run returned, want 1 (this test's):\n%s", n, clients)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNewCache(t *testing.T) {
	mem, err := newCache("")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mem.UserInfoCache.(*fief.MemoryCache); !ok || !strings.HasPrefix(mem.Description, "in memory") {
		t.Errorf("without REDIS_URL: %T, %q; want an in-memory cache", mem.UserInfoCache, mem.Description)
	}
	if err := mem.Ping(t.Context()); err != nil {
		t.Errorf("Ping of the in-memory cache: %v", err)
	}
	if err := mem.Close(); err != nil {
		t.Errorf("Close of the in-memory cache: %v", err)
	}

	c, err := newCache("redis://someone:s3cret@redis.example:6380/2")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.UserInfoCache.(*rediscache.Cache); !ok {
		t.Errorf("with REDIS_URL: %T, want a rediscache.Cache", c.UserInfoCache)
	}
	if c.Description != "Redis at redis.example:6380, database 2 (from REDIS_URL), shared by every instance" {
		t.Errorf("description %q", c.Description)
	}

	for _, bad := range []string{"http://localhost:6379", "redis://someone:s3cret@host:6379/notadb", "redis://someone:s3cret@[::1/0"} {
		_, err := newCache(bad)
		if err == nil {
			t.Errorf("newCache(%q) succeeded", bad)
			continue
		}
		if !strings.HasPrefix(err.Error(), "REDIS_URL is not a Redis URL") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("newCache(%q): %v; want a REDIS_URL error without the password", bad, err)
		}
	}
}

// A Redis that is down at start is no reason not to serve: the command
// starts, and pages are served with users fetched from Fief.
func TestRunWithRedisDown(t *testing.T) {
	rs := redistest.Start(t)
	rs.Kill()
	t.Setenv("REDIS_URL", "redis://"+rs.Addr)
	cmd := exampletest.StartCommand(t, func(ctx context.Context, out io.Writer) error {
		return run(ctx, out, "127.0.0.1:0", "", "")
	})
	appURL := waitForURL(t, cmd)
	resp, _ := exampletest.NewBrowser(t).Get(t, appURL+"/")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /: %s", resp.Status)
	}
	cmd.Stop(t)
}

// waitForURL waits until the command prints the URL to open, and returns
// the application's URL.
func waitForURL(t *testing.T, cmd *exampletest.Command) string {
	t.Helper()
	_, rest, _ := strings.Cut(cmd.WaitFor(t, "/protected in your browser"), "\nOpen ")
	appURL, _, _ := strings.Cut(rest, "/protected in your browser")
	return appURL
}

// redisCache returns the command's Redis cache on a new redis-server.
func redisCache(t *testing.T) fief.UserInfoCache {
	t.Helper()
	rs := redistest.Start(t)
	c, err := newCache("redis://" + rs.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
