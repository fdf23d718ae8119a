package fiefgrpc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefgrpc"
	"github.com/fief-go/fief/fieftest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The health service's methods: Check and List are unary, Watch is
// server-streaming.
const (
	mCheck        = healthpb.Health_Check_FullMethodName
	mList         = healthpb.Health_List_FullMethodName
	mWatch        = healthpb.Health_Watch_FullMethodName
	healthService = "grpc.health.v1.Health"
)

// testKey is one RSA key shared by the tests' Fief servers, so that each
// test does not pay for a key generation.
var testKey = sync.OnceValue(func() *rsa.PrivateKey { return fieftest.GenerateKey(2048) })

// newFief starts a fieftest server signing with testKey, closed with the
// test.
func newFief(t testing.TB, opts ...fieftest.Option) *fieftest.Server {
	t.Helper()
	return fieftest.NewTB(t, append([]fieftest.Option{fieftest.WithSigningKey(testKey())}, opts...)...)
}

// newClient returns a client of srv's default client.
func newClient(t testing.TB, srv *fieftest.Server, opts ...fief.Option) *fief.Client {
	t.Helper()
	c, err := fief.New(srv.URL, srv.ClientID, srv.ClientSecret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newAuth returns an Authenticator of a client of srv.
func newAuth(t testing.TB, srv *fieftest.Server, opts ...fief.AuthOption) *fief.Authenticator {
	t.Helper()
	a, err := fief.NewAuthenticator(newClient(t, srv), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// newInterceptor returns fiefgrpc.New(auth, opts...), which must succeed.
func newInterceptor(t testing.TB, auth *fief.Authenticator, opts ...fiefgrpc.Option) *fiefgrpc.Interceptor {
	t.Helper()
	fg, err := fiefgrpc.New(auth, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return fg
}

// addUser adds anne, with the permission castles:read.
func addUser(srv *fieftest.Server) fieftest.User {
	return srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc", EmailVerified: true, Permissions: []string{"castles:read"}})
}

// reqs are the requirements of the test routes; token meets them.
var reqs = []fief.RouteOption{
	fief.RequireScopes("castles"), fief.RequireACR(fief.ACRLevelOne), fief.RequirePermissions("castles:read"),
}

func token(srv *fieftest.Server, u fieftest.User, opts ...fieftest.TokenOption) string {
	base := []fieftest.TokenOption{fieftest.Scopes("openid", "castles"), fieftest.ACR("1"), fieftest.Permissions("castles:read")}
	return srv.AccessToken(u.ID, append(base, opts...)...)
}

// healthServer is the health service answering SERVING, with what the
// interceptor put in the context in its response headers (see identity).
// It counts the calls its methods get, and those of an unknown service.
type healthServer struct {
	healthpb.UnimplementedHealthServer
	calls atomic.Int32
}

func (h *healthServer) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.calls.Add(1)
	if err := grpc.SetHeader(ctx, identity(ctx)); err != nil {
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (h *healthServer) List(ctx context.Context, _ *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	h.calls.Add(1)
	if err := grpc.SetHeader(ctx, identity(ctx)); err != nil {
		return nil, err
	}
	return &healthpb.HealthListResponse{}, nil
}

func (h *healthServer) Watch(_ *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	h.calls.Add(1)
	if err := stream.SetHeader(identity(stream.Context())); err != nil {
		return err
	}
	return stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

// unknown is the server's UnknownServiceHandler.
func (h *healthServer) unknown(any, grpc.ServerStream) error {
	h.calls.Add(1)
	return status.Error(codes.Unimplemented, "unknown service reached")
}

// identity returns what the context holds as metadata: x-user (the token's
// user ID), x-token (the token's SHA-256, in hex), x-email (the user
// info's), x-tenant.
func identity(ctx context.Context) metadata.MD {
	md := metadata.MD{}
	if info, ok := fief.AccessTokenInfoFromContext(ctx); ok {
		md.Set("x-user", info.UserID())
		md.Set("x-token", tokenHash(info.AccessToken()))
	}
	if user, ok := fief.UserInfoFromContext(ctx); ok {
		md.Set("x-email", user.Email())
	}
	if tenant, ok := fief.TenantFromContext(ctx); ok {
		md.Set("x-tenant", tenant)
	}
	return md
}

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// serve runs a gRPC server on 127.0.0.1 with the health service, opts and
// fg's interceptors, until the test ends, and returns its address.
// Interceptors in opts run before fg's, around them.
func serve(t testing.TB, fg *fiefgrpc.Interceptor, opts ...grpc.ServerOption) (string, *healthServer) {
	t.Helper()
	h := new(healthServer)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts = append(append(opts[:len(opts):len(opts)], fg.ServerOptions()...), grpc.UnknownServiceHandler(h.unknown))
	s := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s, h)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String(), h
}

// dial connects to addr, over plaintext unless opts say otherwise.
func dial(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// call calls method (mCheck, mList or mWatch, or another method of an
// unknown service) on conn with the authorization metadata values and
// returns the response headers: for Watch, once the first message came.
func call(t testing.TB, conn *grpc.ClientConn, method string, authorization []string, opts ...grpc.CallOption) (metadata.MD, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, v := range authorization {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", v)
	}
	client := healthpb.NewHealthClient(conn)
	var md metadata.MD
	switch method {
	case mCheck:
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, append(opts, grpc.Header(&md))...)
		return md, err
	case mList:
		_, err := client.List(ctx, &healthpb.HealthListRequest{}, append(opts, grpc.Header(&md))...)
		return md, err
	case mWatch:
		stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{}, opts...)
		if err != nil {
			return nil, err
		}
		if _, err := stream.Recv(); err != nil {
			return nil, err
		}
		return stream.Header()
	}
	err := conn.Invoke(ctx, method, &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}, append(opts, grpc.Header(&md))...)
	return md, err
}

// bearer returns the authorization metadata of token.
func bearer(token string) []string { return []string{"Bearer " + token} }

// wantStatus checks that err is the status code with message msg.
func wantStatus(t testing.TB, err error, code codes.Code, msg string) {
	t.Helper()
	s, ok := status.FromError(err)
	if !ok || s.Code() != code || s.Message() != msg {
		t.Fatalf("error %v, want %v %q", err, code, msg)
	}
}

// wantUser checks that the call was let through with the user in the
// context (or anonymously when userID is "").
func wantUser(t testing.TB, md metadata.MD, err error, userID string) {
	t.Helper()
	if err != nil {
		t.Fatalf("call refused: %v", err)
	}
	if got := md.Get("x-user"); (userID == "" && len(got) != 0) || (userID != "" && (len(got) != 1 || got[0] != userID)) {
		t.Fatalf("x-user %q, want %q", got, userID)
	}
}

// newTLS returns a self-signed certificate for 127.0.0.1 as the server's
// TLS credentials, and the client's that trust it.
func newTLS(t testing.TB) (server, client credentials.TransportCredentials) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fiefgrpc test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	client = credentials.NewTLS(&tls.Config{RootCAs: pool})
	return server, client
}
