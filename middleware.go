package fief

import (
	"errors"
	"net/http"
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

// Authenticated returns net/http middleware that lets a request through
// only with a valid access token meeting the route's requirements, read
// with the Authenticator's [Extractor], and stores the token's info in the
// request's context (see [AccessTokenInfoFromContext]):
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
// Fief. It is [Route.AuthenticateRequest] on the route of opts; Authenticated
// panics on a nil option, and on [LoadUserInfo] and [Refresh], which are
// for CurrentUser.
func (a *Authenticator) Authenticated(opts ...RouteOption) func(http.Handler) http.Handler {
	rt := a.route("Authenticated", opts)
	if rt.userInfo {
		panic("fief: Authenticated: LoadUserInfo and Refresh apply to CurrentUser only")
	}
	return a.middleware("Authenticated", rt)
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
	rt := a.route("CurrentUser", opts)
	rt.userInfo = true
	return a.middleware("CurrentUser", rt)
}

// middleware is the net/http adapter of rt.
func (a *Authenticator) middleware(method string, rt *Route) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("fief: " + method + ": nil handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, err := rt.AuthenticateRequest(r)
			switch {
			case err != nil:
				a.refuse(w, r, err)
			case ctx == r.Context(): // anonymous, on an Optional route
				next.ServeHTTP(w, r)
			default:
				next.ServeHTTP(w, r.WithContext(ctx))
			}
		})
	}
}

// Refuse answers an HTTP request that [Route.AuthenticateRequest] refused
// with err as the net/http middleware does: with the unauthorized, forbidden
// or unavailable handler of err's class, the defaults or those of
// [WithUnauthorizedHandler], [WithForbiddenHandler] and
// [WithUnavailableHandler]. It is for adapters to frameworks that write
// responses on net/http (gin, say).
func (a *Authenticator) Refuse(w http.ResponseWriter, r *http.Request, err error) {
	a.refuse(w, r, err)
}

// refuse answers a request that failed authentication with err.
func (a *Authenticator) refuse(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrUnauthenticated):
		a.cfg.unauthorized(w, r, err)
	case errors.Is(err, ErrForbidden):
		a.cfg.forbidden(w, r, err)
	default:
		a.cfg.unavailable(w, r, err)
	}
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
