// Command optional is a REST API with an optional user: GET /optional-user
// greets anonymous callers and callers with a valid access token alike, the
// latter by their email address, which it reads from Fief's userinfo
// endpoint (through a cache) with the caller's token.
//
//	go run ./examples/optional [-addr 127.0.0.1:8000]
//
// With FIEF_BASE_URL, FIEF_CLIENT_ID and FIEF_CLIENT_SECRET set it uses that
// Fief; else it starts an embedded Fief test server and prints curl commands,
// one with a fresh access token.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/devfief"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "address to listen on")
	fiefAddr := flag.String("fief-addr", "", "address of the embedded Fief test server (default: a random port)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second Ctrl-C stops at once
	if err := run(ctx, os.Stdout, *addr, *fiefAddr); err != nil {
		fmt.Fprintln(os.Stderr, "optional:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, addr, fiefAddr string) error {
	f, err := devfief.Setup(fiefAddr)
	if err != nil {
		return err
	}
	defer f.Close()

	app, err := newApp(f.Client, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	userURL := "http://" + ln.Addr().String() + "/optional-user"

	f.Describe(out)
	fmt.Fprintf(out, "API:       %s\n\n", userURL)
	if f.Server != nil {
		token := f.Server.AccessToken(f.User.ID)
		fmt.Fprintf(out, "Anonymously:\n  curl -i %s\n", userURL)
		fmt.Fprintf(out, "As %s:\n  curl -i -H 'Authorization: Bearer %s' %s\n\n", f.User.Email, token, userURL)
	} else {
		fmt.Fprintf(out, "Anonymously:\n  curl -i %s\n", userURL)
		fmt.Fprintf(out, "With an access token of your tenant:\n  curl -i -H \"Authorization: Bearer $TOKEN\" %s\n\n", userURL)
	}
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
	return serve(ctx, ln, app)
}

// newApp returns the API's handler.
func newApp(client *fief.Client, logger *slog.Logger) (http.Handler, error) {
	// CurrentUser reads the user's info from the cache, or from Fief's
	// userinfo endpoint on a miss. Without a cache every request would call
	// Fief.
	auth, err := fief.NewAuth(client,
		fief.WithUserInfoCache(fief.NewMemoryCache(10_000, 5*time.Minute)),
		fief.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	// Optional lets requests without a valid token through, without user
	// info; a valid token that misses a route requirement still gets 403.
	mux.Handle("GET /optional-user", auth.CurrentUser(fief.Optional())(http.HandlerFunc(greet)))
	return mux, nil
}

// greet greets the user by email, or an anonymous visitor.
func greet(w http.ResponseWriter, r *http.Request) {
	msg := "Hello, anonymous visitor"
	if user, ok := fief.UserInfoFromContext(r.Context()); ok {
		msg = "Hello, " + user.Email()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// serve runs an HTTP server for h on ln until ctx is done, then shuts it
// down, giving the requests in flight 10 seconds to finish.
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
