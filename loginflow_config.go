package fief

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// LoginFlowConfig configures a LoginFlow. RedirectURI is required; every
// other field has a safe default.
type LoginFlowConfig struct {
	// RedirectURI is the absolute URL of the callback, exactly as registered
	// among the Fief client's redirect URIs, e.g.
	// https://app.example.com/auth-callback. The Callback handler must be
	// mounted at its path. It is fixed configuration, never derived from the
	// request, so that a forged Host header cannot steer codes or cookies.
	RedirectURI string

	// Scopes are the scopes to request (default ["openid"]). Fief requires
	// "openid". Scopes are the application's request, not the user's
	// authorization: Fief grants every scope the authorization URL names,
	// and the user can edit that URL. The callback therefore refuses an
	// access token with a scope not in Scopes, so that a session never has
	// more than the application asked for; what a user may do is what
	// their permissions say (see [RequirePermissions]).
	Scopes []string

	// SessionCookie names the cookie that holds the access token after
	// login. The default is "__Host-fief_app_session", or
	// "fief_app_session" with InsecureCookies: the __Host- prefix makes
	// browsers refuse the cookie unless it is Secure, for the whole host
	// and set by the host itself, so that a sibling subdomain cannot plant
	// a session. A name with the __Host- or __Secure- prefix cannot be
	// combined with InsecureCookies.
	SessionCookie string

	// CookieKey is the secret that seals (encrypts and authenticates, with
	// AES-256-GCM) the cookies holding the state of logins in progress and,
	// with RefreshSessions, the refresh cookies and the refresh outcomes
	// shared through a RefreshCoordinator, and from which the PKCE
	// verifiers and the IDs of refresh tokens are derived (with
	// HMAC-SHA256); each use has its own key, derived with HKDF-SHA256. It
	// must be at least 32 bytes of random data, the same on every instance
	// of the application: the callback may reach another instance than the
	// login did, and any instance may refresh any session. Changing it
	// fails the logins in progress and ends every refreshed session (there
	// is no key ring).
	//
	// RefreshSessions requires it. Without RefreshSessions it may be nil: a
	// random key is then made for the process, and logins in progress fail
	// after a restart or on another instance.
	CookieKey []byte

	// InsecureCookies drops the Secure attribute from every cookie, which a
	// browser needs to keep cookies set over plain HTTP, and with it the
	// __Host- and __Secure- prefixes, which protect the session and the
	// logins in progress from cookies planted by sibling subdomains. Use it
	// for local development only. It is required when RedirectURI is an
	// http URL.
	InsecureCookies bool

	// UserInfoCache, when set, receives the claims of the ID token at
	// login, keyed by user ID, so that CurrentUser serves the first requests
	// without calling Fief's userinfo endpoint; Logout removes the user's
	// entry. Give it the cache given to WithUserInfoCache.
	UserInfoCache UserInfoCache

	// AfterLogout is the absolute URL Fief's logout page sends the browser
	// to (default: the origin of RedirectURI followed by "/").
	AfterLogout string

	// DefaultReturnTo is the path users land on after login when no valid
	// return-to path was given (default "/"). It must be a path on the
	// application, starting with a single "/".
	DefaultReturnTo string

	// ErrorPage, when set, answers a failed login instead of the built-in
	// page. status is the HTTP status to send; message is a fixed English
	// sentence for the user, which never contains request data or error
	// details. The handler should send no-store caching headers; the
	// built-in page does.
	ErrorPage func(w http.ResponseWriter, r *http.Request, status int, message string)

	// Logger, when set, receives the reasons of failed logins and of ended
	// or failed session refreshes (at Info level for the user's or the
	// browser's failures, Warn for Fief's, the cache's and the
	// coordinator's), and successful refreshes at Debug level. Records never
	// contain tokens, refresh tokens, codes or verifiers.
	Logger *slog.Logger

	// RefreshSessions makes sessions outlive their access token. It
	// requires CookieKey: a key made for the process would end every
	// session at a restart, and on every other instance. The login
	// requests the offline_access scope; the refresh token Fief returns is
	// kept in a second cookie (named after SessionCookie, with "_refresh"
	// and, unless InsecureCookies, the __Host- prefix; HttpOnly,
	// SameSite=Lax, Path=/), sealed with AES-256-GCM under a key derived
	// from CookieKey, so that neither the browser's scripts nor its user
	// can read it; and [LoginFlow.Session],
	// placed in front of the Authenticator, refreshes the tokens when the
	// access token has expired or is about to, rotation-safe across
	// concurrent requests. Every instance of the application refreshes any
	// session when they share CookieKey (and, for requests racing across
	// instances, a RefreshCoordinator). Off by default: the session then
	// lasts as long as its access token.
	RefreshSessions bool

	// RefreshMargin is how long before its access token expires a session
	// is refreshed (default [DefaultRefreshMargin], one minute), and at
	// most half the token's lifetime. With RefreshSessions only.
	RefreshMargin time.Duration

	// MaxSessionAge bounds a refreshed session from its login, however
	// often it is refreshed (default [DefaultMaxSessionAge], 7 days): then
	// the user logs in again, as with nextjs-auth0's absoluteDuration. Fief
	// bounds it too, by the refresh token's lifetime (30 days by default,
	// sliding with each refresh). With RefreshSessions only.
	MaxSessionAge time.Duration

	// RefreshCoordinator, when set, makes the instances of the application
	// that share it refresh each session once: see [RefreshCoordinator]
	// (rediscache.NewRefreshCoordinator is one on Redis). Without it,
	// refreshes are coordinated within each process only, and concurrent
	// requests of one browser that reach two instances as its access token
	// expires may end its session. With RefreshSessions only.
	RefreshCoordinator RefreshCoordinator

	// OnLogin, when set, is called by the callback after the code exchange
	// and the checks of the tokens, before the session is set, with the
	// tokens (a copy) and the ID token's claims: create or update the
	// application's record of the user there. An error aborts the login:
	// the user gets the error page (500, a fixed message) and no session,
	// and the error is logged. It is not called when a session is
	// refreshed. The tokens hold the session's refresh token with
	// RefreshSessions: refreshing with it elsewhere spends it, and ends the
	// browser's session at its next refresh.
	OnLogin func(ctx context.Context, tokens *Tokens, claims UserInfo) error

	// OnLogout, when set, is called by the Logout handler once the
	// session's cookies are deleted, before the redirect to Fief, with the
	// ID of the user whose session ended ("" when the request carried no
	// valid session): end the application's own state of the user there.
	OnLogout func(ctx context.Context, userID string)
}

// NewLoginFlow returns a LoginFlow for client c. It checks the
// configuration and makes no network request.
func NewLoginFlow(c *Client, cfg LoginFlowConfig) (*LoginFlow, error) {
	if c == nil {
		return nil, errors.New("fief: NewLoginFlow: nil client")
	}
	if c.audiences != nil && !slices.Contains(c.audiences, c.clientID) {
		// The session's tokens are issued to the client: it would refuse
		// every one of them, and no user could log in.
		return nil, fmt.Errorf("fief: NewLoginFlow: the client does not accept its own tokens: WithAudiences must include its client ID %q", c.clientID)
	}
	redirect, err := url.Parse(cfg.RedirectURI)
	if err != nil || (redirect.Scheme != "http" && redirect.Scheme != "https") || redirect.Host == "" ||
		redirect.User != nil || redirect.Fragment != "" || redirect.Opaque != "" {
		return nil, fmt.Errorf("fief: NewLoginFlow: RedirectURI %q is not an absolute http(s) URL without fragment", cfg.RedirectURI)
	}
	if redirect.Scheme == "http" && !cfg.InsecureCookies {
		return nil, fmt.Errorf("fief: NewLoginFlow: RedirectURI %q is plain HTTP, where browsers drop Secure cookies: use https, or set InsecureCookies for local development", cfg.RedirectURI)
	}
	f := &LoginFlow{
		client:          c,
		redirectURI:     cfg.RedirectURI,
		callbackPath:    redirect.EscapedPath(),
		scopes:          slices.Clone(cfg.Scopes),
		sessionCookie:   cfg.SessionCookie,
		secure:          !cfg.InsecureCookies,
		cache:           cfg.UserInfoCache,
		afterLogout:     cfg.AfterLogout,
		defaultReturnTo: cfg.DefaultReturnTo,
		errorPage:       cfg.ErrorPage,
		logger:          cfg.Logger,
		now:             time.Now,
		refresh:         cfg.RefreshSessions,
		refreshMargin:   cfg.RefreshMargin,
		maxSessionAge:   cfg.MaxSessionAge,
		coordinator:     cfg.RefreshCoordinator,
		onLogin:         cfg.OnLogin,
		onLogout:        cfg.OnLogout,
	}
	if f.callbackPath == "" {
		f.callbackPath = "/"
	}
	if len(f.scopes) == 0 {
		f.scopes = []string{"openid"}
	}
	if f.refresh && !slices.Contains(f.scopes, "offline_access") {
		f.scopes = append(f.scopes, "offline_access")
	}
	if !slices.Contains(f.scopes, "openid") {
		return nil, errors.New(`fief: NewLoginFlow: Scopes must contain "openid"`)
	}
	for _, s := range f.scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return nil, fmt.Errorf("fief: NewLoginFlow: invalid scope %q", s)
		}
	}
	if f.sessionCookie == "" {
		f.sessionCookie = defaultSessionCookie
		if f.secure {
			f.sessionCookie = hostPrefix + defaultSessionCookie
		}
	}
	if !validCookieName(f.sessionCookie) {
		return nil, fmt.Errorf("fief: NewLoginFlow: SessionCookie %q is not a valid cookie name", f.sessionCookie)
	}
	if !f.secure && (strings.HasPrefix(f.sessionCookie, hostPrefix) || strings.HasPrefix(f.sessionCookie, securePrefix)) {
		return nil, fmt.Errorf("fief: NewLoginFlow: SessionCookie %q needs Secure cookies, but InsecureCookies is set", f.sessionCookie)
	}
	f.extractor = CookieToken(f.sessionCookie)
	f.refreshCookie = refreshCookieName(f.sessionCookie, f.secure)
	switch {
	case !f.refresh && (f.refreshMargin != 0 || f.maxSessionAge != 0 || f.coordinator != nil):
		return nil, errors.New("fief: NewLoginFlow: RefreshMargin, MaxSessionAge and RefreshCoordinator need RefreshSessions")
	case f.refreshMargin < 0:
		return nil, fmt.Errorf("fief: NewLoginFlow: negative RefreshMargin %v", f.refreshMargin)
	case f.maxSessionAge < 0:
		return nil, fmt.Errorf("fief: NewLoginFlow: negative MaxSessionAge %v", f.maxSessionAge)
	case f.refreshMargin == 0:
		f.refreshMargin = DefaultRefreshMargin
	}
	if f.maxSessionAge == 0 {
		f.maxSessionAge = DefaultMaxSessionAge
	}
	f.flowPrefix, f.bindPrefix = flowCookieBase, bindCookieBase
	if f.secure {
		// The binding cookie must be __Host-: no other host can set it. The
		// flow cookie cannot be, since it is limited to the callback's path.
		f.flowPrefix, f.bindPrefix = securePrefix+flowCookieBase, hostPrefix+bindCookieBase
	}
	key := cfg.CookieKey
	if key == nil && f.refresh {
		// Refresh cookies last up to MaxSessionAge: under a key of this
		// process they would stop opening at its restart, and on every
		// other instance, ending sessions silently.
		return nil, errors.New("fief: NewLoginFlow: RefreshSessions needs a CookieKey: refresh cookies sealed with a key made for this process would stop opening after a restart and on other instances, ending every session")
	}
	if key == nil {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	} else if len(key) < 32 {
		return nil, fmt.Errorf("fief: NewLoginFlow: CookieKey has %d bytes, want at least 32", len(key))
	}
	if f.aead, f.verifierKey, err = newFlowKeys(key); err != nil {
		return nil, fmt.Errorf("fief: NewLoginFlow: %w", err)
	}
	if f.refresh {
		if f.session, err = newSessionKeys(key); err != nil {
			return nil, fmt.Errorf("fief: NewLoginFlow: %w", err)
		}
	}
	// The application's own origin is trusted even when a proxy in front
	// of it changes the Host header, which the Origin check of browsers
	// without Sec-Fetch-Site compares.
	f.crossOrigin = http.NewCrossOriginProtection()
	origin := strings.ToLower(redirect.Scheme + "://" + redirect.Host) // as browsers send it
	origin = strings.TrimSuffix(origin, map[string]string{"http": ":80", "https": ":443"}[redirect.Scheme])
	if err := f.crossOrigin.AddTrustedOrigin(origin); err != nil {
		return nil, fmt.Errorf("fief: NewLoginFlow: RedirectURI %q: %w", cfg.RedirectURI, err)
	}
	if f.afterLogout == "" {
		f.afterLogout = redirect.Scheme + "://" + redirect.Host + "/"
	} else if u, err := url.Parse(f.afterLogout); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("fief: NewLoginFlow: AfterLogout %q is not an absolute http(s) URL", f.afterLogout)
	}
	if f.defaultReturnTo == "" {
		f.defaultReturnTo = "/"
	}
	p, ok := cleanReturnTo(f.defaultReturnTo)
	if !ok {
		return nil, fmt.Errorf("fief: NewLoginFlow: DefaultReturnTo %q is not a path on the application", f.defaultReturnTo)
	}
	f.defaultReturnTo = p
	if f.errorPage == nil {
		f.errorPage = f.defaultErrorPage
	}
	f.consumed.set.Max = maxConsumed
	f.refreshes.recent.Max = maxRecentRefreshes
	return f, nil
}
