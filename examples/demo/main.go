// Command demo shows fief-go end to end on a machine without Fief: it starts
// an embedded Fief test server and a web application with an API, then walks
// through a user's visit, printing each step: the API refuses a request
// without a token, the web app sends the browser to Fief's login page, the
// user logs in, the app sets its session cookie and greets the user, the API
// accepts the same access token, and the user logs out. It exits with status
// 0 when every step goes as expected, 1 otherwise.
//
// The web app is the library's, not hand-written: fief.LoginFlow does the
// login (state and PKCE, a sealed cookie bound to the browser), the
// callback (the code exchange, the session cookie, the user's info cached
// from the ID token) and the logout; the Authenticator's CurrentUser protects
// the page and starts a login for browsers without a session. The API is
// the Authenticator's Authenticated, reading the token from the Authorization
// header.
//
//	go -C examples run ./demo [-serve] [-addr 127.0.0.1:0]
//
// With -serve it keeps serving after the walkthrough, for you to try it in a
// browser. With FIEF_BASE_URL, FIEF_CLIENT_ID and FIEF_CLIENT_SECRET set it
// uses that Fief instead; its login page needs a human, so the demo then
// prints the URL to open and serves until interrupted. The demo serves plain
// HTTP, so its cookies are not Secure: it is for local use only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/examples/internal/devserver"
)

func main() {
	keepServing := flag.Bool("serve", false, "keep serving after the walkthrough, for a browser")
	devserver.Main("demo", "127.0.0.1:0", func(ctx context.Context, out io.Writer, addr, fiefAddr string) error {
		return run(ctx, out, addr, fiefAddr, *keepServing)
	})
}

func run(ctx context.Context, out io.Writer, addr, fiefAddr string, keepServing bool) error {
	f, err := devfief.Setup(fiefAddr)
	if err != nil {
		return err
	}
	defer f.Close()

	srv, err := devserver.Listen(addr, "")
	if err != nil {
		return err
	}
	defer srv.Close()
	appURL := srv.URL
	app, err := newApp(f.Client, appURL, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, app) }()

	fmt.Fprintln(out, "fief-go demo: a web app and an API, protected by Fief")
	fmt.Fprintln(out)
	f.Describe(out)
	fmt.Fprintf(out, "App:       %s\n", appURL)

	if f.Server == nil {
		fmt.Fprintf(out, "\nA real Fief's login page needs a human, so there is no scripted walkthrough.\n")
		fmt.Fprintf(out, "Allow the redirect URI %s/auth-callback on your Fief client (use -addr for a fixed port),\n", appURL)
		fmt.Fprintf(out, "then open %s/protected in your browser. Press Ctrl-C to stop.\n", appURL)
		return <-served
	}

	if err := walkthrough(ctx, out, appURL, f); err != nil {
		stopServing()
		return errors.Join(err, <-served)
	}
	if !keepServing {
		stopServing()
		return <-served
	}
	fmt.Fprintf(out, "\nStill serving: open %s/protected in your browser and log in as %s / %s.\n",
		appURL, devfief.DemoEmail, devfief.DemoPassword)
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
	return <-served
}
