package main

// The embedded demo: scaffolding that lets the example run without a Fief.
// A real program has none of this; it creates its *fief.Client with
// fief.New from its configuration and keeps fiefcli's default browser.

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// The demo tenant. It lives in memory for one run of the program: tokens
// saved by one run do not verify in the next (the signing key is new), so
// chain the commands in one run: go -C examples run ./cli login whoami token.
const (
	demoClientID = "fief-go-cli-example"
	demoEmail    = "anne@bretagne.duchy"
	demoPassword = "herminetruc"
)

// demoFief is the embedded Fief test server and a client of it.
type demoFief struct {
	srv    *fieftest.Server
	client *fief.Client
	out    io.Writer
}

// startDemo starts the embedded server, with a public client whose redirect
// URI is the callback on listen, and the demo user.
func startDemo(listen string, out io.Writer) (*demoFief, error) {
	srv := fieftest.New(
		fieftest.WithClient(fieftest.Client{
			ID:           demoClientID,
			RedirectURIs: []string{"http://" + listen + "/callback"},
		}))
	srv.AddUser(fieftest.User{
		Email:         demoEmail,
		Password:      demoPassword,
		EmailVerified: true,
		Fields:        map[string]any{"first_name": "Anne"},
	})
	client, err := fief.New(srv.URL, demoClientID, "")
	if err != nil {
		srv.Close()
		return nil, err
	}
	fmt.Fprintf(out, "Using an embedded demo Fief at %s, for this run only (set FIEF_BASE_URL and FIEF_CLIENT_ID to use yours).\n", srv.URL)
	return &demoFief{srv: srv, client: client, out: out}, nil
}

// Close stops the embedded server.
func (d *demoFief) Close() { d.srv.Close() }

// browser stands in for the user's browser, which fiefcli would open: it
// logs the demo user in on the embedded Fief's login form and follows the
// redirect to fiefcli's callback server.
func (d *demoFief) browser(authURL string) error {
	fmt.Fprintf(d.out, "Embedded demo: no browser is opened; logging in as %s / %s on the login form.\n", demoEmail, demoPassword)
	callback, err := d.srv.Authorize(authURL, demoEmail, demoPassword)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Get(callback.String())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("callback answered %s", resp.Status)
	}
	return nil
}
