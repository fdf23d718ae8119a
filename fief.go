// Package fief is a Go client for the Fief authentication server (an OpenID
// Connect provider) and net/http middleware built on it.
//
// A Client performs OpenID discovery, caches the tenant key set (JWKS) and
// refreshes it when Fief rotates its key, builds authorization URLs with
// PKCE, exchanges codes and refreshes tokens through golang.org/x/oauth2,
// decodes (and decrypts) ID tokens, validates access tokens offline and calls
// Fief's user endpoints. It has the methods and the semantics of the official
// Python client, with stricter validation where it is safe: RS256 is pinned,
// exp is required, iss must equal the discovered issuer, audiences can be
// restricted, and every response body is capped.
//
// Construction never touches the network; discovery and the key set are
// fetched on first use and cached. A Client is safe for concurrent use.
package fief

import (
	"crypto/rsa"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fief-go/fief/internal/bg"
	"github.com/fief-go/fief/internal/httpx"
	"github.com/fief-go/fief/internal/keyset"
	"github.com/fief-go/fief/internal/oidc"
	"github.com/fief-go/fief/internal/tokencache"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Default settings of a Client.
const (
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat. It is the
	// reference client's (jwcrypto's) default.
	DefaultLeeway = 60 * time.Second
	// MaxLeeway bounds the leeway a Client accepts.
	MaxLeeway = 5 * time.Minute
	// DefaultTimeout bounds every request the Client makes to Fief.
	DefaultTimeout = 10 * time.Second
	// DefaultKeyRefreshCooldown is the minimum time between two key-set
	// fetches triggered by an unknown key ID.
	DefaultKeyRefreshCooldown = 30 * time.Second
	// KeySetMaxAge is the age after which the cached key set is refreshed
	// in the background at its next use, so that a key Fief no longer
	// publishes stops being trusted within about an hour even when no token
	// names a new key. The cached keys keep serving meanwhile.
	KeySetMaxAge = time.Hour
	// DefaultVerifiedTokenCacheSize is how many verified access tokens a
	// Client remembers by default (a few MiB at most).
	DefaultVerifiedTokenCacheSize = 10000
)

// Client talks to one Fief tenant for one OAuth client. Create it with New.
type Client struct {
	baseURL      *url.URL
	clientID     string
	clientSecret string
	encKey       *rsa.PrivateKey
	leeway       time.Duration
	audiences    []string
	hc           *http.Client
	ownHTTP      bool // hc was created by New: Close may close its connections
	bg           *bg.Group
	http         *httpx.Client
	provider     *oidc.Provider
	keys         *keyset.Set
	tokens       *tokencache.Cache[verifiedToken] // nil when disabled
	keyHeld      func(verifiedToken) bool
	now          func() time.Time
}

// Option configures a Client.
type Option func(*settings) error

type settings struct {
	httpClient  *http.Client
	host        string
	encKeyJSON  string
	leeway      time.Duration
	audiences   []string
	anyAudience bool
	timeout     time.Duration
	cooldown    time.Duration
	cacheSize   int
	now         func() time.Time
}

// WithHTTPClient sets the HTTP client used for every request to Fief. The
// default client has a timeout of DefaultTimeout. The client is not modified.
func WithHTTPClient(c *http.Client) Option {
	return func(s *settings) error {
		if c == nil {
			return errors.New("fief: WithHTTPClient: nil client")
		}
		s.httpClient = c
		return nil
	}
}

// WithHost reaches Fief on the base URL's address while sending this value as
// the HTTP Host header, as the reference client's host parameter does: for
// example base URL http://fief:8000 (a container address) with host
// fief.example.com (the name Fief builds its URLs from). Endpoint URLs from
// discovery are then rewritten to the base URL's scheme and host.
func WithHost(host string) Option {
	return func(s *settings) error {
		if host == "" || strings.ContainsAny(host, "/ \t\r\n") {
			return fmt.Errorf("fief: WithHost: invalid host %q", host)
		}
		s.host = host
		return nil
	}
}

// WithEncryptionKey sets the private JWK (as the JSON text Fief shows once
// when encryption is enabled on the client) used to decrypt ID tokens. When
// it is set, ID tokens must be encrypted; a plain signed ID token is rejected.
func WithEncryptionKey(jwkJSON string) Option {
	return func(s *settings) error {
		s.encKeyJSON = jwkJSON
		return nil
	}
}

// WithLeeway sets the clock skew allowed on exp, nbf and iat (default
// DefaultLeeway, at most MaxLeeway).
func WithLeeway(d time.Duration) Option {
	return func(s *settings) error {
		if d < 0 || d > MaxLeeway {
			return fmt.Errorf("fief: WithLeeway: %v is outside [0, %v]", d, MaxLeeway)
		}
		s.leeway = d
		return nil
	}
}

// WithAudiences sets the audiences of the access tokens the Client
// accepts: a token's aud claim must contain at least one of them. Fief sets
// aud to the client ID of the OAuth client the token was issued to. By
// default a Client accepts only tokens issued to its own client ID, so that
// a token obtained by another application of the tenant (a less trusted
// one, possibly) is not accepted here: a service that serves several
// clients of the tenant names them all, its own included if it accepts its
// own tokens. See [SkipAudienceCheck].
func WithAudiences(aud ...string) Option {
	return func(s *settings) error {
		if len(aud) == 0 {
			return errors.New("fief: WithAudiences: no audience")
		}
		for _, a := range aud {
			if a == "" {
				return errors.New("fief: WithAudiences: empty audience")
			}
		}
		s.audiences, s.anyAudience = slices.Clone(aud), false
		return nil
	}
}

// SkipAudienceCheck makes the Client accept the access tokens of every
// client of the tenant, whatever their aud claim, as the reference Python
// client does. That exposes a service to the confused deputy: any
// application of the tenant, and whoever controls one, can use its users'
// tokens here. Prefer [WithAudiences].
func SkipAudienceCheck() Option {
	return func(s *settings) error {
		s.audiences, s.anyAudience = nil, true
		return nil
	}
}

// WithTimeout bounds every request to Fief (default DefaultTimeout), in
// addition to the caller's context and the HTTP client's own timeout.
func WithTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("fief: WithTimeout: %v is not positive", d)
		}
		s.timeout = d
		return nil
	}
}

// WithKeyRefreshCooldown sets the minimum time between two key-set fetches
// triggered by a token whose key ID is unknown (default
// DefaultKeyRefreshCooldown). Tokens with an unknown key ID that arrive
// within the cooldown fail at once without any request to Fief.
func WithKeyRefreshCooldown(d time.Duration) Option {
	return func(s *settings) error {
		if d < 0 {
			return fmt.Errorf("fief: WithKeyRefreshCooldown: %v is negative", d)
		}
		s.cooldown = d
		return nil
	}
}

// WithVerifiedTokenCache sets how many verified access tokens the Client
// remembers (default DefaultVerifiedTokenCacheSize; 0 disables the cache).
// A token seen again skips the signature check and the claims decoding,
// whose results depend only on the token's bytes and the tenant key; its
// expiry is still checked on every call, the requirements too, and the
// entry is dropped when its key leaves the tenant key set.
func WithVerifiedTokenCache(size int) Option {
	return func(s *settings) error {
		if size < 0 {
			return fmt.Errorf("fief: WithVerifiedTokenCache: negative size %d", size)
		}
		s.cacheSize = size
		return nil
	}
}

// New returns a Client for the Fief tenant at baseURL (for example
// https://fief.example.com, or https://fief.example.com/my-tenant for a
// tenant other than the default one). clientSecret may be empty for a public
// client, which then must use PKCE. New makes no network request.
func New(baseURL, clientID, clientSecret string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("fief: invalid base URL %q: want http(s)://host[/tenant]", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("fief: invalid base URL %q: no query, fragment or credentials allowed", baseURL)
	}
	if clientID == "" {
		return nil, errors.New("fief: empty client ID")
	}
	s := settings{
		leeway:    DefaultLeeway,
		timeout:   DefaultTimeout,
		cooldown:  DefaultKeyRefreshCooldown,
		cacheSize: DefaultVerifiedTokenCacheSize,
		now:       time.Now,
	}
	for _, o := range opts {
		if err := o(&s); err != nil {
			return nil, err
		}
	}
	if s.audiences == nil && !s.anyAudience {
		s.audiences = []string{clientID}
	}
	c := &Client{
		baseURL:      u,
		clientID:     clientID,
		clientSecret: clientSecret,
		leeway:       s.leeway,
		audiences:    s.audiences,
	}
	if s.encKeyJSON != "" {
		if c.encKey, err = parseEncryptionKey(s.encKeyJSON); err != nil {
			return nil, err
		}
	}
	hc := s.httpClient
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone()}
		c.ownHTTP = true
	}
	if s.host != "" {
		hc = httpx.WithHost(hc, s.host)
	}
	hc = httpx.NoBodyRedirects(hc)
	c.hc = hc
	c.http = &httpx.Client{HTTP: hc, Timeout: s.timeout}
	c.bg = bg.New()
	c.provider = oidc.NewProvider(c.http, u, s.host != "", c.bg)
	c.keys = keyset.New(keyset.Config{
		Fetch:      c.fetchKeys,
		Cooldown:   s.cooldown,
		Now:        s.now,
		Background: c.bg,
		MaxAge:     KeySetMaxAge,
	})
	c.now = s.now
	if s.cacheSize > 0 {
		c.tokens = tokencache.New[verifiedToken](s.cacheSize)
		c.keyHeld = func(v verifiedToken) bool { return c.keys.Holds(v.key) }
	}
	return c, nil
}

// Close stops the Client's background fetches (of the OpenID configuration
// and the key set), waits for them, and closes the idle connections of the
// HTTP client New created (not of one given with WithHTTPClient). Calls
// that need Fief fail afterwards; a Client that is simply dropped needs no
// Close.
func (c *Client) Close() error {
	c.bg.Close()
	if c.ownHTTP {
		c.hc.CloseIdleConnections()
	}
	return nil
}

func parseEncryptionKey(jwkJSON string) (*rsa.PrivateKey, error) {
	key, err := jwk.ParseKey([]byte(jwkJSON))
	if err != nil {
		return nil, errors.New("fief: WithEncryptionKey: not a JWK")
	}
	var priv rsa.PrivateKey
	if err := key.Raw(&priv); err != nil {
		return nil, errors.New("fief: WithEncryptionKey: not an RSA private key")
	}
	if priv.N.BitLen() < 2048 {
		return nil, errors.New("fief: WithEncryptionKey: RSA key shorter than 2048 bits")
	}
	return &priv, nil
}

// ACR is an authentication context class reference: how strongly the user
// authenticated. Levels are ordered, so compare them with < and >=.
type ACR uint8

// The ACR levels Fief issues.
const (
	// ACRLevelZero: the session was reused or the token was refreshed.
	ACRLevelZero ACR = 0
	// ACRLevelOne: the user typed a password. Fief requires it to change the
	// password or the email address.
	ACRLevelOne ACR = 1
)

var (
	_ encoding.TextMarshaler   = ACR(0)
	_ encoding.TextUnmarshaler = (*ACR)(nil)
)

// ParseACR parses the string form of an ACR ("0" or "1").
func ParseACR(s string) (ACR, error) {
	switch s {
	case "0":
		return ACRLevelZero, nil
	case "1":
		return ACRLevelOne, nil
	}
	return 0, fmt.Errorf("fief: unknown ACR %q", s)
}

// String returns "0" or "1", the form used in tokens.
func (a ACR) String() string {
	return string('0' + byte(a))
}

// MarshalText implements encoding.TextMarshaler.
func (a ACR) MarshalText() ([]byte, error) {
	if a > ACRLevelOne {
		return nil, fmt.Errorf("fief: unknown ACR %d", a)
	}
	return []byte(a.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *ACR) UnmarshalText(b []byte) error {
	v, err := ParseACR(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Tokens is the token endpoint's answer. Its JSON form is Fief's.
type Tokens struct {
	AccessToken string `json:"access_token"`
	// IDToken is the raw ID token, encrypted (JWE) when the client has an
	// encryption key.
	IDToken   string `json:"id_token"`
	TokenType string `json:"token_type"`
	// ExpiresIn is the lifetime of the access and ID tokens, in seconds.
	ExpiresIn int64 `json:"expires_in"`
	// RefreshToken is empty unless the offline_access scope was granted.
	RefreshToken string `json:"refresh_token,omitempty"`
	// Expiry is when the access token expires, computed from ExpiresIn at
	// reception. It is not part of Fief's answer.
	Expiry time.Time `json:"expiry,omitzero"`
}

// AccessTokenInfo is what a valid access token says. It is an immutable
// value, like [time.Time]: the verified-token cache, the request context
// and every caller share one AccessTokenInfo per token, and its methods
// return copies, so a handler cannot change what another request sees. The
// zero value holds no token ([AccessTokenInfo.IsZero]).
type AccessTokenInfo struct{ t *accessToken }

// accessToken is the content of an AccessTokenInfo, never modified once
// built.
type accessToken struct {
	userID      string
	scopes      []string
	acr         ACR
	permissions []string
	expiry      time.Time
	token       string
}

// IsZero reports whether i holds no token.
func (i AccessTokenInfo) IsZero() bool { return i.t == nil }

// UserID returns the user's UUID (the sub claim), in canonical lower-case
// form.
func (i AccessTokenInfo) UserID() string {
	if i.t == nil {
		return ""
	}
	return i.t.userID
}

// Scopes returns a copy of the granted scopes.
func (i AccessTokenInfo) Scopes() []string {
	if i.t == nil {
		return nil
	}
	return slices.Clone(i.t.scopes)
}

// HasScope reports whether the token grants scope.
func (i AccessTokenInfo) HasScope(scope string) bool {
	return i.t != nil && slices.Contains(i.t.scopes, scope)
}

// ACR returns how strongly the user authenticated.
func (i AccessTokenInfo) ACR() ACR {
	if i.t == nil {
		return ACRLevelZero
	}
	return i.t.acr
}

// Permissions returns a copy of the user's permission codenames.
func (i AccessTokenInfo) Permissions() []string {
	if i.t == nil {
		return nil
	}
	return slices.Clone(i.t.permissions)
}

// HasPermission reports whether the token carries permission.
func (i AccessTokenInfo) HasPermission(permission string) bool {
	return i.t != nil && slices.Contains(i.t.permissions, permission)
}

// Expiry returns the token's exp claim.
func (i AccessTokenInfo) Expiry() time.Time {
	if i.t == nil {
		return time.Time{}
	}
	return i.t.expiry
}

// AccessToken returns the token itself, to call Fief's API on the user's
// behalf. It is not part of the JSON form, so that logging the info does
// not leak it.
func (i AccessTokenInfo) AccessToken() string {
	if i.t == nil {
		return ""
	}
	return i.t.token
}

// accessTokenJSON is the JSON form of an AccessTokenInfo.
type accessTokenJSON struct {
	UserID      string    `json:"id"`
	Scopes      []string  `json:"scope"`
	ACR         ACR       `json:"acr"`
	Permissions []string  `json:"permissions"`
	Expiry      time.Time `json:"expiry"`
}

// MarshalJSON encodes the info as {"id", "scope", "acr", "permissions",
// "expiry"}, without the token; the zero AccessTokenInfo is null.
func (i AccessTokenInfo) MarshalJSON() ([]byte, error) {
	if i.t == nil {
		return []byte("null"), nil
	}
	return json.Marshal(accessTokenJSON{i.t.userID, i.t.scopes, i.t.acr, i.t.permissions, i.t.expiry})
}

// UserInfo holds a user's claims: from /api/userinfo (sub, email,
// email_verified, is_active, tenant_id, fields) or, after AuthCallback and
// AuthRefreshToken, every claim of the ID token. Numbers are json.Number so
// that they round-trip exactly.
type UserInfo map[string]any

// Sub returns the user's ID (the sub claim).
func (u UserInfo) Sub() string { s, _ := u["sub"].(string); return s }

// Email returns the user's email address.
func (u UserInfo) Email() string { s, _ := u["email"].(string); return s }

// EmailVerified reports whether the user verified their email address.
func (u UserInfo) EmailVerified() bool { b, _ := u["email_verified"].(bool); return b }

// IsActive reports whether the user is active.
func (u UserInfo) IsActive() bool { b, _ := u["is_active"].(bool); return b }

// TenantID returns the UUID of the user's tenant.
func (u UserInfo) TenantID() string { s, _ := u["tenant_id"].(string); return s }

// Fields returns the user's custom field values by slug (nil if none).
func (u UserInfo) Fields() map[string]any { m, _ := u["fields"].(map[string]any); return m }

// decodeUserInfo decodes a JSON object keeping numbers exact.
func decodeUserInfo(b []byte) (UserInfo, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var u UserInfo
	if err := dec.Decode(&u); err != nil {
		return nil, err
	}
	if u == nil {
		return nil, errors.New("null user info")
	}
	if dec.More() {
		return nil, errors.New("trailing data after user info")
	}
	return u, nil
}
