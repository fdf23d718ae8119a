// Command grpc-service is a gRPC server protected by Fief with fiefgrpc. It
// serves the health service that ships with grpc-go, each method with its
// own requirements:
//
//	grpc.health.v1.Health/Check  public: load balancers and probes call it
//	grpc.health.v1.Health/List   requires castles:read
//	grpc.health.v1.Health/Watch  requires castles:delete (server-streaming)
//
// and server reflection, public too, so that grpcurl finds the methods.
// Every other method is refused. A call without a valid access token in its
// "authorization: Bearer <token>" metadata gets Unauthenticated; a valid
// token without the permission, PermissionDenied.
//
//	go -C examples run ./grpc-service [-addr 127.0.0.1:50051]
//
// With FIEF_BASE_URL, FIEF_CLIENT_ID and FIEF_CLIENT_SECRET set it uses that
// Fief; else it starts an embedded Fief test server and prints grpcurl
// commands with a fresh access token of the demo user, who may read castles
// but not delete them. The server speaks plaintext, for the loopback
// interface: in production, give grpc.NewServer your TLS certificate with
// grpc.Creds(credentials.NewTLS(...)).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/examples/internal/devserver"
	"github.com/fief-go/fief/fiefgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
)

// The permissions the methods require.
const (
	permRead   = "castles:read"
	permDelete = "castles:delete"
)

func main() { devserver.Main("grpc-service", "127.0.0.1:50051", run) }

// run serves gRPC with the Fief that devfief sets up, on addr, until ctx is
// done.
func run(ctx context.Context, out io.Writer, addr, fiefAddr string) error {
	f, err := devfief.Setup(fiefAddr)
	if err != nil {
		return err
	}
	defer f.Close()

	srv, err := newServer(f.Client, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	usage(out, f, devserver.BrowserAddr(lis.Addr().(*net.TCPAddr)))
	return serve(ctx, srv, lis)
}

// newServer returns the gRPC server: the health service and reflection,
// behind fiefgrpc's interceptors.
func newServer(client *fief.Client, logger *slog.Logger) (*grpc.Server, error) {
	auth, err := fief.NewAuthenticator(client, fief.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	fg, err := fiefgrpc.New(auth,
		fiefgrpc.WithPublic(
			healthpb.Health_Check_FullMethodName,
			// Reflection tells grpcurl the methods and their messages. A
			// production server leaves it out, or gives it requirements.
			reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName,
			reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName,
		),
		fiefgrpc.WithMethod(healthpb.Health_List_FullMethodName, fief.RequirePermissions(permRead)),
		fiefgrpc.WithMethod(healthpb.Health_Watch_FullMethodName, fief.RequirePermissions(permDelete)),
		// No WithDefault: any other method is refused with PermissionDenied.
	)
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer(append(fg.ServerOptions(), grpc.ChainUnaryInterceptor(logCaller(logger)))...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	reflection.Register(srv)
	return srv, nil
}

// logCaller logs who makes each unary call that fiefgrpc let through: after
// fiefgrpc's interceptor, the context holds the access token's info, as it
// does in the handlers.
func logCaller(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		user := "anonymous"
		if token, ok := fief.AccessTokenInfoFromContext(ctx); ok {
			user = token.UserID()
		}
		logger.InfoContext(ctx, "call", slog.String("method", info.FullMethod), slog.String("user", user))
		return handler(ctx, req)
	}
}

// serve serves gRPC on lis until ctx is done, then stops the server,
// giving the calls in flight 10 seconds to finish (Watch streams never do).
func serve(ctx context.Context, srv *grpc.Server, lis net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		srv.Stop()
	}
	return <-errc
}

// usage writes which Fief the server at addr uses, and how to call it.
func usage(out io.Writer, f *devfief.Fief, addr string) {
	f.Describe(out)
	fmt.Fprintf(out, "gRPC:      %s (plaintext, with reflection)\n\n", addr)
	token, lacks := "$TOKEN", ""
	if f.Server != nil {
		token = f.Server.AccessToken(f.User.ID) // carries the user's permissions
		lacks = fmt.Sprintf(", which %s lacks: PermissionDenied", f.User.Email)
	} else {
		fmt.Fprintln(out, "Set TOKEN to an access token of a user of your tenant, then:")
	}
	fmt.Fprintf(out, "Check the server's health (public):\n  grpcurl -plaintext %s grpc.health.v1.Health/Check\n", addr)
	fmt.Fprintf(out, "List the statuses without a token (Unauthenticated):\n  grpcurl -plaintext %s grpc.health.v1.Health/List\n", addr)
	fmt.Fprintf(out, "List them with a token (requires %s):\n  grpcurl -plaintext -H \"authorization: Bearer %s\" %s grpc.health.v1.Health/List\n", permRead, token, addr)
	fmt.Fprintf(out, "Watch them (requires %s%s):\n  grpcurl -plaintext -H \"authorization: Bearer %s\" %s grpc.health.v1.Health/Watch\n\n", permDelete, lacks, token, addr)
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
}
