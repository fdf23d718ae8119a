package fief

import (
	"context"
	"crypto/cipher"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fief-go/fief/internal/expiring"
)

// LoginFlowLifetime is how long a login started by a LoginFlow may take:
// the time between the redirect to Fief and the browser's return to the
// callback. It is also the lifetime of Fief's authorization codes.
const LoginFlowLifetime = 10 * time.Minute

// LoginFlow implements the browser login of a web application with Fief:
// the authorization code flow with PKCE (S256) and state, a session cookie
// holding the access token, and logout. Create it with [NewLoginFlow] and
// mount its handlers:
//
//	mux.Handle("GET /login", flow.Login())
//	mux.Handle("GET /auth-callback", flow.Callback()) // the path of RedirectURI
//	mux.Handle("POST /logout", flow.Logout())         // a form's button: <form method="post" action="/logout">
//
// and protect pages with an Authenticator that reads the session cookie and
// starts a login for visitors without one:
//
//	auth, err := fief.NewAuthenticator(client,
//		fief.WithExtractor(flow.Extractor()),
//		fief.WithUnauthorizedHandler(flow.RedirectToLogin()),
//		fief.WithForbiddenHandler(flow.RedirectToStepUp())) // for RequireACR(fief.ACRLevelOne)
//
// With [LoginFlowConfig].RefreshSessions, serve the application behind
// [LoginFlow.Session], which refreshes sessions before the Authenticator
// reads them:
//
//	http.ListenAndServe(addr, flow.Session()(mux))
//
// Each login keeps its return-to path, expiry and the ACR it must reach in
// its own flow cookie,
// named after the state, sealed with AES-256-GCM, HttpOnly, Secure,
// SameSite=Lax, limited to the callback's path and to LoginFlowLifetime.
// Logins started in several tabs of one browser therefore do not overwrite
// each other. The state is random (130 bits) and the PKCE verifier is
// derived from it with HMAC-SHA256 under a key derived from CookieKey, so
// the cookie holds neither: the seal covers the state instead, with the
// cookie names, as associated data. Each login is also bound to the
// browser that started it by a second cookie, __Host-fief_bind_<...>, with
// 128 random bits, which the seal covers too: the callback opens a flow
// only with the binding cookie of the same browser. Browsers refuse a
// __Host- cookie set by another host, so a sibling subdomain (or script on
// one), which can set a __Secure- cookie for the parent domain, cannot
// plant the flow cookie of its own login in a victim's browser to log the
// victim in to the attacker's account (login CSRF). The callback accepts a
// flow once: it deletes both cookies and remembers consumed flows in
// memory until they expire, so that a replayed callback is refused even if
// its cookies were kept. That memory is per process; across instances,
// Fief's single-use authorization codes still refuse a second exchange.
//
// A browser keeps at most four logins in progress (a browser restoring
// many tabs starts one per tab): starting a fifth deletes the cookies of
// the oldest, whose callback then gets the error page. A login in progress
// costs a flow cookie of 87 bytes plus 4/3 of its return-to path (at most
// 512 bytes; a longer one is replaced by DefaultReturnTo), sent to the
// callback only, and a binding cookie of 66 bytes, sent with every request.
//
// The session cookie lives as long as the access token (expires_in). When
// it expires the next page starts a login, which Fief completes without a
// password while its own session lasts; with
// [LoginFlowConfig].RefreshSessions and [LoginFlow.Session], the session is
// refreshed instead, with a refresh token kept in a sealed cookie, until
// MaxSessionAge.
//
// SameSite=Lax keeps the cookie off cross-site POST requests, but that is
// no complete defence against cross-site request forgery: protect the
// application's state-changing routes too, with [http.CrossOriginProtection]
// for example, as [LoginFlow.Logout] does.
//
// Return-to paths are accepted only as paths on the application (starting
// with a single "/", ASCII, no backslash or control character): anything
// else is replaced by DefaultReturnTo, so the flow never redirects off
// site. Failures answer a small page with a fixed message, never error
// details. A LoginFlow is safe for concurrent use.
type LoginFlow struct {
	client          *Client
	redirectURI     string
	callbackPath    string
	scopes          []string
	sessionCookie   string
	extractor       Extractor // of the session cookie
	flowPrefix      string
	bindPrefix      string
	secure          bool
	aead            cipher.AEAD
	verifierKey     []byte
	cache           UserInfoCache
	afterLogout     string
	defaultReturnTo string
	errorPage       func(http.ResponseWriter, *http.Request, int, string)
	logger          *slog.Logger
	crossOrigin     *http.CrossOriginProtection
	now             func() time.Time // time.Now; tests replace it
	consumed        consumedSet

	refreshCookie string // named even without refresh, so Logout deletes a stale one
	refresh       bool
	refreshMargin time.Duration
	maxSessionAge time.Duration
	coordinator   RefreshCoordinator
	session       sessionKeys
	refreshes     refreshGroup
	onLogin       func(context.Context, *Tokens, UserInfo) error
	onLogout      func(context.Context, string)
}

// pathMismatch returns a log attribute when the callback is served at
// another path than RedirectURI's, where the flow cookies are not sent.
func (f *LoginFlow) pathMismatch(r *http.Request) []slog.Attr {
	if p := r.URL.EscapedPath(); p != f.callbackPath && !strings.HasPrefix(r.RequestURI, f.callbackPath) {
		return []slog.Attr{slog.String("hint", "the callback is mounted at "+p+" but RedirectURI's path is "+f.callbackPath)}
	}
	return nil
}

// Extractor returns the Extractor of the session cookie, for WithExtractor.
func (f *LoginFlow) Extractor() Extractor { return f.extractor }

// single returns the value of parameter k when it is given once, else "".
func single(q url.Values, k string) string {
	if v := q[k]; len(v) == 1 {
		return v[0]
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// log records a login failure when a logger is configured.
func (f *LoginFlow) log(ctx context.Context, level slog.Level, msg string, err error, attrs ...slog.Attr) {
	if f.logger == nil || !f.logger.Enabled(ctx, level) {
		return
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	f.logger.LogAttrs(ctx, level, msg, attrs...)
}

// consumedSet remembers the flows the callback accepted, by the SHA-256 of
// their state, until they expire; beyond its bound the oldest are forgotten
// early.
type consumedSet struct {
	mu  sync.Mutex
	set expiring.Map[struct{}]
}

// add records key until expires and reports whether it was new.
func (s *consumedSet) add(key [32]byte, now, expires time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.set.Get(key, now); ok {
		return false
	}
	s.set.Put(key, struct{}{}, now, expires)
	return true
}

// sessionKeys are the keys of session refresh, derived from CookieKey,
// each under its own label.
type sessionKeys struct {
	cookie cipher.AEAD // seals refresh cookies
	result cipher.AEAD // seals the outcomes a coordinator shares
	id     []byte      // HMAC-SHA256 key of refresh-token IDs
}
