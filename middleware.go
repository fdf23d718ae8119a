package fief

import (
	"errors"
	"net/http"
)

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
