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
	httpClient *http.Client
	host       string
	encKeyJSON string
	leeway     time.Duration
	audiences  []string
	timeout    time.Duration
	cooldown   time.Duration
	cacheSize  int
	now        func() time.Time
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

// WithAudiences restricts the access tokens the Client accepts to those whose
// aud claim contains at least one of the given values. Fief sets aud to the
// client ID of the OAuth client the token was issued to; without this option
// any client of the tenant is accepted, as with the reference client.
func WithAudiences(aud ...string) Option {
	return func(s *settings) error {
		for _, a := range aud {
			if a == "" {
				return errors.New("fief: WithAudiences: empty audience")
			}
		}
		s.audiences = append([]string(nil), aud...)
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

// AccessTokenInfo is what a valid access token says. Each call returns its
// own AccessTokenInfo, but the Scopes and Permissions slices may be shared
// with other calls for the same token (the verified-token cache): append to
// them freely, never assign to their elements.
type AccessTokenInfo struct {
	// UserID is the user's UUID (the sub claim), in canonical lower-case form.
	UserID string `json:"id"`
	// Scopes are the granted scopes.
	Scopes []string `json:"scope"`
	// ACR is how strongly the user authenticated.
	ACR ACR `json:"acr"`
	// Permissions are the user's permission codenames.
	Permissions []string `json:"permissions"`
	// Expiry is the token's exp claim.
	Expiry time.Time `json:"expiry"`
	// AccessToken is the token itself, to call Fief's API on the user's
	// behalf. It is never marshalled to JSON, so that logging the info does
	// not leak it.
	AccessToken string `json:"-"`
}

// HasScope reports whether the token grants scope.
func (i *AccessTokenInfo) HasScope(scope string) bool { return contains(i.Scopes, scope) }

// HasPermission reports whether the token carries permission.
func (i *AccessTokenInfo) HasPermission(permission string) bool {
	return contains(i.Permissions, permission)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
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
