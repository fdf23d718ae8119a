package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/examples/internal/exampletest"
	"github.com/fief-go/fief/fiefgrpc"
	"github.com/fief-go/fief/fieftest"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
)

func TestCalls(t *testing.T) {
	f, conn, _ := start(t)
	demo := f.Server.AccessToken(f.User.ID) // castles:read and castles:create
	admin := f.Server.AccessToken(f.User.ID, fieftest.Permissions(permRead, permDelete))
	none := f.Server.AccessToken(f.User.ID, fieftest.Permissions())
	expired := f.Server.AccessToken(f.User.ID, fieftest.Permissions(permRead, permDelete), fieftest.ExpiresIn(-time.Hour))

	tests := []struct {
		name, method, token string
		code                codes.Code
		msg                 string
	}{
		{"check without a token", "Check", "", codes.OK, ""},
		{"check with a forged token", "Check", "forged", codes.OK, ""},
		{"list without a token", "List", "", codes.Unauthenticated, "unauthenticated"},
		{"list with a forged token", "List", "forged", codes.Unauthenticated, "unauthenticated"},
		{"list with an expired token", "List", expired, codes.Unauthenticated, "unauthenticated"},
		{"list without permissions", "List", none, codes.PermissionDenied, "permission denied"},
		{"list as the demo user", "List", demo, codes.OK, ""},
		{"watch without a token", "Watch", "", codes.Unauthenticated, "unauthenticated"},
		{"watch as the demo user", "Watch", demo, codes.PermissionDenied, "permission denied"},
		{"watch with castles:delete", "Watch", admin, codes.OK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := invoke(t, conn, tt.method, tt.token)
			if s := status.Convert(err); s.Code() != tt.code || s.Message() != tt.msg {
				t.Fatalf("%v %q, want %v %q", s.Code(), s.Message(), tt.code, tt.msg)
			}
		})
	}
}

func TestLogCaller(t *testing.T) {
	f, conn, logs := start(t)
	if err := invoke(t, conn, "List", f.Server.AccessToken(f.User.ID)); err != nil {
		t.Fatal(err)
	}
	if err := invoke(t, conn, "Check", ""); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"msg=call method=/grpc.health.v1.Health/List user=" + f.User.ID,
		"msg=call method=/grpc.health.v1.Health/Check user=anonymous",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in the logs:\n%s", want, logs)
		}
	}
}

// TestReflection: grpcurl finds the methods without a token.
func TestReflection(t *testing.T) {
	_, conn, _ := start(t)
	stream, err := reflectionv1.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionv1.ServerReflectionRequest{
		MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !slices.Contains(names, "grpc.health.v1.Health") {
		t.Errorf("services %q", names)
	}
	_ = stream.CloseSend()
}

func TestRun(t *testing.T) {
	t.Setenv("FIEF_BASE_URL", "")
	t.Setenv("FIEF_CLIENT_ID", "")
	t.Setenv("FIEF_CLIENT_SECRET", "")
	cmd := exampletest.StartCommand(t, func(ctx context.Context, out io.Writer) error {
		return run(ctx, out, "127.0.0.1:0", "")
	})

	// run prints the grpcurl commands, then serves until ctx is canceled.
	out := cmd.WaitFor(t, "Press Ctrl-C to stop.")
	var commands [][]string
	for line := range strings.Lines(out) {
		// grpcurl -plaintext [-H "authorization: Bearer <token>"] <addr> <method>
		if f := strings.Fields(line); len(f) > 0 && f[0] == "grpcurl" {
			commands = append(commands, f)
		}
	}
	want := []struct {
		method string
		code   codes.Code
	}{{"Check", codes.OK}, {"List", codes.Unauthenticated}, {"List", codes.OK}, {"Watch", codes.PermissionDenied}}
	if len(commands) != len(want) {
		t.Fatalf("%d grpcurl commands printed, want %d; output:\n%s", len(commands), len(want), out)
	}
	for i, f := range commands {
		addr, method := f[len(f)-2], strings.TrimPrefix(f[len(f)-1], "grpc.health.v1.Health/")
		token := ""
		if len(f) == 8 && f[2] == "-H" && f[3] == `"authorization:` && f[4] == "Bearer" {
			token = strings.TrimSuffix(f[5], `"`)
		}
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		if err := invoke(t, conn, method, token); status.Code(err) != want[i].code {
			t.Errorf("%s: %v, want %v", strings.Join(f, " "), err, want[i].code)
		}
		conn.Close()
	}
	cmd.Stop(t)
}

// start serves gRPC with an embedded Fief until the test ends, and returns
// a plaintext connection to it and the server's logs.
func start(t *testing.T) (*devfief.Fief, *grpc.ClientConn, *syncBuffer) {
	t.Helper()
	f := exampletest.Fief(t)
	logs := new(syncBuffer)
	srv, err := newServer(f.Client, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return f, conn, logs
}

// invoke calls a method of the health service ("Check", "List" or
// "Watch", whose first message it waits for) with token, none if "": as a
// client does, with fiefgrpc's per-RPC credentials (the insecure ones: the
// connection is plaintext, on the loopback interface).
func invoke(t *testing.T, conn *grpc.ClientConn, method, token string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var opts []grpc.CallOption
	if token != "" {
		ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "bearer"})
		opts = append(opts, grpc.PerRPCCredentials(fiefgrpc.InsecurePerRPCCredentials(ts)))
	}
	client := healthpb.NewHealthClient(conn)
	switch method {
	case "Check":
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, opts...)
		if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check: %v", resp.GetStatus())
		}
		return err
	case "List":
		resp, err := client.List(ctx, &healthpb.HealthListRequest{}, opts...)
		if err == nil && resp.GetStatuses()[""].GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("List: %v", resp.GetStatuses())
		}
		return err
	case "Watch":
		stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{}, opts...)
		if err != nil {
			return err
		}
		resp, err := stream.Recv()
		if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Watch: %v", resp.GetStatus())
		}
		return err
	}
	t.Fatalf("unknown method %s", method)
	return nil
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for the logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
