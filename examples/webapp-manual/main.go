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
//	POST /logout        forgets the token and ends the Fief session
//
//	go -C examples run ./webapp-manual [-addr 127.0.0.1:8000]
//
// With FIEF_BASE_URL, FIEF_CLIENT_ID and FIEF_CLIENT_SECRET set it uses that
// Fief, where http://<addr>/auth-callback must be an allowed redirect URI of
// the client; else it starts an embedded Fief test server with a demo user.
package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/examples/internal/devserver"
)

func main() { devserver.Main("webapp-manual", "127.0.0.1:8000", run) }

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
	return devserver.Serve(ctx, addr, app, func(appURL string) {
		f.Describe(out)
		f.DescribeWebApp(out, appURL)
	})
}
