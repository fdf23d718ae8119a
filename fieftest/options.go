package fieftest

import (
	"crypto/rsa"
	"fmt"
	"strings"
	"time"
)

// Defaults of a Server.
const (
	defaultIssuer        = "https://fief.test"
	defaultKeySize       = 2048
	defaultTokenLifetime = 24 * time.Hour
	// defaultRefreshTokenLifetime is Fief's default refresh token
	// lifetime; it slides with rotation.
	defaultRefreshTokenLifetime = 30 * 24 * time.Hour
	defaultClientID             = "fieftest-client"
	defaultClientSecret         = "fieftest-secret"
)

// Option configures a Server created by New or NewTB.
type Option func(*config)

type config struct {
	issuer     string // "" = defaultIssuer + tenantPath
	tenantPath string
	keySize    int
	signingKey *rsa.PrivateKey
	addr       string
	lifetime   time.Duration
	refresh    time.Duration
	client     Client
}

func defaultConfig() config {
	return config{
		keySize:  defaultKeySize,
		lifetime: defaultTokenLifetime,
		refresh:  defaultRefreshTokenLifetime,
		client:   Client{ID: defaultClientID, Secret: defaultClientSecret},
	}
}

// WithIssuer sets the issuer advertised by discovery and put into tokens
// (default "https://fief.test" followed by the tenant path). The issuer is
// never derived from the serving URL, as with a real Fief, whose issuer is
// https://{FIEF_DOMAIN} whatever address it is reached at.
func WithIssuer(iss string) Option {
	return func(c *config) { c.issuer = iss }
}

// WithTenantPath serves the tenant under a path prefix such as "/secondary",
// like a non-default Fief tenant: every route lives under it and the
// Server's URL ends with it. Requests for a known route under another prefix
// answer 400 {"detail":"Bad Request"}, as Fief does for an unknown tenant.
func WithTenantPath(p string) Option {
	return func(c *config) {
		p = strings.TrimRight(p, "/")
		if p != "" && !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		c.tenantPath = p
	}
}

// WithKeySize sets the size in bits of the RSA keys the Server generates:
// the signing key, keys made by RotateKey and client encryption keys
// (default 2048, the minimum, which keeps tests fast; real Fief uses 4096).
// New panics if bits is below 2048.
func WithKeySize(bits int) Option {
	return func(c *config) {
		if bits < 2048 {
			panic(fmt.Sprintf("fieftest: WithKeySize(%d): the size must be at least 2048 bits", bits))
		}
		c.keySize = bits
	}
}

// WithSigningKey makes k the initial signing key instead of a generated one,
// which saves key generation when many servers are started (benchmarks,
// large test suites).
func WithSigningKey(k *rsa.PrivateKey) Option {
	return func(c *config) { c.signingKey = k }
}

// WithAddr makes the Server listen on a fixed address such as
// "127.0.0.1:8000" (demos, manual testing) instead of a random loopback port.
// New panics if the address cannot be listened on.
func WithAddr(addr string) Option {
	return func(c *config) { c.addr = addr }
}

// WithTokenLifetime sets the lifetime of access and ID tokens (default
// 24 hours, Fief's default), which the token endpoint reports as expires_in.
func WithTokenLifetime(d time.Duration) Option {
	return func(c *config) {
		if d < time.Second {
			panic(fmt.Sprintf("fieftest: WithTokenLifetime(%v): the lifetime must be at least one second", d))
		}
		c.lifetime = d
	}
}

// WithRefreshTokenLifetime sets how long a refresh token stays valid after
// it was issued (default 30 days, Fief's default). Each refresh issues a
// new one with this lifetime (the lifetime slides with rotation, as in
// Fief); a refresh token used after it expired is refused with
// invalid_grant. A short lifetime tests what an application does when a
// user comes back after the refresh token has expired. New panics if d is
// less than a second.
func WithRefreshTokenLifetime(d time.Duration) Option {
	return func(c *config) {
		if d < time.Second {
			panic(fmt.Sprintf("fieftest: WithRefreshTokenLifetime(%v): the lifetime must be at least one second", d))
		}
		c.refresh = d
	}
}

// WithClient replaces the default client ("fieftest-client", confidential
// with secret "fieftest-secret", any redirect URI) with c; the Server's ClientID and ClientSecret fields
// then hold c's. Use AddClient to register more clients.
func WithClient(c Client) Option {
	return func(cfg *config) { cfg.client = c }
}
