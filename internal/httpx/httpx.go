// Package httpx holds the HTTP plumbing shared by the client: a per-request
// timeout, a cap on every response body and the Host override.
package httpx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// MaxBodySize caps every response body read from Fief.
const MaxBodySize = 1 << 20

// ErrBodyTooLarge reports a response body over MaxBodySize.
var ErrBodyTooLarge = errors.New("response body exceeds 1 MiB")

// Client sends requests to Fief.
type Client struct {
	HTTP    *http.Client
	Timeout time.Duration
}

// Response is a fully read, capped response.
type Response struct {
	StatusCode int
	Body       []byte
}

// Do sends req (whose context is the caller's) bounded by c.Timeout and reads
// at most MaxBodySize bytes of the answer. The request's URL is never part of
// the returned error text beyond scheme, host and path, so tokens sent in
// queries or headers cannot leak through it.
func (c *Client) Do(req *http.Request) (*Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), c.Timeout)
	defer cancel()
	resp, err := c.HTTP.Do(req.WithContext(ctx))
	if err != nil {
		// *url.Error carries the full URL; rebuild a message without query.
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap()
		}
		return nil, fmt.Errorf("%s %s://%s%s: %w", req.Method, req.URL.Scheme, req.URL.Host, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s://%s%s: reading body: %w", req.Method, req.URL.Scheme, req.URL.Host, req.URL.Path, err)
	}
	if len(body) > MaxBodySize {
		return nil, fmt.Errorf("%s %s://%s%s: %w", req.Method, req.URL.Scheme, req.URL.Host, req.URL.Path, ErrBodyTooLarge)
	}
	return &Response{StatusCode: resp.StatusCode, Body: body}, nil
}

// ErrRedirect reports a redirect answered to a request with a body.
var ErrRedirect = errors.New("redirect refused: requests with a body (credentials, codes, tokens, passwords) are never re-sent elsewhere")

// NoBodyRedirects returns a copy of hc that follows no redirect of a
// request other than GET or HEAD: a 307 or 308 would make Go's client
// re-send the body (client secret, code, verifier, refresh token,
// password) to the redirect's target, on another host possibly. Redirects
// of GET and HEAD requests go through hc's own policy. hc itself is not
// modified.
func NoBodyRedirects(hc *http.Client) *http.Client {
	c := *hc
	check := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if m := via[0].Method; m != http.MethodGet && m != http.MethodHead {
			return ErrRedirect
		}
		if check != nil {
			return check(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

// WithHost returns a copy of hc whose requests carry host as their Host
// header. hc itself is not modified.
func WithHost(hc *http.Client, host string) *http.Client {
	c := *hc
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = hostTransport{base: base, host: host}
	return &c
}

type hostTransport struct {
	base http.RoundTripper
	host string
}

func (t hostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Host = t.host
	return t.base.RoundTrip(r)
}

// CloseIdleConnections closes the base transport's idle connections, so
// that http.Client.CloseIdleConnections (and the client's Close) reach
// them through the wrapper.
func (t hostTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
