package fiefgrpc_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"net"
	"net/http/httptest"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefgrpc"
	"github.com/fief-go/fief/fieftest"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// A gRPC server whose health Check is public, whose Watch needs the
// castles:read permission, and whose other methods are refused.
func ExampleNew() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Permissions: []string{"castles:read"}})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	auth, err := fief.NewAuthenticator(client)
	if err != nil {
		log.Fatal(err)
	}
	fg, err := fiefgrpc.New(auth,
		fiefgrpc.WithPublic(healthpb.Health_Check_FullMethodName),
		fiefgrpc.WithMethod(healthpb.Health_Watch_FullMethodName, fief.RequirePermissions("castles:read")),
	)
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer(fg.ServerOptions()...) // add grpc.Creds(...) for TLS
	healthpb.RegisterHealthServer(s, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	defer s.Stop()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	show := func(method string, resp *healthpb.HealthCheckResponse, err error) {
		fmt.Printf("%s: %v %v %q\n", method, resp.GetStatus(), status.Code(err), status.Convert(err).Message())
	}

	resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
	show("Check", resp, err)
	for _, token := range []string{"", srv.AccessToken(user.ID, fieftest.Permissions()), srv.AccessToken(user.ID)} {
		ctx, cancel := context.WithCancel(context.Background())
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
		var resp *healthpb.HealthCheckResponse
		if err == nil {
			resp, err = stream.Recv()
		}
		show("Watch", resp, err)
		cancel()
	}
	_, err = hc.List(context.Background(), &healthpb.HealthListRequest{})
	show("List", nil, err)
	// Output:
	// Check: SERVING OK ""
	// Watch: UNKNOWN Unauthenticated "unauthenticated"
	// Watch: UNKNOWN PermissionDenied "permission denied"
	// Watch: SERVING OK ""
	// List: UNKNOWN PermissionDenied "permission denied: no authentication policy for this method"
}

// A client that sends the access token of a Fief session with every call,
// refreshed through Fief when it expires, over TLS only.
func ExamplePerRPCCredentials() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy"})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	code := srv.IssueCode(fieftest.CodeRequest{UserID: user.ID, RedirectURI: "http://localhost/cb", Scopes: []string{"openid", "offline_access"}})
	tokens, _, err := client.AuthCallback(context.Background(), code, "http://localhost/cb", "")
	if err != nil {
		log.Fatal(err)
	}
	creds := fiefgrpc.PerRPCCredentials(client.TokenSource(tokens, func(*fief.Tokens) { /* save the new tokens */ }))

	// A server that accepts any valid token, over TLS: here with the test
	// certificate of net/http/httptest, valid for 127.0.0.1.
	cert := httptest.NewUnstartedServer(nil)
	cert.StartTLS()
	cert.Close()
	auth, _ := fief.NewAuthenticator(client)
	fg, _ := fiefgrpc.New(auth, fiefgrpc.WithDefault())
	s := grpc.NewServer(append(fg.ServerOptions(), grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: cert.TLS.Certificates})))...)
	healthpb.RegisterHealthServer(s, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	defer s.Stop()

	roots := x509.NewCertPool()
	roots.AddCert(cert.Certificate())
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(roots, "")),
		grpc.WithPerRPCCredentials(creds))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	fmt.Println("over TLS:", resp.GetStatus(), status.Code(err))

	// Without transport security, the token is not sent.
	_, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(creds))
	fmt.Println("over plaintext refused:", err != nil)
	// Output:
	// over TLS: SERVING OK
	// over plaintext refused: true
}

// In development, on the loopback interface, a client sends its token over
// plaintext, as it says.
func ExampleInsecurePerRPCCredentials() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy"})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	auth, _ := fief.NewAuthenticator(client)
	fg, _ := fiefgrpc.New(auth, fiefgrpc.WithDefault())
	s := grpc.NewServer(fg.ServerOptions()...)
	healthpb.RegisterHealthServer(s, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	defer s.Stop()

	ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: srv.AccessToken(user.ID), TokenType: "bearer"})
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(fiefgrpc.InsecurePerRPCCredentials(ts)))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	fmt.Println(resp.GetStatus(), status.Code(err))
	// Output:
	// SERVING OK
}
