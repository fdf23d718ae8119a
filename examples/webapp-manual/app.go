package main

// The application: its routes, the login through Fief and the session cookie.

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/fief-go/fief"
)

const (
	// sessionCookie holds the access token.
	sessionCookie = "user_session"
	// loginCookie holds the state and the PKCE verifier of a login in
	// progress, for /auth-callback only.
	loginCookie   = "login_state"
	loginLifetime = 10 * time.Minute // Fief's authorization codes live as long
)

type app struct {
	client *fief.Client
	logger *slog.Logger
}

// newApp returns the application's handler.
func newApp(client *fief.Client, logger *slog.Logger) (http.Handler, error) {
	a := &app{client: client, logger: logger}
	auth, err := fief.NewAuthenticator(client,
		fief.WithExtractor(fief.CookieToken(sessionCookie)),
		fief.WithUnauthorizedHandler(a.login),
		fief.WithLogger(logger),
	)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /auth-callback", a.callback)
	// Without a user-info cache, CurrentUser asks Fief's userinfo endpoint
	// on every request: see examples/webapp-cache.
	mux.Handle("GET /protected", auth.CurrentUser()(http.HandlerFunc(a.protected)))
	// Logging out changes state: a POST from the application's own pages
	// only, so that another site cannot log the user out with a link or a
	// form.
	mux.Handle("POST /logout", http.NewCrossOriginProtection().Handler(http.HandlerFunc(a.logout)))
	return mux, nil
}

// login sends the browser to Fief's login page. It is the middleware's
// unauthorized handler: requests without a valid session cookie land here.
// A random state and a PKCE verifier, kept in a short-lived cookie, bind the
// code that comes back to this browser.
func (a *app) login(w http.ResponseWriter, r *http.Request, _ error) {
	state, verifier := rand.Text(), fief.GenerateCodeVerifier()
	authURL, err := a.client.AuthURL(r.Context(), callbackURL(r), fief.AuthURLOptions{
		State:        state,
		Scopes:       []string{"openid"},
		CodeVerifier: verifier,
	})
	if err != nil {
		a.logger.ErrorContext(r.Context(), "cannot build Fief's login URL", "error", err)
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	http.SetCookie(w, cookie(r, loginCookie, state+"."+verifier, "/auth-callback", int(loginLifetime/time.Second)))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusTemporaryRedirect)
}

// callback finishes the login: it checks the state, exchanges the code for
// tokens and keeps the access token in the session cookie.
func (a *app) callback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	http.SetCookie(w, cookie(r, loginCookie, "", "/auth-callback", -1)) // single use
	q := r.URL.Query()
	verifier, ok := loginVerifier(r, q.Get("state"))
	if !ok {
		http.Error(w, "Invalid or expired login attempt. Please log in again.", http.StatusBadRequest)
		return
	}
	code := q.Get("code")
	if code == "" { // Fief sends error=... instead, e.g. when the user declines
		http.Error(w, "Login failed.", http.StatusBadRequest)
		return
	}
	tokens, _, err := a.client.AuthCallback(r.Context(), code, callbackURL(r), verifier)
	if err != nil {
		a.loginFailed(w, r, err)
		return
	}
	http.SetCookie(w, cookie(r, sessionCookie, tokens.AccessToken, "/", int(tokens.ExpiresIn)))
	http.Redirect(w, r, "/protected", http.StatusSeeOther)
}

// loginVerifier returns the PKCE verifier of the login in progress if state
// is its state.
func loginVerifier(r *http.Request, state string) (verifier string, ok bool) {
	c, err := r.Cookie(loginCookie)
	if err != nil || state == "" {
		return "", false
	}
	want, verifier, _ := strings.Cut(c.Value, ".")
	if subtle.ConstantTimeCompare([]byte(state), []byte(want)) != 1 || verifier == "" {
		return "", false
	}
	return verifier, true
}

// loginFailed answers a failed code exchange without revealing why; the log
// says.
func (a *app) loginFailed(w http.ResponseWriter, r *http.Request, err error) {
	a.logger.WarnContext(r.Context(), "login failed", "error", err)
	var re *fief.RequestError
	if errors.As(err, &re) && re.StatusCode < http.StatusInternalServerError {
		// Typically an expired or already used code (a reloaded page).
		http.Error(w, "Login failed. Please log in again.", http.StatusBadRequest)
		return
	}
	http.Error(w, "Login is unavailable. Please try again later.", http.StatusBadGateway)
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

// logout forgets the access token and sends the browser to Fief's logout
// page, which ends the Fief session and comes back to the home page. Fief
// does not revoke access tokens: one copied elsewhere stays valid until it
// expires.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, cookie(r, sessionCookie, "", "/", -1))
	http.Redirect(w, r, a.client.LogoutURL(baseURL(r)+"/"), http.StatusSeeOther)
}

// cookie returns a cookie of the application: HttpOnly, SameSite=Lax (sent
// on the top-level navigation back from Fief) and Secure over HTTPS. A
// negative maxAge deletes it.
func cookie(r *http.Request, name, value, path string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     path,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	}
}

// baseURL returns the URL the browser reached the application at. Behind a
// proxy that terminates TLS, use your configured public URL instead: r.TLS
// is then nil and r.Host may be an internal name.
func baseURL(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// callbackURL returns the redirect URI. Fief sends codes only to the
// redirect URIs allowed on the client, exactly as written there.
func callbackURL(r *http.Request) string { return baseURL(r) + "/auth-callback" }
