// Command gin-app is a gin application protected by Fief with fiefgin: a
// JSON API for access tokens, and pages for users logged in through
// fief.LoginFlow.
//
//	GET    /                  a public page
//	GET    /api/castles       the castles: an access token (Authorization: Bearer) with castles:read
//	DELETE /api/castles/:id   deletes a castle: castles:read and castles:delete
//	GET    /api/me            the token's user ID and the user's email address
//	GET    /protected         a page greeting the logged-in user
//	GET    /login             starts a login (?return_to=/a/path/on/the/site)
//	GET    /auth-callback     where Fief sends the browser back after login
//	POST   /logout            forgets the session and ends the Fief session
//
//	go -C examples run ./gin-app [-addr 127.0.0.1:8000] [-public-url https://app.example.com]
//
// The API answers 401, 403 and 503 with RFC 6750's headers and fixed JSON
// bodies; a visitor of /protected without a session is sent to Fief's login
// page. -public-url is the URL browsers reach the application at (default
// http://<addr>); over plain HTTP, for local development only, the cookies
// are not Secure. APP_COOKIE_KEY (hex, at least 32 bytes) seals the cookies
// of logins in progress (a random key is made when it is unset).
//
// With FIEF_BASE_URL, FIEF_CLIENT_ID and FIEF_CLIENT_SECRET set it uses that
// Fief, where <public URL>/auth-callback must be an allowed redirect URI of
// the client; else it starts an embedded Fief test server with a demo user
// and prints curl commands with a fresh access token.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/examples/internal/devserver"
)

func main() {
	publicURL := flag.String("public-url", "", "URL browsers reach the application at (default: http://<addr>)")
	devserver.Main("gin-app", "127.0.0.1:8000", func(ctx context.Context, out io.Writer, addr, fiefAddr string) error {
		return run(ctx, out, addr, *publicURL, fiefAddr)
	})
}

// run serves the application with the Fief that devfief sets up, on addr,
// until ctx is done.
func run(ctx context.Context, out io.Writer, addr, publicURL, fiefAddr string) error {
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

	usage(out, f, srv.URL)
	return srv.Serve(ctx, app)
}

// usage writes which Fief the application at appURL uses, how to call its
// API and what to open in a browser.
func usage(out io.Writer, f *devfief.Fief, appURL string) {
	f.Describe(out)
	castles := appURL + "/api/castles"
	fmt.Fprintf(out, "API:       %s\n\n", castles)
	if f.Server != nil {
		token := f.Server.AccessToken(f.User.ID)
		fmt.Fprintf(out, "Without a token (401):\n  curl -i %s\n", castles)
		fmt.Fprintf(out, "With a fresh access token of %s (200):\n  curl -i -H 'Authorization: Bearer %s' %s\n", f.User.Email, token, castles)
		fmt.Fprintf(out, "Deleting a castle needs castles:delete, which %s lacks (403):\n  curl -i -X DELETE -H 'Authorization: Bearer %s' %s/nantes\n", f.User.Email, token, castles)
	} else {
		fmt.Fprintf(out, "Call it with an access token of your tenant:\n  curl -i -H \"Authorization: Bearer $TOKEN\" %s\n", castles)
	}
	f.DescribeWebApp(out, appURL)
}
