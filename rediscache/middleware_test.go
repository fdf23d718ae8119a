package rediscache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
	"github.com/fief-go/fief/rediscache"
	"github.com/redis/go-redis/v9"
)

// instance is one application instance: its own Fief client, Redis client,
// cache and middleware, serving GET /me with CurrentUser.
type instance struct {
	cache   *rediscache.Cache
	handler http.Handler

	mu   sync.Mutex
	last fief.UserInfo // the info the handler got last
}

func newInstance(t *testing.T, srv *fieftest.Server, rdb redis.UniversalClient, authOpts []fief.AuthOption, cacheOpts ...rediscache.Option) *instance {
	t.Helper()
	client, err := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := rediscache.New(rdb, cacheOpts...)
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{cache: cache}
	auth, err := fief.NewAuthenticator(client, append([]fief.AuthOption{fief.WithUserInfoCache(in.cache)}, authOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	in.handler = auth.CurrentUser()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := fief.UserInfoFromContext(r.Context())
		if !ok {
			http.Error(w, "no user info", http.StatusInternalServerError)
			return
		}
		in.mu.Lock()
		in.last = info
		in.mu.Unlock()
		fmt.Fprint(w, info.Email())
	}))
	return in
}

// get serves GET /me with token and returns the status and the info the
// handler got.
func (in *instance) get(t *testing.T, token string) (int, fief.UserInfo) {
	t.Helper()
	in.mu.Lock()
	in.last = fief.UserInfo{}
	in.mu.Unlock()
	r := httptest.NewRequest(http.MethodGet, "/me", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	in.handler.ServeHTTP(w, r)
	in.mu.Lock()
	defer in.mu.Unlock()
	return w.Code, in.last
}

// mustGet serves GET /me, requires a 200, and checks how many userinfo calls
// the Fief server has received in all.
func (in *instance) mustGet(t *testing.T, srv *fieftest.Server, token string, wantCalls int) fief.UserInfo {
	t.Helper()
	code, info := in.get(t, token)
	if code != http.StatusOK || info.IsZero() {
		t.Fatalf("GET /me = %d, info %v", code, info)
	}
	if got := srv.Requests(fieftest.EndpointUserinfo); got != wantCalls {
		t.Fatalf("userinfo called %d times in all, want %d", got, wantCalls)
	}
	return info
}

func addUser(srv *fieftest.Server) fieftest.User {
	return srv.AddUser(fieftest.User{
		Email:         "anne@bretagne.duchy",
		Password:      "herminetruc",
		EmailVerified: true,
		Fields: map[string]any{
			"birthdate": "1477-01-25",
			"big":       json.Number("12345678901234567890"),
			"ratio":     json.Number("1.5"),
			"queen":     true,
			"nickname":  nil,
			"address":   map[string]any{"city": "Nantes", "coords": []any{json.Number("47.2184"), json.Number("-1.5536")}},
		},
	})
}

// Two instances with their own clients and middleware share one Redis: a
// user the first fetched from Fief is served by the second without a
// userinfo call, with exactly the same info; Delete on one instance (after a
// profile change) makes the other fetch the new profile.
func TestTwoInstancesShareRedis(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	srv := fieftest.NewTB(t)
	user := addUser(srv)
	token := srv.AccessToken(user.ID, fieftest.Scopes("openid"))

	a := newInstance(t, srv, rs.Client(), nil)
	b := newInstance(t, srv, rs.Client(), nil)

	fromFief := a.mustGet(t, srv, token, 1)
	fromRedis := b.mustGet(t, srv, token, 1)
	if a, b := must(fromRedis.MarshalJSON()), must(fromFief.MarshalJSON()); !bytes.Equal(a, b) {
		t.Errorf("instance b got other info from Redis than a from Fief:\n got %s\nwant %s", a, b)
	}
	if n, ok := fromRedis.Fields()["big"].(json.Number); !ok || n != "12345678901234567890" {
		t.Errorf("fields.big from Redis = %#v", fromRedis.Fields()["big"])
	}
	a.mustGet(t, srv, token, 1)
	b.mustGet(t, srv, token, 1)

	// A profile change through instance a, then eviction of the user.
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	if _, err := client.UpdateProfile(context.Background(), token, map[string]any{"nickname": "Duchess"}); err != nil {
		t.Fatal(err)
	}
	if got := b.mustGet(t, srv, token, 1); got.Fields()["nickname"] != nil {
		t.Fatalf("before Delete, b serves nickname %v; the cache should still hold the old profile", got.Fields()["nickname"])
	}
	if err := a.cache.Delete(context.Background(), user.ID); err != nil {
		t.Fatal(err)
	}
	if got := b.mustGet(t, srv, token, 2); got.Fields()["nickname"] != "Duchess" {
		t.Errorf("after Delete, b serves nickname %v", got.Fields()["nickname"])
	}
	if got := a.mustGet(t, srv, token, 2); got.Fields()["nickname"] != "Duchess" {
		t.Errorf("after b refetched, a serves nickname %v", got.Fields()["nickname"])
	}
}

// Redis killed mid-test: requests keep succeeding, each calling userinfo;
// the middleware logs the cache errors once each, the cache does not log
// them again; Redis back, the cache serves users again.
func TestRedisKilledMidTest(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	srv := fieftest.NewTB(t)
	user := addUser(srv)
	token := srv.AccessToken(user.ID)

	mwLogger, mwLogs := newLogger()
	cacheLogger, cacheLogs := newLogger()
	in := newInstance(t, srv, rs.Client(), []fief.AuthOption{fief.WithLogger(mwLogger)}, rediscache.WithLogger(cacheLogger))

	want := in.mustGet(t, srv, token, 1)
	in.mustGet(t, srv, token, 1)

	rs.Kill()
	const down = 4
	for i := range down {
		start := time.Now()
		got := in.mustGet(t, srv, token, 2+i)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("with Redis down, got %v, want %v", got, want)
		}
		// Get and Set each cost at most the cache's timeout.
		if d := time.Since(start); d > 2*rediscache.DefaultTimeout+5*time.Second { // hang guard
			t.Errorf("a request with Redis down took %v", d)
		}
	}
	logs := mwLogs.String()
	if n := strings.Count(logs, "user info cache read failed"); n != down {
		t.Errorf("%d read failures logged by the middleware, want %d:\n%s", n, down, logs)
	}
	if n := strings.Count(logs, "user info cache write failed"); n != down {
		t.Errorf("%d write failures logged by the middleware, want %d:\n%s", n, down, logs)
	}
	if !strings.Contains(logs, "rediscache: GET: ") || !strings.Contains(logs, "rediscache: SET: ") {
		t.Errorf("the middleware's log does not show the cache's errors:\n%s", logs)
	}
	if s := cacheLogs.String(); s != "" {
		t.Errorf("the cache logged the errors the middleware logs:\n%s", s)
	}

	// Redis comes back (empty: no persistence). go-redis may wait up to a
	// second before dialing again after a run of dial errors.
	rs.Restart()
	calls := 2 + down
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _ := in.get(t, token)
		if code != http.StatusOK {
			t.Fatalf("GET /me = %d", code)
		}
		n := srv.Requests(fieftest.EndpointUserinfo)
		if n == calls {
			break // served from Redis
		}
		calls = n
		if time.Now().After(deadline) {
			t.Fatal("the cache still misses 5s after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A Redis that hangs slows requests by the cache's timeout only. No
// redis-server needed.
func TestHangingRedisDoesNotHangRequests(t *testing.T) {
	t.Parallel()
	addr := blackhole(t)
	srv := fieftest.NewTB(t)
	user := addUser(srv)
	token := srv.AccessToken(user.ID)
	rdb := redis.NewClient(&redis.Options{Addr: addr}) // default options: ContextTimeoutEnabled false
	t.Cleanup(func() { rdb.Close() })
	logger, logs := newLogger()
	const timeout = 50 * time.Millisecond
	in := newInstance(t, srv, rdb, []fief.AuthOption{fief.WithLogger(logger)}, rediscache.WithTimeout(timeout))
	for i := range 3 {
		start := time.Now()
		in.mustGet(t, srv, token, i+1)
		if d := time.Since(start); d > 2*timeout+5*time.Second { // hang guard
			t.Errorf("request %d took %v with a %v cache timeout", i, d, timeout)
		}
	}
	if !strings.Contains(logs.String(), "context deadline exceeded") {
		t.Errorf("no timeout logged:\n%s", logs)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
