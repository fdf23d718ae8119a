// Package fiefgin protects gin routes with Fief access tokens: gin
// middleware on a [fief.Authenticator], which reads the token with the
// Authenticator's [fief.Extractor] (Authorization: Bearer by default, a
// cookie, ...), checks the route's requirements, and refuses a request with
// the Authenticator's answers: by default RFC 6750's 401 and 403 and a 503
// when Fief cannot be used, each with a fixed JSON body, or what
// [fief.WithUnauthorizedHandler] and its siblings configure, such as a
// [fief.LoginFlow]'s redirect to the login page. A refused request is
// aborted ([gin.Context.Abort]): no later handler runs. The middleware is
// a thin layer on the core of package fief, as the root package's net/http
// middleware ([fief.Authenticator.Authenticated],
// [fief.Authenticator.CurrentUser]) is: it authenticates with
// [fief.Route.AuthenticateRequest] and answers a refusal with
// [fief.Authenticator.Refuse] on gin's response writer.
//
//	auth, err := fief.NewAuthenticator(client)
//	...
//	r := gin.New()
//	api := r.Group("/api", fiefgin.Authenticated(auth, fief.RequireScopes("castles")))
//	api.GET("/castles", func(c *gin.Context) {
//		info, _ := fiefgin.AccessTokenInfo(c)
//		c.JSON(http.StatusOK, gin.H{"user": info.UserID()})
//	})
//
// # Where handlers find the identity
//
// On success the middleware replaces c.Request by a copy whose context
// holds the identity, so [fief.AccessTokenInfoFromContext],
// [fief.UserInfoFromContext] and [fief.TenantFromContext] work on
// c.Request.Context(), and so does everything that receives that context.
// [AccessTokenInfo], [UserInfo] and [Tenant] read it from a [*gin.Context].
// The middleware also stores the identity in the gin.Context's keys
// ([gin.Context.Set]) under [AccessTokenInfoKey], [UserInfoKey] and
// [TenantKey], for code that uses [gin.Context.Get]; [gin.Context.Value]
// finds these string keys too, whatever the engine's settings.
//
// A *gin.Context is also a [context.Context], but fief's functions find
// nothing in it unless the engine is built with ContextWithFallback set:
// gin's Context.Value answers a key that is not a string (fief's are
// unexported types) from c.Request.Context() only when
// [gin.Engine.ContextWithFallback] is true, and answers nil otherwise. So
// fief.AccessTokenInfoFromContext(c) reports the identity, after this
// package's middleware, with ContextWithFallback and never without it
// (ok is false, silently); the same holds for contexts derived from c and
// for [gin.Context.Copy]. Without ContextWithFallback, c.Done() is nil as
// well: a call made with c is never canceled. Pass c.Request.Context() to
// fief's functions and to outgoing calls, or use this package's accessors,
// which work with either setting.
//
// # Handler tests
//
// A handler that reads the identity with this package's accessors is
// unit-tested without a token by putting one in its request's context:
//
//	c.Request = c.Request.WithContext(fief.ContextWithAccessTokenInfo(c.Request.Context(), info))
package fiefgin

import (
	"github.com/fief-go/fief"
	"github.com/gin-gonic/gin"
)

// The keys under which the middleware stores the identity in a
// [*gin.Context] ([gin.Context.Set]), for code that reads it with
// [gin.Context.Get] or [gin.Context.Value]. A key is set only when the
// request carries what it names: not for anonymous requests on
// [fief.Optional] routes. The values are immutable.
const (
	// AccessTokenInfoKey holds the access token's [fief.AccessTokenInfo].
	AccessTokenInfoKey = "fief.access_token_info"
	// UserInfoKey holds the user's [fief.UserInfo], on [CurrentUser]
	// routes.
	UserInfoKey = "fief.user_info"
	// TenantKey holds the name (a string) of the tenant of a multi-tenant
	// Authenticator ([fief.NewMultiTenantAuthenticator]).
	TenantKey = "fief.tenant"
)

// Authenticated returns gin middleware that lets a request through only
// with a valid access token meeting the route's requirements (opts:
// [fief.RequireScopes], [fief.RequireACR], [fief.RequirePermissions],
// [fief.Optional]), as [fief.Authenticator.Authenticated] does for net/http:
//
//   - no token, or a malformed, invalid or expired one: the Authenticator's
//     unauthorized answer (by default 401 with WWW-Authenticate: Bearer,
//     plus error="invalid_token" when a token was presented, and the body
//     {"detail":"Unauthorized"}), unless the route is Optional: the request
//     then goes through without identity;
//   - a valid token missing a required scope, ACR or permission: the
//     forbidden answer (403, WWW-Authenticate: Bearer
//     error="insufficient_scope", {"detail":"Forbidden"}), Optional or not;
//   - Fief unavailable (the key set cannot be fetched): the unavailable
//     answer (503, Retry-After: 5, {"detail":"Service Unavailable"}).
//
// A refused request is aborted: the handlers after this one do not run.
// An accepted one continues with the identity in c.Request's context and in
// the gin.Context's keys (see the package documentation).
//
// Build the middleware once, at route registration. Authenticated panics
// on a nil Authenticator, on a nil option, and on [fief.LoadUserInfo] and
// [fief.Refresh], which are for [CurrentUser].
func Authenticated(auth *fief.Authenticator, opts ...fief.RouteOption) gin.HandlerFunc {
	if auth == nil {
		panic("fiefgin: Authenticated: nil Authenticator")
	}
	// A Route accepts LoadUserInfo and Refresh, which the net/http
	// Authenticated refuses with a panic: that middleware is built, and
	// dropped, for its check of opts.
	_ = auth.Authenticated(opts...)
	return middleware(auth, auth.Route(opts...))
}

// CurrentUser returns gin middleware that authenticates like
// [Authenticated], with the same options, and also loads the user's info
// (see [UserInfo]), from the Authenticator's [fief.UserInfoCache] or, on a
// miss or always with [fief.Refresh], from Fief's userinfo endpoint, as
// [fief.Authenticator.CurrentUser] does for net/http. A token Fief refuses
// there gets the unauthorized answer (or goes through anonymously on an
// Optional route); Fief failing to answer, the unavailable answer.
// CurrentUser panics on a nil Authenticator and on a nil option.
func CurrentUser(auth *fief.Authenticator, opts ...fief.RouteOption) gin.HandlerFunc {
	if auth == nil {
		panic("fiefgin: CurrentUser: nil Authenticator")
	}
	return middleware(auth, auth.Route(append(opts[:len(opts):len(opts)], fief.LoadUserInfo())...))
}

// AccessTokenInfo returns the access token info that the middleware stored
// in c.Request's context, as [fief.AccessTokenInfoFromContext] does. ok is
// false on routes without the middleware and for anonymous requests on
// [fief.Optional] routes.
func AccessTokenInfo(c *gin.Context) (info fief.AccessTokenInfo, ok bool) {
	if c == nil || c.Request == nil {
		return fief.AccessTokenInfo{}, false
	}
	return fief.AccessTokenInfoFromContext(c.Request.Context())
}

// UserInfo returns the user info that [CurrentUser] stored in c.Request's
// context, as [fief.UserInfoFromContext] does. ok is false elsewhere and for
// anonymous requests on [fief.Optional] routes.
func UserInfo(c *gin.Context) (info fief.UserInfo, ok bool) {
	if c == nil || c.Request == nil {
		return fief.UserInfo{}, false
	}
	return fief.UserInfoFromContext(c.Request.Context())
}

// Tenant returns the name of the tenant whose token authenticated the
// request, as [fief.TenantFromContext] reads it from c.Request's context. ok
// is false for an Authenticator of one tenant and for anonymous requests.
func Tenant(c *gin.Context) (name string, ok bool) {
	if c == nil || c.Request == nil {
		return "", false
	}
	return fief.TenantFromContext(c.Request.Context())
}

// middleware returns the gin middleware of rt: a refusal is answered with
// the Authenticator's handler of its class ([fief.Authenticator.Refuse]) and
// aborts the chain; an accepted request goes on with the identity in
// c.Request's context and in c's keys.
func middleware(auth *fief.Authenticator, rt *fief.Route) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, err := rt.AuthenticateRequest(c.Request)
		if err != nil {
			auth.Refuse(c.Writer, c.Request, err)
			c.Abort()
			return
		}
		if ctx != c.Request.Context() { // else anonymous, on an Optional route
			c.Request = c.Request.WithContext(ctx)
		}
		if info, ok := fief.AccessTokenInfoFromContext(ctx); ok {
			c.Set(AccessTokenInfoKey, info)
		}
		if user, ok := fief.UserInfoFromContext(ctx); ok {
			c.Set(UserInfoKey, user)
		}
		if name, ok := fief.TenantFromContext(ctx); ok {
			c.Set(TenantKey, name)
		}
		c.Next()
	}
}
