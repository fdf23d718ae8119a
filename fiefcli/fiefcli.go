// Package fiefcli logs the user of a command-line program in with Fief and
// keeps their tokens in a credentials file, like the reference Python
// client's CLI helper (fief_client.integrations.cli), without its flaws.
//
// Authorize opens the user's browser on Fief's login page (and prints the
// URL, for terminals without a browser), receives the redirect on a local
// server bound to a loopback address, checks the state parameter, exchanges
// the code with PKCE (S256) and saves the tokens. AccessTokenInfo and
// UserInfo then read the saved tokens, refreshing them when the access
// token has expired. The OAuth client must be a public client (no secret)
// whose redirect URIs include the local callback, by default
// http://127.0.0.1:51562/callback.
//
// # Clients registered for the Python CLI helper
//
// Fief's documentation registers http://localhost:51562/callback for the
// Python helper. Fief compares redirect URIs exactly, so for such a client
// pass WithRedirectHost("localhost"): the redirect URI of the authorization
// request and of the code exchange is then http://localhost:51562/callback,
// while the callback server still listens on 127.0.0.1 (never on a name
// looked up in DNS or the hosts file). Or register
// http://127.0.0.1:51562/callback on the client and keep the defaults.
//
// # Callback server
//
// In both cases the callback server answers only requests whose Host header
// is exactly localhost:PORT or IP:PORT, where IP:PORT is the address it
// listens on; any other Host gets 421 Misdirected Request. A page that
// rebinds its own DNS name to the loopback address (DNS rebinding) sends
// that name, not localhost, so accepting localhost in both modes opens
// nothing to it, and it lets a browser that was sent to either form of the
// callback URL complete the login.
//
// # Credentials file
//
// The file holds {"userinfo": {...}, "tokens": {...}}, the reference
// client's format (tokens in the token endpoint's format, plus "expiry"). It
// is written atomically: to a new temporary file (O_EXCL, mode 0600) in the
// same directory, synced, then renamed over the path, so readers never see
// a partial file and a symbolic link planted at the path is replaced, not
// followed. A directory the package creates gets mode 0700.
//
// When it reads the file, the package refuses a path that is a symbolic
// link or not a regular file (New returns an error), and tightens to 0600
// the permissions of a file that other users can access (files written by
// the reference client are 0644); a file it cannot tighten, because another
// user owns it, is an error too. A missing, empty or unparsable file means
// "not authenticated", as in the reference client.
//
// # Refresh token rotation
//
// Fief rotates refresh tokens: a refresh kills the refresh token it used.
// The tokens a refresh returns are therefore always saved. Before it
// refreshes, a Session re-reads the file, so that a token refreshed meanwhile
// by another process sharing the file is picked up instead of refreshing
// with a dead refresh token. Two processes refreshing at the same instant
// can still race; the loser gets a *fief.RequestError and must log in again.
package fiefcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fief-go/fief"
)

// Defaults of a Session.
const (
	// DefaultListenAddr is where Authorize listens for Fief's redirect: the
	// reference client's port, on the IPv4 loopback address.
	DefaultListenAddr = "127.0.0.1:51562"
	// DefaultRedirectPath is the path of the redirect URI.
	DefaultRedirectPath = "/callback"
)

// refreshMargin is how long before its expiry an access token is refreshed
// when refreshing is allowed, so that the token handed out stays valid for
// the request it is meant for (ValidateAccessToken accepts a token up to the
// client's leeway after its expiry).
const refreshMargin = time.Minute

// Errors of a Session. Errors from Fief (for example a refresh token Fief
// refuses, a *fief.RequestError with status 400) and from token validation
// (fief.ErrAccessTokenInvalid, ...) are returned wrapped, not replaced.
var (
	// ErrNotAuthenticated reports that no usable credentials are saved: the
	// user has to log in (Authorize).
	ErrNotAuthenticated = errors.New("fiefcli: not authenticated")

	// ErrRefreshTokenMissing reports an expired access token that cannot be
	// refreshed because no refresh token is saved: the user has to log in
	// again.
	ErrRefreshTokenMissing = errors.New("fiefcli: access token expired and no refresh token saved")

	// ErrAuthorizationCodeMissing reports a callback from Fief that carries
	// no authorization code. When Fief sent an error instead, the error is
	// a *CallbackError, which wraps ErrAuthorizationCodeMissing.
	ErrAuthorizationCodeMissing = errors.New("fiefcli: authorization code missing")
)

// CallbackError reports that Fief redirected back with an error instead of
// an authorization code (for example "access_denied" or "login_required").
// It wraps ErrAuthorizationCodeMissing. Only a callback carrying the right
// state is believed, so the values come from Fief; they are cut to 200
// bytes and Error quotes them.
type CallbackError struct {
	// Code is the error parameter.
	Code string
	// Description is the error_description parameter, possibly empty.
	Description string
}

// Error implements error.
func (e *CallbackError) Error() string {
	if e.Description == "" {
		return fmt.Sprintf("fiefcli: Fief answered with error %q", e.Code)
	}
	return fmt.Sprintf("fiefcli: Fief answered with error %q: %q", e.Code, e.Description)
}

// Unwrap returns ErrAuthorizationCodeMissing.
func (e *CallbackError) Unwrap() error { return ErrAuthorizationCodeMissing }

// Option configures a Session.
type Option func(*config) error

type config struct {
	listenAddr   string
	redirectHost string // "" (the listen address's IP) or "localhost"
	redirectPath string
	open         func(url string) error
	out          io.Writer
	scopes       []string
	lang         string
	extra        map[string]string
}

// WithListenAddr sets the address of the local callback server (default
// DefaultListenAddr). The host must be a loopback IP address such as
// 127.0.0.1 or [::1] ("localhost" is refused: RFC 8252 §8.3 recommends the
// literal, which no DNS or hosts file can redirect; for a redirect URI on
// localhost, see WithRedirectHost). Fief requires the exact redirect URI,
// http://<addr><path>, to be registered on the client, so the port should
// be fixed; port 0 picks a free port, which only suits servers that accept
// any redirect URI (such as fieftest's default client).
func WithListenAddr(addr string) Option {
	return func(c *config) error {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("fiefcli: WithListenAddr: %w", err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			if strings.EqualFold(host, "localhost") {
				return fmt.Errorf("fiefcli: WithListenAddr: %q is not a loopback IP address; "+
					`for a redirect URI on localhost, keep 127.0.0.1 and add WithRedirectHost("localhost")`, host)
			}
			return fmt.Errorf("fiefcli: WithListenAddr: %q is not a loopback IP address", host)
		}
		c.listenAddr = addr
		return nil
	}
}

// WithRedirectHost sets the host of the redirect URI. "localhost" makes it
// http://localhost:<port><path>, the redirect URI that Fief's documentation
// registers for the Python CLI helper (http://localhost:51562/callback with
// the default address and path), so that a client registered for that
// helper works unchanged; with port 0, <port> is the one picked. "" (the
// default) puts the IP address of WithListenAddr in the redirect URI, as
// RFC 8252 §7.3 recommends: prefer it for a client you register yourself.
// Any other value is refused.
//
// The host only changes the redirect URI: the callback server still listens
// on the IP address of WithListenAddr, never on a name looked up in DNS or
// the hosts file. With "localhost", that address must be 127.0.0.1 (the
// default) or [::1], where browsers send localhost; New refuses any other.
// A browser that tries the other loopback address first falls back to the
// one listened on; should another local program listen there on the same
// port, it would receive an authorization code that it cannot exchange
// without the PKCE verifier: the login would fail, not leak.
//
// Whichever the host, the callback server accepts both Host: localhost:PORT
// and Host: IP:PORT (see the package documentation).
func WithRedirectHost(host string) Option {
	return func(c *config) error {
		if host != "" && host != "localhost" {
			return fmt.Errorf(`fiefcli: WithRedirectHost: %q: want "localhost" or ""`, host)
		}
		c.redirectHost = host
		return nil
	}
}

// WithRedirectPath sets the path of the redirect URI (default
// DefaultRedirectPath). It must start with "/" and hold no query or
// fragment.
func WithRedirectPath(p string) Option {
	return func(c *config) error {
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?# \t\r\n") {
			return fmt.Errorf("fiefcli: WithRedirectPath: invalid path %q", p)
		}
		c.redirectPath = p
		return nil
	}
}

// WithBrowser sets the function Authorize calls with the authorization URL
// to open the user's browser. It should return once the browser is launched,
// not wait for the login; its error is printed and Authorize keeps waiting,
// since the user can open the printed URL by hand. nil disables opening a
// browser (for example on a remote machine reached over SSH): only the URL
// is printed. The default starts xdg-open (when a graphical display is set),
// open on macOS or rundll32 on Windows.
func WithBrowser(open func(url string) error) Option {
	return func(c *config) error {
		c.open = open
		return nil
	}
}

// WithOutput sets where Authorize prints the authorization URL and what it
// waits for (default os.Stderr, so that a program's standard output stays
// clean). io.Discard silences it.
func WithOutput(w io.Writer) Option {
	return func(c *config) error {
		if w == nil {
			return errors.New("fiefcli: WithOutput: nil writer")
		}
		c.out = w
		return nil
	}
}

// WithScopes adds scopes to those Authorize requests. "openid" and
// "offline_access" (for a refresh token) are always requested, first.
func WithScopes(scopes ...string) Option {
	return func(c *config) error {
		for _, s := range scopes {
			if s == "" || strings.ContainsAny(s, " \t\r\n") {
				return fmt.Errorf("fiefcli: WithScopes: invalid scope %q", s)
			}
		}
		c.scopes = append(c.scopes, scopes...)
		return nil
	}
}

// WithLang sets the language of Fief's login page, such as "fr".
func WithLang(lang string) Option {
	return func(c *config) error {
		c.lang = lang
		return nil
	}
}

// reservedParams are the authorization parameters Authorize sets itself.
var reservedParams = []string{
	"response_type", "client_id", "redirect_uri", "state", "scope",
	"code_challenge", "code_challenge_method", "lang",
}

// WithExtraParams adds parameters to the authorization URL, such as
// "login_hint", "screen" or "acr_values". The parameters Authorize sets
// itself (state, PKCE, scope, redirect_uri, ...) cannot be overridden.
func WithExtraParams(params map[string]string) Option {
	return func(c *config) error {
		for k := range params {
			if slices.Contains(reservedParams, k) {
				return fmt.Errorf("fiefcli: WithExtraParams: %q is set by Authorize", k)
			}
		}
		if c.extra == nil {
			c.extra = make(map[string]string, len(params))
		}
		maps.Copy(c.extra, params)
		return nil
	}
}

// Session logs a user in with Fief and keeps their credentials in a file.
// Create it with New. Its methods are safe for concurrent use; refreshes are
// serialized, so a refresh token is never used twice.
type Session struct {
	client *fief.Client
	path   string
	cfg    config

	mu      sync.Mutex
	creds   *credentials // nil: not authenticated
	unsaved bool         // creds differ from the file because a save failed
}

// New returns a Session for client that keeps the credentials at
// credentialsPath, and loads them if the file exists (see the package
// documentation for how the file is checked). It makes no network request.
func New(client *fief.Client, credentialsPath string, opts ...Option) (*Session, error) {
	if client == nil {
		return nil, errors.New("fiefcli: nil client")
	}
	if credentialsPath == "" {
		return nil, errors.New("fiefcli: empty credentials path")
	}
	cfg := config{
		listenAddr:   DefaultListenAddr,
		redirectPath: DefaultRedirectPath,
		open:         openBrowser,
		out:          os.Stderr,
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.redirectHost == "localhost" {
		host, _, _ := net.SplitHostPort(cfg.listenAddr) // checked by WithListenAddr
		if ip := net.ParseIP(host); !ip.Equal(net.IPv4(127, 0, 0, 1)) && !ip.Equal(net.IPv6loopback) {
			return nil, fmt.Errorf(`fiefcli: WithRedirectHost("localhost") needs a listen address on 127.0.0.1 or [::1], not %q`, cfg.listenAddr)
		}
	}
	a := &Session{client: client, path: credentialsPath, cfg: cfg}
	creds, err := loadCredentials(credentialsPath)
	if err != nil {
		return nil, err
	}
	a.creds = creds
	return a, nil
}

// AccessTokenInfo validates the saved access token and returns what it
// says, including the token itself (AccessTokenInfo.AccessToken).
//
// With refresh, an access token that has expired or expires within a
// minute is refreshed with the saved refresh token and the new tokens are
// saved. Without a refresh token the error is ErrRefreshTokenMissing; when
// Fief refuses the refresh (for example a refresh token already used), the
// error wraps its *fief.RequestError and the file is left as it was. Without
// refresh, an expired token gives an error wrapping
// fief.ErrAccessTokenExpired. Without saved credentials the error is
// ErrNotAuthenticated.
func (a *Session) AccessTokenInfo(ctx context.Context, refresh bool) (fief.AccessTokenInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.accessTokenInfoLocked(ctx, refresh)
}

// UserInfo returns the user's claims. Without refresh they are the saved
// ones (the ID token's claims from the last login or refresh, or the last
// fetched ones), with no network request. With refresh, it gets a valid
// access token as AccessTokenInfo(ctx, true) does, fetches the claims from
// Fief's userinfo endpoint and saves them. Without saved credentials the
// error is ErrNotAuthenticated.
func (a *Session) UserInfo(ctx context.Context, refresh bool) (fief.UserInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !refresh {
		if a.creds == nil || a.creds.UserInfo.IsZero() {
			return fief.UserInfo{}, ErrNotAuthenticated
		}
		return a.creds.UserInfo, nil
	}
	info, err := a.accessTokenInfoLocked(ctx, true)
	if err != nil {
		return fief.UserInfo{}, err
	}
	user, err := a.client.UserInfo(ctx, info.AccessToken())
	if err != nil {
		return fief.UserInfo{}, fmt.Errorf("fiefcli: fetching the user's claims: %w", err)
	}
	next := &credentials{UserInfo: user, Tokens: a.creds.Tokens}
	if err := a.setLocked(next); err != nil {
		return fief.UserInfo{}, err
	}
	return user, nil
}

// Logout forgets the credentials and removes the file; it is not an error
// if there is none. It does not end the user's session on Fief, whose login
// page will then log them in again without a password: open the client's
// LogoutURL in a browser for that.
func (a *Session) Logout() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.creds, a.unsaved = nil, false
	if err := os.Remove(a.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("fiefcli: removing the credentials: %w", err)
	}
	return nil
}

// accessTokenInfoLocked is AccessTokenInfo; a.mu must be held.
func (a *Session) accessTokenInfoLocked(ctx context.Context, refresh bool) (fief.AccessTokenInfo, error) {
	if a.creds == nil {
		return fief.AccessTokenInfo{}, ErrNotAuthenticated
	}
	info, err := a.validate(ctx, refresh)
	if !refresh || !errors.Is(err, fief.ErrAccessTokenExpired) {
		return info, err
	}
	// Another process sharing the file may have refreshed the tokens: the
	// refresh token in memory would then be dead.
	if !a.unsaved {
		disk, err := loadCredentials(a.path)
		if err != nil {
			return fief.AccessTokenInfo{}, err
		}
		if disk == nil {
			a.creds = nil // logged out elsewhere
			return fief.AccessTokenInfo{}, ErrNotAuthenticated
		}
		if disk.Tokens.AccessToken != a.creds.Tokens.AccessToken {
			a.creds = disk
			info, err := a.validate(ctx, true)
			if !errors.Is(err, fief.ErrAccessTokenExpired) {
				return info, err
			}
		}
	}
	if a.creds.Tokens.RefreshToken == "" {
		return fief.AccessTokenInfo{}, ErrRefreshTokenMissing
	}
	tokens, user, err := a.client.AuthRefreshToken(ctx, a.creds.Tokens.RefreshToken)
	if err != nil {
		return fief.AccessTokenInfo{}, fmt.Errorf("fiefcli: refreshing the access token: %w", err)
	}
	if user.IsZero() {
		user = a.creds.UserInfo // Fief sent no ID token
	}
	// The old refresh token is dead now: keep the new tokens even if they
	// cannot be saved, so that this process can go on.
	saveErr := a.setLocked(&credentials{UserInfo: user, Tokens: tokens})
	info, err = a.validate(ctx, false)
	if err != nil {
		return fief.AccessTokenInfo{}, err
	}
	if saveErr != nil {
		return fief.AccessTokenInfo{}, saveErr
	}
	return info, nil
}

// validate validates the access token in memory. With refresh, a valid
// token within refreshMargin of its expiry is reported as expired. a.mu
// must be held.
func (a *Session) validate(ctx context.Context, refresh bool) (fief.AccessTokenInfo, error) {
	info, err := a.client.ValidateAccessToken(ctx, a.creds.Tokens.AccessToken)
	if err != nil {
		return fief.AccessTokenInfo{}, fmt.Errorf("fiefcli: saved access token: %w", err)
	}
	if refresh && time.Until(info.Expiry()) < refreshMargin {
		return fief.AccessTokenInfo{}, fmt.Errorf("fiefcli: saved access token: %w", fief.ErrAccessTokenExpired)
	}
	return info, nil
}

// setLocked replaces the credentials in memory and saves them. When saving
// fails, the new credentials stay in memory and are marked unsaved. a.mu
// must be held.
func (a *Session) setLocked(c *credentials) error {
	a.creds = c
	if err := saveCredentials(a.path, c); err != nil {
		a.unsaved = true
		return err
	}
	a.unsaved = false
	return nil
}
