package fief

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fief-go/fief/internal/jose"
	"github.com/fief-go/fief/internal/keyset"
)

// verifyJWS checks the signature of a parsed token with the tenant keys:
// the key named by kid, or every key when the token has no kid, and returns
// the key that verified it. An unknown kid triggers a key-set refresh only
// when the key set's limits allow one and mayRefresh, called then,
// approves. mkErr builds the token-class error (access or ID token).
func (c *Client) verifyJWS(ctx context.Context, j *jose.JWS, mayRefresh func() bool, mkErr func(string) error) (keyset.Key, error) {
	if j.Header.Kid != "" {
		key, err := c.keys.Get(ctx, j.Header.Kid, mayRefresh)
		switch {
		case errors.Is(err, keyset.ErrUnknownKey):
			return key, mkErr(err.Error())
		case err != nil:
			return key, err
		}
		if err := j.Verify(key.Public); err != nil {
			return key, mkErr(err.Error())
		}
		return key, nil
	}
	keys, err := c.keys.All(ctx)
	if err != nil {
		return keyset.Key{}, err
	}
	for _, k := range keys {
		if j.Verify(k.Public) == nil {
			return k, nil
		}
	}
	return keyset.Key{}, mkErr(jose.ErrSignature.Error())
}

// always approves every key-set refresh.
func always() bool { return true }

// Requirement is a condition on an access token: a scope, a minimum ACR or
// a permission. The same values configure the middleware.
type Requirement func(*requirements)

type requirements struct {
	scopes      []string
	acr         ACR
	permissions []string
}

// RequireScopes requires every given scope.
func RequireScopes(scopes ...string) Requirement {
	return func(r *requirements) { r.scopes = append(r.scopes, scopes...) }
}

// RequireACR requires an ACR of at least acr.
func RequireACR(acr ACR) Requirement {
	return func(r *requirements) {
		if acr > r.acr {
			r.acr = acr
		}
	}
}

// RequirePermissions requires every given permission.
func RequirePermissions(permissions ...string) Requirement {
	return func(r *requirements) { r.permissions = append(r.permissions, permissions...) }
}

func collect(reqs []Requirement) requirements {
	var r requirements
	for _, f := range reqs {
		f(&r)
	}
	return r
}

// check applies the requirements to a valid token, in the reference
// client's order: scopes, then ACR, then permissions.
func (r *requirements) check(info AccessTokenInfo) error {
	for _, s := range r.scopes {
		if !info.HasScope(s) {
			return fmt.Errorf("%w: %q", ErrAccessTokenMissingScope, s)
		}
	}
	if info.ACR() < r.acr {
		return fmt.Errorf("%w: have %s, need %s", ErrAccessTokenACRTooLow, info.ACR(), r.acr)
	}
	for _, p := range r.permissions {
		if !info.HasPermission(p) {
			return fmt.Errorf("%w: %q", ErrAccessTokenMissingPermission, p)
		}
	}
	return nil
}

// ValidateAccessToken validates an access token offline with the tenant key
// set and returns what it says. Checks, in order: compact JWS of at most 16
// KiB, every part canonical base64url; a header without duplicate members,
// without crit/b64/jku/x5u/x5c/jwk/zip, with alg RS256; the signature by
// the tenant key named by kid (every tenant key when there is no kid);
// claims without duplicate members; exp present and not past, nbf and iat
// not in the future (with the leeway); iss equal to the tenant's issuer; aud
// containing one of the accepted audiences (the Client's own ID unless
// [WithAudiences] or [SkipAudienceCheck] says otherwise); scope, acr and
// permissions present and well-typed; sub a UUID; then reqs.
//
// Token errors wrap [ErrAccessTokenInvalid], [ErrAccessTokenExpired],
// [ErrAccessTokenMissingScope], [ErrAccessTokenACRTooLow] or
// ErrAccessTokenMissingPermission. When the key set cannot be fetched at all
// the error wraps [ErrDiscovery] instead. The only network requests are the
// first discovery and key-set fetches, a refresh for an unknown key ID, and
// the background refresh of a key set older than [KeySetMaxAge].
func (c *Client) ValidateAccessToken(ctx context.Context, accessToken string, reqs ...Requirement) (AccessTokenInfo, error) {
	start := c.hooks.checkStart()
	info, cached, err := c.verifyAccessToken(ctx, accessToken)
	if err == nil {
		r := collect(reqs)
		err = r.check(info)
	}
	c.hooks.tokenChecked(ctx, start, cached, err)
	if err != nil {
		return AccessTokenInfo{}, err
	}
	return info, nil
}

// verifyAccessToken does every check of [Client.ValidateAccessToken] but the
// requirements. A token seen before and still cached skips the signature
// and JSON work: its result depends only on the token's bytes and the key,
// which must still be published; its expiry is checked again (strictly,
// without leeway: a token within its leeway takes the full path). cached
// tells a cache hit.
func (c *Client) verifyAccessToken(ctx context.Context, token string) (info AccessTokenInfo, cached bool, err error) {
	now := c.now()
	info, version, ok := c.lookupToken(token, now)
	if ok {
		return info, true, nil
	}
	info, key, err := c.verifyAccessTokenFull(ctx, token, now)
	if err != nil {
		return AccessTokenInfo{}, false, err
	}
	if c.tokens != nil {
		// The token is usually a substring of a request header (or of the
		// Cookie line, or of the raw query), which the cache would keep
		// alive, up to 1 MiB, for the token's lifetime: keep a copy. The
		// info is not shared yet.
		token = strings.Clone(token)
		info.t.token = token
		c.tokens.Put(token, verifiedToken{info: info, key: key}, info.t.expiry, version, now)
	}
	return info, false, nil
}

// cachedAccessToken returns the info of token if the verified-token cache
// holds it, as verifyAccessToken would.
func (c *Client) cachedAccessToken(token string) (AccessTokenInfo, bool) {
	info, _, ok := c.lookupToken(token, c.now())
	return info, ok
}

// lookupToken reads the verified-token cache, if any, at now. version is
// the key set's, which a token verified after a miss is stored under: one
// verified with keys that changed meanwhile is never served as current.
// Reading it also starts the key set's age-driven refresh, which must run
// on cache hits too.
func (c *Client) lookupToken(token string, now time.Time) (info AccessTokenInfo, version uint64, ok bool) {
	if c.tokens == nil {
		return AccessTokenInfo{}, 0, false
	}
	version = c.keys.Version(now)
	e, ok := c.tokens.Get(token, now, version, c.keyHeld)
	if !ok {
		return AccessTokenInfo{}, version, false
	}
	return e.Value.info, version, true
}

// verifyAccessTokenFull verifies the token's signature and claims.
func (c *Client) verifyAccessTokenFull(ctx context.Context, token string, now time.Time) (AccessTokenInfo, keyset.Key, error) {
	var key keyset.Key
	j, err := jose.ParseJWS(token)
	if err != nil {
		return AccessTokenInfo{}, key, invalidAccessToken(err.Error())
	}
	issuer, err := c.tenantIssuer(ctx)
	if err != nil {
		return AccessTokenInfo{}, key, err
	}
	// The claims are decoded once the signature is verified, so that a
	// forged token naming a known key costs no JSON work. A token naming an
	// unknown key has its issuer and validity period read before, when a
	// key-set refresh could start, to decide whether it may: one that would
	// be refused anyway never does, so forged tokens cannot steer requests
	// to Fief.
	plausible := func() bool {
		var tc jose.TimeClaims
		return j.DecodePayload() == nil && json.Unmarshal(j.Payload, &tc) == nil &&
			tc.CheckTimes(now, c.leeway) == nil && tc.Iss == issuer
	}
	if key, err = c.verifyJWS(ctx, &j, plausible, invalidAccessToken); err != nil {
		return AccessTokenInfo{}, key, err
	}
	if err := j.DecodePayload(); err != nil {
		return AccessTokenInfo{}, key, invalidAccessToken(err.Error())
	}
	// One copy of the payload as a string: the claims' strings are its
	// substrings, so that the info holds them with no copy each.
	claims, err := jose.ParseAccessClaims(string(j.Payload))
	if err != nil {
		return AccessTokenInfo{}, key, invalidAccessToken(err.Error())
	}
	timeErr := claims.CheckTimes(now, c.leeway)
	switch {
	case errors.Is(timeErr, jose.ErrExpired):
		return AccessTokenInfo{}, key, fmt.Errorf("%w: %w", ErrAccessTokenExpired, timeErr)
	case timeErr != nil:
		return AccessTokenInfo{}, key, invalidAccessToken(timeErr.Error())
	case claims.Iss != issuer:
		return AccessTokenInfo{}, key, invalidAccessToken(jose.ErrIssuer.Error())
	case len(c.audiences) > 0 && !claims.Aud.Contains(c.audiences):
		return AccessTokenInfo{}, key, invalidAccessToken(jose.ErrAudience.Error())
	case !claims.ScopeSet:
		return AccessTokenInfo{}, key, invalidAccessToken("no scope claim")
	case !claims.ACRSet:
		return AccessTokenInfo{}, key, invalidAccessToken("no acr claim")
	case !claims.PermissionsSet:
		return AccessTokenInfo{}, key, invalidAccessToken("no permissions claim")
	}
	acr, err := ParseACR(claims.ACR)
	if err != nil {
		return AccessTokenInfo{}, key, invalidAccessToken("acr is not \"0\" or \"1\"")
	}
	id, ok := canonicalUUID(claims.Sub)
	if !ok {
		return AccessTokenInfo{}, key, invalidAccessToken("sub is not a UUID")
	}
	return AccessTokenInfo{&tokenInfo{
		userID:      id,
		scopes:      strings.Fields(claims.Scope),
		acr:         acr,
		permissions: slices.Clip(claims.Permissions),
		expiry:      claims.Exp.Time,
		token:       token,
	}}, key, nil
}

// canonicalUUID parses a UUID in its hyphenated form (any case) and returns
// it in lower case: s itself when it is (Fief's are), else a copy.
func canonicalUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	lower := true
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if ch != '-' {
				return "", false
			}
		case '0' <= ch && ch <= '9', 'a' <= ch && ch <= 'f':
		case 'A' <= ch && ch <= 'F':
			lower = false
		default:
			return "", false
		}
	}
	if lower {
		return s, true
	}
	return strings.ToLower(s), true
}

// decodeIDToken decrypts (when an encryption key is set) and verifies an ID
// token, checks c_hash and at_hash when present, and returns every claim.
// code and accessToken may be empty; a c_hash (at_hash) claim then fails.
func (c *Client) decodeIDToken(ctx context.Context, idToken, code, accessToken string) (UserInfo, error) {
	inner := idToken
	if c.encKey != nil {
		plain, err := jose.Decrypt(idToken, c.encKey)
		if err != nil {
			return UserInfo{}, invalidIDToken(err.Error())
		}
		inner = string(plain)
	}
	j, err := jose.ParseJWS(inner)
	if err != nil {
		return UserInfo{}, invalidIDToken(err.Error())
	}
	if _, err := c.verifyJWS(ctx, &j, always, invalidIDToken); err != nil {
		return UserInfo{}, err
	}
	if err := j.DecodePayload(); err != nil {
		return UserInfo{}, invalidIDToken(err.Error())
	}
	var reg struct {
		jose.Registered
		CHash  *string `json:"c_hash"`
		ATHash *string `json:"at_hash"`
	}
	if err := json.Unmarshal(j.Payload, &reg); err != nil {
		return UserInfo{}, invalidIDToken(jose.ErrClaims.Error())
	}
	issuer, err := c.tenantIssuer(ctx)
	if err != nil {
		return UserInfo{}, err
	}
	if err := reg.CheckTimes(c.now(), c.leeway); err != nil {
		return UserInfo{}, invalidIDToken(err.Error())
	}
	if reg.Iss != issuer {
		return UserInfo{}, invalidIDToken(jose.ErrIssuer.Error())
	}
	if !reg.Aud.Contains([]string{c.clientID}) {
		return UserInfo{}, invalidIDToken("audience does not contain the client ID")
	}
	if reg.CHash != nil && (code == "" || !jose.HashMatches(*reg.CHash, code)) {
		return UserInfo{}, invalidIDToken("c_hash does not match the code")
	}
	if reg.ATHash != nil && (accessToken == "" || !jose.HashMatches(*reg.ATHash, accessToken)) {
		return UserInfo{}, invalidIDToken("at_hash does not match the access token")
	}
	info, err := ParseUserInfo(j.Payload)
	if err != nil {
		return UserInfo{}, invalidIDToken(jose.ErrClaims.Error())
	}
	return info, nil
}
