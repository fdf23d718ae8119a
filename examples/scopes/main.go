// Command scopes is a REST API whose route requires a scope: GET /user
// answers the caller's access-token info as JSON when the access token in the
// Authorization header grants the "castles" scope, 403 when a valid token
// lacks it, and 401 without a valid token.
//
//	go -C examples run ./scopes [-addr 127.0.0.1:8000]
//
// With FIEF_BASE_URL, FIEF_CLIENT_ID and FIEF_CLIENT_SECRET set it uses that
// Fief; else it starts an embedded Fief test server and prints curl commands
// with fresh access tokens, with and without the scope.
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
	"github.com/fief-go/fief/fieftest"
)

// requiredScope is the scope GET /user requires. Fief grants the scopes the
// client asks for at login (AuthURLOptions.Scopes).
const requiredScope = "castles"

func main() { devserver.Main("scopes", "127.0.0.1:8000", run) }

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
	return devserver.Serve(ctx, addr, app, func(appURL string) { usage(out, f, appURL+"/user") })
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
	mux.Handle("GET /user", auth.Authenticated(fief.RequireScopes(requiredScope))(http.HandlerFunc(getUser)))
	return mux, nil
}

// getUser answers the access-token info: user ID, scopes, ACR, permissions
// and expiry. The token itself is never marshalled.
func getUser(w http.ResponseWriter, r *http.Request) {
	info, _ := fief.AccessTokenInfoFromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(info)
}

// usage writes which Fief the API at userURL uses, and how to call it.
func usage(out io.Writer, f *devfief.Fief, userURL string) {
	f.Describe(out)
	fmt.Fprintf(out, "API:       %s\n\n", userURL)
	if f.Server != nil {
		withScope := f.Server.AccessToken(f.User.ID, fieftest.Scopes("openid", requiredScope))
		withoutScope := f.Server.AccessToken(f.User.ID)
		fmt.Fprintf(out, "With a token granting the %q scope (200):\n  curl -i -H 'Authorization: Bearer %s' %s\n", requiredScope, withScope, userURL)
		fmt.Fprintf(out, "With a token granting only \"openid\" (403):\n  curl -i -H 'Authorization: Bearer %s' %s\n\n", withoutScope, userURL)
	} else {
		fmt.Fprintf(out, "Call it with an access token of your tenant, obtained with scope \"openid %s\":\n", requiredScope)
		fmt.Fprintf(out, "  curl -i -H \"Authorization: Bearer $TOKEN\" %s\n\n", userURL)
	}
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
}
