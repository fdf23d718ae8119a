package fief

import (
	"context"
	"errors"
	"time"
)

// Hooks are the functions a [Client], and the [Authenticator]s and
// [LoginFlow]s built on it, call on the events operators watch: token
// checks, fetches of the OpenID configuration and the key set, userinfo
// calls, user-info cache reads, logins. Set them with [WithHooks]; every
// field may be nil. The module github.com/fief-go/fief/fiefotel turns them
// into OpenTelemetry metrics.
//
// Token checks, cache reads and logins are reported on the request's
// goroutine, with its context; a userinfo call on the goroutine of the call
// that concurrent requests for one user share, with a context that carries
// the first request's values; fetches on a background goroutine, with the
// Client's context. The functions must be fast and safe for concurrent use. Events are values (their
// strings may be kept). No event holds a token or a secret. Without hooks nothing is measured: the cached request path
// costs what it costs without them.
type Hooks struct {
	// TokenChecked is called after each access-token check: a request
	// authenticated by an Authenticator, or a call of
	// [Client.ValidateAccessToken].
	TokenChecked func(ctx context.Context, e TokenCheck)
	// Fetched is called after each fetch of the OpenID configuration or
	// of the key set, successful or not.
	Fetched func(ctx context.Context, e Fetch)
	// UserInfoFetched is called after each call to Fief's userinfo
	// endpoint ([Client.UserInfo], and CurrentUser's cache misses).
	UserInfoFetched func(ctx context.Context, e UserInfoFetch)
	// UserInfoCacheRead is called after each read of an Authenticator's
	// user-info cache.
	UserInfoCacheRead func(ctx context.Context, e CacheRead)
	// LoginDone is called when a LoginFlow's callback ends a login.
	LoginDone func(ctx context.Context, e LoginResult)
}

// Outcome is the result of an event, in the words of metrics attributes.
type Outcome string

// The outcomes of a [TokenCheck].
const (
	OutcomeOK           Outcome = "ok"           // authenticated
	OutcomeNoToken      Outcome = "no_token"     // no token presented
	OutcomeInvalid      Outcome = "invalid"      // malformed, forged, wrong issuer or audience, refused by Fief
	OutcomeExpired      Outcome = "expired"      // past its exp
	OutcomeInsufficient Outcome = "insufficient" // valid, but missing a scope, the ACR or a permission
	OutcomeUnavailable  Outcome = "unavailable"  // Fief could not be used, or the caller went away
)

// The outcomes of a [Fetch], a [UserInfoFetch] and a [LoginResult] (which also
// uses [OutcomeOK], [OutcomeInvalid] and [OutcomeUnavailable]).
const (
	OutcomeError   Outcome = "error"   // the request failed: transport, status, answer
	OutcomeRefused Outcome = "refused" // Fief refused it (a 4xx answer but 408 and 429): a token or a code it does not accept
	OutcomeDenied  Outcome = "denied"  // the user or Fief ended the login with an error (access_denied...)
)

// TokenCheck is an access-token check.
type TokenCheck struct {
	Outcome Outcome
	// Cached tells that the token was found in the verified-token cache,
	// so that its signature and claims were not checked again.
	Cached bool
	// Duration is how long the check took, user info included on
	// CurrentUser routes.
	Duration time.Duration
}

// Fetch is a fetch of the OpenID configuration or of the key set.
type Fetch struct {
	// Resource is "discovery" or "jwks".
	Resource string
	// URL is the URL fetched (never with credentials).
	URL      string
	Outcome  Outcome // OutcomeOK or OutcomeError
	Duration time.Duration
}

// UserInfoFetch is a call to Fief's userinfo endpoint.
type UserInfoFetch struct {
	Outcome  Outcome // OutcomeOK, OutcomeRefused (a 4xx answer but 408 and 429) or OutcomeError
	Duration time.Duration
}

// CacheRead is a read of a user-info cache.
type CacheRead struct {
	// Result is "hit", "miss" or "error".
	Result string
}

// LoginResult is how a LoginFlow's callback ended a login.
type LoginResult struct {
	// Outcome is OutcomeOK, OutcomeDenied (Fief's error answer, such as
	// access_denied; server_error and temporarily_unavailable count as
	// OutcomeUnavailable), OutcomeInvalid (a missing, forged, expired or replayed
	// flow, an incomplete callback), OutcomeRefused (Fief refused the code,
	// or its tokens were refused), OutcomeUnavailable (Fief could not be
	// reached) or OutcomeError (the application's OnLogin hook failed).
	Outcome Outcome
}

// outcomeOf returns the outcome of a token check that failed with err.
func outcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrNoToken):
		return OutcomeNoToken
	case errors.Is(err, ErrAccessTokenExpired):
		return OutcomeExpired
	case errors.Is(err, ErrAccessTokenInvalid):
		return OutcomeInvalid
	case errors.Is(err, ErrAccessTokenMissingScope), errors.Is(err, ErrAccessTokenACRTooLow), errors.Is(err, ErrAccessTokenMissingPermission):
		return OutcomeInsufficient
	}
	return OutcomeUnavailable
}

// tokenChecked reports a token check, if the hook is set.
func (h *Hooks) tokenChecked(ctx context.Context, start time.Time, cached bool, err error) {
	if h == nil || h.TokenChecked == nil {
		return
	}
	h.TokenChecked(ctx, TokenCheck{Outcome: outcomeOf(err), Cached: cached, Duration: time.Since(start)})
}

// fetched reports a fetch, if the hook is set.
func (h *Hooks) fetched(ctx context.Context, resource, url string, start time.Time, err error) {
	if h == nil || h.Fetched == nil {
		return
	}
	o := OutcomeOK
	if err != nil {
		o = OutcomeError
	}
	h.Fetched(ctx, Fetch{Resource: resource, URL: url, Outcome: o, Duration: time.Since(start)})
}

// cacheRead reports a user-info cache read, if the hook is set.
func (h *Hooks) cacheRead(ctx context.Context, result string) {
	if h == nil || h.UserInfoCacheRead == nil {
		return
	}
	h.UserInfoCacheRead(ctx, CacheRead{Result: result})
}

// loginDone reports a login, if the hook is set.
func (h *Hooks) loginDone(ctx context.Context, o Outcome) {
	if h == nil || h.LoginDone == nil {
		return
	}
	h.LoginDone(ctx, LoginResult{Outcome: o})
}

// The start of an event a hook will time: the time now if the hook is set,
// else the zero time, without reading the clock.

func (h *Hooks) checkStart() time.Time    { return startIf(h != nil && h.TokenChecked != nil) }
func (h *Hooks) fetchStart() time.Time    { return startIf(h != nil && h.Fetched != nil) }
func (h *Hooks) userInfoStart() time.Time { return startIf(h != nil && h.UserInfoFetched != nil) }

func startIf(timed bool) time.Time {
	if !timed {
		return time.Time{}
	}
	return time.Now()
}
