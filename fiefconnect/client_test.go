package fiefconnect_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/oauth2"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefconnect"
	"github.com/fief-go/fief/fieftest"
)

func newClientInterceptor(t testing.TB, baseURL string, ts oauth2.TokenSource, opts ...fiefconnect.ClientOption) *fiefconnect.ClientInterceptor {
	t.Helper()
	ci, err := fiefconnect.NewClientInterceptor(baseURL, ts, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ci
}

// tokenFunc is a TokenSource made of a function.
type tokenFunc func() (*oauth2.Token, error)

func (f tokenFunc) Token() (*oauth2.Token, error) { return f() }

// TestClientInterceptor: the client interceptor sends the token on unary
// and every kind of stream, over HTTPS (HTTP/2), to a server that
// authenticates it; on a unary call it replaces an Authorization the
// caller set.
func TestClientInterceptor(t *testing.T) {
	e := newEnv(t)
	token := e.token()
	s := serveService(t, connectTLS, connect.WithInterceptors(newInterceptor(t, e.auth, castleRoutes()...)))
	ci := newClientInterceptor(t, s.URL, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}))
	for _, c := range []struct {
		proc string
		h    headers
	}{{procWhoami, nil}, {procWhoami, bearer("stale")}, {procWatch, nil}, {procBuild, nil}, {procChat, nil}} {
		got, err := s.call(t, c.proc, c.h, connect.WithInterceptors(ci))
		if err != nil || got != "user "+e.user.ID {
			t.Fatalf("%s: %q, %v", c.proc, got, err)
		}
		if a := s.svc.lastAuthorization(); a != "Bearer "+token {
			t.Fatalf("%s: handler got Authorization %q", c.proc, a)
		}
	}
	// The gRPC protocol over the same HTTPS server.
	got, err := s.call(t, procWhoami, nil, connect.WithGRPC(), connect.WithInterceptors(ci))
	if err != nil || got != "user "+e.user.ID {
		t.Fatalf("gRPC: %q, %v", got, err)
	}
}

// TestClientInterceptorPlaintext: an http base URL is refused unless
// AllowPlaintextHTTP allows it; then the token goes over HTTP/1.1 and h2c.
func TestClientInterceptorPlaintext(t *testing.T) {
	e := newEnv(t)
	ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: e.token()})
	for _, tr := range []transport{connectHTTP1, grpcWebHTTP1, grpcH2C} {
		t.Run(tr.name, func(t *testing.T) {
			s := serveService(t, tr, connect.WithRequestGate(newInterceptor(t, e.auth, castleRoutes()...).Gate))
			ci, err := fiefconnect.NewClientInterceptor(s.URL, ts)
			if err == nil || ci != nil || !strings.Contains(err.Error(), "plain http") {
				t.Fatalf("http base URL: %v, %v", ci, err)
			}
			ci = newClientInterceptor(t, s.URL, ts, fiefconnect.AllowPlaintextHTTP())
			for _, proc := range []string{procWhoami, procWatch} {
				if got, err := s.call(t, proc, nil, connect.WithInterceptors(ci)); err != nil || got != "user "+e.user.ID {
					t.Fatalf("%s: %q, %v", proc, got, err)
				}
			}
		})
	}
}

// TestClientInterceptorRefusals: a request for another host than the base
// URL's, or for which the token source fails, fails on the client with
// CodeUnauthenticated and sends nothing.
func TestClientInterceptorRefusals(t *testing.T) {
	e := newEnv(t)
	s := serveService(t, grpcH2C) // no authentication: anything sent would be answered
	static := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: e.token()})
	errFief := errors.New("fief is down")
	for _, c := range []struct {
		name  string
		ci    *fiefconnect.ClientInterceptor
		msg   string
		cause error
	}{
		{"other host", newClientInterceptor(t, "https://castles.example", static), msgOtherHost, nil},
		{"same server, other host name", newClientInterceptor(t, strings.Replace(s.URL, "127.0.0.1", "localhost", 1), static, fiefconnect.AllowPlaintextHTTP()), msgOtherHost, nil},
		{"token source fails", newClientInterceptor(t, s.URL, tokenFunc(func() (*oauth2.Token, error) { return nil, errFief }), fiefconnect.AllowPlaintextHTTP()), msgNoToken, errFief},
		{"empty token", newClientInterceptor(t, s.URL, oauth2.StaticTokenSource(&oauth2.Token{}), fiefconnect.AllowPlaintextHTTP()), msgNoToken, nil},
	} {
		for _, proc := range []string{procWhoami, procWatch, procBuild, procChat} {
			t.Run(c.name+proc, func(t *testing.T) {
				_, err := s.call(t, proc, nil, connect.WithInterceptors(c.ci))
				ce := wantCode(t, err, connect.CodeUnauthenticated, c.msg, false)
				if c.cause != nil && !errors.Is(ce, c.cause) {
					t.Fatalf("err %v does not wrap the token source's error", err)
				}
				if n := s.svc.calls.Load(); n != 0 {
					t.Fatalf("%d calls reached the server", n)
				}
			})
		}
	}
}

// TestClientInterceptorRefreshes: with a Fief session's TokenSource whose
// access token has expired, the interceptor's first call refreshes the
// session through Fief and sends the new token; the next calls reuse it.
func TestClientInterceptorRefreshes(t *testing.T) {
	e := newEnv(t)
	s := serveService(t, connectTLS, connect.WithRequestGate(newInterceptor(t, e.auth, fiefconnect.WithDefault()).Gate))
	client := newClient(t, e.fief)
	const redirect = "https://www.bretagne.duchy/callback"
	code := e.fief.IssueCode(fieftest.CodeRequest{UserID: e.user.ID, RedirectURI: redirect, Scopes: []string{"openid", "offline_access"}})
	tokens, _, err := client.AuthCallback(context.Background(), code, redirect, "")
	if err != nil {
		t.Fatal(err)
	}
	tokens.Expiry = time.Now().Add(-time.Minute) // as after a night's sleep
	var mu sync.Mutex
	var saved []*fief.Tokens
	ts := client.TokenSource(tokens, func(t *fief.Tokens) { mu.Lock(); saved = append(saved, t); mu.Unlock() })
	ci := newClientInterceptor(t, s.URL, ts)

	before := e.fief.Requests(fieftest.EndpointToken)
	for _, proc := range []string{procWhoami, procWatch, procChat} {
		if got, err := s.call(t, proc, nil, connect.WithInterceptors(ci)); err != nil || got != "user "+e.user.ID {
			t.Fatalf("%s: %q, %v", proc, got, err)
		}
	}
	if n := e.fief.Requests(fieftest.EndpointToken) - before; n != 1 || len(saved) != 1 {
		t.Fatalf("%d token requests, %d saved sessions; want 1 refresh", n, len(saved))
	}
	if a := s.svc.lastAuthorization(); a != "Bearer "+saved[0].AccessToken || saved[0].AccessToken == tokens.AccessToken {
		t.Fatalf("server got %q, want the refreshed token", a)
	}
}

// TestNewClientInterceptorErrors: a base URL without a host or of another
// scheme, a nil token source and a nil option are errors.
func TestNewClientInterceptorErrors(t *testing.T) {
	ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"})
	for _, c := range []struct {
		name, url string
		ts        oauth2.TokenSource
		opts      []fiefconnect.ClientOption
		want      string
	}{
		{"plain http", "http://castles.example", ts, nil, "plain http"},
		{"plain http, upper case", "HTTP://castles.example", ts, nil, "plain http"},
		{"no host", "https:///castles", ts, nil, "no host"},
		{"relative", "/castles", ts, nil, "no host"},
		{"other scheme", "ftp://castles.example", ts, []fiefconnect.ClientOption{fiefconnect.AllowPlaintextHTTP()}, "neither https nor http"},
		{"unparsable", "https://castles.example:port", ts, nil, "base URL"},
		{"nil token source", "https://castles.example", nil, nil, "nil TokenSource"},
		{"nil option", "https://castles.example", ts, []fiefconnect.ClientOption{nil}, "nil ClientOption"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ci, err := fiefconnect.NewClientInterceptor(c.url, c.ts, c.opts...)
			if err == nil || ci != nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewClientInterceptor = %v, %v; want an error containing %q", ci, err, c.want)
			}
		})
	}
}

// TestClientInterceptorOnHandler: installed on a handler, the client
// interceptor does nothing: the handler runs as without it.
func TestClientInterceptorOnHandler(t *testing.T) {
	ci := newClientInterceptor(t, "https://castles.example", oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"}))
	s := serveService(t, grpcH2C, connect.WithInterceptors(ci))
	for _, proc := range []string{procWhoami, procWatch, procBuild, procChat} {
		got, err := s.call(t, proc, nil)
		if err != nil || got != "anonymous" || s.svc.lastAuthorization() != "" {
			t.Fatalf("%s: %q, %v, Authorization %q", proc, got, err, s.svc.lastAuthorization())
		}
	}
}
