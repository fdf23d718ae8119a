package fiefconnect_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefconnect"
	"github.com/fief-go/fief/fieftest"
)

// castleRoutes requires, on every test procedure but Status (public), the
// scope openid, ACR 1 and the permission castles:read.
func castleRoutes() []fiefconnect.Option {
	reqs := []fief.RouteOption{fief.RequireScopes("openid"), fief.RequireACR(fief.ACRLevelOne), fief.RequirePermissions("castles:read")}
	return []fiefconnect.Option{
		fiefconnect.WithProcedure(procWhoami, reqs...),
		fiefconnect.WithProcedure(procWatch, reqs...),
		fiefconnect.WithProcedure(procBuild, reqs...),
		fiefconnect.WithProcedure(procChat, reqs...),
		fiefconnect.WithPublic(procStatus),
	}
}

// authCase is one request and what the caller must get.
type authCase struct {
	name    string
	headers headers
	code    connect.Code // 0: the handler answers want
	msg     string
	want    string
}

// authCases are the outcomes of a protected procedure, every class.
func authCases(e *env) []authCase {
	valid := e.token()
	return []authCase{
		{"no token", nil, connect.CodeUnauthenticated, msgUnauthenticated, ""},
		{"other scheme", headers{"Basic YW5uZTpoZXJtaW5l"}, connect.CodeUnauthenticated, msgUnauthenticated, ""},
		{"garbage", bearer("garbage"), connect.CodeUnauthenticated, msgUnauthenticated, ""},
		{"forged", bearer(valid[:len(valid)-4] + "AAAA"), connect.CodeUnauthenticated, msgUnauthenticated, ""},
		{"expired", bearer(e.token(fieftest.ExpiresIn(-time.Hour))), connect.CodeUnauthenticated, msgUnauthenticated, ""},
		{"too large", bearer(strings.Repeat("a", fief.MaxTokenLength+1)), connect.CodeUnauthenticated, msgUnauthenticated, ""},
		{"two Authorization values", headers{"Bearer " + valid, "Bearer " + valid}, connect.CodeUnauthenticated, msgUnauthenticated, ""},
		{"missing scope", bearer(e.token(fieftest.Scopes("profile"))), connect.CodePermissionDenied, msgForbidden, ""},
		{"ACR too low", bearer(e.token(fieftest.ACR("0"))), connect.CodePermissionDenied, msgForbidden, ""},
		{"missing permission", bearer(e.token(fieftest.Permissions())), connect.CodePermissionDenied, msgForbidden, ""},
		{"valid", bearer(valid), 0, "", "user " + e.user.ID},
		{"valid, scheme in lower case", headers{"bearer " + valid}, 0, "", "user " + e.user.ID},
	}
}

// run makes the call of c on s and checks its outcome, and that a refused
// call never reached the handler.
func (c authCase) run(t *testing.T, s *server, procedure string) {
	t.Helper()
	before := s.svc.calls.Load()
	got, err := s.call(t, procedure, c.headers)
	if c.code == 0 {
		if err != nil {
			t.Fatalf("err = %v", err)
		}
		if got != c.want {
			t.Fatalf("handler saw %q, want %q", got, c.want)
		}
		return
	}
	wantCode(t, err, c.code, c.msg, true)
	if n := s.svc.calls.Load() - before; n != 0 {
		t.Fatalf("a refused call reached the handler (%d calls)", n)
	}
}

// TestUnary: a unary procedure, every outcome, through each transport and
// RPC protocol (Connect, gRPC, gRPC-Web; HTTP/1.1, h2c, HTTPS), installed
// as an interceptor or as a request gate.
func TestUnary(t *testing.T) {
	e := newEnv(t)
	cases := authCases(e)
	for _, m := range mechanisms {
		i := newInterceptor(t, e.auth, castleRoutes()...)
		for _, tr := range transports {
			s := serveService(t, tr, m.install(i))
			t.Run(m.name+"/"+tr.name, func(t *testing.T) {
				for _, c := range cases {
					t.Run(c.name, func(t *testing.T) { c.run(t, s, procWhoami) })
				}
			})
		}
	}
}

// TestStreaming: server, client and bidi streams are authenticated before
// any message, every outcome, as interceptor and as gate.
func TestStreaming(t *testing.T) {
	e := newEnv(t)
	cases := authCases(e)
	for _, m := range mechanisms {
		i := newInterceptor(t, e.auth, castleRoutes()...)
		for _, tr := range []transport{connectHTTP1, grpcH2C} {
			s := serveService(t, tr, m.install(i))
			for _, proc := range []string{procWatch, procBuild, procChat} {
				if proc == procChat && !tr.bidi {
					continue
				}
				t.Run(m.name+"/"+tr.name+proc, func(t *testing.T) {
					for _, c := range cases {
						t.Run(c.name, func(t *testing.T) { c.run(t, s, proc) })
					}
				})
			}
		}
	}
}

// TestUnavailable: Fief unreachable before the first key fetch gives
// CodeUnavailable with its fixed message, on unary and streaming RPCs.
func TestUnavailable(t *testing.T) {
	for _, m := range mechanisms {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t)
			token := e.token()
			e.fief.SetDown(true)
			s := serveService(t, connectHTTP1, m.install(newInterceptor(t, e.auth, castleRoutes()...)))
			for _, proc := range []string{procWhoami, procWatch, procBuild} {
				_, err := s.call(t, proc, bearer(token))
				wantCode(t, err, connect.CodeUnavailable, msgUnavailable, true)
			}
			if n := s.svc.calls.Load(); n != 0 {
				t.Fatalf("%d calls reached the handlers", n)
			}
		})
	}
}

// TestRPCEnded: an RPC that ends while the Interceptor waits for Fief (the
// key set's first fetch, slow here) is refused with the code of its
// context, CodeDeadlineExceeded or CodeCanceled, not CodeUnavailable: Fief
// is not at fault. A client whose own deadline passed, or that canceled,
// makes its own error whatever the server answers, so an interceptor around
// the Interceptor reads the server's answer; when the server's own timeout
// ends the RPC, the client gets the answer over the wire, from the
// interceptor and from the gate. The caller's deadline reaches the server
// as a timeout header, and the client hangs up when it passes: the
// server's context ends by whichever comes first (Canceled for the hang-up).
// The handlers never run.
//
// Over HTTP/1.1 the server does not see a client hang up on a server
// stream before the stream ends: that case runs on h2c only.
func TestRPCEnded(t *testing.T) {
	const wait = 200 * time.Millisecond
	rec := &recorder{answers: make(chan error, 1)}
	// serverTimeout gives the RPCs with an X-Server-Timeout header that
	// timeout on the server.
	serverTimeout := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d, err := time.ParseDuration(r.Header.Get("X-Server-Timeout")); err == nil {
				ctx, cancel := context.WithTimeout(r.Context(), d)
				defer cancel()
				r = r.WithContext(ctx)
			}
			h.ServeHTTP(w, r)
		})
	}
	var calls int64 // the handlers' runs
	for _, m := range mechanisms {
		for _, tr := range []transport{connectHTTP1, grpcH2C} {
			// A Fief per server, whose key set is slower to come than
			// the server's RPCs, and than the client's timeout.
			e := newEnv(t)
			token := e.token()
			e.fief.SetFault(fieftest.EndpointJWKS, fieftest.Fault{Latency: time.Minute})
			i := newInterceptor(t, e.auth, castleRoutes()...)
			svc := &service{}
			s := serve(t, tr, serverTimeout(svc.mux(connect.WithInterceptors(rec), m.install(i))))
			s.svc = svc
			for _, proc := range []string{procWhoami, procWatch} {
				for _, c := range []struct {
					name       string
					ctx        func() (context.Context, context.CancelFunc)
					serverSide bool // the server's timeout: its answer reaches the client
					want, also connect.Code
				}{
					{"caller's deadline", func() (context.Context, context.CancelFunc) {
						return context.WithTimeout(context.Background(), wait)
					}, false, connect.CodeDeadlineExceeded, connect.CodeCanceled},
					{"caller cancels", func() (context.Context, context.CancelFunc) {
						ctx, cancel := context.WithCancel(context.Background())
						time.AfterFunc(wait, cancel)
						return ctx, cancel
					}, false, connect.CodeCanceled, connect.CodeCanceled},
					{"server's timeout", func() (context.Context, context.CancelFunc) {
						return context.WithTimeout(context.Background(), 10*time.Second)
					}, true, connect.CodeDeadlineExceeded, connect.CodeDeadlineExceeded},
				} {
					switch {
					case m.name == "gate" && !c.serverSide:
						continue // the gate refuses before any interceptor: only the client sees its answer
					case c.name == "caller cancels" && proc == procWatch && !tr.h2c:
						continue // HTTP/1.1: the server sees the hang-up once the stream ends
					}
					t.Run(m.name+"/"+tr.name+proc+"/"+c.name, func(t *testing.T) {
						ctx, cancel := c.ctx()
						defer cancel()
						var opts []connect.ClientOption
						if c.serverSide {
							opts = append(opts, connect.WithInterceptors(setHeader{"X-Server-Timeout", wait.String()}))
						}
						_, err := s.callContext(ctx, t, proc, bearer(token), opts...)
						if m.name == "interceptor" {
							var answer error
							select {
							case answer = <-rec.answers:
							case <-time.After(10 * time.Second):
								t.Fatal("the server did not answer")
							}
							if code := connect.CodeOf(answer); code != c.want && code != c.also {
								t.Errorf("the server answered %v, want %v", answer, c.want)
							}
							if !errors.Is(answer, fief.ErrUnavailable) {
								t.Errorf("the server's answer %v does not wrap the core's error", answer)
							}
						}
						if c.serverSide {
							wantCode(t, err, c.want, "context deadline exceeded", true)
						} else if connect.CodeOf(err) != c.want {
							t.Errorf("the client got %v, want %v", err, c.want)
						}
					})
				}
			}
			calls += svc.calls.Load()
		}
	}
	if calls != 0 {
		t.Errorf("%d calls reached the handlers", calls)
	}
}

// recorder is a handler interceptor that sends the error of each RPC it
// wraps to answers.
type recorder struct{ answers chan error }

func (r *recorder) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		if !req.Spec().IsClient {
			r.answers <- err
		}
		return res, err
	}
}

func (r *recorder) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (r *recorder) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		err := next(ctx, conn)
		r.answers <- err
		return err
	}
}

// setHeader is a client interceptor that sets a request header field.
type setHeader struct{ key, value string }

func (h setHeader) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set(h.key, h.value)
		return next(ctx, req)
	}
}

func (h setHeader) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set(h.key, h.value)
		return conn
	}
}

func (h setHeader) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// TestProcedures: requirements per procedure, public procedures, and the
// secure default for procedures no option names; then a default route.
func TestProcedures(t *testing.T) {
	e := newEnv(t)
	reader := e.token()                                       // castles:read
	builder := e.token(fieftest.Permissions("castles:write")) // castles:write only
	for _, m := range mechanisms {
		t.Run(m.name, func(t *testing.T) {
			i := newInterceptor(t, e.auth,
				fiefconnect.WithProcedure(procWhoami, fief.RequirePermissions("castles:read")),
				fiefconnect.WithProcedure(procBuild, fief.RequirePermissions("castles:write")),
				fiefconnect.WithPublic(procStatus, procWatch),
			)
			s := serveService(t, connectHTTP1, m.install(i))
			for _, c := range []struct {
				proc    string
				headers headers
				code    connect.Code
				msg     string
				want    string
			}{
				{procWhoami, bearer(reader), 0, "", "user " + e.user.ID},
				{procWhoami, bearer(builder), connect.CodePermissionDenied, msgForbidden, ""},
				{procBuild, bearer(builder), 0, "", "user " + e.user.ID},
				{procBuild, bearer(reader), connect.CodePermissionDenied, msgForbidden, ""},
				// Public: no authentication at all, the handler sees no identity.
				{procStatus, nil, 0, "", "anonymous"},
				{procStatus, bearer(reader), 0, "", "anonymous"},
				{procStatus, bearer("garbage"), 0, "", "anonymous"},
				{procWatch, nil, 0, "", "anonymous"},
				// Not configured: refused whatever the token.
				{procUnlisted, bearer(reader), connect.CodePermissionDenied, msgNotAllowed, ""},
				{procUnlisted, nil, connect.CodePermissionDenied, msgNotAllowed, ""},
				{procBuild, nil, connect.CodeUnauthenticated, msgUnauthenticated, ""},
			} {
				authCase{c.proc, c.headers, c.code, c.msg, c.want}.run(t, s, c.proc)
			}
		})
	}
}

// TestDefaultRoute: WithDefault gives the procedures no option names a
// route of their own, for unary and streaming RPCs.
func TestDefaultRoute(t *testing.T) {
	e := newEnv(t)
	for _, m := range mechanisms {
		t.Run(m.name, func(t *testing.T) {
			i := newInterceptor(t, e.auth,
				fiefconnect.WithPublic(procStatus),
				fiefconnect.WithDefault(fief.RequirePermissions("castles:read")),
			)
			s := serveService(t, grpcH2C, m.install(i))
			for _, proc := range []string{procUnlisted, procWhoami, procWatch, procBuild, procChat} {
				authCase{proc + " valid", bearer(e.token()), 0, "", "user " + e.user.ID}.run(t, s, proc)
				authCase{proc + " no token", nil, connect.CodeUnauthenticated, msgUnauthenticated, ""}.run(t, s, proc)
				authCase{proc + " forbidden", bearer(e.token(fieftest.Permissions())), connect.CodePermissionDenied, msgForbidden, ""}.run(t, s, proc)
			}
			authCase{"public", nil, 0, "", "anonymous"}.run(t, s, procStatus)
		})
	}
}

// TestOptional: an Optional procedure lets unusable tokens through as
// anonymous, but still refuses a valid token that lacks a requirement.
func TestOptional(t *testing.T) {
	e := newEnv(t)
	for _, m := range mechanisms {
		t.Run(m.name, func(t *testing.T) {
			i := newInterceptor(t, e.auth,
				fiefconnect.WithProcedure(procWhoami, fief.Optional()),
				fiefconnect.WithProcedure(procWatch, fief.Optional(), fief.RequirePermissions("castles:write")),
			)
			s := serveService(t, connectHTTP1, m.install(i))
			valid := e.token()
			for _, c := range []authCase{
				{"no token", nil, 0, "", "anonymous"},
				{"garbage", bearer("garbage"), 0, "", "anonymous"},
				{"expired", bearer(e.token(fieftest.ExpiresIn(-time.Hour))), 0, "", "anonymous"},
				{"two Authorization values", headers{"Bearer " + valid, "Bearer " + valid}, 0, "", "anonymous"},
				{"too large", bearer(strings.Repeat("a", fief.MaxTokenLength+1)), 0, "", "anonymous"},
				{"valid", bearer(valid), 0, "", "user " + e.user.ID},
			} {
				t.Run(c.name, func(t *testing.T) { c.run(t, s, procWhoami) })
			}
			t.Run("forbidden", func(t *testing.T) {
				authCase{"", bearer(valid), connect.CodePermissionDenied, msgForbidden, ""}.run(t, s, procWatch)
				authCase{"", nil, 0, "", "anonymous"}.run(t, s, procWatch)
			})
		})
	}
}

// TestLoadUserInfo: with LoadUserInfo the handler gets the user's info,
// from Fief once and then from the cache; a user Fief no longer knows is
// unauthenticated.
func TestLoadUserInfo(t *testing.T) {
	cache, err := fief.NewMemoryCache(10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, fief.WithUserInfoCache(cache))
	for _, m := range mechanisms {
		t.Run(m.name, func(t *testing.T) {
			if err := cache.Delete(context.Background(), e.user.ID); err != nil {
				t.Fatal(err)
			}
			i := newInterceptor(t, e.auth,
				fiefconnect.WithProcedure(procWhoami, fief.LoadUserInfo()),
				fiefconnect.WithProcedure(procWatch, fief.LoadUserInfo()),
			)
			s := serveService(t, connectHTTP1, m.install(i))
			before := e.fief.Requests(fieftest.EndpointUserinfo)
			want := "user " + e.user.ID + " email " + e.user.Email
			for _, proc := range []string{procWhoami, procWatch, procWhoami} {
				authCase{proc, bearer(e.token()), 0, "", want}.run(t, s, proc)
			}
			if n := e.fief.Requests(fieftest.EndpointUserinfo) - before; n != 1 {
				t.Fatalf("%d userinfo requests for 3 RPCs, want 1 (then the cache)", n)
			}
			gone := e.fief.AddUser(fieftest.User{Email: "gone@bretagne.duchy"})
			token := e.fief.AccessToken(gone.ID)
			e.fief.DeleteUser(gone.ID)
			authCase{"deleted user", bearer(token), connect.CodeUnauthenticated, msgUnauthenticated, ""}.run(t, s, procWhoami)
		})
	}
}

// TestMultiTenant: one Interceptor on a multi-tenant Authenticator accepts
// both tenants' tokens, the handler sees the tenant, and a token of an
// unknown issuer is refused.
func TestMultiTenant(t *testing.T) {
	bretagne := newFief(t, fieftest.WithIssuer("https://fief.test/bretagne"))
	anjou := newFief(t, fieftest.WithIssuer("https://fief.test/anjou"), fieftest.WithSigningKey(fieftest.GenerateKey(2048)))
	var tenants []fief.Tenant
	for name, s := range map[string]*fieftest.Server{"bretagne": bretagne, "anjou": anjou} {
		tenants = append(tenants, fief.Tenant{Name: name, Client: newClient(t, s, fief.WithIssuer(s.Issuer()))})
	}
	auth, err := fief.NewMultiTenantAuthenticator(tenants)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mechanisms {
		t.Run(m.name, func(t *testing.T) {
			s := serveService(t, grpcH2C, m.install(newInterceptor(t, auth, fiefconnect.WithDefault())))
			for name, f := range map[string]*fieftest.Server{"bretagne": bretagne, "anjou": anjou} {
				u := f.AddUser(fieftest.User{Email: "anne-" + m.name + "@" + name + ".duchy"})
				for _, proc := range []string{procWhoami, procWatch, procChat} {
					authCase{name, bearer(f.AccessToken(u.ID)), 0, "", "user " + u.ID + " tenant " + name}.run(t, s, proc)
				}
			}
			u := bretagne.AddUser(fieftest.User{Email: "mallory-" + m.name + "@bretagne.duchy"})
			for _, iss := range []string{"https://evil.example", bretagne.URL} {
				token := bretagne.AccessToken(u.ID, fieftest.Claim("iss", iss))
				authCase{iss, bearer(token), connect.CodeUnauthenticated, msgUnauthenticated, ""}.run(t, s, procWhoami)
			}
		})
	}
}

// TestRefusalCause: the caller gets only the fixed message, while an
// interceptor of the same server that wraps this one sees the class and the
// cause; the core logs each refusal once.
func TestRefusalCause(t *testing.T) {
	var logs lockedBuffer
	e := newEnv(t, fief.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	var mu sync.Mutex
	var lastErr error // what the outer interceptor saw last
	seen := func() error { mu.Lock(); defer mu.Unlock(); return lastErr }
	outer := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			res, err := next(ctx, req)
			mu.Lock()
			lastErr = err
			mu.Unlock()
			return res, err
		}
	})
	i := newInterceptor(t, e.auth, castleRoutes()...)
	s := serveService(t, connectHTTP1, connect.WithInterceptors(outer, i))
	for _, c := range []struct {
		name         string
		headers      headers
		code         connect.Code
		msg          string
		class, cause error
	}{
		{"missing permission", bearer(e.token(fieftest.Permissions())), connect.CodePermissionDenied, msgForbidden, fief.ErrForbidden, fief.ErrAccessTokenMissingPermission},
		{"expired", bearer(e.token(fieftest.ExpiresIn(-time.Hour))), connect.CodeUnauthenticated, msgUnauthenticated, fief.ErrUnauthenticated, fief.ErrAccessTokenExpired},
		{"two values", headers{"Bearer a", "Bearer b"}, connect.CodeUnauthenticated, msgUnauthenticated, fief.ErrUnauthenticated, fief.ErrMalformedAuthorization},
		{"too large", bearer(strings.Repeat("a", fief.MaxTokenLength+1)), connect.CodeUnauthenticated, msgUnauthenticated, fief.ErrUnauthenticated, fief.ErrTokenTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs.Reset()
			_, err := s.call(t, procWhoami, c.headers)
			ce := wantCode(t, err, c.code, c.msg, true)
			// What came over the wire holds nothing of the server's error:
			// not its text, not in a detail, not in a header or trailer.
			for _, hidden := range []string{c.class.Error(), c.cause.Error()} {
				if strings.Contains(err.Error(), hidden) {
					t.Fatalf("the client's error %q holds the server's %q", err, hidden)
				}
				for k, vs := range ce.Meta() {
					for _, v := range vs {
						if strings.Contains(v, hidden) {
							t.Fatalf("the client's error metadata %s: %q holds the server's %q", k, v, hidden)
						}
					}
				}
			}
			if d := ce.Details(); len(d) != 0 {
				t.Fatalf("the client's error has %d details", len(d))
			}
			if err := seen(); !errors.Is(err, c.class) || !errors.Is(err, c.cause) {
				t.Fatalf("outer interceptor saw %v, want %v and %v", err, c.class, c.cause)
			}
			if n := strings.Count(logs.String(), "fief: request "); n != 1 {
				t.Fatalf("%d log records, want 1:\n%s", n, logs.String())
			}
		})
	}
	t.Run("unlisted", func(t *testing.T) {
		_, err := s.call(t, procUnlisted, nil)
		wantCode(t, err, connect.CodePermissionDenied, msgNotAllowed, true)
		if err := seen(); err == nil || !strings.Contains(err.Error(), msgNotAllowed) {
			t.Fatalf("outer interceptor saw %v", err)
		}
	})
}

// TestGateBeforeDecoding: the gate refuses before the request message is
// read, where the interceptor, running after the decoding, is preceded by
// the size limit; installed both ways, the Interceptor authenticates once.
func TestGateBeforeDecoding(t *testing.T) {
	e := newEnv(t)
	big := wrapperspb.String(strings.Repeat("x", 1024))
	callBig := func(s *server, h headers) error {
		req := connect.NewRequest(big)
		h.apply(req.Header())
		_, err := s.client(procWhoami).CallUnary(context.Background(), req)
		return err
	}
	i := newInterceptor(t, e.auth, fiefconnect.WithProcedure(procWhoami, fief.LoadUserInfo()))
	limit := connect.WithReadMaxBytes(100)

	gated := serveService(t, connectHTTP1, connect.WithRequestGate(i.Gate), limit)
	wantCode(t, callBig(gated, nil), connect.CodeUnauthenticated, msgUnauthenticated, true)
	intercepted := serveService(t, connectHTTP1, connect.WithInterceptors(i), limit)
	if err := callBig(intercepted, nil); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("interceptor: err = %v, want the size limit's refusal, before authentication", err)
	}

	// Both: one authentication, so one userinfo request (no cache here).
	both := serveService(t, connectHTTP1, connect.WithRequestGate(i.Gate), connect.WithInterceptors(i))
	before := e.fief.Requests(fieftest.EndpointUserinfo)
	authCase{"", bearer(e.token()), 0, "", "user " + e.user.ID + " email " + e.user.Email}.run(t, both, procWhoami)
	if n := e.fief.Requests(fieftest.EndpointUserinfo) - before; n != 1 {
		t.Fatalf("%d userinfo requests, want 1", n)
	}
}

// TestInterceptorOnClient: the handler Interceptor installed on a client
// lets its calls through untouched, unary and streaming.
func TestInterceptorOnClient(t *testing.T) {
	e := newEnv(t)
	i := newInterceptor(t, e.auth, castleRoutes()...)
	s := serveService(t, grpcH2C) // no authentication on the server
	for _, proc := range []string{procWhoami, procWatch, procBuild, procChat} {
		got, err := s.call(t, proc, nil, connect.WithInterceptors(i))
		if err != nil || got != "anonymous" || s.svc.lastAuthorization() != "" {
			t.Fatalf("%s: %q, %v, Authorization %q", proc, got, err, s.svc.lastAuthorization())
		}
	}
}

// TestNewInterceptorErrors: configuration mistakes are errors of
// NewInterceptor, never panics or requests refused later.
func TestNewInterceptorErrors(t *testing.T) {
	auth := newEnv(t).auth
	for _, c := range []struct {
		name string
		auth *fief.Authenticator
		opts []fiefconnect.Option
		want string
	}{
		{"nil authenticator", nil, []fiefconnect.Option{fiefconnect.WithDefault()}, "nil Authenticator"},
		{"nil option", auth, []fiefconnect.Option{nil}, "nil Option"},
		{"nothing configured", auth, nil, "no procedure configured"},
		{"no leading slash", auth, []fiefconnect.Option{fiefconnect.WithProcedure("fief.test.v1.Castles/Whoami")}, "not a procedure"},
		{"no method", auth, []fiefconnect.Option{fiefconnect.WithProcedure("/fief.test.v1.Castles/")}, "not a procedure"},
		{"service only", auth, []fiefconnect.Option{fiefconnect.WithProcedure("/fief.test.v1.Castles")}, "not a procedure"},
		{"no service", auth, []fiefconnect.Option{fiefconnect.WithPublic("//Whoami")}, "not a procedure"},
		{"three parts", auth, []fiefconnect.Option{fiefconnect.WithPublic("/a/b/c")}, "not a procedure"},
		{"space", auth, []fiefconnect.Option{fiefconnect.WithPublic("/a.B/C ")}, "not a procedure"},
		{"empty", auth, []fiefconnect.Option{fiefconnect.WithPublic("")}, "not a procedure"},
		{"WithPublic()", auth, []fiefconnect.Option{fiefconnect.WithPublic()}, "no procedure"},
		{"procedure twice", auth, []fiefconnect.Option{fiefconnect.WithProcedure(procWhoami), fiefconnect.WithProcedure(procWhoami, fief.Optional())}, "configured twice"},
		{"public and protected", auth, []fiefconnect.Option{fiefconnect.WithProcedure(procWhoami), fiefconnect.WithPublic(procWhoami)}, "configured twice"},
		{"default twice", auth, []fiefconnect.Option{fiefconnect.WithDefault(), fiefconnect.WithDefault()}, "WithDefault given twice"},
		{"nil route option", auth, []fiefconnect.Option{fiefconnect.WithProcedure(procWhoami, nil)}, `WithProcedure("` + procWhoami + `")`},
		{"nil requirement", auth, []fiefconnect.Option{fiefconnect.WithDefault(fief.Requirement(nil))}, "WithDefault"},
	} {
		t.Run(c.name, func(t *testing.T) {
			i, err := fiefconnect.NewInterceptor(c.auth, c.opts...)
			if err == nil || i != nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewInterceptor = %v, %v; want an error containing %q", i, err, c.want)
			}
		})
	}
	if _, err := fiefconnect.NewInterceptor(auth, fiefconnect.WithPublic(procStatus)); err != nil {
		t.Fatalf("public only: %v", err)
	}
}
