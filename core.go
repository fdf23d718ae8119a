package fief

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Route is one route's authentication, whatever the transport: its
// requirements, [Optional], [LoadUserInfo] and [Refresh], computed once.
// Make it with [Authenticator.Route]; it is safe for concurrent use. The
// net/http middleware, and the gRPC, Connect, gin and echo adapters of this
// repository, are thin layers on it; a custom transport (a WebSocket
// upgrade, server-sent events, a message consumer) calls
// [Route.Authenticate] with the token it received.
type Route struct {
	a        *Authenticator
	reqs     requirements
	optional bool
	userInfo bool
	refresh  bool
}

// RouteOption configures a [Route]: a [Requirement] ([RequireScopes],
// [RequireACR], [RequirePermissions]), [Optional], [LoadUserInfo] or
// [Refresh].
type RouteOption interface {
	applyRoute(*routeConfig)
}

type routeConfig struct {
	reqs     []Requirement
	optional bool
	userInfo bool
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
// invalid or expired one, or (with [LoadUserInfo]) one Fief refuses. They
// are authenticated as anonymous: the context holds no info. A valid token
// that does not meet the route's requirements is still refused
// ([ErrForbidden]), and Fief being unavailable still fails the request.
func Optional() RouteOption {
	return routeOption(func(c *routeConfig) { c.optional = true })
}

// LoadUserInfo makes the route also load the user's info, from the
// authenticator's [UserInfoCache] or, on a miss, from Fief's userinfo
// endpoint, into the context ([UserInfoFromContext]): what
// [Authenticator.CurrentUser] does for net/http.
func LoadUserInfo() RouteOption {
	return routeOption(func(c *routeConfig) { c.userInfo = true })
}

// Refresh makes the route load the user's info ([LoadUserInfo]) from
// Fief always, skipping the cache read, then store it in the cache: use it
// on routes that must see changes made elsewhere (after a profile update,
// say).
func Refresh() RouteOption {
	return routeOption(func(c *routeConfig) { c.userInfo, c.refresh = true, true })
}

// Route returns the authentication of a route with opts. It panics on a nil
// option, a programmer's error.
func (a *Authenticator) Route(opts ...RouteOption) *Route {
	return a.route("Route", opts)
}

func (a *Authenticator) route(method string, opts []RouteOption) *Route {
	var rc routeConfig
	for _, o := range opts {
		if o == nil {
			panic("fief: " + method + ": nil RouteOption")
		}
		o.applyRoute(&rc)
	}
	return &Route{a: a, reqs: collect(rc.reqs), optional: rc.optional, userInfo: rc.userInfo, refresh: rc.refresh}
}

// Authenticate authenticates a request that presented token ("" for none)
// and returns ctx with what handlers need: the access token's info
// ([AccessTokenInfoFromContext]), the user's info with [LoadUserInfo]
// ([UserInfoFromContext]), the tenant for a multi-tenant Authenticator
// ([TenantFromContext]). On an [Optional] route, a request without a usable
// token is anonymous: ctx comes back unchanged, with a nil error. Otherwise
// the error wraps one of [ErrUnauthenticated], [ErrForbidden] and
// [ErrUnavailable], and its cause.
//
// Calls to Fief (the key set's first fetch, userinfo) use ctx. Failures
// are logged as [WithLogger] says. Authenticate does not look at the token's
// transport: strip the scheme ("Bearer ") first, with [ParseBearer] for an
// Authorization value.
func (rt *Route) Authenticate(ctx context.Context, token string) (context.Context, error) {
	out, err := rt.authenticate(ctx, token)
	if err != nil {
		rt.a.logRefusal(ctx, err)
	}
	return out, err
}

// AuthenticateAuthorization authenticates a request whose Authorization
// header (or gRPC "authorization" metadata) has values, as
// [Route.Authenticate] does, reading them as [BearerToken] does: none, or
// another scheme, is no token; several values are refused
// ([ErrMalformedAuthorization]), as is a token longer than
// [MaxTokenLength]. For transports that carry the header outside an
// http.Request: gRPC, Connect.
func (rt *Route) AuthenticateAuthorization(ctx context.Context, values []string) (context.Context, error) {
	var token string
	var err error
	switch len(values) {
	case 0:
	case 1:
		token, err = parseBearer(values[0])
	default:
		err = ErrMalformedAuthorization
	}
	var out context.Context
	if err != nil {
		out, err = rt.unreadable(ctx, rt.a.hooks.checkStart(), err)
	} else {
		out, err = rt.authenticate(ctx, token)
	}
	if err != nil {
		rt.a.logRefusal(ctx, err)
	}
	return out, err
}

// AuthenticateRequest authenticates an HTTP request, reading its token
// with the Authenticator's [Extractor], as [Route.Authenticate] does.
func (rt *Route) AuthenticateRequest(r *http.Request) (context.Context, error) {
	out, err := rt.authenticateRequest(r)
	if err != nil {
		rt.a.logRefusal(r.Context(), err, slog.String("method", r.Method), slog.String("path", r.URL.Path))
	}
	return out, err
}

// authenticateRequest is AuthenticateRequest without the logging.
func (rt *Route) authenticateRequest(r *http.Request) (context.Context, error) {
	start := rt.a.hooks.checkStart()
	token, err := rt.a.cfg.extractor.Extract(r)
	if err != nil {
		if !errors.Is(err, ErrAccessTokenInvalid) {
			err = fmt.Errorf("%w: extractor: %w", ErrAccessTokenInvalid, err)
		}
		return rt.unreadable(r.Context(), start, err)
	}
	return rt.authenticate(r.Context(), token)
}

// authenticate is Authenticate without the logging.
func (rt *Route) authenticate(ctx context.Context, token string) (context.Context, error) {
	hooks := rt.a.hooks
	start := hooks.checkStart()
	switch {
	case token == "":
		return rt.unreadable(ctx, start, ErrNoToken)
	case len(token) > MaxTokenLength:
		return rt.unreadable(ctx, start, ErrTokenTooLarge)
	}
	info, tn, cached, err := rt.a.verify(ctx, token)
	if err == nil {
		err = rt.reqs.check(info)
	}
	var user UserInfo
	if err == nil && rt.userInfo {
		user, err = rt.a.userInfo(ctx, tn.client, info, rt.refresh)
	}
	hooks.tokenChecked(ctx, start, cached, err)
	if err != nil {
		return rt.refused(ctx, err)
	}
	out := context.WithValue(ctx, tokenInfoKey, info)
	if tn.name != "" {
		out = context.WithValue(out, tenantKey, tn.name)
	}
	if rt.userInfo {
		out = context.WithValue(out, userInfoKey, user)
	}
	return out, nil
}

// unreadable reports and refuses a request whose token could not be read
// (none, too large, a malformed Authorization header, an extractor's
// error): a token check like the others for the hooks.
func (rt *Route) unreadable(ctx context.Context, start time.Time, cause error) (context.Context, error) {
	rt.a.hooks.tokenChecked(ctx, start, false, cause)
	return rt.refused(ctx, cause)
}

// refused returns the outcome of a failure with cause: anonymous on an
// Optional route when the request is unauthenticated, else the classified
// error.
func (rt *Route) refused(ctx context.Context, cause error) (context.Context, error) {
	err := classify(cause)
	if rt.optional && errors.Is(err, ErrUnauthenticated) {
		return ctx, nil
	}
	return ctx, err
}

type ctxKey int

const (
	tokenInfoKey ctxKey = iota
	userInfoKey
	tenantKey
)

// AccessTokenInfoFromContext returns the access token info that an
// [Authenticator] stored in the request's context. ok is false on routes
// without authentication and for anonymous requests on [Optional] routes.
// The info is an immutable value.
func AccessTokenInfoFromContext(ctx context.Context) (info AccessTokenInfo, ok bool) {
	info, ok = ctx.Value(tokenInfoKey).(AccessTokenInfo)
	return info, ok && !info.IsZero()
}

// UserInfoFromContext returns the user info that an [Authenticator] stored
// in the request's context on a route with [LoadUserInfo]
// ([Authenticator.CurrentUser]), an immutable value. ok is false elsewhere
// and for anonymous requests on [Optional] routes.
func UserInfoFromContext(ctx context.Context) (info UserInfo, ok bool) {
	info, ok = ctx.Value(userInfoKey).(UserInfo)
	return info, ok && !info.IsZero()
}

// TenantFromContext returns the name of the tenant whose token
// authenticated the request, as a multi-tenant Authenticator
// ([NewMultiTenantAuthenticator]) stored it. ok is false for other
// Authenticators and for anonymous requests.
func TenantFromContext(ctx context.Context) (name string, ok bool) {
	name, ok = ctx.Value(tenantKey).(string)
	return name, ok
}

// ContextWithAccessTokenInfo returns ctx holding info, as an Authenticator
// stores it, for the unit tests of handlers (with an info made by
// [NewAccessTokenInfo]) and for custom transports that authenticate
// otherwise. Nothing is checked.
func ContextWithAccessTokenInfo(ctx context.Context, info AccessTokenInfo) context.Context {
	return context.WithValue(ctx, tokenInfoKey, info)
}

// ContextWithUserInfo returns ctx holding user, as an Authenticator stores
// it with [LoadUserInfo], for the unit tests of handlers (with a user made
// by [ParseUserInfo]). Nothing is checked.
func ContextWithUserInfo(ctx context.Context, user UserInfo) context.Context {
	return context.WithValue(ctx, userInfoKey, user)
}

// ParseBearer returns the token of an Authorization header value in the
// Bearer scheme of RFC 6750, as the reference client reads it: "Bearer
// <token>", the scheme in any case, exactly two parts separated by white
// space. Another scheme, or another shape, gives "" and a nil error (no
// token); a token longer than [MaxTokenLength] gives [ErrTokenTooLarge].
// For transports that carry the header otherwise, such as gRPC metadata.
func ParseBearer(value string) (string, error) { return parseBearer(value) }
