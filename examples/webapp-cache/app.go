package main

// The application: its routes, with the login through fief.LoginFlow.

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/webpage"
)

// config is the application's configuration.
type config struct {
	// URL is where browsers reach the application, without a trailing
	// slash: https://app.example.com in production. <URL>/auth-callback
	// must be an allowed redirect URI of the Fief client.
	URL string
	// CookieKey seals the cookies of logins in progress and the refresh
	// cookies of sessions: a secret of at least 32 bytes, the same on every
	// instance. Required: fief.NewLoginFlow refuses RefreshSessions
	// without it.
	CookieKey []byte
	// Cache keeps users' info: on Redis (rediscache) to share it between
	// instances, in memory for one process. nil: in memory.
	Cache fief.UserInfoCache
	// Coordinator makes the instances refresh each session once: on Redis
	// (rediscache) for several instances. nil: within this process only.
	Coordinator fief.RefreshCoordinator
}

// newApp returns the application's handler.
func newApp(client *fief.Client, cfg config, logger *slog.Logger) (http.Handler, error) {
	cache := cfg.Cache
	if cache == nil {
		mem, err := fief.NewMemoryCache(10_000, cacheTTL)
		if err != nil {
			return nil, err
		}
		cache = mem
	}
	flow, err := fief.NewLoginFlow(client, fief.LoginFlowConfig{
		RedirectURI: cfg.URL + "/auth-callback",
		CookieKey:   cfg.CookieKey,
		// The login stores the ID token's claims here (and each session
		// refresh the new ID token's), and logout removes them.
		UserInfoCache: cache,
		// Sessions outlive the access token: the flow keeps Fief's refresh
		// token in a sealed cookie and flow.Session() below refreshes the
		// tokens before they expire, once per session across the instances
		// that share the coordinator. A week after the login the user logs
		// in again (MaxSessionAge).
		RefreshSessions:    true,
		RefreshCoordinator: cfg.Coordinator,
		// Browsers keep Secure cookies over HTTPS only: plain HTTP is for
		// local development.
		InsecureCookies: strings.HasPrefix(cfg.URL, "http://"),
		Logger:          logger,
	})
	if err != nil {
		return nil, err
	}
	// The middleware reads the session cookie the flow sets, and sends
	// visitors without a valid one to Fief's login page, to come back to
	// the page they asked for.
	auth, err := fief.NewAuthenticator(client,
		fief.WithExtractor(flow.Extractor()),
		fief.WithUserInfoCache(cache),
		fief.WithUnauthorizedHandler(flow.RedirectToLogin()),
		fief.WithLogger(logger),
	)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", webpage.Home)
	mux.Handle("GET /login", flow.Login())
	mux.Handle("GET /auth-callback", flow.Callback())
	mux.Handle("POST /logout", flow.Logout())
	mux.Handle("GET /protected", auth.CurrentUser()(http.HandlerFunc(protected)))
	// Session refreshes the session of any request before the middleware
	// reads it.
	return flow.Session()(mux), nil
}

// protected shows the user's email address, from the user info CurrentUser
// put into the request's context. (The HTML is package webpage's.)
func protected(w http.ResponseWriter, r *http.Request) {
	user, _ := fief.UserInfoFromContext(r.Context())
	w.Header().Set("Cache-Control", "no-store")
	webpage.Protected(w, r, user.Email())
}
