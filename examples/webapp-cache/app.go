package main

// The application: its routes, with the login through fief.LoginFlow.

import (
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/fief-go/fief"
)

// config is the application's configuration.
type config struct {
	// URL is where browsers reach the application, without a trailing
	// slash: https://app.example.com in production. <URL>/auth-callback
	// must be an allowed redirect URI of the Fief client.
	URL string
	// CookieKey seals the cookies of logins in progress: a secret of at
	// least 32 bytes, the same on every instance. nil: a random key for
	// this process.
	CookieKey []byte
	// Cache keeps users' info: on Redis (rediscache) to share it between
	// instances, in memory for one process. nil: in memory.
	Cache fief.UserInfoCache
}

type app struct {
	logger *slog.Logger
}

// newApp returns the application's handler.
func newApp(client *fief.Client, cfg config, logger *slog.Logger) (http.Handler, error) {
	a := &app{logger: logger}
	cache := cfg.Cache
	if cache == nil {
		cache = fief.NewMemoryCache(10_000, cacheTTL)
	}
	flow, err := fief.NewLoginFlow(client, fief.LoginFlowConfig{
		RedirectURI: cfg.URL + "/auth-callback",
		CookieKey:   cfg.CookieKey,
		// The login stores the ID token's claims here, and logout removes
		// them.
		UserInfoCache: cache,
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
	auth, err := fief.NewAuth(client,
		fief.WithExtractor(flow.Extractor()),
		fief.WithUserInfoCache(cache),
		fief.WithUnauthorizedHandler(flow.RedirectToLogin()),
		fief.WithLogger(logger),
	)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.Handle("GET /login", flow.Login())
	mux.Handle("GET /auth-callback", flow.Callback())
	mux.Handle("POST /logout", flow.Logout())
	mux.Handle("GET /protected", auth.CurrentUser()(http.HandlerFunc(a.protected)))
	return mux, nil
}

var pages = template.Must(template.New("").Parse(`
{{define "home"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Fief web app</title></head>
<body><h1>Welcome</h1><p><a href="/protected">Protected page</a></p></body></html>
{{end}}
{{define "protected"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Protected page</title></head>
<body><h1>Hello {{.}}</h1><p>You are authenticated.</p>
<form method="post" action="/logout"><button type="submit">Log out</button></form></body></html>
{{end}}`))

func (a *app) home(w http.ResponseWriter, r *http.Request) { a.render(w, r, "home", nil) }

// protected shows the user's email address, from the user info CurrentUser
// put into the request's context.
func (a *app) protected(w http.ResponseWriter, r *http.Request) {
	user, _ := fief.UserInfoFromContext(r.Context())
	w.Header().Set("Cache-Control", "no-store")
	a.render(w, r, "protected", user.Email())
}

func (a *app) render(w http.ResponseWriter, r *http.Request, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, page, data); err != nil {
		a.logger.ErrorContext(r.Context(), "cannot render page", "page", page, "error", err)
	}
}
