// Command permissions is a REST API whose routes require permissions, which
// Fief puts into access tokens from the user's roles and permissions:
//
//	GET    /castles       requires castles:read
//	DELETE /castles/{id}  requires castles:delete
//
// A valid access token without the permission gets 403; a request without a
// valid token gets 401.
//
//	go -C examples run ./permissions [-addr 127.0.0.1:8000]
//
// With FIEF_BASE_URL, FIEF_CLIENT_ID and FIEF_CLIENT_SECRET set it uses that
// Fief; else it starts an embedded Fief test server and prints curl commands
// with a fresh access token of the demo user, who may read castles but not
// delete them.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/examples/internal/devserver"
)

// The permissions the routes require. In Fief, permissions are created in the
// tenant and granted to users directly or through roles.
const (
	permRead   = "castles:read"
	permDelete = "castles:delete"
)

func main() { devserver.Main("permissions", "127.0.0.1:8000", run) }

// run serves the API with the Fief that devfief sets up, on addr, until ctx
// is done.
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
	return devserver.Serve(ctx, addr, app, func(appURL string) { usage(out, f, appURL+"/castles") })
}

// newApp returns the API's handler.
func newApp(client *fief.Client, logger *slog.Logger) (http.Handler, error) {
	// The default extractor reads "Authorization: Bearer <token>", and the
	// default answers are RFC 6750's 401 and 403 (error="insufficient_scope").
	auth, err := fief.NewAuthenticator(client, fief.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /castles", auth.Authenticated(fief.RequirePermissions(permRead))(http.HandlerFunc(listCastles)))
	mux.Handle("DELETE /castles/{id}", auth.Authenticated(fief.RequirePermissions(permDelete))(http.HandlerFunc(deleteCastle)))
	return mux, nil
}

// listCastles answers the castles as JSON.
func listCastles(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode([]string{"nantes", "rennes", "vannes"})
}

// deleteCastle pretends to delete a castle.
func deleteCastle(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNoContent)
}

// usage writes which Fief the API at castlesURL uses, and how to call it.
func usage(out io.Writer, f *devfief.Fief, castlesURL string) {
	f.Describe(out)
	fmt.Fprintf(out, "API:       %s\n\n", castlesURL)
	token := "$TOKEN"
	if f.Server != nil {
		token = f.Server.AccessToken(f.User.ID) // carries the user's permissions
	} else {
		fmt.Fprintln(out, "Set TOKEN to an access token of a user of your tenant, then:")
	}
	fmt.Fprintf(out, "List the castles (requires %s):\n  curl -i -H \"Authorization: Bearer %s\" %s\n", permRead, token, castlesURL)
	fmt.Fprintf(out, "Delete one (requires %s):\n  curl -i -X DELETE -H \"Authorization: Bearer %s\" %s/nantes\n\n", permDelete, token, castlesURL)
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
}
