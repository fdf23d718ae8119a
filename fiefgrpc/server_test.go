package fiefgrpc_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefgrpc"
	"github.com/fief-go/fief/fieftest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// kinds are the two interceptors' methods: Check is unary, Watch streams.
var kinds = []struct{ name, method string }{{"unary", mCheck}, {"stream", mWatch}}

// TestAuthentication: every outcome of a call, unary and streaming: its
// status code and fixed message, whether the handler ran, and what its
// context holds.
func TestAuthentication(t *testing.T) {
	srv := newFief(t)
	u := addUser(srv)
	other := newFief(t, fieftest.WithIssuer("https://fief.test/other"))
	stranger := other.AddUser(fieftest.User{Email: "stranger@anjou.duchy", Permissions: []string{"castles:read"}})
	addr, h := serve(t, newInterceptor(t, newAuth(t, srv), fiefgrpc.WithDefault(reqs...)))
	conn := dial(t, addr)

	valid := token(srv, u)
	const (
		unauthenticated = "unauthenticated"
		forbidden       = "permission denied"
	)
	tests := []struct {
		name          string
		authorization []string
		code          codes.Code // codes.OK: let through, with u in the context
		msg           string
	}{
		{"no token", nil, codes.Unauthenticated, unauthenticated},
		{"empty value", []string{""}, codes.Unauthenticated, unauthenticated},
		{"other scheme", []string{"Basic YW5uZTpoZXJtaW5ldHJ1Yw=="}, codes.Unauthenticated, unauthenticated},
		{"no scheme", []string{valid}, codes.Unauthenticated, unauthenticated},
		{"garbage", bearer("garbage"), codes.Unauthenticated, unauthenticated},
		{"tampered", bearer(valid[:len(valid)-4] + "AAAA"), codes.Unauthenticated, unauthenticated},
		{"expired", bearer(token(srv, u, fieftest.ExpiresIn(-time.Hour))), codes.Unauthenticated, unauthenticated},
		{"another Fief's", bearer(token(other, stranger)), codes.Unauthenticated, unauthenticated},
		{"two values", append(bearer(valid), bearer(valid)...), codes.Unauthenticated, unauthenticated},
		{"too large", bearer(strings.Repeat("a", fief.MaxTokenLength+1)), codes.Unauthenticated, unauthenticated},
		{"missing scope", bearer(token(srv, u, fieftest.Scopes("openid"))), codes.PermissionDenied, forbidden},
		{"ACR too low", bearer(token(srv, u, fieftest.ACR("0"))), codes.PermissionDenied, forbidden},
		{"missing permission", bearer(token(srv, u, fieftest.Permissions())), codes.PermissionDenied, forbidden},
		{"valid", bearer(valid), codes.OK, ""},
		{"scheme in lower case", []string{"bearer " + valid}, codes.OK, ""},
	}
	for _, k := range kinds {
		for _, tt := range tests {
			t.Run(k.name+"/"+tt.name, func(t *testing.T) {
				before := h.calls.Load()
				md, err := call(t, conn, k.method, tt.authorization)
				ran := h.calls.Load() - before
				if tt.code == codes.OK {
					wantUser(t, md, err, u.ID)
					if got := md.Get("x-token"); len(got) != 1 || got[0] != tokenHash(valid) {
						t.Errorf("x-token %q, want the hash of the token sent", got)
					}
					if ran != 1 {
						t.Errorf("the handler ran %d times", ran)
					}
					return
				}
				wantStatus(t, err, tt.code, tt.msg)
				if ran != 0 {
					t.Error("the handler ran for a refused call")
				}
			})
		}
	}
}

// TestFiefUnavailable: Fief unreachable before the first key fetch gives
// Unavailable, and the handler does not run.
func TestFiefUnavailable(t *testing.T) {
	srv := newFief(t)
	u := addUser(srv)
	addr, h := serve(t, newInterceptor(t, newAuth(t, srv), fiefgrpc.WithDefault()))
	conn := dial(t, addr)
	srv.SetDown(true)
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			_, err := call(t, conn, k.method, bearer(token(srv, u)))
			wantStatus(t, err, codes.Unavailable, "authentication unavailable")
		})
	}
	if n := h.calls.Load(); n != 0 {
		t.Errorf("the handler ran %d times", n)
	}
}

// TestCallEnded: a call that ends while the interceptor waits for Fief (the
// key set's first fetch, slow here) is answered with the status of its
// context, DeadlineExceeded or Canceled, not Unavailable: Fief is not at
// fault. A client whose own deadline passed, or that canceled, reports that
// whatever the server answers, so an interceptor around fiefgrpc's reads
// the server's answer; when the server's own timeout ends the call, the
// client gets the answer over the wire. The handler never runs.
//
// The caller's deadline reaches the server as grpc-timeout, and the
// client resets the stream when it passes: the server's context ends by
// whichever comes first, its deadline or the reset (Canceled).
func TestCallEnded(t *testing.T) {
	srv := newFief(t)
	u := addUser(srv)
	srv.SetFault(fieftest.EndpointJWKS, fieftest.Fault{Latency: time.Minute})
	answers := make(chan error, 1) // what the server answered, one call at a time
	serverTimeout := func(ctx context.Context) (context.Context, context.CancelFunc) {
		if v := metadata.ValueFromIncomingContext(ctx, "x-server-timeout"); len(v) == 1 {
			if d, err := time.ParseDuration(v[0]); err == nil {
				return context.WithTimeout(ctx, d)
			}
		}
		return ctx, func() {}
	}
	outer := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			ctx, cancel := serverTimeout(ctx)
			defer cancel()
			resp, err := handler(ctx, req)
			answers <- err
			return resp, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			ctx, cancel := serverTimeout(ss.Context())
			defer cancel()
			err := handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
			answers <- err
			return err
		}),
	}
	addr, h := serve(t, newInterceptor(t, newAuth(t, srv), fiefgrpc.WithDefault()), outer...)
	conn := dial(t, addr)
	const wait = 200 * time.Millisecond
	for _, k := range kinds {
		for _, c := range []struct {
			name string
			ctx  func() (context.Context, context.CancelFunc)
			want codes.Code
			also codes.Code // another answer the server may give (OK: none)
			msg  string     // the client's message when the server's answer reaches it
		}{
			{"caller's deadline", func() (context.Context, context.CancelFunc) { return context.WithTimeout(t.Context(), wait) },
				codes.DeadlineExceeded, codes.Canceled, ""},
			{"caller cancels", func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(wait, cancel)
				return ctx, cancel
			}, codes.Canceled, codes.OK, ""},
			{"server's timeout", func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				return metadata.AppendToOutgoingContext(ctx, "x-server-timeout", wait.String()), cancel
			}, codes.DeadlineExceeded, codes.OK, "context deadline exceeded"},
		} {
			t.Run(k.name+"/"+c.name, func(t *testing.T) {
				ctx, cancel := c.ctx()
				defer cancel()
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", bearer(token(srv, u))[0])
				client := healthpb.NewHealthClient(conn)
				var err error
				if k.method == mCheck {
					_, err = client.Check(ctx, &healthpb.HealthCheckRequest{})
				} else {
					var stream grpc.ServerStreamingClient[healthpb.HealthCheckResponse]
					if stream, err = client.Watch(ctx, &healthpb.HealthCheckRequest{}); err == nil {
						_, err = stream.Recv()
					}
				}
				var answer error
				select {
				case answer = <-answers:
				case <-time.After(10 * time.Second):
					t.Fatal("the server did not answer")
				}
				if code := status.Code(answer); code != c.want && (c.also == codes.OK || code != c.also) {
					t.Errorf("the server answered %v, want %v", answer, c.want)
				}
				if c.msg != "" {
					wantStatus(t, err, c.want, c.msg)
				} else if status.Code(err) != c.want {
					t.Errorf("the client got %v, want %v", err, c.want)
				}
			})
		}
	}
	if n := h.calls.Load(); n != 0 {
		t.Errorf("the handler ran %d times", n)
	}
}

// ctxStream is a server stream with another context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// TestOptional: an Optional method lets calls without a usable token
// through anonymously (malformed authorization metadata included, as the
// net/http middleware does with malformed headers), but not a valid token
// that misses a requirement.
func TestOptional(t *testing.T) {
	srv := newFief(t)
	u := addUser(srv)
	opts := append([]fief.RouteOption{fief.Optional()}, reqs...)
	addr, _ := serve(t, newInterceptor(t, newAuth(t, srv), fiefgrpc.WithMethod(mCheck, opts...), fiefgrpc.WithMethod(mWatch, opts...)))
	conn := dial(t, addr)
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			for _, anonymous := range [][]string{nil, {"Basic YW5uZQ=="}, bearer("garbage"), bearer(token(srv, u, fieftest.ExpiresIn(-time.Hour))),
				append(bearer(token(srv, u)), bearer(token(srv, u))...)} {
				md, err := call(t, conn, k.method, anonymous)
				wantUser(t, md, err, "")
			}
			md, err := call(t, conn, k.method, bearer(token(srv, u)))
			wantUser(t, md, err, u.ID)
			_, err = call(t, conn, k.method, bearer(token(srv, u, fieftest.Permissions())))
			wantStatus(t, err, codes.PermissionDenied, "permission denied")
		})
	}
}

// TestLoadUserInfo: a method with fief.LoadUserInfo has the user's info in
// its context, from the cache after the first call; a user Fief refuses is
// unauthenticated, and Fief's userinfo failing is Unavailable.
func TestLoadUserInfo(t *testing.T) {
	srv := newFief(t)
	u := addUser(srv)
	cache, err := fief.NewMemoryCache(10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	addr, h := serve(t, newInterceptor(t, newAuth(t, srv, fief.WithUserInfoCache(cache)), fiefgrpc.WithDefault(fief.LoadUserInfo())))
	conn := dial(t, addr)
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			md, err := call(t, conn, k.method, bearer(token(srv, u)))
			wantUser(t, md, err, u.ID)
			if got := md.Get("x-email"); len(got) != 1 || got[0] != u.Email {
				t.Errorf("x-email %q, want %s", got, u.Email)
			}
		})
	}
	if n := srv.Requests(fieftest.EndpointUserinfo); n != 1 {
		t.Errorf("%d userinfo requests for two calls of one user, want 1 (then the cache)", n)
	}

	t.Run("user refused by Fief", func(t *testing.T) {
		gone := srv.AddUser(fieftest.User{Email: "gone@bretagne.duchy"})
		tok := srv.AccessToken(gone.ID)
		srv.DeleteUser(gone.ID)
		before := h.calls.Load()
		for _, k := range kinds {
			_, err := call(t, conn, k.method, bearer(tok))
			wantStatus(t, err, codes.Unauthenticated, "unauthenticated")
		}
		if h.calls.Load() != before {
			t.Error("the handler ran")
		}
	})
	t.Run("userinfo failing", func(t *testing.T) {
		other := srv.AddUser(fieftest.User{Email: "other@bretagne.duchy"})
		srv.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: 500})
		defer srv.ClearFaults()
		for _, k := range kinds {
			_, err := call(t, conn, k.method, bearer(srv.AccessToken(other.ID)))
			wantStatus(t, err, codes.Unavailable, "authentication unavailable")
		}
	})
}

// TestMultiTenant: a multi-tenant Authenticator works unchanged: both
// tenants' tokens are accepted with the tenant in the context; a token of
// an unknown issuer is refused without any request to its Fief.
func TestMultiTenant(t *testing.T) {
	bretagne := newFief(t, fieftest.WithIssuer("https://fief.test/bretagne"))
	anjou := newFief(t, fieftest.WithIssuer("https://fief.test/anjou"))
	unknown := newFief(t, fieftest.WithIssuer("https://fief.test/unknown"))
	var tenants []fief.Tenant
	for name, s := range map[string]*fieftest.Server{"bretagne": bretagne, "anjou": anjou} {
		tenants = append(tenants, fief.Tenant{Name: name, Client: newClient(t, s, fief.WithIssuer(s.Issuer()))})
	}
	auth, err := fief.NewMultiTenantAuthenticator(tenants)
	if err != nil {
		t.Fatal(err)
	}
	addr, h := serve(t, newInterceptor(t, auth, fiefgrpc.WithDefault(reqs...)))
	conn := dial(t, addr)
	users := map[*fieftest.Server]fieftest.User{bretagne: addUser(bretagne), anjou: addUser(anjou), unknown: addUser(unknown)}
	for _, k := range kinds {
		for name, s := range map[string]*fieftest.Server{"bretagne": bretagne, "anjou": anjou} {
			t.Run(k.name+"/"+name, func(t *testing.T) {
				u := users[s]
				md, err := call(t, conn, k.method, bearer(token(s, u)))
				wantUser(t, md, err, u.ID)
				if got := md.Get("x-tenant"); len(got) != 1 || got[0] != name {
					t.Errorf("x-tenant %q, want %s", got, name)
				}
			})
		}
		t.Run(k.name+"/unknown issuer", func(t *testing.T) {
			before := h.calls.Load()
			_, err := call(t, conn, k.method, bearer(token(unknown, users[unknown])))
			wantStatus(t, err, codes.Unauthenticated, "unauthenticated")
			if h.calls.Load() != before {
				t.Error("the handler ran")
			}
		})
	}
	if n := unknown.Requests(fieftest.EndpointDiscovery) + unknown.Requests(fieftest.EndpointJWKS); n != 0 {
		t.Errorf("%d requests to the unknown issuer's Fief", n)
	}
}

// TestMethodRules: each method gets its own rule, else its service's, else
// the default; without one it is refused with PermissionDenied before any
// authentication, whatever the call carries, and its handler never runs.
// Public methods need nothing, not even Fief.
func TestMethodRules(t *testing.T) {
	srv := newFief(t)
	u := addUser(srv)
	auth := newAuth(t, srv)
	const noPolicy = "permission denied: no authentication policy for this method"
	const unknownMethod = "/castles.v1.Castles/Delete" // a service the server does not have
	valid := bearer(token(srv, u))

	type want struct {
		code codes.Code // codes.OK: let through with the user; codes.Unimplemented: the unknown service's answer
		msg  string
	}
	var (
		ok          = want{codes.OK, ""}
		anonymous   = want{codes.OK, "anonymous"}
		noPolicyErr = want{codes.PermissionDenied, noPolicy}
		reached     = want{codes.Unimplemented, "unknown service reached"}
		unauth      = want{codes.Unauthenticated, "unauthenticated"}
		forbidden   = want{codes.PermissionDenied, "permission denied"}
	)
	type callCase struct {
		method        string
		authorization []string
		want          want
	}
	tests := []struct {
		name  string
		opts  []fiefgrpc.Option
		calls []callCase
	}{
		{"no option: everything refused", nil, []callCase{
			{mCheck, valid, noPolicyErr}, {mWatch, valid, noPolicyErr}, {mList, nil, noPolicyErr}, {unknownMethod, valid, noPolicyErr},
		}},
		{"methods", []fiefgrpc.Option{fiefgrpc.WithPublic(mCheck), fiefgrpc.WithMethod(mWatch, reqs...)}, []callCase{
			{mCheck, nil, anonymous}, {mCheck, bearer("garbage"), anonymous},
			{mCheck, valid, anonymous}, // public: not even a valid token is looked at
			{mWatch, nil, unauth}, {mWatch, valid, ok},
			{mList, valid, noPolicyErr}, // not listed
			{unknownMethod, valid, noPolicyErr},
		}},
		{"service, and a method's own rule first", []fiefgrpc.Option{
			fiefgrpc.WithService(healthService, fief.RequirePermissions("castles:read")),
			fiefgrpc.WithMethod(mList, fief.RequirePermissions("castles:delete")),
		}, []callCase{
			{mCheck, valid, ok}, {mWatch, valid, ok}, {mCheck, nil, unauth},
			{mList, valid, forbidden},
			{unknownMethod, valid, noPolicyErr}, // another service
		}},
		{"default", []fiefgrpc.Option{fiefgrpc.WithPublic(mCheck), fiefgrpc.WithDefault(reqs...)}, []callCase{
			{mCheck, nil, anonymous},
			{mList, nil, unauth}, {mList, valid, ok}, {mWatch, valid, ok},
			{mWatch, bearer(token(srv, u, fieftest.Scopes("openid"))), forbidden},
			{unknownMethod, nil, unauth}, {unknownMethod, valid, reached}, // the default covers the unknown service handler too
		}},
		{"default optional", []fiefgrpc.Option{fiefgrpc.WithDefault(fief.Optional())}, []callCase{
			{mList, nil, anonymous}, {mWatch, valid, ok},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, h := serve(t, newInterceptor(t, auth, tt.opts...))
			conn := dial(t, addr)
			for _, c := range tt.calls {
				before := h.calls.Load()
				md, err := call(t, conn, c.method, c.authorization)
				ran := h.calls.Load() - before
				switch c.want {
				case ok:
					wantUser(t, md, err, u.ID)
				case anonymous:
					wantUser(t, md, err, "")
				default:
					wantStatus(t, err, c.want.code, c.want.msg)
				}
				if wantRan := c.want.code == codes.OK || c.want == reached; (ran == 1) != wantRan {
					t.Errorf("%s %v: the handler ran %d times", c.method, c.authorization != nil, ran)
				}
			}
		})
	}

	t.Run("public methods need no Fief", func(t *testing.T) {
		down := newFief(t)
		addr, _ := serve(t, newInterceptor(t, newAuth(t, down), fiefgrpc.WithPublic(mCheck), fiefgrpc.WithDefault()))
		conn := dial(t, addr)
		down.SetDown(true)
		anne := addUser(down)
		md, err := call(t, conn, mCheck, bearer(token(down, anne)))
		wantUser(t, md, err, "")
		_, err = call(t, conn, mWatch, bearer(token(down, anne)))
		wantStatus(t, err, codes.Unavailable, "authentication unavailable")
	})
}

// TestNewValidates: New refuses bad configurations with an error naming
// the mistake, and never panics.
func TestNewValidates(t *testing.T) {
	auth := newAuth(t, newFief(t))
	tests := []struct {
		name string
		auth *fief.Authenticator
		opts []fiefgrpc.Option
		want string
	}{
		{"nil authenticator", nil, nil, "nil authenticator"},
		{"nil option", auth, []fiefgrpc.Option{nil}, "nil option"},
		{"empty method", auth, []fiefgrpc.Option{fiefgrpc.WithMethod("")}, "not a full method name"},
		{"no leading slash", auth, []fiefgrpc.Option{fiefgrpc.WithMethod("grpc.health.v1.Health/Check")}, "not a full method name"},
		{"service only", auth, []fiefgrpc.Option{fiefgrpc.WithMethod("/grpc.health.v1.Health")}, "not a full method name"},
		{"empty method name", auth, []fiefgrpc.Option{fiefgrpc.WithMethod("/grpc.health.v1.Health/")}, "not a full method name"},
		{"three parts", auth, []fiefgrpc.Option{fiefgrpc.WithMethod("/a/b/c")}, "not a full method name"},
		{"white space", auth, []fiefgrpc.Option{fiefgrpc.WithPublic("/grpc.health.v1.Health/Check ")}, "not a full method name"},
		{"no public method", auth, []fiefgrpc.Option{fiefgrpc.WithPublic()}, "no method"},
		{"method twice", auth, []fiefgrpc.Option{fiefgrpc.WithMethod(mCheck), fiefgrpc.WithMethod(mCheck, reqs...)}, "named twice"},
		{"public and method", auth, []fiefgrpc.Option{fiefgrpc.WithPublic(mCheck), fiefgrpc.WithMethod(mCheck)}, "named twice"},
		{"public twice", auth, []fiefgrpc.Option{fiefgrpc.WithPublic(mCheck, mCheck)}, "named twice"},
		{"empty service", auth, []fiefgrpc.Option{fiefgrpc.WithService("")}, "empty name"},
		{"service with a leading slash", auth, []fiefgrpc.Option{fiefgrpc.WithService("/" + healthService)}, "slash"},
		{"service twice", auth, []fiefgrpc.Option{fiefgrpc.WithService(healthService), fiefgrpc.WithService(healthService)}, "named twice"},
		{"default twice", auth, []fiefgrpc.Option{fiefgrpc.WithDefault(), fiefgrpc.WithDefault()}, "twice"},
		{"nil route option", auth, []fiefgrpc.Option{fiefgrpc.WithMethod(mCheck, nil)}, "nil route option"},
		{"nil requirement", auth, []fiefgrpc.Option{fiefgrpc.WithDefault(fief.Requirement(nil))}, "nil route option"},
		{"nil service option", auth, []fiefgrpc.Option{fiefgrpc.WithService(healthService, fief.Optional(), nil)}, "nil route option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fg, err := fiefgrpc.New(tt.auth, tt.opts...)
			if err == nil || fg != nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "fiefgrpc: ") {
				t.Fatalf("New: %v, %v; want an error with %q", fg, err, tt.want)
			}
		})
	}
	if _, err := fiefgrpc.New(auth, fiefgrpc.WithPublic(mCheck, mList), fiefgrpc.WithMethod(mWatch, reqs...),
		fiefgrpc.WithService(healthService, fief.LoadUserInfo()), fiefgrpc.WithDefault(fief.Optional())); err != nil {
		t.Fatalf("a valid configuration: %v", err)
	}
}

// TestConcurrentCalls: one Interceptor serves concurrent calls of both
// kinds and users (run with -race).
func TestConcurrentCalls(t *testing.T) {
	srv := newFief(t)
	users := []fieftest.User{addUser(srv), srv.AddUser(fieftest.User{Email: "bob@anjou.duchy", Permissions: []string{"castles:read"}})}
	addr, _ := serve(t, newInterceptor(t, newAuth(t, srv), fiefgrpc.WithDefault(reqs...)))
	conn := dial(t, addr)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			u, k := users[i%2], kinds[(i/2)%2]
			md, err := call(t, conn, k.method, bearer(token(srv, u)))
			if err != nil || len(md.Get("x-user")) != 1 || md.Get("x-user")[0] != u.ID {
				t.Errorf("%s as %s: %v, x-user %q", k.name, u.Email, err, md.Get("x-user"))
			}
		})
	}
	wg.Wait()
}

// TestRefusalsLogged: refusals are logged by the Authenticator, as its
// WithLogger says, without the token.
func TestRefusalsLogged(t *testing.T) {
	srv := newFief(t)
	u := addUser(srv)
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	addr, _ := serve(t, newInterceptor(t, newAuth(t, srv, fief.WithLogger(logger)), fiefgrpc.WithDefault(reqs...)))
	conn := dial(t, addr)
	forbidden := token(srv, u, fieftest.Permissions())
	for _, authorization := range [][]string{nil, bearer(forbidden)} {
		if _, err := call(t, conn, mCheck, authorization); err == nil {
			t.Fatal("call let through")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"fief: request unauthorized", "fief: request forbidden"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in the logs:\n%s", want, &logs)
		}
	}
	if strings.Contains(logs.String(), forbidden) {
		t.Error("the logs contain the token")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
