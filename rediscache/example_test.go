package rediscache_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/rediscache"
	"github.com/redis/go-redis/v9"
)

// Every instance of an application shares users' info through one Redis.
// (These examples need a Redis and a Fief tenant: they are compiled, not
// run.)
func Example() {
	client, err := fief.New("https://example.fief.dev", "CLIENT_ID", "CLIENT_SECRET")
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{
		Addr:                  "localhost:6379",
		ContextTimeoutEnabled: true, // stop commands at the cache's timeout
	})
	defer rdb.Close()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cache, err := rediscache.New(rdb,
		rediscache.WithPrefix("myapp:userinfo:"),
		rediscache.WithTTL(15*time.Minute),
		rediscache.WithLogger(logger),
	)
	if err != nil {
		log.Fatal(err)
	}
	// The middleware logs Redis errors and falls back to Fief's userinfo
	// endpoint: Redis being down does not fail requests.
	auth, err := fief.NewAuthenticator(client, fief.WithUserInfoCache(cache), fief.WithLogger(logger))
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /me", auth.CurrentUser()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := fief.UserInfoFromContext(r.Context())
		fmt.Fprintf(w, "hello %s", user.Email())
	})))
	log.Fatal(http.ListenAndServe(":8080", mux))
}

// Sentinel and Cluster deployments: New takes any go-redis client.
func ExampleNew() {
	// Sentinel: MasterName set.
	sentinel := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{"sentinel-1:26379", "sentinel-2:26379", "sentinel-3:26379"},
		MasterName:            "mymaster",
		ContextTimeoutEnabled: true,
	})
	// Cluster: several addresses, no MasterName.
	cluster := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"redis-1:6379", "redis-2:6379", "redis-3:6379"},
		ContextTimeoutEnabled: true,
	})

	for _, rdb := range []redis.UniversalClient{sentinel, cluster} {
		cache, err := rediscache.New(rdb)
		if err != nil {
			log.Fatal(err)
		}
		_ = cache // fief.NewAuthenticator(client, fief.WithUserInfoCache(cache))
	}
}

// After changing a user's profile, evict the user, so that every instance
// fetches the new profile on its next request.
func ExampleCache_Delete() {
	client, _ := fief.New("https://example.fief.dev", "CLIENT_ID", "CLIENT_SECRET")
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	cache, err := rediscache.New(rdb)
	if err != nil {
		log.Fatal(err)
	}

	updateNickname := func(ctx context.Context, accessToken, nickname string) error {
		user, err := client.UpdateProfile(ctx, accessToken, map[string]any{"nickname": nickname})
		if err != nil {
			return err
		}
		// The profile changed in Fief even if Redis fails now: the entry
		// then expires at the cache's TTL.
		if err := cache.Delete(ctx, user.Sub()); err != nil {
			log.Printf("evicting user %s: %v", user.Sub(), err)
		}
		return nil
	}
	_ = updateNickname
}

// Sessions that outlive the access token, refreshed once across the
// instances of an application: each instance has the same CookieKey and a
// RefreshCoordinator on the same Redis.
func ExampleNewRefreshCoordinator() {
	client, err := fief.New("https://example.fief.dev", "CLIENT_ID", "CLIENT_SECRET")
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	coord, err := rediscache.NewRefreshCoordinator(rdb, rediscache.CoordinatorConfig{Prefix: "myapp:refresh:", Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	flow, err := fief.NewLoginFlow(client, fief.LoginFlowConfig{
		RedirectURI:        "https://app.example.com/auth-callback",
		CookieKey:          []byte(os.Getenv("APP_COOKIE_KEY")), // the same 32+ secret bytes on every instance
		RefreshSessions:    true,
		RefreshCoordinator: coord, // Redis down: each instance refreshes on its own, and logs it
		Logger:             logger,
	})
	if err != nil {
		log.Fatal(err)
	}
	auth, err := fief.NewAuthenticator(client,
		fief.WithExtractor(flow.Extractor()),
		fief.WithUnauthorizedHandler(flow.RedirectToLogin()),
		fief.WithForbiddenHandler(flow.RedirectToStepUp()))
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /auth-callback", flow.Callback())
	mux.Handle("POST /logout", flow.Logout())
	mux.Handle("GET /account", auth.Authenticated()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "still logged in")
	})))
	// Session refreshes expiring sessions before the Authenticator reads them.
	log.Fatal(http.ListenAndServe(":8080", flow.Session()(mux)))
}
