// Command optional is a REST API with an optional user: GET /optional-user
// greets anonymous callers and callers with a valid access token alike, the
// latter by their email address, which it reads from Fief's userinfo
// endpoint (through a cache) with the caller's token.
//
//	go -C examples run ./optional [-addr 127.0.0.1:8000]
//
// With FIEF_BASE_URL, FIEF_CLIENT_ID and FIEF_CLIENT_SECRET set it uses that
// Fief; else it starts an embedded Fief test server and prints curl commands,
// one with a fresh access token.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/examples/internal/devserver"
)

func main() { devserver.Main("optional", "127.0.0.1:8000", run) }

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
	return devserver.Serve(ctx, addr, app, func(appURL string) { usage(out, f, appURL+"/optional-user") })
}

// newApp returns the API's handler.
func newApp(client *fief.Client, logger *slog.Logger) (http.Handler, error) {
	// CurrentUser reads the user's info from the cache, or from Fief's
	// userinfo endpoint on a miss. Without a cache every request would call
	// Fief.
	cache, err := fief.NewMemoryCache(10_000, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	auth, err := fief.NewAuthenticator(client, fief.WithUserInfoCache(cache), fief.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	// Optional lets requests without a valid token through, without user
	// info; a valid token that misses a route requirement still gets 403.
	mux.Handle("GET /optional-user", auth.CurrentUser(fief.Optional())(http.HandlerFunc(greet)))
	return mux, nil
}

// greet greets the user by email, or an anonymous visitor.
func greet(w http.ResponseWriter, r *http.Request) {
	msg := "Hello, anonymous visitor"
	if user, ok := fief.UserInfoFromContext(r.Context()); ok {
		msg = "Hello, " + user.Email()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// usage writes which Fief the API at userURL uses, and how to call it.
func usage(out io.Writer, f *devfief.Fief, userURL string) {
	f.Describe(out)
	fmt.Fprintf(out, "API:       %s\n\n", userURL)
	if f.Server != nil {
		token := f.Server.AccessToken(f.User.ID)
		fmt.Fprintf(out, "Anonymously:\n  curl -i %s\n", userURL)
		fmt.Fprintf(out, "As %s:\n  curl -i -H 'Authorization: Bearer %s' %s\n\n", f.User.Email, token, userURL)
	} else {
		fmt.Fprintf(out, "Anonymously:\n  curl -i %s\n", userURL)
		fmt.Fprintf(out, "With an access token of your tenant:\n  curl -i -H \"Authorization: Bearer $TOKEN\" %s\n\n", userURL)
	}
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
}
