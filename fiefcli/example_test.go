package fiefcli_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefcli"
	"github.com/fief-go/fief/fieftest"
)

// A command-line program logs its user in once, then gets a valid access
// token (refreshed as needed) and the user's claims on every run.
//
// In a real program the Fief client is your tenant's public client, whose
// redirect URIs include http://127.0.0.1:51562/callback (the default
// listen address; for a client registered for the Python CLI helper, with
// http://localhost:51562/callback, add fiefcli.WithRedirectHost("localhost")),
// and the default browser opener replaces the scripted one used here.
func Example() {
	// A Fief-compatible test server with a public client and a user. The
	// client accepts any redirect URI, so that this example can listen on
	// a free port.
	srv := fieftest.New(fieftest.WithClient(fieftest.Client{ID: "my-cli"}))
	defer srv.Close()
	srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc"})

	client, err := fief.New(srv.URL, "my-cli", "") // public client: no secret
	if err != nil {
		log.Fatal(err)
	}
	dir, _ := os.MkdirTemp("", "fiefcli-example")
	defer os.RemoveAll(dir)
	credentials := filepath.Join(dir, "credentials.json") // e.g. under os.UserConfigDir()

	// The user's part, scripted: log in on Fief's page, then follow the
	// redirect to the local callback server.
	browser := func(authURL string) error {
		callback, err := srv.Authorize(authURL, "anne@bretagne.duchy", "herminetruc")
		if err != nil {
			return err
		}
		resp, err := http.Get(callback.String())
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}

	auth, err := fiefcli.New(client, credentials,
		fiefcli.WithListenAddr("127.0.0.1:0"), // a real program keeps the default
		fiefcli.WithBrowser(browser),
		fiefcli.WithOutput(io.Discard))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// "mycli login"
	_, user, err := auth.Authorize(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("logged in as", user.Email())

	// "mycli whoami", "mycli call-api": the saved credentials.
	user, err = auth.UserInfo(ctx, true)
	if err != nil {
		log.Fatal(err)
	}
	info, err := auth.AccessTokenInfo(ctx, true)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(user.Email(), info.UserID() == user.Sub(), info.HasScope("offline_access"))

	// "mycli logout"
	if err := auth.Logout(); err != nil {
		log.Fatal(err)
	}
	_, err = auth.AccessTokenInfo(ctx, true)
	fmt.Println(err)
	// Output:
	// logged in as anne@bretagne.duchy
	// anne@bretagne.duchy true true
	// fiefcli: not authenticated
}
