package fiefcli

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/fief-go/fief"
)

// Limits of the callback server.
const (
	readHeaderTimeout = 5 * time.Second
	// writeTimeout covers the code exchange, which the callback handler
	// performs before it answers.
	writeTimeout = 2 * time.Minute
	// shutdownGrace is how long the server waits for a request in flight
	// before closing its connections. The page is written before the
	// result is handed over, so this only waits for stragglers (such as a
	// browser's speculative connection that never sends a request).
	shutdownGrace = 2 * time.Second
	// maxErrorParam caps the error parameters kept in a CallbackError.
	maxErrorParam = 200
)

// callbackResult is what the callback handler hands to Authorize.
type callbackResult struct {
	tokens *fief.Tokens
	user   fief.UserInfo
	err    error
}

// Authorize logs the user in: it listens on the callback address, builds
// the authorization URL (scopes "openid", "offline_access" and those of
// WithScopes, a random state, a PKCE S256 challenge), prints it, opens the
// browser on it and waits for Fief to redirect back. The callback's state
// is compared in constant time; on a match its code is exchanged, the
// tokens and the ID token's claims are saved in the credentials file, the
// browser gets a fixed success page and Authorize returns them.
//
// Requests to other paths get a 404, and a callback with a missing or wrong
// state gets a 400 page and is otherwise ignored: Authorize keeps waiting
// for the real callback, so a page that makes the browser hit the local
// server cannot abort the login, and it cannot complete it without the
// state either. A callback with the right state but an error parameter ends
// Authorize with a *CallbackError; with neither code nor error, with
// ErrAuthorizationCodeMissing; a refused exchange, with an error wrapping
// the *fief.RequestError. The browser then gets a fixed error page: no
// query value is ever echoed.
//
// Authorize returns when the callback has been handled or ctx is done,
// after the server has stopped and released the address; only one
// Authorize can wait on an address at a time. Bound ctx with a timeout, such
// as a few minutes, and cancel it on Ctrl-C.
func (a *Session) Authorize(ctx context.Context) (*fief.Tokens, fief.UserInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fief.UserInfo{}, fmt.Errorf("fiefcli: %w", err)
	}
	ln, err := net.Listen("tcp", a.cfg.listenAddr)
	if err != nil {
		return nil, fief.UserInfo{}, fmt.Errorf("fiefcli: listening for the callback: %w", err)
	}
	// The Host headers the callback server accepts: its address, and
	// localhost on its port, whichever the redirect URI names.
	listenAddr := ln.Addr().String()
	_, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		ln.Close()
		return nil, fief.UserInfo{}, fmt.Errorf("fiefcli: listening for the callback: %w", err)
	}
	localhostAddr := net.JoinHostPort("localhost", port)
	redirectAddr := listenAddr
	if a.cfg.redirectHost == "localhost" {
		redirectAddr = localhostAddr
	}
	redirectURI := "http://" + redirectAddr + a.cfg.redirectPath

	state := randomState()
	verifier := fief.GenerateCodeVerifier()
	authURL, err := a.client.AuthURL(ctx, redirectURI, fief.AuthURLOptions{
		State:        state,
		Scopes:       a.scopes(),
		CodeVerifier: verifier,
		Lang:         a.cfg.lang,
		Extra:        a.cfg.extra,
	})
	if err != nil {
		ln.Close()
		return nil, fief.UserInfo{}, err
	}

	results := make(chan callbackResult, 1)
	h := &callbackHandler{
		ctx:     ctx,
		hosts:   []string{listenAddr, localhostAddr},
		path:    a.cfg.redirectPath,
		state:   state,
		results: results,
		exchange: func(ctx context.Context, code string) (*fief.Tokens, fief.UserInfo, error) {
			tokens, user, err := a.client.AuthCallback(ctx, code, redirectURI, verifier)
			if err != nil {
				return nil, fief.UserInfo{}, fmt.Errorf("fiefcli: exchanging the authorization code: %w", err)
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			if err := a.setLocked(&credentials{UserInfo: user, Tokens: tokens}); err != nil {
				return nil, fief.UserInfo{}, err
			}
			return tokens, user, nil
		},
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       readHeaderTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(io.Discard, "", 0), // TLS probes, timeouts: not for the terminal
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	if a.cfg.open != nil {
		fmt.Fprintf(a.cfg.out, "Log in with your browser. If it does not open, visit this URL:\n\n    %s\n\n", authURL)
	} else {
		fmt.Fprintf(a.cfg.out, "Log in by visiting this URL with your browser:\n\n    %s\n\n", authURL)
	}
	fmt.Fprintf(a.cfg.out, "Waiting for the login on %s ...\n", redirectURI)
	if a.cfg.open != nil {
		if err := a.cfg.open(authURL); err != nil {
			fmt.Fprintf(a.cfg.out, "Could not open a browser (%v): open the URL above.\n", err)
		}
	}

	var res callbackResult
	select {
	case res = <-results:
	case <-ctx.Done():
		res.err = fmt.Errorf("fiefcli: waiting for the login: %w", context.Cause(ctx))
	case err := <-served:
		served <- err
		res.err = fmt.Errorf("fiefcli: callback server: %w", err)
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	<-served
	if res.err != nil {
		// A callback handled while ctx was ending wins over ctx's error.
		select {
		case r := <-results:
			if r.err == nil {
				res = r
			}
		default:
		}
	}
	if res.err != nil {
		return nil, fief.UserInfo{}, res.err
	}
	t := *res.tokens
	return &t, res.user, nil
}

// scopes returns the scopes to request: openid, offline_access, then the
// configured ones, without duplicates.
func (a *Session) scopes() []string {
	scopes := []string{"openid", "offline_access"}
	for _, s := range a.cfg.scopes {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return scopes
}

// callbackHandler serves the local callback server.
type callbackHandler struct {
	ctx      context.Context // Authorize's
	hosts    []string        // accepted Host headers
	path     string
	state    string
	exchange func(ctx context.Context, code string) (*fief.Tokens, fief.UserInfo, error)
	results  chan<- callbackResult // buffered, written once
	claimed  atomic.Bool
}

func (h *callbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != h.path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writePage(w, http.StatusMethodNotAllowed, pageRejected)
		return
	}
	// A page on another origin that rebinds its DNS name to the loopback
	// address sends its own Host: refuse it. localhost is no such name:
	// browsers resolve it to the loopback addresses, never through DNS.
	if !slices.Contains(h.hosts, r.Host) {
		writePage(w, http.StatusMisdirectedRequest, pageRejected)
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(h.state)) != 1 {
		writePage(w, http.StatusBadRequest, pageRejected)
		return
	}
	// The state matched: this is the answer to our request, handled once.
	if !h.claimed.CompareAndSwap(false, true) {
		writePage(w, http.StatusConflict, pageRejected)
		return
	}
	var res callbackResult
	switch code := q.Get("code"); {
	case q.Get("error") != "":
		res.err = &CallbackError{Code: truncate(q.Get("error")), Description: truncate(q.Get("error_description"))}
	case code == "":
		res.err = ErrAuthorizationCodeMissing
	default:
		res.tokens, res.user, res.err = h.exchange(h.ctx, code)
	}
	// Answer the browser before handing over the result, so the page is
	// out before the server shuts down.
	w.Header().Set("Connection", "close")
	if res.err != nil {
		writePage(w, http.StatusBadRequest, pageFailure)
	} else {
		writePage(w, http.StatusOK, pageSuccess)
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	h.results <- res
}

// truncate cuts s to maxErrorParam bytes.
func truncate(s string) string {
	if len(s) > maxErrorParam {
		return s[:maxErrorParam]
	}
	return s
}

// page is one of the callback server's fixed pages.
type page struct {
	Title, Message string
}

var (
	pageSuccess  = page{"Logged in", "You are logged in. You can close this window and go back to your terminal."}
	pageFailure  = page{"Login failed", "The login failed. Go back to your terminal for details."}
	pageRejected = page{"Invalid request", "This request does not belong to a login in progress."}
)

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
</body>
</html>
`))

// writePage answers with a fixed page. It loads nothing, so the callback
// URL (with its code) cannot leak through a Referer.
func writePage(w http.ResponseWriter, status int, p page) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, p)
}

// randomState returns a new login state: 32 random bytes (256 bits),
// base64url-encoded in 43 characters. It keeps the state's size, which
// the tests check, rather than rand.Text's 130 bits in 26 characters.
func randomState() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24 and later)
	return base64.RawURLEncoding.EncodeToString(b)
}

// openBrowser is the default browser opener. It starts the platform's URL
// opener and does not wait for the browser.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		// Without a display, xdg-open may start a text browser in this
		// very terminal.
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return errors.New("no graphical display")
		}
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // reap the opener, which exits quickly
	return nil
}
