// Command webapp is a browser application that logs its users in with Fief,
// through fief.LoginFlow. The access token lives in an HttpOnly cookie; a
// visitor without a valid one is sent to Fief's login page (state and PKCE),
// and comes back to /auth-callback, which exchanges the authorization code
// for tokens, sets the cookie and returns to the page the visitor asked for.
//
//	GET  /               a public page
//	GET  /protected      the user's email address, for logged-in users only
//	GET  /login          starts a login (?return_to=/a/path/on/the/site)
//	GET  /auth-callback  where Fief sends the browser back after login
//	POST /logout         forgets the token and ends the Fief session
//
//	go run ./examples/webapp [-addr 127.0.0.1:8000] [-public-url https://app.example.com]
//
// -public-url is the URL browsers reach the application at (default
// http://<addr>); behind a proxy that terminates TLS, give the https URL.
// Over plain HTTP, for local development only, the cookies are not Secure.
// APP_COOKIE_KEY (hex, at least 32 bytes) seals the cookies of logins in
// progress; set the same value on every instance of the application (a
// random key is made when it is unset).
//
// With FIEF_BASE_URL, FIEF_CLIENT_ID and FIEF_CLIENT_SECRET set it uses that
// Fief, where <public URL>/auth-callback must be an allowed redirect URI of
// the client; else it starts an embedded Fief test server with a demo user.
//
// examples/webapp-manual is the same application with the login written by
// hand, as in Fief's integration guide.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fief-go/fief/examples/internal/devfief"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "address to listen on")
	publicURL := flag.String("public-url", "", "URL browsers reach the application at (default: http://<addr>)")
	fiefAddr := flag.String("fief-addr", "", "address of the embedded Fief test server (default: a random port)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second Ctrl-C stops at once
	if err := run(ctx, os.Stdout, *addr, *publicURL, *fiefAddr); err != nil {
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, addr, publicURL, fiefAddr string) error {
	key, err := cookieKey(os.Getenv("APP_COOKIE_KEY"))
	if err != nil {
		return err
	}
	f, err := devfief.Setup(fiefAddr)
	if err != nil {
		return err
	}
	defer f.Close()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String()
	}
	publicURL = strings.TrimRight(publicURL, "/")
	app, err := newApp(f.Client, config{URL: publicURL, CookieKey: key}, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}

	f.Describe(out)
	if f.Server == nil {
		fmt.Fprintf(out, "Allow the redirect URI %s/auth-callback on your Fief client.\n", publicURL)
	}
	fmt.Fprintf(out, "\nOpen %s/protected in your browser. Press Ctrl-C to stop.\n", publicURL)
	return serve(ctx, ln, app)
}

// cookieKey decodes the hex key that seals the login cookies; "" gives nil,
// which makes LoginFlow use a random key for this process.
func cookieKey(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	key, err := hex.DecodeString(s)
	if err != nil || len(key) < 32 {
		return nil, errors.New("APP_COOKIE_KEY must be at least 32 bytes in hex (64 hex digits), e.g. from: openssl rand -hex 32")
	}
	return key, nil
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
