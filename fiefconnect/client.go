package fiefconnect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"connectrpc.com/connect"
	"golang.org/x/oauth2"
)

// The fixed messages of the client side's refusals. A client's error may
// travel on: a handler that returns it sends its message to its own caller.
const (
	msgOtherHost = "fiefconnect: access token not sent: the request is not for the interceptor's host"
	msgNoToken   = "fiefconnect: access token not sent: the token source gave no token"
)

// ClientInterceptor adds the access token of an [oauth2.TokenSource] to the
// requests of Connect clients, as "Authorization: <type> <token>" (the
// token's Type, "Bearer" for Fief's tokens, as [oauth2.Token.SetAuthHeader]
// writes it): to unary requests, and to the request headers of streams.
// Make it with [NewClientInterceptor] and install it on the clients of one
// server with [connect.WithInterceptors]. The header replaces one the
// caller set on a unary request; on a stream, Authorization values the
// caller adds come beside it, which a server using [Interceptor] takes for
// no usable token: set none.
//
// A token goes only to the host of the interceptor's base URL, over https
// unless [AllowPlaintextHTTP] was given: Connect tells an interceptor the
// host of a client's URL ([connect.Peer].Addr) but not its scheme, so the
// scheme is checked once, on the base URL, and each request's host is
// compared with the base URL's. A request for another host, or for which
// the token source fails, is not sent: the call fails with
// [connect.CodeUnauthenticated] and a fixed message (as gRPC refuses to
// send per-RPC credentials over an insecure connection); the token
// source's error is its cause, for errors.Is and errors.As. A client of
// the same host over plain http, beside a client of the base URL, is not
// detected: give each interceptor only to clients of its base URL.
//
// The token source is called for every RPC: give one that caches its token
// and refreshes it when it expires, such as [fief.Client.TokenSource]'s or
// one wrapped in [oauth2.ReuseTokenSource].
//
// The ClientInterceptor acts on clients only: on a handler it does nothing
// (use [NewInterceptor] there).
type ClientInterceptor struct {
	ts   oauth2.TokenSource
	host string
}

var _ connect.Interceptor = (*ClientInterceptor)(nil)

// ClientOption configures a [ClientInterceptor].
type ClientOption func(*clientConfig)

type clientConfig struct {
	plaintext bool
}

// AllowPlaintextHTTP lets a [ClientInterceptor] send tokens to an http://
// base URL, in clear text: for a server on the loopback interface, or
// behind a proxy on the same host that terminates TLS. Anyone who can read
// the traffic can replay the token until it expires.
func AllowPlaintextHTTP() ClientOption {
	return func(c *clientConfig) { c.plaintext = true }
}

// NewClientInterceptor returns a [ClientInterceptor] that sends the tokens
// of ts to the server of baseURL, the URL given to the clients
// ([connect.NewClient], or the generated New...Client). baseURL must be an
// https URL with a host, or an http one with [AllowPlaintextHTTP].
func NewClientInterceptor(baseURL string, ts oauth2.TokenSource, opts ...ClientOption) (*ClientInterceptor, error) {
	if ts == nil {
		return nil, errors.New("fiefconnect: NewClientInterceptor: nil TokenSource")
	}
	var c clientConfig
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("fiefconnect: NewClientInterceptor: nil ClientOption")
		}
		o(&c)
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("fiefconnect: NewClientInterceptor: base URL: %w", err)
	}
	switch {
	case u.Host == "":
		return nil, fmt.Errorf("fiefconnect: NewClientInterceptor: base URL %q has no host", baseURL)
	case u.Scheme == "https":
	case u.Scheme == "http" && c.plaintext:
	case u.Scheme == "http":
		return nil, fmt.Errorf("fiefconnect: NewClientInterceptor: refusing to send access tokens over plain http to %q (AllowPlaintextHTTP allows it)", u.Host)
	default:
		return nil, fmt.Errorf("fiefconnect: NewClientInterceptor: base URL %q is neither https nor http", baseURL)
	}
	return &ClientInterceptor{ts: ts, host: u.Host}, nil
}

// WrapUnary implements [connect.Interceptor]: it sets the Authorization
// header of a client's request, and passes a handler's request through.
func (c *ClientInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if !req.Spec().IsClient {
			return next(ctx, req)
		}
		auth, err := c.authorization(req.Peer())
		if err != nil {
			return nil, err
		}
		req.Header().Set("Authorization", auth)
		return next(ctx, req)
	}
}

// WrapStreamingClient implements [connect.Interceptor]: it sets the
// Authorization header of a stream's request before anything is sent. When
// it cannot, the stream sends nothing, and its Send, CloseRequest and
// Receive return the error.
func (c *ClientInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec) // sends nothing yet
		auth, err := c.authorization(conn.Peer())
		if err != nil {
			return &refusedConn{spec: conn.Spec(), peer: conn.Peer(), header: make(http.Header), err: err}
		}
		conn.RequestHeader().Set("Authorization", auth)
		return conn
	}
}

// WrapStreamingHandler implements [connect.Interceptor]: it returns next,
// since the ClientInterceptor acts on clients only.
func (c *ClientInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// authorization returns the Authorization value for a request to peer.
func (c *ClientInterceptor) authorization(peer connect.Peer) (string, error) {
	if !strings.EqualFold(peer.Addr, c.host) {
		return "", refusal(connect.CodeUnauthenticated, msgOtherHost,
			fmt.Errorf("fiefconnect: request for %q, interceptor for %q", peer.Addr, c.host))
	}
	tok, err := c.ts.Token()
	if err == nil && (tok == nil || tok.AccessToken == "") {
		err = errors.New("fiefconnect: the token source returned an empty token")
	}
	if err != nil {
		return "", refusal(connect.CodeUnauthenticated, msgNoToken, err)
	}
	return tok.Type() + " " + tok.AccessToken, nil
}

// refusedConn is a stream that was never started: every operation fails
// with err, and nothing is sent.
type refusedConn struct {
	spec   connect.Spec
	peer   connect.Peer
	header http.Header
	err    error
}

func (r *refusedConn) Spec() connect.Spec           { return r.spec }
func (r *refusedConn) Peer() connect.Peer           { return r.peer }
func (r *refusedConn) Send(any) error               { return r.err }
func (r *refusedConn) RequestHeader() http.Header   { return r.header }
func (r *refusedConn) CloseRequest() error          { return r.err }
func (r *refusedConn) Receive(any) error            { return r.err }
func (r *refusedConn) ResponseHeader() http.Header  { return http.Header{} }
func (r *refusedConn) ResponseTrailer() http.Header { return http.Header{} }
func (r *refusedConn) CloseResponse() error         { return nil }
