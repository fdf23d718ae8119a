package main

// The demo application: a browser app that logs its users in through
// fief.LoginFlow (the session's access token in a cookie, the user's info
// cached at login), plus examples/api's route under /api (an API that takes
// the token in the Authorization header), on one server.

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/webpage"
)

// newApp returns the application's handler for browsers reaching it at
// appURL (http://127.0.0.1:port, no trailing slash), where
// <appURL>/auth-callback is an allowed redirect URI of the Fief client.
func newApp(client *fief.Client, appURL string, logger *slog.Logger) (http.Handler, error) {
	// One process: an in-memory cache. Several instances behind a load
	// balancer need a shared one (package rediscache), and the same
	// LoginFlowConfig.CookieKey.
	cache, err := fief.NewMemoryCache(10_000, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	flow, err := fief.NewLoginFlow(client, fief.LoginFlowConfig{
		RedirectURI: appURL + "/auth-callback",
		// The login stores the ID token's claims here, and logout removes
		// them.
		UserInfoCache: cache,
		// The demo serves plain HTTP on 127.0.0.1, where browsers drop
		// Secure cookies. Over HTTPS, leave this false: the cookies are then
		// Secure, and the session cookie is __Host-fief_app_session.
		InsecureCookies: true,
		Logger:          logger,
	})
	if err != nil {
		return nil, err
	}
	// The web pages: the middleware reads the session cookie the flow sets
	// and, for a browser without a valid one, starts a login that comes
	// back to the page it asked for.
	web, err := fief.NewAuthenticator(client,
		fief.WithExtractor(flow.Extractor()),
		fief.WithUserInfoCache(cache),
		fief.WithUnauthorizedHandler(flow.RedirectToLogin()),
		fief.WithLogger(logger),
	)
	if err != nil {
		return nil, err
	}
	// The API reads "Authorization: Bearer <token>" and answers 401 without
	// a valid token: no redirects, no cookies (which would need CSRF
	// protection).
	api, err := fief.NewAuthenticator(client, fief.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", home)
	mux.Handle("GET /login", flow.Login())
	mux.Handle("GET /auth-callback", flow.Callback()) // the path of RedirectURI
	mux.Handle("POST /logout", flow.Logout())
	mux.Handle("GET /protected", web.CurrentUser()(http.HandlerFunc(protected)))
	mux.Handle("GET /api/user", api.Authenticated()(http.HandlerFunc(apiUser)))
	// The session cookie is SameSite=Lax, which is no complete defence
	// against cross-site requests: refuse cross-origin POSTs (the logout).
	return http.NewCrossOriginProtection().Handler(mux), nil
}

// apiUser answers the access-token info: user ID, scopes, ACR, permissions
// and expiry. The token itself is never marshalled.
func apiUser(w http.ResponseWriter, r *http.Request) {
	info, _ := fief.AccessTokenInfoFromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(info)
}

// home is the demo's home page.
func home(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fief-go demo</title></head>
<body><h1>fief-go demo</h1>
<ul><li><a href="/protected">Protected page</a> (logs you in with Fief)</li>
<li><code>GET /api/user</code> with <code>Authorization: Bearer &lt;access token&gt;</code></li></ul>
<form method="post" action="/logout"><button type="submit">Log out</button></form></body></html>
`)
}

// protected shows the user's email address, from the user info CurrentUser
// put into the request's context. (The HTML is package webpage's.)
func protected(w http.ResponseWriter, r *http.Request) {
	user, _ := fief.UserInfoFromContext(r.Context())
	w.Header().Set("Cache-Control", "no-store")
	webpage.Protected(w, r, user.Email())
}
