package fiefconnect_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefconnect"
	"github.com/fief-go/fief/fieftest"
)

// The procedures of the test service, as generated code would name them.
const (
	procWhoami   = "/fief.test.v1.Castles/Whoami"   // unary
	procWatch    = "/fief.test.v1.Castles/Watch"    // server stream
	procBuild    = "/fief.test.v1.Castles/Build"    // client stream
	procChat     = "/fief.test.v1.Castles/Chat"     // bidi stream
	procStatus   = "/fief.test.v1.Castles/Status"   // unary, public in most tests
	procUnlisted = "/fief.test.v1.Castles/Unlisted" // unary, in no option
)

// The fixed messages a caller must see, the wire contract.
const (
	msgUnauthenticated = "missing, invalid or expired access token"
	msgForbidden       = "the access token lacks a required scope, ACR or permission"
	msgUnavailable     = "authentication is unavailable, retry later"
	msgNotAllowed      = "procedure not allowed"
	msgOtherHost       = "fiefconnect: access token not sent: the request is not for the interceptor's host"
	msgNoToken         = "fiefconnect: access token not sent: the token source gave no token"
)

// testKey is one RSA key shared by the tests' Fief servers.
var testKey = sync.OnceValue(func() *rsa.PrivateKey { return fieftest.GenerateKey(2048) })

func newFief(t testing.TB, opts ...fieftest.Option) *fieftest.Server {
	t.Helper()
	return fieftest.NewTB(t, append([]fieftest.Option{fieftest.WithSigningKey(testKey())}, opts...)...)
}

func newClient(t testing.TB, s *fieftest.Server, opts ...fief.Option) *fief.Client {
	t.Helper()
	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// env is a Fief server, an Authenticator for it and a user with the
// permission castles:read.
type env struct {
	fief *fieftest.Server
	auth *fief.Authenticator
	user fieftest.User
}

func newEnv(t testing.TB, opts ...fief.AuthOption) *env {
	t.Helper()
	s := newFief(t)
	a, err := fief.NewAuthenticator(newClient(t, s), opts...)
	if err != nil {
		t.Fatal(err)
	}
	u := s.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Permissions: []string{"castles:read"}})
	return &env{fief: s, auth: a, user: u}
}

// token returns an access token of the env's user with ACR 1 (a password
// login), then opts.
func (e *env) token(opts ...fieftest.TokenOption) string {
	return e.fief.AccessToken(e.user.ID, append([]fieftest.TokenOption{fieftest.ACR("1")}, opts...)...)
}

// newInterceptor is NewInterceptor that fails the test on an error.
func newInterceptor(t testing.TB, auth *fief.Authenticator, opts ...fiefconnect.Option) *fiefconnect.Interceptor {
	t.Helper()
	i, err := fiefconnect.NewInterceptor(auth, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// identity describes what the context of a handler holds.
func identity(ctx context.Context) string {
	info, ok := fief.AccessTokenInfoFromContext(ctx)
	if !ok {
		return "anonymous"
	}
	s := "user " + info.UserID()
	if u, ok := fief.UserInfoFromContext(ctx); ok {
		s += " email " + u.Email()
	}
	if t, ok := fief.TenantFromContext(ctx); ok {
		s += " tenant " + t
	}
	return s
}

// service is the test service: every procedure answers the identity its
// handler sees, and counts its calls.
type service struct {
	calls atomic.Int64
	// authorization is the last Authorization header a handler received.
	authorization atomic.Value
}

func (s *service) seen(h http.Header) {
	s.calls.Add(1)
	s.authorization.Store(strings.Join(h.Values("Authorization"), ","))
}

// lastAuthorization returns the Authorization values the last handler
// call received, joined with commas.
func (s *service) lastAuthorization() string {
	v, _ := s.authorization.Load().(string)
	return v
}

type str = wrapperspb.StringValue

func (s *service) unary(ctx context.Context, req *connect.Request[str]) (*connect.Response[str], error) {
	s.seen(req.Header())
	return connect.NewResponse(wrapperspb.String(identity(ctx))), nil
}

func (s *service) watch(ctx context.Context, req *connect.Request[str], stream *connect.ServerStream[str]) error {
	s.seen(req.Header())
	if err := stream.Send(wrapperspb.String(identity(ctx))); err != nil {
		return err
	}
	return stream.Send(wrapperspb.String("done"))
}

func (s *service) build(ctx context.Context, stream *connect.ClientStream[str]) (*connect.Response[str], error) {
	s.seen(stream.RequestHeader())
	n := 0
	for stream.Receive() {
		n++
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("no message"))
	}
	return connect.NewResponse(wrapperspb.String(identity(ctx))), nil
}

func (s *service) chat(ctx context.Context, stream *connect.BidiStream[str, str]) error {
	s.seen(stream.RequestHeader())
	for {
		if _, err := stream.Receive(); err != nil {
			return nil // the client closed its side
		}
		if err := stream.Send(wrapperspb.String(identity(ctx))); err != nil {
			return err
		}
	}
}

// mux returns the service's handlers, each with opts.
func (s *service) mux(opts ...connect.HandlerOption) *http.ServeMux {
	mux := http.NewServeMux()
	for _, p := range []string{procWhoami, procStatus, procUnlisted} {
		mux.Handle(p, connect.NewUnaryHandler(p, s.unary, opts...))
	}
	mux.Handle(procWatch, connect.NewServerStreamHandler(procWatch, s.watch, opts...))
	mux.Handle(procBuild, connect.NewClientStreamHandler(procBuild, s.build, opts...))
	mux.Handle(procChat, connect.NewBidiStreamHandler(procChat, s.chat, opts...))
	return mux
}

// transport is how a test reaches the server: HTTP/1.1, h2c (HTTP/2
// without TLS) or HTTPS with HTTP/2, over loopback, and which RPC protocol
// the client speaks.
type transport struct {
	name     string
	h2c, tls bool
	protocol connect.ClientOption // nil: Connect's
	bidi     bool                 // full duplex: bidi streams work
}

var (
	connectHTTP1 = transport{name: "connect/http1"}
	grpcWebHTTP1 = transport{name: "grpcweb/http1", protocol: connect.WithGRPCWeb()}
	grpcH2C      = transport{name: "grpc/h2c", h2c: true, protocol: connect.WithGRPC(), bidi: true}
	connectTLS   = transport{name: "connect/https-h2", tls: true, bidi: true}
	transports   = []transport{connectHTTP1, grpcWebHTTP1, grpcH2C, connectTLS}
)

// server is a running test server and the client options to reach it.
type server struct {
	URL    string
	http   *http.Client
	tr     transport
	svc    *service
	target *httptest.Server
}

// serve starts h on a loopback listener as tr says, closed with the test.
func serve(t testing.TB, tr transport, h http.Handler) *server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	client := &http.Client{Timeout: 10 * time.Second}
	switch {
	case tr.tls:
		ts.EnableHTTP2 = true
		ts.StartTLS()
		client = ts.Client()
	case tr.h2c:
		ts.Config.Protocols = new(http.Protocols)
		ts.Config.Protocols.SetHTTP1(true)
		ts.Config.Protocols.SetUnencryptedHTTP2(true)
		ts.Start()
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		client.Transport = &http.Transport{Protocols: p}
	default:
		ts.Start()
		client = ts.Client()
	}
	t.Cleanup(ts.Close)
	return &server{URL: ts.URL, http: client, tr: tr, target: ts}
}

// serveService serves a new service with handler options opts.
func serveService(t testing.TB, tr transport, opts ...connect.HandlerOption) *server {
	t.Helper()
	svc := &service{}
	s := serve(t, tr, svc.mux(opts...))
	s.svc = svc
	return s
}

// client returns a client of procedure on s, with opts after the
// transport's protocol.
func (s *server) client(procedure string, opts ...connect.ClientOption) *connect.Client[str, str] {
	if s.tr.protocol != nil {
		opts = append([]connect.ClientOption{s.tr.protocol}, opts...)
	}
	return connect.NewClient[str, str](s.http, s.URL+procedure, opts...)
}

// headers is what a test puts in a request's header: Authorization values.
type headers []string

func bearer(token string) headers { return headers{"Bearer " + token} }

func (h headers) apply(dst http.Header) {
	for _, v := range h {
		dst.Add("Authorization", v)
	}
}

// call makes one RPC of procedure with h, whatever its stream type, and
// returns the identity the handler answered.
func (s *server) call(t testing.TB, procedure string, h headers, opts ...connect.ClientOption) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.callContext(ctx, t, procedure, h, opts...)
}

// callContext is call with ctx.
func (s *server) callContext(ctx context.Context, t testing.TB, procedure string, h headers, opts ...connect.ClientOption) (string, error) {
	t.Helper()
	c := s.client(procedure, opts...)
	switch procedure {
	case procWatch:
		req := connect.NewRequest(wrapperspb.String("hello"))
		h.apply(req.Header())
		stream, err := c.CallServerStream(ctx, req)
		if err != nil {
			return "", err
		}
		defer stream.Close()
		var got []string
		for stream.Receive() {
			got = append(got, stream.Msg().GetValue())
		}
		if err := stream.Err(); err != nil {
			return "", err
		}
		if len(got) != 2 || got[1] != "done" {
			t.Fatalf("stream answered %q", got)
		}
		return got[0], nil
	case procBuild:
		stream := c.CallClientStream(ctx)
		h.apply(stream.RequestHeader())
		for range 2 {
			if err := stream.Send(wrapperspb.String("stone")); err != nil {
				break // the answer, an error, comes with CloseAndReceive
			}
		}
		res, err := stream.CloseAndReceive()
		if err != nil {
			return "", err
		}
		return res.Msg.GetValue(), nil
	case procChat:
		stream := c.CallBidiStream(ctx)
		h.apply(stream.RequestHeader())
		if err := stream.Send(wrapperspb.String("hello")); err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		if err := stream.CloseRequest(); err != nil {
			return "", err
		}
		defer stream.CloseResponse()
		msg, err := stream.Receive()
		if err != nil {
			return "", err
		}
		return msg.GetValue(), nil
	}
	req := connect.NewRequest(wrapperspb.String("hello"))
	h.apply(req.Header())
	res, err := c.CallUnary(ctx, req)
	if err != nil {
		return "", err
	}
	return res.Msg.GetValue(), nil
}

// wantCode fails the test unless err is a Connect error with code and
// message msg; wire says whether the server sent it (else the client made
// it).
func wantCode(t testing.TB, err error, code connect.Code, msg string, wire bool) *connect.Error {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *connect.Error", err)
	}
	if ce.Code() != code || ce.Message() != msg || connect.IsWireError(ce) != wire {
		t.Fatalf("err = %v (code %v, wire %v), want %v %q (wire %v)", err, ce.Code(), connect.IsWireError(ce), code, msg, wire)
	}
	return ce
}

// mechanism is how the Interceptor is installed on the handlers.
type mechanism struct {
	name    string
	install func(*fiefconnect.Interceptor) connect.HandlerOption
}

var mechanisms = []mechanism{
	{"interceptor", func(i *fiefconnect.Interceptor) connect.HandlerOption { return connect.WithInterceptors(i) }},
	{"gate", func(i *fiefconnect.Interceptor) connect.HandlerOption { return connect.WithRequestGate(i.Gate) }},
}

// lockedBuffer is a bytes.Buffer that handlers write and the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}
