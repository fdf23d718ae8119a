package fief

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/fief-go/fief/internal/jose"
)

// Authenticator authenticates requests with the access tokens of one
// [Client] and builds the net/http middleware that does it
// ([Authenticator.Authenticated], [Authenticator.CurrentUser]). Create it
// with [NewAuthenticator]. An Authenticator is safe for concurrent use;
// build it once and share it between routes.
type Authenticator struct {
	cfg     authConfig
	flights flightGroup // concurrent userinfo calls, one per user ID

	hooks    *Hooks                 // its (first) client's
	single   authTenant             // NewAuthenticator's client
	tenants  []*authTenant          // NewMultiTenantAuthenticator's, in order
	byIssuer map[string]*authTenant // nil for a single tenant
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
// configuration work per request. For the tokens of several tenants, see
// [NewMultiTenantAuthenticator].
func NewAuthenticator(c *Client, opts ...AuthOption) (*Authenticator, error) {
	if c == nil {
		return nil, errors.New("fief: NewAuthenticator: nil client")
	}
	a, err := newAuthenticator("NewAuthenticator", opts)
	if err != nil {
		return nil, err
	}
	a.single.client = c
	a.hooks = c.hooks
	return a, nil
}

func newAuthenticator(fn string, opts []AuthOption) (*Authenticator, error) {
	cfg := authConfig{
		extractor:    BearerToken(),
		unauthorized: defaultUnauthorized,
		forbidden:    defaultForbidden,
		unavailable:  defaultUnavailable,
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("fief: " + fn + ": nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	return &Authenticator{cfg: cfg}, nil
}

// logRefusal logs a failed authentication: Fief unavailable at Warn level,
// refusals (and callers gone away) at Debug level. Records hold no token.
func (a *Authenticator) logRefusal(ctx context.Context, err error, attrs ...slog.Attr) {
	l := a.cfg.logger
	if l == nil {
		return
	}
	level, msg := slog.LevelDebug, "fief: request unauthorized"
	switch {
	case errors.Is(err, ErrForbidden):
		msg = "fief: request forbidden"
	case errors.Is(err, ErrUnavailable) && ctx.Err() != nil:
		msg = "fief: request canceled during authentication" // nothing is wrong with Fief
	case errors.Is(err, ErrUnavailable):
		level, msg = slog.LevelWarn, "fief: cannot authenticate request: Fief unavailable"
	}
	if !l.Enabled(ctx, level) {
		return
	}
	l.LogAttrs(ctx, level, msg, append(attrs, slog.String("error", err.Error()))...)
}

// userInfo returns the user's info: from the cache unless refresh is set,
// else from Fief through the per-user flight, which fills the cache.
func (a *Authenticator) userInfo(ctx context.Context, c *Client, info AccessTokenInfo, refresh bool) (UserInfo, error) {
	if a.cfg.cache != nil && !refresh {
		user, ok, err := a.cfg.cache.Get(ctx, info.UserID())
		switch {
		case err != nil:
			a.hooks.cacheRead(ctx, "error")
			a.warn(ctx, "fief: user info cache read failed; calling Fief", err)
		case ok && !user.IsZero():
			a.hooks.cacheRead(ctx, "hit")
			return user, nil
		default:
			a.hooks.cacheRead(ctx, "miss")
		}
	}
	user, err := a.flights.do(ctx, info.UserID(), func(ctx context.Context) (UserInfo, error) {
		return a.fetchUserInfo(ctx, c, info)
	})
	if err != nil {
		if refusedByFief(err) {
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
func (a *Authenticator) fetchUserInfo(ctx context.Context, c *Client, info AccessTokenInfo) (UserInfo, error) {
	user, err := c.UserInfo(ctx, info.AccessToken())
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

func (a *Authenticator) warn(ctx context.Context, msg string, err error, attrs ...slog.Attr) {
	if a.cfg.logger == nil {
		return
	}
	a.cfg.logger.LogAttrs(ctx, slog.LevelWarn, msg, append(attrs, slog.String("error", err.Error()))...)
}

// Tenant is one of the Fief tenants a multi-tenant [Authenticator] accepts
// the tokens of.
type Tenant struct {
	// Name names the tenant for the handlers ([TenantFromContext]) and the
	// logs. Names are distinct and not empty.
	Name string
	// Client is the tenant's client. It must know the tenant's issuer
	// ([WithIssuer]), so that the tenant of a token is known before any
	// request to Fief.
	Client *Client
}

// authTenant is a Tenant as an Authenticator uses it; the single tenant of
// NewAuthenticator has no name.
type authTenant struct {
	name   string
	client *Client
}

// NewMultiTenantAuthenticator returns an Authenticator that accepts the
// tokens of several Fief tenants, each verified by its own client only.
// The tenant of a token is the one whose issuer ([WithIssuer]) is the
// token's iss claim, read before the token is verified; a token whose iss
// is no tenant's is refused as invalid without any request to Fief, and
// one whose iss is forged is refused by the signature check of the tenant
// it names. Handlers find the tenant's name with [TenantFromContext]. The
// user-info cache, if any, is shared: Fief's user IDs are UUIDs, distinct
// across tenants.
func NewMultiTenantAuthenticator(tenants []Tenant, opts ...AuthOption) (*Authenticator, error) {
	if len(tenants) == 0 {
		return nil, errors.New("fief: NewMultiTenantAuthenticator: no tenant")
	}
	a, err := newAuthenticator("NewMultiTenantAuthenticator", opts)
	if err != nil {
		return nil, err
	}
	a.byIssuer = make(map[string]*authTenant, len(tenants))
	names := make(map[string]bool, len(tenants))
	for _, t := range tenants {
		switch {
		case t.Name == "":
			return nil, errors.New("fief: NewMultiTenantAuthenticator: a tenant has no name")
		case names[t.Name]:
			return nil, fmt.Errorf("fief: NewMultiTenantAuthenticator: two tenants are named %q", t.Name)
		case t.Client == nil:
			return nil, fmt.Errorf("fief: NewMultiTenantAuthenticator: tenant %q has no client", t.Name)
		case t.Client.issuer == "":
			return nil, fmt.Errorf("fief: NewMultiTenantAuthenticator: tenant %q: the client has no issuer (WithIssuer)", t.Name)
		case a.byIssuer[t.Client.issuer] != nil:
			return nil, fmt.Errorf("fief: NewMultiTenantAuthenticator: tenants %q and %q have the issuer %q", a.byIssuer[t.Client.issuer].name, t.Name, t.Client.issuer)
		}
		names[t.Name] = true
		tt := &authTenant{name: t.Name, client: t.Client}
		a.tenants = append(a.tenants, tt)
		a.byIssuer[t.Client.issuer] = tt
	}
	a.hooks = tenants[0].Client.hooks
	return a, nil
}

// verify verifies an access token with the client of its tenant; cached
// tells a verified-token cache hit.
func (a *Authenticator) verify(ctx context.Context, token string) (AccessTokenInfo, *authTenant, bool, error) {
	if a.byIssuer == nil {
		info, cached, err := a.single.client.verifyAccessToken(ctx, token)
		return info, &a.single, cached, err
	}
	// A token some tenant verified before is in its cache: a few map
	// lookups spare the token's decoding.
	for _, t := range a.tenants {
		if info, ok := t.client.cachedAccessToken(token); ok {
			return info, t, true, nil
		}
	}
	iss, err := unverifiedIssuer(token)
	if err != nil {
		return AccessTokenInfo{}, nil, false, invalidAccessToken(err.Error())
	}
	t := a.byIssuer[iss]
	if t == nil {
		return AccessTokenInfo{}, nil, false, invalidAccessToken("issuer of no configured tenant")
	}
	info, cached, err := t.client.verifyAccessToken(ctx, token)
	return info, t, cached, err
}

// unverifiedIssuer returns the iss claim of a token whose signature is not
// checked yet, for choosing the tenant that will check it.
func unverifiedIssuer(token string) (string, error) {
	j, err := jose.ParseJWS(token)
	if err != nil {
		return "", err
	}
	if err := j.DecodePayload(); err != nil {
		return "", err
	}
	var tc jose.TimeClaims
	if json.Unmarshal(j.Payload, &tc) != nil {
		return "", jose.ErrClaims
	}
	return tc.Iss, nil
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
