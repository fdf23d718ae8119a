package fief

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fief-go/fief/internal/jose"
	"github.com/fief-go/fief/internal/keyset"
	"github.com/fief-go/fief/internal/oidc"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"golang.org/x/oauth2"
)

// openIDConfig returns the tenant's OpenID configuration, fetching it on
// first use. Failures wrap ErrDiscovery (and a *RequestError for an HTTP
// error status) and are not cached.
func (c *Client) openIDConfig(ctx context.Context) (*oidc.Config, error) {
	cfg, err := c.provider.Config(ctx)
	if err != nil {
		var se *oidc.StatusError
		if errors.As(err, &se) {
			err = &RequestError{Endpoint: "discovery", StatusCode: se.StatusCode, Body: se.Body}
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrDiscovery, c.provider.URL(), err)
	}
	return cfg, nil
}

// fetchKeys downloads the tenant's key set. Only RSA signing keys are kept;
// Fief publishes them without alg, and RS256 is pinned at verification.
func (c *Client) fetchKeys(ctx context.Context) ([]keyset.Key, error) {
	cfg, err := c.openIDConfig(ctx)
	if err != nil {
		return nil, err
	}
	fail := func(err error) error { return fmt.Errorf("%w: key set %s: %w", ErrDiscovery, cfg.JWKSURI, err) }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.JWKSURI, nil)
	if err != nil {
		return nil, fail(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fail(err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fail(&RequestError{Endpoint: "jwks", StatusCode: resp.StatusCode, Body: oidc.Snippet(resp.Body)})
	}
	set, err := jwk.Parse(resp.Body)
	if err != nil {
		return nil, fail(errors.New("answer is not a JSON Web Key Set"))
	}
	keys := make([]keyset.Key, 0, set.Len())
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if k.KeyType() != "RSA" || (k.KeyUsage() != "" && k.KeyUsage() != "sig") {
			continue
		}
		if alg := k.Algorithm().String(); alg != "" && alg != "RS256" {
			continue
		}
		var pub rsa.PublicKey
		if err := k.Raw(&pub); err != nil || pub.N.BitLen() < 2048 {
			continue
		}
		keys = append(keys, keyset.Key{ID: k.KeyID(), Public: &pub})
	}
	if len(keys) == 0 {
		return nil, fail(errors.New("no usable RSA signing key"))
	}
	return keys, nil
}

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

// accessClaims are the claims of a Fief access token. Pointers tell a
// missing claim from an empty one; a claim of the wrong JSON type fails the
// decoding. Its member names must be in jose's decodedNames, so that tokens
// spell them exactly.
type accessClaims struct {
	jose.Registered
	Scope       jose.Optional[string]       `json:"scope"`
	ACR         jose.Optional[string]       `json:"acr"`
	Permissions jose.Optional[jose.Strings] `json:"permissions"`
}

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
// set and returns what it says. Checks, in order: compact RS256 JWS of at
// most 16 KiB with no crit/jku/x5u/x5c/jwk header; signature by the tenant
// key named by kid (every tenant key when there is no kid); exp present and
// not past, nbf and iat not in the future (with the leeway); iss equal to the
// discovered issuer; aud among the accepted audiences when configured; then
// scope, acr and permissions present, well-typed and satisfying reqs; sub a
// UUID.
//
// Token errors wrap ErrAccessTokenInvalid, ErrAccessTokenExpired,
// ErrAccessTokenMissingScope, ErrAccessTokenACRTooLow or
// ErrAccessTokenMissingPermission. When the key set cannot be fetched at all
// the error wraps ErrDiscovery instead. The only network requests are the
// first discovery and key-set fetches and a refresh for an unknown key ID.
func (c *Client) ValidateAccessToken(ctx context.Context, accessToken string, reqs ...Requirement) (AccessTokenInfo, error) {
	info, err := c.verifyAccessToken(ctx, accessToken)
	if err != nil {
		return AccessTokenInfo{}, err
	}
	r := collect(reqs)
	if err := r.check(info); err != nil {
		return AccessTokenInfo{}, err
	}
	return info, nil
}

// verifiedToken is what the verified-token cache remembers of a token.
type verifiedToken struct {
	info AccessTokenInfo // immutable, shared by every hit
	key  keyset.Key      // the key that verified the signature
}

// verifyAccessToken does every check of ValidateAccessToken but the
// requirements. A token seen before and still cached skips the signature
// and JSON work: its result depends only on the token's bytes and the key,
// which must still be published; its expiry is checked again (strictly,
// without leeway: a token within its leeway takes the full path).
func (c *Client) verifyAccessToken(ctx context.Context, token string) (AccessTokenInfo, error) {
	now := c.now()
	version := c.keys.Version(now)
	if c.tokens != nil {
		if e, ok := c.tokens.Get(token, now, version, c.keyHeld); ok {
			return e.Value.info, nil
		}
	}
	info, key, err := c.verifyAccessTokenFull(ctx, token, now)
	if err != nil {
		return AccessTokenInfo{}, err
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
	return info, nil
}

// verifyAccessTokenFull verifies the token's signature and claims.
func (c *Client) verifyAccessTokenFull(ctx context.Context, token string, now time.Time) (AccessTokenInfo, keyset.Key, error) {
	var key keyset.Key
	j, err := jose.ParseJWS(token)
	if err != nil {
		return AccessTokenInfo{}, key, invalidAccessToken(err.Error())
	}
	cfg, err := c.openIDConfig(ctx)
	if err != nil {
		return AccessTokenInfo{}, key, err
	}
	// The claims are decoded once the signature is verified, so that a
	// forged token costs no JSON work. Only a token naming an unknown key
	// has its issuer and validity period read before, to decide whether it
	// may trigger a key-set refresh: one that would be refused anyway
	// never does, so forged tokens cannot steer requests to Fief.
	plausible := func() bool {
		var tc jose.TimeClaims
		return j.DecodePayload() == nil && json.Unmarshal(j.Payload, &tc) == nil &&
			tc.CheckTimes(now, c.leeway) == nil && tc.Iss == cfg.Issuer
	}
	if key, err = c.verifyJWS(ctx, &j, plausible, invalidAccessToken); err != nil {
		return AccessTokenInfo{}, key, err
	}
	if err := j.DecodePayload(); err != nil {
		return AccessTokenInfo{}, key, invalidAccessToken(err.Error())
	}
	var claims accessClaims
	if err := json.Unmarshal(j.Payload, &claims); err != nil {
		return AccessTokenInfo{}, key, invalidAccessToken(jose.ErrClaims.Error())
	}
	timeErr := claims.CheckTimes(now, c.leeway)
	switch {
	case errors.Is(timeErr, jose.ErrExpired):
		return AccessTokenInfo{}, key, fmt.Errorf("%w: %w", ErrAccessTokenExpired, timeErr)
	case timeErr != nil:
		return AccessTokenInfo{}, key, invalidAccessToken(timeErr.Error())
	case claims.Iss != cfg.Issuer:
		return AccessTokenInfo{}, key, invalidAccessToken(jose.ErrIssuer.Error())
	case len(c.audiences) > 0 && !claims.Aud.Contains(c.audiences):
		return AccessTokenInfo{}, key, invalidAccessToken(jose.ErrAudience.Error())
	case !claims.Scope.Set:
		return AccessTokenInfo{}, key, invalidAccessToken("no scope claim")
	case !claims.ACR.Set:
		return AccessTokenInfo{}, key, invalidAccessToken("no acr claim")
	case !claims.Permissions.Set:
		return AccessTokenInfo{}, key, invalidAccessToken("no permissions claim")
	}
	acr, err := ParseACR(claims.ACR.Value)
	if err != nil {
		return AccessTokenInfo{}, key, invalidAccessToken("acr is not \"0\" or \"1\"")
	}
	id, ok := canonicalUUID(claims.Sub)
	if !ok {
		return AccessTokenInfo{}, key, invalidAccessToken("sub is not a UUID")
	}
	return AccessTokenInfo{&accessToken{
		userID:      id,
		scopes:      strings.Fields(claims.Scope.Value),
		acr:         acr,
		permissions: slices.Clip([]string(claims.Permissions.Value)),
		expiry:      claims.Exp.Time,
		token:       token,
	}}, key, nil
}

// canonicalUUID parses a UUID in its hyphenated form (any case) and returns
// it in lower case.
func canonicalUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	b := []byte(s)
	for i, ch := range b {
		switch i {
		case 8, 13, 18, 23:
			if ch != '-' {
				return "", false
			}
			continue
		}
		switch {
		case '0' <= ch && ch <= '9', 'a' <= ch && ch <= 'f':
		case 'A' <= ch && ch <= 'F':
			b[i] = ch + ('a' - 'A')
		default:
			return "", false
		}
	}
	return string(b), true
}

// decodeIDToken decrypts (when an encryption key is set) and verifies an ID
// token, checks c_hash and at_hash when present, and returns every claim.
// code and accessToken may be empty; a c_hash (at_hash) claim then fails.
func (c *Client) decodeIDToken(ctx context.Context, idToken, code, accessToken string) (UserInfo, error) {
	inner := idToken
	if c.encKey != nil {
		plain, err := jose.Decrypt(idToken, c.encKey)
		if err != nil {
			return nil, invalidIDToken(err.Error())
		}
		inner = string(plain)
	}
	j, err := jose.ParseJWS(inner)
	if err != nil {
		return nil, invalidIDToken(err.Error())
	}
	if _, err := c.verifyJWS(ctx, &j, always, invalidIDToken); err != nil {
		return nil, err
	}
	if err := j.DecodePayload(); err != nil {
		return nil, invalidIDToken(err.Error())
	}
	var reg struct {
		jose.Registered
		CHash  *string `json:"c_hash"`
		ATHash *string `json:"at_hash"`
	}
	if err := json.Unmarshal(j.Payload, &reg); err != nil {
		return nil, invalidIDToken(jose.ErrClaims.Error())
	}
	cfg, err := c.openIDConfig(ctx)
	if err != nil {
		return nil, err
	}
	if err := reg.CheckTimes(c.now(), c.leeway); err != nil {
		return nil, invalidIDToken(err.Error())
	}
	if reg.Iss != cfg.Issuer {
		return nil, invalidIDToken(jose.ErrIssuer.Error())
	}
	if !reg.Aud.Contains([]string{c.clientID}) {
		return nil, invalidIDToken("audience does not contain the client ID")
	}
	if reg.CHash != nil && (code == "" || !jose.HashMatches(*reg.CHash, code)) {
		return nil, invalidIDToken("c_hash does not match the code")
	}
	if reg.ATHash != nil && (accessToken == "" || !jose.HashMatches(*reg.ATHash, accessToken)) {
		return nil, invalidIDToken("at_hash does not match the access token")
	}
	info, err := decodeUserInfo(j.Payload)
	if err != nil {
		return nil, invalidIDToken(jose.ErrClaims.Error())
	}
	return info, nil
}

// AuthURLOptions are the optional parameters of AuthURL.
type AuthURLOptions struct {
	// State is echoed back to the redirect URI; use it against CSRF.
	State string
	// Scopes to request. Fief requires "openid"; add "offline_access" for
	// a refresh token.
	Scopes []string
	// CodeChallenge and CodeChallengeMethod ("S256" or "plain") enable PKCE;
	// both are sent only when both are set, as in the reference client.
	CodeChallenge       string
	CodeChallengeMethod string
	// Lang selects the language of Fief's pages (e.g. "fr").
	Lang string
	// Extra parameters (e.g. "prompt", "acr_values", "login_hint",
	// "screen"). An extra with the name of a standard parameter replaces its
	// value in place; others follow in key order.
	Extra map[string]string
}

// AuthURL returns the URL of Fief's authorization page for redirectURI,
// which must be registered on the client. The parameters and their encoding
// are the reference client's: response_type=code, client_id, redirect_uri,
// then state, scope, code_challenge and code_challenge_method, lang and the
// extras, in that order.
func (c *Client) AuthURL(ctx context.Context, redirectURI string, o AuthURLOptions) (string, error) {
	cfg, err := c.openIDConfig(ctx)
	if err != nil {
		return "", err
	}
	type param struct{ k, v string }
	params := []param{{"response_type", "code"}, {"client_id", c.clientID}, {"redirect_uri", redirectURI}}
	if o.State != "" {
		params = append(params, param{"state", o.State})
	}
	if len(o.Scopes) > 0 {
		params = append(params, param{"scope", strings.Join(o.Scopes, " ")})
	}
	if o.CodeChallenge != "" && o.CodeChallengeMethod != "" {
		params = append(params, param{"code_challenge", o.CodeChallenge}, param{"code_challenge_method", o.CodeChallengeMethod})
	}
	if o.Lang != "" {
		params = append(params, param{"lang", o.Lang})
	}
	extra := make(map[string]string, len(o.Extra))
	for k, v := range o.Extra {
		extra[k] = v
	}
	for i, p := range params {
		if v, ok := extra[p.k]; ok {
			params[i].v = v
			delete(extra, p.k)
		}
	}
	for _, k := range sortedKeys(extra) {
		params = append(params, param{k, extra[k]})
	}
	var b strings.Builder
	b.WriteString(cfg.AuthorizationEndpoint)
	sep := byte('?')
	if strings.Contains(cfg.AuthorizationEndpoint, "?") {
		sep = '&'
	}
	for _, p := range params {
		b.WriteByte(sep)
		sep = '&'
		b.WriteString(url.QueryEscape(p.k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p.v))
	}
	return b.String(), nil
}

// oauth2Config returns the x/oauth2 configuration of the token endpoint.
// Credentials go in the form body (client_secret_post, or client_id alone
// for a public client), as the reference client sends them.
func (c *Client) oauth2Config(cfg *oidc.Config, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.clientID,
		ClientSecret: c.clientSecret,
		RedirectURL:  redirectURI,
		Endpoint: oauth2.Endpoint{
			AuthURL:   cfg.AuthorizationEndpoint,
			TokenURL:  cfg.TokenEndpoint,
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

// AuthCallback exchanges the authorization code received on redirectURI for
// tokens, then decodes the ID token (checking its c_hash and at_hash) and
// returns its claims. codeVerifier is the PKCE verifier, or "" without PKCE.
// A refusal by Fief is a *RequestError (e.g. status 400, body
// {"error":"invalid_grant"}); a bad ID token wraps ErrIDTokenInvalid.
func (c *Client) AuthCallback(ctx context.Context, code, redirectURI, codeVerifier string) (*Tokens, UserInfo, error) {
	cfg, err := c.openIDConfig(ctx)
	if err != nil {
		return nil, nil, err
	}
	var opts []oauth2.AuthCodeOption
	if codeVerifier != "" {
		opts = append(opts, oauth2.VerifierOption(codeVerifier))
	}
	ctx, cancel := context.WithTimeout(ctx, c.http.Timeout)
	defer cancel()
	tok, err := c.oauth2Config(cfg, redirectURI).Exchange(c.oauth2Context(ctx), code, opts...)
	if err != nil {
		return nil, nil, tokenEndpointError(err)
	}
	tokens := &Tokens{
		AccessToken:  tok.AccessToken,
		TokenType:    tok.TokenType,
		ExpiresIn:    tok.ExpiresIn,
		RefreshToken: tok.RefreshToken,
		Expiry:       tok.Expiry,
	}
	tokens.IDToken, _ = tok.Extra("id_token").(string)
	if tokens.IDToken == "" {
		return nil, nil, invalidIDToken("token response has no id_token")
	}
	info, err := c.decodeIDToken(ctx, tokens.IDToken, code, tokens.AccessToken)
	if err != nil {
		return nil, nil, err
	}
	return tokens, info, nil
}

// oauth2Context hands the client's HTTP client to x/oauth2, which reads it
// from the context.
func (c *Client) oauth2Context(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.hc)
}

// tokenEndpointError turns an x/oauth2 error into a *RequestError when Fief
// answered, keeping the cause otherwise.
func tokenEndpointError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return &RequestError{Endpoint: "token", StatusCode: re.Response.StatusCode, Body: oidc.Snippet(re.Body)}
	}
	return fmt.Errorf("fief: token request: %w", err)
}

// AuthRefreshToken gets new tokens with a refresh token. Fief rotates
// refresh tokens: use Tokens.RefreshToken from now on. With scopes, the new
// tokens are narrowed to them (a subset of the original scopes); the chain
// ends unless "offline_access" is among them. Refreshed tokens have ACR 0.
// The returned UserInfo holds the new ID token's claims (nil if Fief sent no
// ID token). x/oauth2's refresher cannot send a scope, so this method posts
// the refresh grant itself, with the same client authentication.
func (c *Client) AuthRefreshToken(ctx context.Context, refreshToken string, scopes ...string) (*Tokens, UserInfo, error) {
	cfg, err := c.openIDConfig(ctx)
	if err != nil {
		return nil, nil, err
	}
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
		"client_id":     {c.clientID},
	}
	if c.clientSecret != "" {
		form.Set("client_secret", c.clientSecret)
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, fmt.Errorf("fief: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	body, err := c.send(req, "token")
	if err != nil {
		return nil, nil, err
	}
	var tokens Tokens
	if err := json.Unmarshal(body, &tokens); err != nil || tokens.AccessToken == "" {
		return nil, nil, errors.New("fief: token response is not valid JSON with an access_token")
	}
	if tokens.ExpiresIn > 0 {
		tokens.Expiry = c.now().Add(time.Duration(tokens.ExpiresIn) * time.Second)
	}
	if tokens.IDToken == "" {
		return &tokens, nil, nil
	}
	info, err := c.decodeIDToken(ctx, tokens.IDToken, "", tokens.AccessToken)
	if err != nil {
		return nil, nil, err
	}
	return &tokens, info, nil
}

// send performs req and returns the body of a 2xx answer; other statuses
// become a *RequestError for endpoint.
func (c *Client) send(req *http.Request, endpoint string) ([]byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fief: %s request: %w", endpoint, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &RequestError{Endpoint: endpoint, StatusCode: resp.StatusCode, Body: oidc.Snippet(resp.Body)}
	}
	return resp.Body, nil
}

// userRequest calls one of Fief's user endpoints with the access token and
// decodes the user's claims from the answer.
func (c *Client) userRequest(ctx context.Context, method, endpointURL, endpoint, accessToken string, payload any) (UserInfo, error) {
	var body *bytes.Reader
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("fief: %s request: %w", endpoint, err)
		}
		body = bytes.NewReader(b)
	}
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequestWithContext(ctx, method, endpointURL, body)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, endpointURL, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("fief: %s request: %w", endpoint, err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	b, err := c.send(req, endpoint)
	if err != nil {
		return nil, err
	}
	info, err := decodeUserInfo(b)
	if err != nil {
		return nil, fmt.Errorf("fief: %s response is not a JSON object", endpoint)
	}
	return info, nil
}

// apiURL returns the URL of one of Fief's /api endpoints under the base URL.
func (c *Client) apiURL(path string) string {
	return c.baseURL.String() + path
}

// UserInfo fetches the user's claims from Fief's userinfo endpoint with the
// access token. A token Fief refuses gives a *RequestError with status 401.
func (c *Client) UserInfo(ctx context.Context, accessToken string) (UserInfo, error) {
	cfg, err := c.openIDConfig(ctx)
	if err != nil {
		return nil, err
	}
	return c.userRequest(ctx, http.MethodGet, cfg.UserinfoEndpoint, "userinfo", accessToken, nil)
}

// UpdateProfile updates the user's custom fields (by slug) and returns the
// updated claims. Fields Fief does not let users update are ignored by Fief.
func (c *Client) UpdateProfile(ctx context.Context, accessToken string, fields map[string]any) (UserInfo, error) {
	return c.userRequest(ctx, http.MethodPatch, c.apiURL("/api/profile"), "profile", accessToken,
		map[string]any{"fields": fields})
}

// ChangePassword changes the user's password. Fief requires an access token
// with ACR 1 (a *RequestError with status 403 and ACR_TOO_LOW otherwise)
// and a strong enough password (status 400, USER_UPDATE_INVALID_PASSWORD).
func (c *Client) ChangePassword(ctx context.Context, accessToken, newPassword string) (UserInfo, error) {
	return c.userRequest(ctx, http.MethodPatch, c.apiURL("/api/password"), "password", accessToken,
		map[string]string{"password": newPassword})
}

// EmailChange asks Fief to change the user's email address. Fief sends a
// code to the new address and answers with the claims unchanged; the change
// takes effect with EmailVerify. Requires ACR 1.
func (c *Client) EmailChange(ctx context.Context, accessToken, email string) (UserInfo, error) {
	return c.userRequest(ctx, http.MethodPatch, c.apiURL("/api/email/change"), "email_change", accessToken,
		map[string]string{"email": email})
}

// EmailVerify completes an email change with the code the user received and
// returns the claims with the new address. Requires ACR 1.
func (c *Client) EmailVerify(ctx context.Context, accessToken, code string) (UserInfo, error) {
	return c.userRequest(ctx, http.MethodPost, c.apiURL("/api/email/verify"), "email_verify", accessToken,
		map[string]string{"code": code})
}

// LogoutURL returns the URL of Fief's logout page, which ends the user's
// Fief session and redirects to redirectURI. It makes no request.
func (c *Client) LogoutURL(redirectURI string) string {
	return c.baseURL.String() + "/logout?redirect_uri=" + url.QueryEscape(redirectURI)
}

// GenerateCodeVerifier returns a new random PKCE code verifier (32 random
// bytes, base64url: golang.org/x/oauth2's GenerateVerifier).
func GenerateCodeVerifier() string { return oauth2.GenerateVerifier() }

// CodeChallenge returns the PKCE challenge of verifier for method "S256"
// (recommended) or "plain".
func CodeChallenge(verifier, method string) (string, error) {
	switch method {
	case "S256":
		return oauth2.S256ChallengeFromVerifier(verifier), nil
	case "plain":
		return verifier, nil
	}
	return "", fmt.Errorf("fief: unknown code challenge method %q", method)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
