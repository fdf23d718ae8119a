package fiefecho

import (
	"errors"
	"net/http"

	"github.com/fief-go/fief"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// The keys under which the middleware stores the identity in the echo
// context (c.Get), besides the request's context. Handlers should rather
// call [AccessTokenInfo], [UserInfo] and [Tenant], which read the request's
// context and so cannot be fooled by another c.Set under the same key.
const (
	// AccessTokenInfoKey holds the [fief.AccessTokenInfo] of an
	// authenticated request.
	AccessTokenInfoKey = "fief.access_token_info"
	// UserInfoKey holds the [fief.UserInfo] on [CurrentUser] routes (and
	// routes with [fief.LoadUserInfo]).
	UserInfoKey = "fief.user_info"
	// TenantKey holds the tenant's name (a string) for a multi-tenant
	// Authenticator ([fief.NewMultiTenantAuthenticator]).
	TenantKey = "fief.tenant"
)

// ErrorHandler answers a request the middleware refuses. err wraps one of
// [fief.ErrUnauthenticated], [fief.ErrForbidden] and [fief.ErrUnavailable],
// and the cause. It returns the error echo's HTTPErrorHandler renders, or
// nil once it has written the response itself (c.Redirect, say). Either
// way the handler does not run. Never put err's text into the response: it
// describes the server's view of the failure (key set URLs, Fief's
// answers) to the server's operators only.
type ErrorHandler func(err error, c echo.Context) error

// Config configures the middleware of [Middleware]. The zero value
// authenticates every request and refuses with [DefaultErrorHandler].
type Config struct {
	// Skipper, when it returns true, lets the request through without
	// authentication (and without identity): the same type as the Skipper
	// of echo's own middleware. Nil skips nothing.
	Skipper middleware.Skipper

	// ErrorHandler answers refusals (default [DefaultErrorHandler]). A
	// custom one typically handles a case and returns DefaultErrorHandler's
	// answer for the others.
	//
	// The handlers configured on the Authenticator
	// ([fief.WithUnauthorizedHandler], [fief.WithForbiddenHandler],
	// [fief.WithUnavailableHandler], such as a [fief.LoginFlow]'s
	// RedirectToLogin and RedirectToStepUp) answer only when ErrorHandler
	// is [AuthenticatorErrorHandler]: DefaultErrorHandler, and so
	// [Authenticated] and [CurrentUser], never call them.
	ErrorHandler ErrorHandler
}

// Authenticated returns middleware that lets a request through only with
// a valid access token meeting the requirements of opts
// ([fief.RequireScopes], [fief.RequireACR], [fief.RequirePermissions],
// [fief.Optional]), and refuses the others with [DefaultErrorHandler], not
// with the handlers configured on auth (see [AuthenticatorErrorHandler]). It
// is [Middleware] on auth.Route(opts...) with a zero [Config]. It panics on
// a nil auth or a nil option.
func Authenticated(auth *fief.Authenticator, opts ...fief.RouteOption) echo.MiddlewareFunc {
	if auth == nil {
		panic("fiefecho: Authenticated: nil Authenticator")
	}
	return Middleware(auth.Route(opts...), Config{})
}

// CurrentUser returns middleware that authenticates like [Authenticated]
// and also loads the user's info ([fief.LoadUserInfo]), from the
// Authenticator's [fief.UserInfoCache] or Fief's userinfo endpoint; read
// it with [UserInfo]. Add [fief.Refresh] to opts to always ask Fief.
// Refusals get [DefaultErrorHandler], as with Authenticated. It panics on a
// nil auth or a nil option.
func CurrentUser(auth *fief.Authenticator, opts ...fief.RouteOption) echo.MiddlewareFunc {
	if auth == nil {
		panic("fiefecho: CurrentUser: nil Authenticator")
	}
	opts = append(opts[:len(opts):len(opts)], fief.LoadUserInfo())
	return Middleware(auth.Route(opts...), Config{})
}

// Middleware returns middleware that authenticates requests with rt
// ([fief.Route.AuthenticateRequest], which reads the token with the
// Authenticator's [fief.Extractor] and logs refusals as
// [fief.WithLogger] says), built once for every request it serves.
//
// A request rt accepts goes on to the handler with the derived context
// (c.SetRequest), the identity also stored in the echo context under
// [AccessTokenInfoKey], [UserInfoKey] and [TenantKey]. An anonymous request
// on a [fief.Optional] route goes on unchanged. A refused request gets
// config's ErrorHandler, whose answer the middleware returns without
// calling the handler. Middleware panics if rt is nil.
func Middleware(rt *fief.Route, config Config) echo.MiddlewareFunc {
	if rt == nil {
		panic("fiefecho: Middleware: nil Route")
	}
	skip, refuse := config.Skipper, config.ErrorHandler
	if skip == nil {
		skip = middleware.DefaultSkipper
	}
	if refuse == nil {
		refuse = DefaultErrorHandler
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if skip(c) {
				return next(c)
			}
			r := c.Request()
			ctx, err := rt.AuthenticateRequest(r)
			if err != nil {
				return refuse(err, c)
			}
			if ctx != r.Context() { // else anonymous, on an Optional route
				c.SetRequest(r.WithContext(ctx))
				if info, ok := fief.AccessTokenInfoFromContext(ctx); ok {
					c.Set(AccessTokenInfoKey, info)
				}
				if user, ok := fief.UserInfoFromContext(ctx); ok {
					c.Set(UserInfoKey, user)
				}
				if name, ok := fief.TenantFromContext(ctx); ok {
					c.Set(TenantKey, name)
				}
			}
			return next(c)
		}
	}
}

// DefaultErrorHandler is the [ErrorHandler] of the middleware unless
// [Config] says otherwise. It sets the response's challenge headers and
// returns an [*echo.HTTPError] with a fixed message and err as its
// Internal error:
//
//   - [fief.ErrUnauthenticated]: 401 "Unauthorized", WWW-Authenticate:
//     Bearer for a request without a token ([fief.ErrNoToken]), Bearer
//     error="invalid_token" otherwise;
//   - [fief.ErrForbidden]: 403 "Forbidden", WWW-Authenticate: Bearer
//     error="insufficient_scope";
//   - [fief.ErrUnavailable], and any other error: 503 "Service
//     Unavailable", Retry-After: 5.
func DefaultErrorHandler(err error, c echo.Context) error {
	h := c.Response().Header()
	var code int
	switch {
	case errors.Is(err, fief.ErrUnauthenticated):
		code = http.StatusUnauthorized
		if errors.Is(err, fief.ErrNoToken) {
			h.Set(echo.HeaderWWWAuthenticate, "Bearer")
		} else {
			h.Set(echo.HeaderWWWAuthenticate, `Bearer error="invalid_token"`)
		}
	case errors.Is(err, fief.ErrForbidden):
		code = http.StatusForbidden
		h.Set(echo.HeaderWWWAuthenticate, `Bearer error="insufficient_scope"`)
	default:
		code = http.StatusServiceUnavailable
		h.Set(echo.HeaderRetryAfter, "5")
	}
	return echo.NewHTTPError(code, http.StatusText(code)).SetInternal(err)
}

// AuthenticatorErrorHandler returns an [ErrorHandler] that answers a
// refusal as auth's net/http middleware does ([fief.Authenticator.Refuse]):
// with the handler of the refusal's class that auth was given
// ([fief.WithUnauthorizedHandler], [fief.WithForbiddenHandler],
// [fief.WithUnavailableHandler]: a [fief.LoginFlow]'s redirect to the login
// page, say), or auth's default (RFC 6750's 401 and 403, a 503, each with a
// fixed JSON body). The handler writes the response itself, so the
// ErrorHandler returns nil and echo's HTTPErrorHandler sees nothing of the
// refusal: log refusals with [fief.WithLogger]. Give it the Authenticator
// of the middleware's route:
//
//	fiefecho.Middleware(auth.Route(opts...), fiefecho.Config{ErrorHandler: fiefecho.AuthenticatorErrorHandler(auth)})
//
// It panics on a nil auth.
func AuthenticatorErrorHandler(auth *fief.Authenticator) ErrorHandler {
	if auth == nil {
		panic("fiefecho: AuthenticatorErrorHandler: nil Authenticator")
	}
	return func(err error, c echo.Context) error {
		auth.Refuse(c.Response(), c.Request(), err)
		return nil
	}
}

// AccessTokenInfo returns the info of the access token that authenticated
// the request, from the request's context
// ([fief.AccessTokenInfoFromContext]). ok is false on routes without the
// middleware, for skipped requests and for anonymous requests on
// [fief.Optional] routes.
func AccessTokenInfo(c echo.Context) (info fief.AccessTokenInfo, ok bool) {
	return fief.AccessTokenInfoFromContext(c.Request().Context())
}

// UserInfo returns the user's info on [CurrentUser] routes, from the
// request's context ([fief.UserInfoFromContext]). ok is false elsewhere
// and for anonymous requests.
func UserInfo(c echo.Context) (user fief.UserInfo, ok bool) {
	return fief.UserInfoFromContext(c.Request().Context())
}

// Tenant returns the name of the tenant whose token authenticated the
// request, for a multi-tenant Authenticator
// ([fief.NewMultiTenantAuthenticator]), from the request's context
// ([fief.TenantFromContext]). ok is false for other Authenticators and for
// anonymous requests.
func Tenant(c echo.Context) (name string, ok bool) {
	return fief.TenantFromContext(c.Request().Context())
}
