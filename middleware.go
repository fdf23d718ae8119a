package fief

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// ErrNoToken is the error the unauthorized handler receives when the request
// carries no access token at all. It does not wrap [ErrAccessTokenInvalid]:
// per RFC 6750 a request without credentials is challenged without an error
// code, and a web application typically redirects it to the login page.
var ErrNoToken = errors.New("fief: no access token in the request")

// ErrorHandlerFunc answers a request the middleware refuses. err says why;
// branch on it with errors.Is and errors.As and log it if needed, but never
// write its text into the response: it describes the server's view of the
// failure (key set URLs, Fief's answers) to the server's operators only.
//
// An http.Handler h that ignores the reason is adapted with
//
//	fief.ErrorHandlerFunc(func(w http.ResponseWriter, r *http.Request, _ error) { h.ServeHTTP(w, r) })
type ErrorHandlerFunc func(w http.ResponseWriter, r *http.Request, err error)

// Authenticator authenticates requests with the access tokens of one
// [Client] and builds the net/http middleware that does it
// ([Authenticator.Authenticated], [Authenticator.CurrentUser]). Create it
// with [NewAuthenticator]. An Authenticator is safe for concurrent use;
// build it once and share it between routes.
type Authenticator struct {
	client  *Client
	cfg     authConfig
	flights flightGroup // concurrent userinfo calls, one per user ID
}

// AuthOption configures an [Authenticator].
type AuthOption func(*authConfig) error

type authConfig struct {
	extractor    Extractor
	cache        UserInfoCache
	unauthorized ErrorHandlerFunc
	forbidden    ErrorHandlerFunc
	unavailable  ErrorHandlerFunc
	logger       *slog.Logger // nil: nothing is logged
}

// WithExtractor sets where the middleware finds the access token (default
// [BearerToken]: the Authorization header).
func WithExtractor(e Extractor) AuthOption {
	return func(c *authConfig) error {
		if e == nil {
			return errors.New("fief: WithExtractor: nil extractor")
		}
		c.extractor = e
		return nil
	}
}

// WithUserInfoCache sets the cache CurrentUser reads user info from, keyed by
// user ID. Without a cache, CurrentUser calls Fief's userinfo endpoint on
// every request (concurrent requests of one user share a call); a cache such
// as [NewMemoryCache]'s is strongly recommended.
func WithUserInfoCache(c UserInfoCache) AuthOption {
	return func(cfg *authConfig) error {
		if c == nil {
			return errors.New("fief: WithUserInfoCache: nil cache")
		}
		cfg.cache = c
		return nil
	}
}

// WithUnauthorizedHandler replaces the answer to a request without a usable
// token: none (err is [ErrNoToken]), a malformed, invalid or expired one (err
// wraps [ErrAccessTokenInvalid] or [ErrAccessTokenExpired]), or one Fief refused
// at the userinfo endpoint (err wraps [ErrAccessTokenInvalid] and a
// [*RequestError]). A web application redirects to the login page here.
//
// The default answers 401 with WWW-Authenticate: Bearer, plus
// error="invalid_token" when a token was presented (RFC 6750), and the body
// {"detail":"Unauthorized"}.
func WithUnauthorizedHandler(f ErrorHandlerFunc) AuthOption {
	return func(c *authConfig) error {
		if f == nil {
			return errors.New("fief: WithUnauthorizedHandler: nil handler")
		}
		c.unauthorized = f
		return nil
	}
}

// WithForbiddenHandler replaces the answer to a request whose valid token
// does not meet the route's requirements (err wraps
// [ErrAccessTokenMissingScope], [ErrAccessTokenACRTooLow] or
// [ErrAccessTokenMissingPermission]).
//
// The default answers 403 with WWW-Authenticate: Bearer
// error="insufficient_scope" and the body {"detail":"Forbidden"}.
func WithForbiddenHandler(f ErrorHandlerFunc) AuthOption {
	return func(c *authConfig) error {
		if f == nil {
			return errors.New("fief: WithForbiddenHandler: nil handler")
		}
		c.forbidden = f
		return nil
	}
}

// WithUnavailableHandler replaces the answer to a request that cannot be
// authenticated because Fief cannot be used: discovery or the key set cannot
// be fetched (err wraps [ErrDiscovery]), or the userinfo call failed in
// transport, timed out, or got a 5xx, 408 or 429 status or an answer that is
// not a user (err may wrap a [*RequestError]).
//
// The default answers 503 with Retry-After: 5 and the body
// {"detail":"Service Unavailable"}. A garbled answer from Fief gets 503 too,
// rather than 502: to the caller the dependency is unavailable either way,
// and retrying later is the right reaction to both.
func WithUnavailableHandler(f ErrorHandlerFunc) AuthOption {
	return func(c *authConfig) error {
		if f == nil {
			return errors.New("fief: WithUnavailableHandler: nil handler")
		}
		c.unavailable = f
		return nil
	}
}

// WithLogger logs the failures that concern the server's operators: Fief
// unavailable and user-info cache errors at Warn level, refused requests at
// Debug level. Log records never contain token text. By default nothing is
// logged.
func WithLogger(l *slog.Logger) AuthOption {
	return func(c *authConfig) error {
		if l == nil {
			return errors.New("fief: WithLogger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// NewAuthenticator returns an Authenticator that validates access tokens
// with c. Options are checked here; the middleware it builds does no
// configuration work per request.
func NewAuthenticator(c *Client, opts ...AuthOption) (*Authenticator, error) {
	if c == nil {
		return nil, errors.New("fief: NewAuthenticator: nil client")
	}
	cfg := authConfig{
		extractor:    BearerToken(),
		unauthorized: defaultUnauthorized,
		forbidden:    defaultForbidden,
		unavailable:  defaultUnavailable,
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("fief: NewAuthenticator: nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	return &Authenticator{client: c, cfg: cfg}, nil
}

// RouteOption configures one route's middleware: a Requirement ([RequireScopes],
// [RequireACR], [RequirePermissions]), [Optional] or Refresh.
type RouteOption interface {
	applyRoute(*routeConfig)
}

type routeConfig struct {
	reqs     []Requirement
	optional bool
	refresh  bool
}

type routeOption func(*routeConfig)

func (f routeOption) applyRoute(c *routeConfig) { f(c) }

// applyRoute makes every Requirement a RouteOption.
func (r Requirement) applyRoute(c *routeConfig) {
	if r == nil {
		panic("fief: nil Requirement")
	}
	c.reqs = append(c.reqs, r)
}

// Optional lets requests without a usable token through: no token, an
// invalid or expired one, or (with CurrentUser) one Fief refuses. The
// handler then finds nothing in the context. A valid token that does not meet
// the route's requirements is still refused with 403, and Fief being
// unavailable still fails the request.
func Optional() RouteOption {
	return routeOption(func(c *routeConfig) { c.optional = true })
}

// Refresh makes CurrentUser skip the cache read and always fetch the user's
// info from Fief, then store it in the cache: use it on routes that must see
// changes made elsewhere (after a profile update, say). It applies to
// CurrentUser only; Authenticated panics when given it.
func Refresh() RouteOption {
	return routeOption(func(c *routeConfig) { c.refresh = true })
}

// route is a route's configuration, computed once when its middleware is
// built.
type route struct {
	reqs     requirements
	optional bool
	refresh  bool
}

func newRoute(method string, opts []RouteOption, allowRefresh bool) *route {
	var rc routeConfig
	for _, o := range opts {
		if o == nil {
			panic("fief: " + method + ": nil RouteOption")
		}
		o.applyRoute(&rc)
	}
	if rc.refresh && !allowRefresh {
		panic("fief: " + method + ": Refresh applies to CurrentUser only")
	}
	return &route{reqs: collect(rc.reqs), optional: rc.optional, refresh: rc.refresh}
}

type ctxKey int

const (
	tokenInfoKey ctxKey = iota
	userInfoKey
)

// AccessTokenInfoFromContext returns the access token info that
// Authenticated or CurrentUser stored in the request's context. ok is false
// on routes without the middleware and for anonymous requests on [Optional]
// routes. The info is an immutable value.
func AccessTokenInfoFromContext(ctx context.Context) (info AccessTokenInfo, ok bool) {
	info, ok = ctx.Value(tokenInfoKey).(AccessTokenInfo)
	return info, ok && !info.IsZero()
}

// UserInfoFromContext returns the user info that CurrentUser stored in the
// request's context, an immutable value. ok is false on routes without
// CurrentUser and for anonymous requests on [Optional] routes.
func UserInfoFromContext(ctx context.Context) (info UserInfo, ok bool) {
	info, ok = ctx.Value(userInfoKey).(UserInfo)
	return info, ok && !info.IsZero()
}

// Authenticated returns middleware that lets a request through only with a
// valid access token meeting the route's requirements, and stores the
// token's info in the request's context (see [AccessTokenInfoFromContext]).
//
//   - no token, or a malformed, invalid or expired one: the unauthorized
//     handler (401), unless the route is Optional: the request then goes
//     through without info;
//   - a valid token missing a required scope, ACR or permission: the
//     forbidden handler (403), Optional or not;
//   - Fief unavailable (the key set cannot be fetched): the unavailable
//     handler (503).
//
// Validation is offline: once the key set is cached, no request reaches
// Fief. Authenticated panics on a nil option and on Refresh.
func (a *Authenticator) Authenticated(opts ...RouteOption) func(http.Handler) http.Handler {
	rt := newRoute("Authenticated", opts, false)
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("fief: Authenticated: nil handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info, err := a.authenticate(r, rt)
			if err != nil {
				if a.refuse(w, r, err, rt.optional) {
					next.ServeHTTP(w, r)
				}
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenInfoKey, info)))
		})
	}
}

// CurrentUser returns middleware that authenticates like Authenticated (with
// the same route options) and then also stores the user's info in the
// request's context (see [UserInfoFromContext]).
//
// The info comes from the user-info cache, keyed by user ID; on a miss, or
// always with [Refresh], from Fief's userinfo endpoint, called with the
// request's token, after which it is stored in the cache. Concurrent misses
// for one user share a single call. When Fief refuses the token (a 4xx
// status other than 408 and 429, e.g. the user was deleted) the request gets
// the unauthorized handler (or goes through anonymously on an [Optional]
// route); when Fief cannot answer, the unavailable handler. A cache error is
// logged and treated as a miss. CurrentUser panics on a nil option.
func (a *Authenticator) CurrentUser(opts ...RouteOption) func(http.Handler) http.Handler {
	rt := newRoute("CurrentUser", opts, true)
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("fief: CurrentUser: nil handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info, err := a.authenticate(r, rt)
			if err == nil {
				var user UserInfo
				if user, err = a.userInfo(r.Context(), info, rt.refresh); err == nil {
					ctx := context.WithValue(r.Context(), tokenInfoKey, info)
					ctx = context.WithValue(ctx, userInfoKey, user)
					next.ServeHTTP(w, r.WithContext(ctx))
					return
				}
			}
			if a.refuse(w, r, err, rt.optional) {
				next.ServeHTTP(w, r)
			}
		})
	}
}

// authenticate extracts the request's token and validates it against the
// route's requirements.
func (a *Authenticator) authenticate(r *http.Request, rt *route) (AccessTokenInfo, error) {
	token, err := a.cfg.extractor.Extract(r)
	switch {
	case err != nil:
		if !errors.Is(err, ErrAccessTokenInvalid) {
			err = fmt.Errorf("%w: extractor: %w", ErrAccessTokenInvalid, err)
		}
		return AccessTokenInfo{}, err
	case token == "":
		return AccessTokenInfo{}, ErrNoToken
	case len(token) > MaxTokenLength:
		return AccessTokenInfo{}, ErrTokenTooLarge
	}
	info, err := a.client.verifyAccessToken(r.Context(), token)
	if err != nil {
		return AccessTokenInfo{}, err
	}
	if err := rt.reqs.check(info); err != nil {
		return AccessTokenInfo{}, err
	}
	return info, nil
}

// userInfo returns the user's info: from the cache unless refresh is set,
// else from Fief through the per-user flight, which fills the cache.
func (a *Authenticator) userInfo(ctx context.Context, info AccessTokenInfo, refresh bool) (UserInfo, error) {
	if a.cfg.cache != nil && !refresh {
		user, ok, err := a.cfg.cache.Get(ctx, info.UserID())
		switch {
		case err != nil:
			a.warn(ctx, "fief: user info cache read failed; calling Fief", err)
		case ok && !user.IsZero():
			return user, nil
		}
	}
	user, err := a.flights.do(ctx, info.UserID(), func(ctx context.Context) (UserInfo, error) {
		return a.fetchUserInfo(ctx, info)
	})
	if err != nil {
		var re *RequestError
		if errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500 &&
			re.StatusCode != http.StatusRequestTimeout && re.StatusCode != http.StatusTooManyRequests {
			return UserInfo{}, fmt.Errorf("%w: refused by Fief's userinfo endpoint: %w", ErrAccessTokenInvalid, err)
		}
		return UserInfo{}, err
	}
	return user, nil
}

// errUserMismatch reports a userinfo answer about another user than the
// token's, which is never cached.
var errUserMismatch = errors.New("fief: userinfo answer is about another user than the access token")

// fetchUserInfo calls Fief's userinfo endpoint and fills the cache. It runs
// in the flight's goroutine, with a context that lives as long as a request
// waits for it.
func (a *Authenticator) fetchUserInfo(ctx context.Context, info AccessTokenInfo) (UserInfo, error) {
	user, err := a.client.UserInfo(ctx, info.AccessToken())
	if err != nil {
		return UserInfo{}, err
	}
	if !strings.EqualFold(user.Sub(), info.UserID()) {
		return UserInfo{}, errUserMismatch
	}
	if a.cfg.cache != nil {
		if err := a.cfg.cache.Set(ctx, info.UserID(), user); err != nil {
			a.warn(ctx, "fief: user info cache write failed", err)
		}
	}
	return user, nil
}

// refuse answers a request that failed authentication with err, and reports
// whether it should go through anonymously instead ([Optional] routes).
func (a *Authenticator) refuse(w http.ResponseWriter, r *http.Request, err error, optional bool) bool {
	switch {
	case errors.Is(err, ErrNoToken), errors.Is(err, ErrAccessTokenInvalid), errors.Is(err, ErrAccessTokenExpired):
		if optional {
			return true
		}
		a.debug(r, "fief: request unauthorized", err)
		a.cfg.unauthorized(w, r, err)
	case errors.Is(err, ErrAccessTokenMissingScope), errors.Is(err, ErrAccessTokenACRTooLow),
		errors.Is(err, ErrAccessTokenMissingPermission):
		a.debug(r, "fief: request forbidden", err)
		a.cfg.forbidden(w, r, err)
	default:
		if r.Context().Err() != nil {
			// The client went away; nothing is wrong with Fief.
			a.debug(r, "fief: request canceled during authentication", err)
		} else {
			a.warn(r.Context(), "fief: cannot authenticate request: Fief unavailable", err,
				slog.String("method", r.Method), slog.String("path", r.URL.Path))
		}
		a.cfg.unavailable(w, r, err)
	}
	return false
}

func (a *Authenticator) warn(ctx context.Context, msg string, err error, attrs ...slog.Attr) {
	if a.cfg.logger == nil {
		return
	}
	a.cfg.logger.LogAttrs(ctx, slog.LevelWarn, msg, append(attrs, slog.String("error", err.Error()))...)
}

func (a *Authenticator) debug(r *http.Request, msg string, err error) {
	if a.cfg.logger == nil || !a.cfg.logger.Enabled(r.Context(), slog.LevelDebug) {
		return
	}
	a.cfg.logger.LogAttrs(r.Context(), slog.LevelDebug, msg, slog.String("error", err.Error()),
		slog.String("method", r.Method), slog.String("path", r.URL.Path))
}

// The default answers. Their bodies are fixed: no error text ever reaches
// the client.
const (
	bodyUnauthorized = `{"detail":"Unauthorized"}`
	bodyForbidden    = `{"detail":"Forbidden"}`
	bodyUnavailable  = `{"detail":"Service Unavailable"}`
)

func defaultUnauthorized(w http.ResponseWriter, _ *http.Request, err error) {
	if errors.Is(err, ErrNoToken) {
		w.Header().Set("WWW-Authenticate", "Bearer")
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	writeFixed(w, http.StatusUnauthorized, bodyUnauthorized)
}

func defaultForbidden(w http.ResponseWriter, _ *http.Request, _ error) {
	w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
	writeFixed(w, http.StatusForbidden, bodyForbidden)
}

func defaultUnavailable(w http.ResponseWriter, _ *http.Request, _ error) {
	w.Header().Set("Retry-After", "5")
	writeFixed(w, http.StatusServiceUnavailable, bodyUnavailable)
}

func writeFixed(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
