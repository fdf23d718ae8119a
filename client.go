package fief

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
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
	// Client remembers by default. An entry holds the token and its claims:
	// about 1.3 KB for a Fief access token of 750 bytes, so about 13 MB
	// when full (at most 16 KiB and its claims for the largest tokens).
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
	issuer       string // WithIssuer's, or ""
	hooks        *Hooks // nil: no hooks
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
	issuer      string
	keys        []keyset.Key // WithKeySet's
	hooks       *Hooks
	now         func() time.Time
}

// WithHTTPClient sets the HTTP client used for every request to Fief. Each
// request is bounded by [WithTimeout] whatever the client's own Timeout,
// which also applies when set. The client is not modified.
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
// [DefaultLeeway], at most [MaxLeeway]).
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

// WithIssuer sets the tenant's issuer: the iss claim of its tokens, which
// its discovery document must announce (the Client refuses it otherwise,
// with [ErrDiscovery]). Fief's issuer is https://FIEF_DOMAIN for the
// default tenant and https://FIEF_DOMAIN/<slug> for the others, whatever
// URL the Client reaches Fief on. A multi-tenant authenticator needs it,
// to know the tenant of a token before any request to Fief.
func WithIssuer(issuer string) Option {
	return func(s *settings) error {
		u, err := url.Parse(issuer)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("fief: WithIssuer: %q is not an http(s) URL", issuer)
		}
		s.issuer = issuer
		return nil
	}
}

// WithKeySet seeds the Client's key set with a JWKS document, as Fief
// serves it at /.well-known/jwks.json: tokens signed with these keys
// validate with no request to Fief, and with [WithIssuer] no discovery
// either, so that a service starts and validates while Fief is
// unreachable (an air-gapped deployment, a test). The set is still
// refreshed from Fief as usual (a token naming an unknown key, the set
// older than [KeySetMaxAge]); while Fief cannot be reached the seeded keys
// keep serving. The document must hold at least one RSA signing key of
// 2048 bits or more.
func WithKeySet(jwksJSON []byte) Option {
	return func(s *settings) error {
		keys, err := parseKeySet(jwksJSON)
		if err != nil {
			return fmt.Errorf("fief: WithKeySet: %w", err)
		}
		s.keys = keys
		return nil
	}
}

// WithTimeout bounds every request to Fief (default [DefaultTimeout]), in
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
// [DefaultKeyRefreshCooldown]). Tokens with an unknown key ID that arrive
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
// remembers (default [DefaultVerifiedTokenCacheSize]; 0 disables the cache).
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
		// No Timeout here: WithTimeout's bound (through the request's
		// context, the body read included) is the only one.
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		c.ownHTTP = true
	}
	if s.host != "" {
		hc = httpx.WithHost(hc, s.host)
	}
	hc = httpx.NoBodyRedirects(hc)
	c.hc = hc
	c.http = &httpx.Client{HTTP: hc, Timeout: s.timeout}
	c.bg = bg.New()
	c.issuer = s.issuer
	c.hooks = s.hooks
	c.provider = oidc.NewProvider(c.http, u, s.host != "", s.issuer, c.bg)
	if h := s.hooks; h != nil && h.Fetched != nil {
		url := c.provider.URL()
		c.provider.OnFetch = func(ctx context.Context, start time.Time, err error) {
			h.fetched(ctx, "discovery", url, start, err)
		}
	}
	c.keys = keyset.New(keyset.Config{
		Fetch:      c.fetchKeys,
		Cooldown:   s.cooldown,
		Now:        s.now,
		Background: c.bg,
		MaxAge:     KeySetMaxAge,
		Initial:    s.keys,
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
// HTTP client New created (not of one given with [WithHTTPClient]). Later
// fetches of the configuration or the key set fail with [ErrClosed]; calls
// that the configuration already fetched is enough for (userinfo, the
// token endpoint, validation with the cached keys) still work. A Client
// that is simply dropped needs no Close.
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

// openIDConfig returns the tenant's OpenID configuration, fetching it on
// first use. Failures wrap [ErrDiscovery] (and a [*RequestError] for an HTTP
// error status) and are not cached.
func (c *Client) openIDConfig(ctx context.Context) (*oidc.Config, error) {
	cfg, err := c.provider.Config(ctx)
	if err != nil {
		var se *oidc.StatusError
		if errors.As(err, &se) {
			err = newRequestError("discovery", se.StatusCode, se.Body)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrDiscovery, c.provider.URL(), err)
	}
	return cfg, nil
}

// tenantIssuer returns the tenant's issuer: WithIssuer's, or the
// discovered one.
func (c *Client) tenantIssuer(ctx context.Context) (string, error) {
	if c.issuer != "" {
		return c.issuer, nil
	}
	cfg, err := c.openIDConfig(ctx)
	if err != nil {
		return "", err
	}
	return cfg.Issuer, nil
}

// fetchKeys downloads the tenant's key set.
func (c *Client) fetchKeys(ctx context.Context) ([]keyset.Key, error) {
	cfg, err := c.openIDConfig(ctx)
	if err != nil {
		return nil, err
	}
	start := c.hooks.fetchStart()
	keys, err := c.getKeys(ctx, cfg.JWKSURI)
	c.hooks.fetched(ctx, "jwks", cfg.JWKSURI, start, err)
	if err != nil {
		return nil, fmt.Errorf("%w: key set %s: %w", ErrDiscovery, cfg.JWKSURI, err)
	}
	return keys, nil
}

func (c *Client) getKeys(ctx context.Context, jwksURI string) ([]keyset.Key, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURI, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cache-Control", "no-cache")
	body, err := c.send(req, "jwks")
	if err != nil {
		return nil, err
	}
	return parseKeySet(body)
}

// parseKeySet returns the signing keys of a JWKS document. Only RSA
// signing keys of at least 2048 bits are kept; Fief publishes them without
// alg, and RS256 is pinned at verification.
func parseKeySet(b []byte) ([]keyset.Key, error) {
	set, err := jwk.Parse(b)
	if err != nil {
		return nil, errors.New("answer is not a JSON Web Key Set")
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
		return nil, errors.New("no usable RSA signing key")
	}
	return keys, nil
}

// send performs req and returns the body of a 2xx answer; other statuses
// become a [*RequestError] for endpoint.
func (c *Client) send(req *http.Request, endpoint string) ([]byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fief: %s request: %w", endpoint, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newRequestError(endpoint, resp.StatusCode, resp.Body)
	}
	return resp.Body, nil
}

// apiURL returns the URL of one of Fief's /api endpoints under the base URL.
func (c *Client) apiURL(path string) string {
	return c.baseURL.String() + path
}

// Ready reports whether the Client can validate tokens: it fetches the
// OpenID configuration (unless [WithIssuer] and [WithKeySet] make it
// needless) and the key set if they were never fetched, and returns nil
// once both are held, or the error of the fetch (wrapping [ErrDiscovery]).
// Use it as a start-up gate or in a readiness probe ([ReadinessHandler]).
// Once ready, a Client stays ready while Fief is down: the cached keys keep
// validating.
func (c *Client) Ready(ctx context.Context) error {
	if _, err := c.tenantIssuer(ctx); err != nil {
		return err
	}
	if _, err := c.keys.All(ctx); err != nil {
		return err
	}
	return nil
}

// readinessTimeout bounds a readiness probe.
const readinessTimeout = 5 * time.Second

// ReadinessHandler returns an http.Handler for a readiness probe: it
// answers 200 {"status":"ready"} when every client is [Client.Ready]
// (fetching what it needs, within 5 seconds and the request's context),
// and 503 {"status":"unavailable"} with Retry-After otherwise. The body
// never holds an error's text; the errors go to logger, when not nil, at
// Warn level.
func ReadinessHandler(logger *slog.Logger, clients ...*Client) http.Handler {
	clients = slices.Clone(clients)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), readinessTimeout)
		defer cancel()
		w.Header().Set("Cache-Control", "no-store")
		for _, c := range clients {
			if err := c.Ready(ctx); err != nil {
				if logger != nil {
					logger.LogAttrs(ctx, slog.LevelWarn, "fief: not ready", slog.String("error", err.Error()))
				}
				w.Header().Set("Retry-After", "5")
				writeFixed(w, http.StatusServiceUnavailable, `{"status":"unavailable"}`)
				return
			}
		}
		writeFixed(w, http.StatusOK, `{"status":"ready"}`)
	})
}

// WithHooks sets the functions the Client, and the authenticators and
// login flows built on it, call on the events operators watch (see
// [Hooks]). A multi-tenant authenticator reports its token checks
// through the first tenant's client.
func WithHooks(h *Hooks) Option {
	return func(s *settings) error {
		s.hooks = h
		return nil
	}
}
