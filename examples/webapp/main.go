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
//	go -C examples run ./webapp [-addr 127.0.0.1:8000] [-public-url https://app.example.com]
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
	"flag"
	"io"
	"log/slog"
	"os"

	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/examples/internal/devserver"
)

func main() {
	publicURL := flag.String("public-url", "", "URL browsers reach the application at (default: http://<addr>)")
	devserver.Main("webapp", "127.0.0.1:8000", func(ctx context.Context, out io.Writer, addr, fiefAddr string) error {
		return run(ctx, out, addr, *publicURL, fiefAddr)
	})
}

func run(ctx context.Context, out io.Writer, addr, publicURL, fiefAddr string) error {
	// The key that seals the cookies of logins in progress (nil: random).
	key, err := devfief.CookieKey(os.Getenv("APP_COOKIE_KEY"))
	if err != nil {
		return err
	}
	f, err := devfief.Setup(fiefAddr)
	if err != nil {
		return err
	}
	defer f.Close()

	srv, err := devserver.Listen(addr, publicURL)
	if err != nil {
		return err
	}
	defer srv.Close()
	app, err := newApp(f.Client, config{URL: srv.URL, CookieKey: key}, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}

	f.Describe(out)
	f.DescribeWebApp(out, srv.URL)
	return srv.Serve(ctx, app)
}
