package fief

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Tokens is the token endpoint's answer. Its JSON form is Fief's, plus
// expiry.
type Tokens struct {
	// AccessToken is the access token (a JWS), for the Authorization
	// header of requests to the application's APIs and to Fief's.
	AccessToken string `json:"access_token"`
	// IDToken is the raw ID token, encrypted (JWE) when the client has an
	// encryption key.
	IDToken string `json:"id_token"`
	// TokenType is the type of AccessToken: Fief answers "bearer".
	TokenType string `json:"token_type"`
	// ExpiresIn is the lifetime of the access and ID tokens, in seconds.
	ExpiresIn int64 `json:"expires_in"`
	// RefreshToken is empty unless the offline_access scope was granted.
	RefreshToken string `json:"refresh_token,omitempty"`
	// Expiry is when the access token expires, computed from ExpiresIn at
	// reception. It is not part of Fief's answer.
	Expiry time.Time `json:"expiry,omitzero"`
}

// OAuth2Token returns the tokens as an [oauth2.Token], for the
// golang.org/x/oauth2 ecosystem; the ID token is its Extra("id_token").
// For a token that refreshes itself, see [Client.TokenSource].
func (t *Tokens) OAuth2Token() *oauth2.Token {
	tok := &oauth2.Token{
		AccessToken:  t.AccessToken,
		TokenType:    t.TokenType,
		RefreshToken: t.RefreshToken,
		Expiry:       t.Expiry,
		ExpiresIn:    t.ExpiresIn,
	}
	if t.IDToken != "" {
		tok = tok.WithExtra(map[string]any{"id_token": t.IDToken})
	}
	return tok
}

// AuthURLOptions are the optional parameters of [Client.AuthURL].
type AuthURLOptions struct {
	// State is echoed back to the redirect URI; use it against CSRF.
	State string
	// Scopes to request. Fief requires "openid"; add "offline_access" for
	// a refresh token.
	Scopes []string
	// CodeVerifier enables PKCE with the S256 method: the URL carries its
	// challenge, and the same verifier goes to [Client.AuthCallback]. Make
	// one with [GenerateCodeVerifier] for each login.
	CodeVerifier string
	// CodeChallenge is a PKCE challenge computed elsewhere, sent with
	// CodeChallengeMethod; both are sent only when both are set, as in the
	// reference client. Prefer CodeVerifier; AuthURL refuses both.
	CodeChallenge string
	// CodeChallengeMethod is the method of CodeChallenge: "S256" (the
	// SHA-256 of the verifier, base64url) or "plain" (the verifier itself).
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
// extras, in that order. It fetches the OpenID configuration on first use.
func (c *Client) AuthURL(ctx context.Context, redirectURI string, o AuthURLOptions) (string, error) {
	if o.CodeVerifier != "" && (o.CodeChallenge != "" || o.CodeChallengeMethod != "") {
		return "", errors.New("fief: AuthURL: CodeVerifier and CodeChallenge are exclusive")
	}
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
	switch {
	case o.CodeVerifier != "":
		params = append(params, param{"code_challenge", oauth2.S256ChallengeFromVerifier(o.CodeVerifier)}, param{"code_challenge_method", "S256"})
	case o.CodeChallenge != "" && o.CodeChallengeMethod != "":
		params = append(params, param{"code_challenge", o.CodeChallenge}, param{"code_challenge_method", o.CodeChallengeMethod})
	}
	if o.Lang != "" {
		params = append(params, param{"lang", o.Lang})
	}
	extra := maps.Clone(o.Extra)
	for i, p := range params {
		if v, ok := extra[p.k]; ok {
			params[i].v = v
			delete(extra, p.k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(extra)) {
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

// AuthCallback exchanges the authorization code received on redirectURI for
// tokens, then decodes the ID token (checking its c_hash and at_hash) and
// returns its claims. codeVerifier is the PKCE verifier given to
// [Client.AuthURL], or "" without PKCE. A refusal by Fief is a
// [*RequestError] (e.g. status 400, Code "invalid_grant"); a bad ID token
// wraps [ErrIDTokenInvalid].
func (c *Client) AuthCallback(ctx context.Context, code, redirectURI, codeVerifier string) (*Tokens, UserInfo, error) {
	form := url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {redirectURI},
	}
	if codeVerifier != "" {
		form.Set("code_verifier", codeVerifier)
	}
	tokens, err := c.tokenRequest(ctx, form)
	if err != nil {
		return nil, UserInfo{}, err
	}
	if tokens.IDToken == "" {
		return nil, UserInfo{}, invalidIDToken("token response has no id_token")
	}
	info, err := c.decodeIDToken(ctx, tokens.IDToken, code, tokens.AccessToken)
	if err != nil {
		return nil, UserInfo{}, err
	}
	return tokens, info, nil
}

// AuthRefreshToken gets new tokens with a refresh token. Fief rotates
// refresh tokens: use Tokens.RefreshToken from now on, the old one is spent.
// With scopes, the new tokens are narrowed to them (a subset of the
// original scopes); the chain ends unless "offline_access" is among them.
// Refreshed tokens have ACR 0. The returned UserInfo holds the new ID
// token's claims (the zero UserInfo if Fief sent no ID token). A refresh
// token Fief refuses (spent, expired or revoked) gives a [*RequestError]
// whose Code is "invalid_grant".
func (c *Client) AuthRefreshToken(ctx context.Context, refreshToken string, scopes ...string) (*Tokens, UserInfo, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	tokens, err := c.tokenRequest(ctx, form)
	if err != nil {
		return nil, UserInfo{}, err
	}
	if tokens.IDToken == "" {
		return tokens, UserInfo{}, nil
	}
	info, err := c.decodeIDToken(ctx, tokens.IDToken, "", tokens.AccessToken)
	if err != nil {
		return nil, UserInfo{}, err
	}
	return tokens, info, nil
}

// tokenRequest posts a grant to the token endpoint, the one path of the
// code exchange and the refresh. The client authenticates in the form
// body (client_secret_post, or client_id alone for a public client), as
// the reference client does and as Fief accepts for every client type.
func (c *Client) tokenRequest(ctx context.Context, form url.Values) (*Tokens, error) {
	cfg, err := c.openIDConfig(ctx)
	if err != nil {
		return nil, err
	}
	form.Set("client_id", c.clientID)
	if c.clientSecret != "" {
		form.Set("client_secret", c.clientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("fief: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	body, err := c.send(req, "token")
	if err != nil {
		return nil, err
	}
	var tokens Tokens
	if err := json.Unmarshal(body, &tokens); err != nil || tokens.AccessToken == "" {
		return nil, errors.New("fief: token response is not JSON with an access_token")
	}
	if tokens.TokenType != "" && !strings.EqualFold(tokens.TokenType, "bearer") {
		return nil, fmt.Errorf("fief: token response has token_type %.16q, not bearer", tokens.TokenType)
	}
	tokens.Expiry = time.Time{}
	if tokens.ExpiresIn > 0 {
		tokens.Expiry = c.now().Add(time.Duration(tokens.ExpiresIn) * time.Second)
	}
	return &tokens, nil
}

// tokenExpiryDelta is how long before its expiry a TokenSource renews a
// token, as x/oauth2's ReuseTokenSource does by default.
const tokenExpiryDelta = 10 * time.Second

// TokenSource returns an [oauth2.TokenSource] for a Fief session, so that
// golang.org/x/oauth2-based clients (oauth2.NewClient, gRPC's oauth
// credentials) call APIs with its access token. It returns t's access
// token until 10 seconds before it expires, then refreshes the tokens
// through Fief with t's refresh token, keeping the rotated refresh token
// for the next time (or the same one, when Fief's answer has none). onRefresh, when not nil, receives each new set of
// tokens, one call at a time, before Token returns: save them there, since
// the old refresh token is spent. Refreshes are bounded by the client's
// timeout. Without a refresh token, an expired token gives an error
// wrapping [ErrAccessTokenExpired]; a refresh Fief refuses, its
// [*RequestError]. The TokenSource is safe for concurrent use; concurrent
// callers share one refresh.
func (c *Client) TokenSource(t *Tokens, onRefresh func(*Tokens)) oauth2.TokenSource {
	cp := *t
	return &tokenSource{c: c, onRefresh: onRefresh, t: &cp}
}

type tokenSource struct {
	c         *Client
	onRefresh func(*Tokens)

	mu sync.Mutex
	t  *Tokens // the current tokens, never modified
}

func (s *tokenSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t.Expiry.IsZero() || s.c.now().Add(tokenExpiryDelta).Before(s.t.Expiry) {
		return s.t.OAuth2Token(), nil
	}
	if s.t.RefreshToken == "" {
		return nil, fmt.Errorf("%w, and there is no refresh token to renew it", ErrAccessTokenExpired)
	}
	// Token has no context: the refresh is bounded by the client's
	// timeout.
	t, _, err := s.c.AuthRefreshToken(context.Background(), s.t.RefreshToken)
	if err != nil {
		return nil, err
	}
	if t.RefreshToken == "" {
		// An answer without a refresh token leaves the current one in
		// use, as x/oauth2's refreshing sources do.
		cp := *t
		cp.RefreshToken = s.t.RefreshToken
		t = &cp
	}
	s.t = t
	if s.onRefresh != nil {
		cp := *t
		s.onRefresh(&cp)
	}
	return t.OAuth2Token(), nil
}

// LogoutURL returns the URL of Fief's logout page, which ends the user's
// Fief session and redirects to redirectURI. It makes no request.
func (c *Client) LogoutURL(redirectURI string) string {
	return c.baseURL.String() + "/logout?redirect_uri=" + url.QueryEscape(redirectURI)
}

// GenerateCodeVerifier returns a new random PKCE code verifier (32 random
// bytes, base64url: golang.org/x/oauth2's GenerateVerifier), for
// [AuthURLOptions.CodeVerifier] and [Client.AuthCallback].
func GenerateCodeVerifier() string { return oauth2.GenerateVerifier() }
