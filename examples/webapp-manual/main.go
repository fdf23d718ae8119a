// Command webapp-manual is examples/webapp written by hand, as Fief's
// integration guide does it: its own login redirect with state and PKCE, its
// own /auth-callback and /logout, on the Client's AuthURL, AuthCallback and
// LogoutURL. It shows what fief.LoginFlow does for you; prefer LoginFlow
// (examples/webapp), which also keeps parallel logins apart, seals its
// cookies, refuses replays and brings the user back to the page they asked
// for.
//
// The access token lives in an HttpOnly cookie; a visitor without a valid one
// is sent to Fief's login page, and comes back to /auth-callback, which
// exchanges the authorization code for tokens and sets the cookie.
//
//	GET /               a public page
//	GET /protected      the user's email address, for logged-in users only
//	GET /auth-callback  where Fief sends the browser back after login
//	GET /logout         forgets the token and ends the Fief session
//
//	go run ./examples/webapp-manual [-addr 127.0.0.1:8000]
//
// With FIEF_BASE_URL, FIEF_CLIENT_ID and FIEF_CLIENT_SECRET set it uses that
// Fief, where http://<addr>/auth-callback must be an allowed redirect URI of
// the client; else it starts an embedded Fief test server with a demo user.
package main

import (
	"context"
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
		fmt.Fprintln(os.Stderr, "webapp-manual:", err)
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
	appURL := "http://" + ln.Addr().String()

	f.Describe(out)
	if f.Server == nil {
		fmt.Fprintf(out, "Allow the redirect URI %s/auth-callback on your Fief client.\n", appURL)
	}
	fmt.Fprintf(out, "\nOpen %s/protected in your browser. Press Ctrl-C to stop.\n", appURL)
	return serve(ctx, ln, app)
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
