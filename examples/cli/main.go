// Command cli is a command-line program whose user logs in with Fief, built
// on package fiefcli: the login happens in the browser, the tokens are kept
// in a credentials file (mode 0600) and refreshed when they expire.
//
//	go -C examples run ./cli [flags] login    # log in with the browser
//	go -C examples run ./cli [flags] whoami   # the user's claims, fresh from Fief
//	go -C examples run ./cli [flags] token    # a valid access token, on standard output
//	go -C examples run ./cli [flags] logout   # forget the credentials
//
// Several commands run in order: "login whoami token".
//
// Flags:
//
//	-credentials path   the credentials file (default <user config dir>/fief-go-example/credentials.json)
//	-listen addr        the local callback address (default 127.0.0.1:51562)
//	-no-browser         print the login URL without opening a browser (over SSH, say)
//	-timeout d          how long login waits for the browser (default 5m)
//
// With FIEF_BASE_URL and FIEF_CLIENT_ID set, it uses that Fief tenant. The
// client must be a public client (a command-line program cannot keep a
// secret) whose redirect URIs include http://127.0.0.1:51562/callback (or
// the -listen address).
//
// Without them, it starts an embedded Fief test server with a demo user,
// and login fills in the login form itself instead of opening a browser
// (see demo.go). That server lives only for one run, so chain the commands:
//
//	go -C examples run ./cli login whoami token logout
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "cli:", err)
		os.Exit(1)
	}
}

const usage = `usage: cli [flags] command...

commands (several run in order):
  login    log in with the browser and save the credentials
  whoami   print the user's claims, fresh from Fief
  token    print a valid access token (refreshed if needed)
  logout   remove the saved credentials

flags:
`

// run is the program: args are the command-line arguments without the
// program name, getenv reads the environment.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("cli", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	credentials := fs.String("credentials", "", "credentials file (default <user config dir>/fief-go-example/credentials.json)")
	listen := fs.String("listen", fiefcli.DefaultListenAddr, "local address of the login callback")
	noBrowser := fs.Bool("no-browser", false, "print the login URL without opening a browser")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long login waits for the browser")
	if err := fs.Parse(args); err != nil {
		return err
	}
	commands := fs.Args()
	if len(commands) == 0 {
		fs.Usage()
		return errors.New("no command")
	}
	for _, c := range commands {
		switch c {
		case "login", "whoami", "token", "logout":
		default:
			fs.Usage()
			return fmt.Errorf("unknown command %q", c)
		}
	}
	if *credentials == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return fmt.Errorf("no -credentials and no user config directory: %w", err)
		}
		*credentials = filepath.Join(dir, "fief-go-example", "credentials.json")
	}

	client, demo, err := setupFief(getenv, *listen, stderr)
	if err != nil {
		return err
	}
	opts := []fiefcli.Option{fiefcli.WithListenAddr(*listen), fiefcli.WithOutput(stderr)}
	switch {
	case demo != nil:
		defer demo.Close()
		opts = append(opts, fiefcli.WithBrowser(demo.browser))
	case *noBrowser:
		opts = append(opts, fiefcli.WithBrowser(nil))
	}
	auth, err := fiefcli.New(client, *credentials, opts...)
	if err != nil {
		return err
	}
	p := &program{auth: auth, credentials: *credentials, timeout: *timeout, stdout: stdout, stderr: stderr, demo: demo != nil}
	for _, c := range commands {
		if err := p.do(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// program runs the commands.
type program struct {
	auth           *fiefcli.Session
	credentials    string
	timeout        time.Duration
	stdout, stderr io.Writer
	demo           bool
}

func (p *program) do(ctx context.Context, command string) error {
	switch command {
	case "login":
		ctx, cancel := context.WithTimeout(ctx, p.timeout)
		defer cancel()
		_, user, err := p.auth.Authorize(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(p.stdout, "Logged in as %s. Credentials saved in %s.\n", user.Email(), p.credentials)
	case "whoami":
		user, err := p.auth.UserInfo(ctx, true)
		if err != nil {
			return p.loginHint(err)
		}
		enc := json.NewEncoder(p.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(user)
	case "token":
		info, err := p.auth.AccessTokenInfo(ctx, true)
		if err != nil {
			return p.loginHint(err)
		}
		fmt.Fprintf(p.stderr, "Access token of user %s, scopes %q, valid until %s:\n",
			info.UserID(), strings.Join(info.Scopes(), " "), info.Expiry().Local().Format(time.RFC3339))
		fmt.Fprintln(p.stdout, info.AccessToken())
	case "logout":
		if err := p.auth.Logout(); err != nil {
			return err
		}
		fmt.Fprintln(p.stdout, "Logged out: the credentials are removed. Your Fief session in the browser stays open until you log out there.")
	}
	return nil
}

// loginHint tells the user to log in when err says that the saved
// credentials are missing or no longer usable, and returns err.
func (p *program) loginHint(err error) error {
	var re *fief.RequestError
	if errors.Is(err, fiefcli.ErrNotAuthenticated) ||
		errors.Is(err, fiefcli.ErrRefreshTokenMissing) ||
		errors.Is(err, fief.ErrAccessTokenInvalid) || // e.g. issued by another Fief
		errors.As(err, &re) && re.Endpoint == "token" && re.StatusCode == 400 { // refresh token refused
		if p.demo {
			fmt.Fprintln(p.stderr, "Log in first, in the same run as the embedded demo Fief: go -C examples run ./cli login whoami token")
		} else {
			fmt.Fprintln(p.stderr, "Log in first: go -C examples run ./cli login")
		}
	}
	return err
}

// setupFief returns a client of the Fief tenant named by FIEF_BASE_URL and
// FIEF_CLIENT_ID or, when both are unset, of an embedded demo server (demo
// is then non-nil; close it when done).
func setupFief(getenv func(string) string, listen string, stderr io.Writer) (*fief.Client, *demoFief, error) {
	baseURL, clientID := getenv("FIEF_BASE_URL"), getenv("FIEF_CLIENT_ID")
	switch {
	case baseURL != "" && clientID != "":
		var opts []fief.Option
		if key := getenv("FIEF_ENCRYPTION_KEY"); key != "" {
			opts = append(opts, fief.WithEncryptionKey(key))
		}
		client, err := fief.New(baseURL, clientID, "", opts...) // public client: no secret
		return client, nil, err
	case baseURL != "" || clientID != "":
		return nil, nil, errors.New("set both FIEF_BASE_URL and FIEF_CLIENT_ID to use your Fief, or neither for the embedded demo")
	}
	demo, err := startDemo(listen, stderr)
	if err != nil {
		return nil, nil, err
	}
	return demo.client, demo, nil
}
