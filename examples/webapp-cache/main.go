// Command webapp-cache is examples/webapp with a user-info cache: at login,
// fief.LoginFlow stores the claims of the ID token it receives in the cache,
// keyed by user ID, so that the protected page is served without asking
// Fief's userinfo endpoint; later, CurrentUser calls Fief only when an entry
// is missing or expired, and logout removes the user's entry.
//
// The cache is on Redis (package rediscache) when REDIS_URL is set, e.g.
// redis://localhost:6379/0 (redis://user:password@host:port/db, rediss://
// for TLS): every instance of the application then shares it, so that a
// user logged in on one instance is served by the others without a call to
// Fief. Without REDIS_URL it is in the process's memory. A Redis that fails
// fails no page: users are then fetched from Fief, and the errors logged.
//
// Sessions outlive the access token: the login asks for offline_access,
// the flow keeps Fief's refresh token in a sealed HttpOnly cookie, and a
// page asked for when the access token has expired (or is about to) is
// served after a refresh, without a trip through Fief's login page. Fief
// rotates refresh tokens, so concurrent requests of one session must make
// one refresh: the flow sees to it within the process, and with REDIS_URL
// a rediscache.RefreshCoordinator on the same Redis sees to it across the
// instances (Redis down: each instance refreshes on its own, and logs it).
//
// The login goes through fief.LoginFlow. The access token lives in an
// HttpOnly cookie; a visitor without a valid one is sent to Fief's login
// page (state and PKCE), and comes back to /auth-callback, which exchanges
// the authorization code for tokens, sets the cookie and returns to the page
// the visitor asked for.
//
//	GET  /               a public page
//	GET  /protected      the user's email address, for logged-in users only
//	GET  /login          starts a login (?return_to=/a/path/on/the/site)
//	GET  /auth-callback  where Fief sends the browser back after login
//	POST /logout         forgets the token and ends the Fief session
//
//	[REDIS_URL=redis://localhost:6379/0] go -C examples run ./webapp-cache [-addr 127.0.0.1:8000] [-public-url https://app.example.com]
//
// -public-url is the URL browsers reach the application at (default
// http://<addr>); behind a proxy that terminates TLS, give the https URL.
// Over plain HTTP, for local development only, the cookies are not Secure.
// APP_COOKIE_KEY (hex, at least 32 bytes) seals the cookies of logins in
// progress and the refresh cookies; set the same value on every instance of
// the application. When it is unset, the command makes a random key for
// local development and says so: sessions then end with the process.
//
// With FIEF_BASE_URL, FIEF_CLIENT_ID and FIEF_CLIENT_SECRET set it uses that
// Fief, where <public URL>/auth-callback must be an allowed redirect URI of
// the client; else it starts an embedded Fief test server with a demo user.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/examples/internal/devserver"
	"github.com/fief-go/fief/rediscache"
	"github.com/redis/go-redis/v9"
)

func main() {
	publicURL := flag.String("public-url", "", "URL browsers reach the application at (default: http://<addr>)")
	devserver.Main("webapp-cache", "127.0.0.1:8000", func(ctx context.Context, out io.Writer, addr, fiefAddr string) error {
		return run(ctx, out, addr, *publicURL, fiefAddr)
	})
}

func run(ctx context.Context, out io.Writer, addr, publicURL, fiefAddr string) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	// The key that seals the cookies of logins in progress and the refresh
	// cookies. fief.NewLoginFlow refuses RefreshSessions without one; for
	// local development only, a random key is made here.
	key, err := devfief.CookieKey(os.Getenv("APP_COOKIE_KEY"))
	if err != nil {
		return err
	}
	if key == nil {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		logger.WarnContext(ctx, "APP_COOKIE_KEY is unset: using a random key, so sessions end when the process stops and work on this instance only")
	}
	cache, err := newCache(os.Getenv("REDIS_URL"))
	if err != nil {
		return err
	}
	defer cache.Close()
	f, err := devfief.Setup(fiefAddr)
	if err != nil {
		return err
	}
	defer f.Close()

	srv, err := devserver.Listen(addr, publicURL)
	if err != nil {
		return err
	}
	defer srv.Close()
	app, err := newApp(f.Client, config{URL: srv.URL, CookieKey: key, Cache: cache, Coordinator: cache.Coordinator}, logger)
	if err != nil {
		return err
	}

	f.Describe(out)
	fmt.Fprintf(out, "Cache:     %s\n", cache.Description)
	if err := cache.Ping(ctx); err != nil {
		// Not fatal: pages are served without the cache, slower.
		logger.WarnContext(ctx, "Redis does not answer; users are fetched from Fief until it does", "error", err)
	}
	f.DescribeWebApp(out, srv.URL)
	return srv.Serve(ctx, app)
}

// userInfoCache is the application's user-info cache, with what it needs
// to be described, checked and closed, and the coordinator of session
// refreshes on the same Redis.
type userInfoCache struct {
	fief.UserInfoCache
	// Description says where the cache is, without credentials.
	Description string
	// Coordinator coordinates session refreshes between the instances on
	// the cache's Redis; nil for the in-memory cache (the flow coordinates
	// them within the process).
	Coordinator fief.RefreshCoordinator
	redis       *redis.Client // nil for the in-memory cache
}

// newCache returns a cache on the Redis at redisURL, or in memory when
// redisURL is empty. It makes no network request.
func newCache(redisURL string) (*userInfoCache, error) {
	if redisURL == "" {
		// One process: an in-memory cache.
		mem, err := fief.NewMemoryCache(10_000, cacheTTL)
		if err != nil {
			return nil, err
		}
		return &userInfoCache{
			UserInfoCache: mem,
			Description:   "in memory, for this process only (set REDIS_URL to share one on Redis)",
		}, nil
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		// The error may quote the URL, and with it a password.
		return nil, fmt.Errorf("REDIS_URL is not a Redis URL such as redis://localhost:6379/0: %s",
			strings.ReplaceAll(err.Error(), redisURL, "<REDIS_URL>"))
	}
	// Stop each command at its context's deadline (rediscache bounds every
	// call to 100ms by default), giving its connection back at once.
	opts.ContextTimeoutEnabled = true
	rdb := redis.NewClient(opts)
	// Several applications or Fief tenants sharing a Redis need a prefix
	// each: rediscache.WithPrefix.
	cache, err := rediscache.New(rdb, rediscache.WithTTL(cacheTTL))
	if err != nil {
		rdb.Close()
		return nil, err
	}
	coord, err := rediscache.NewRefreshCoordinator(rdb, rediscache.CoordinatorConfig{})
	if err != nil {
		rdb.Close()
		return nil, err
	}
	return &userInfoCache{
		UserInfoCache: cache,
		Description:   fmt.Sprintf("Redis at %s, database %d (from REDIS_URL), shared by every instance", opts.Addr, opts.DB),
		Coordinator:   coord,
		redis:         rdb,
	}, nil
}

// cacheTTL is how long the cache keeps a user's info: the longest a change
// made outside the application (in Fief's admin) takes to be seen.
const cacheTTL = 5 * time.Minute

// Ping checks that Redis answers; it does nothing for the in-memory cache.
func (c *userInfoCache) Ping(ctx context.Context) error {
	if c.redis == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.redis.Ping(ctx).Err()
}

// Close closes the Redis client, if any.
func (c *userInfoCache) Close() error {
	if c.redis == nil {
		return nil
	}
	return c.redis.Close()
}
