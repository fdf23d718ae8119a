// Package oidc fetches and caches a Fief tenant's OpenID configuration.
package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/fief-go/fief/internal/bg"
	"github.com/fief-go/fief/internal/httpx"
)

// Config is the part of the OpenID configuration the client uses.
type Config struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	UserinfoEndpoint      string `json:"userinfo_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
}

// StatusError reports a discovery answer with a non-2xx status. Its text
// never quotes the body.
type StatusError struct {
	StatusCode int
	Body       []byte
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("status %d", e.StatusCode)
}

// Provider fetches the configuration once, lazily, and caches it. A failed
// fetch is not cached: the next call tries again. Concurrent first calls
// share one fetch.
type Provider struct {
	http    *httpx.Client
	base    *url.URL
	rewrite bool   // rewrite server-side endpoint URLs onto the base URL's scheme and host
	issuer  string // the issuer expected, or ""

	// OnFetch, when set before the first call, is called after each fetch
	// with its start time and error.
	OnFetch func(ctx context.Context, start time.Time, err error)
	bg      *bg.Group

	mu       sync.Mutex
	cfg      *Config
	inflight *call
	failErr  error     // the last failure, while no configuration is cached
	failedAt time.Time // when it happened
}

// RetryBackoff is how long a failed fetch is answered from memory before
// the next caller tries again, so that requests arriving while Fief is down
// do not turn into a stream of fetches.
const RetryBackoff = time.Second

type call struct {
	done chan struct{}
	cfg  *Config
	err  error
}

// NewProvider returns a Provider for the tenant at base. With rewrite, the
// token, userinfo and JWKS endpoints are reached on base's scheme and host
// (the reference client's host-override mode). issuer, when not empty, is
// the issuer the configuration must announce. Fetches run in group.
func NewProvider(c *httpx.Client, base *url.URL, rewrite bool, issuer string, group *bg.Group) *Provider {
	return &Provider{http: c, base: base, rewrite: rewrite, issuer: issuer, bg: group}
}

// URL returns the discovery document URL.
func (p *Provider) URL() string {
	return p.base.String() + "/.well-known/openid-configuration"
}

// Config returns the cached configuration, fetching it if needed.
func (p *Provider) Config(ctx context.Context) (*Config, error) {
	p.mu.Lock()
	if p.cfg != nil {
		cfg := p.cfg
		p.mu.Unlock()
		return cfg, nil
	}
	c := p.inflight
	if c == nil && p.failErr != nil && time.Since(p.failedAt) < RetryBackoff {
		err := p.failErr
		p.mu.Unlock()
		return nil, err
	}
	if c == nil {
		c = &call{done: make(chan struct{})}
		// The fetch runs detached from the first caller's cancellation so
		// that a cancelled request does not fail the callers that joined it;
		// httpx bounds it with its timeout, Close cancels it.
		if err := p.bg.Go(func(ctx context.Context) { p.fetch(ctx, c) }); err != nil {
			p.mu.Unlock()
			return nil, err
		}
		p.inflight = c
	}
	p.mu.Unlock()
	select {
	case <-c.done:
		return c.cfg, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *Provider) fetch(ctx context.Context, c *call) {
	start := time.Now()
	cfg, err := p.get(ctx)
	if p.OnFetch != nil {
		p.OnFetch(ctx, start, err)
	}
	p.mu.Lock()
	if err == nil {
		p.cfg, p.failErr = cfg, nil
	} else {
		p.failErr, p.failedAt = err, time.Now()
	}
	p.inflight = nil
	c.cfg, c.err = cfg, err
	p.mu.Unlock()
	close(c.done)
}

func (p *Provider) get(ctx context.Context) (*Config, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &StatusError{StatusCode: resp.StatusCode, Body: resp.Body}
	}
	var cfg Config
	if err := json.Unmarshal(resp.Body, &cfg); err != nil {
		return nil, errors.New("answer is not a JSON OpenID configuration")
	}
	for name, v := range map[string]*string{
		"authorization_endpoint": &cfg.AuthorizationEndpoint,
		"token_endpoint":         &cfg.TokenEndpoint,
		"userinfo_endpoint":      &cfg.UserinfoEndpoint,
		"jwks_uri":               &cfg.JWKSURI,
	} {
		u, err := url.Parse(*v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("configuration has no valid %s", name)
		}
		if p.rewrite && name != "authorization_endpoint" {
			u.Scheme, u.Host = p.base.Scheme, p.base.Host
			*v = u.String()
		}
	}
	if cfg.Issuer == "" {
		return nil, errors.New("configuration has no issuer")
	}
	if p.issuer != "" && cfg.Issuer != p.issuer {
		return nil, fmt.Errorf("configuration announces the issuer %.200q, not the configured %q", cfg.Issuer, p.issuer)
	}
	return &cfg, nil
}

// Snippet returns at most 2 KiB of an error body, as text.
func Snippet(b []byte) string {
	const max = 2048
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
