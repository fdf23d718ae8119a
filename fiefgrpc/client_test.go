package fiefgrpc_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefgrpc"
	"github.com/fief-go/fief/fieftest"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestPerRPCCredentials: the token goes with every call over TLS; the
// secure credentials refuse plaintext connections, at dial time or at call
// time without sending the call; the insecure ones send it anyway.
func TestPerRPCCredentials(t *testing.T) {
	srv := newFief(t)
	u := addUser(srv)
	valid := token(srv, u)
	ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: valid, TokenType: "bearer"})
	// List is public, so that a call that reaches the server runs.
	fg := newInterceptor(t, newAuth(t, srv), fiefgrpc.WithPublic(mList), fiefgrpc.WithDefault(reqs...))
	serverTLS, clientTLS := newTLS(t)
	tlsAddr, tlsHealth := serve(t, fg, grpc.Creds(serverTLS))
	plainAddr, plainHealth := serve(t, fg)

	t.Run("sent over TLS", func(t *testing.T) {
		conn := dial(t, tlsAddr, grpc.WithTransportCredentials(clientTLS), grpc.WithPerRPCCredentials(fiefgrpc.PerRPCCredentials(ts)))
		for _, k := range kinds {
			md, err := call(t, conn, k.method, nil)
			wantUser(t, md, err, u.ID)
		}
	})
	t.Run("as a call option over TLS", func(t *testing.T) {
		conn := dial(t, tlsAddr, grpc.WithTransportCredentials(clientTLS))
		md, err := call(t, conn, mCheck, nil, grpc.PerRPCCredentials(fiefgrpc.PerRPCCredentials(ts)))
		wantUser(t, md, err, u.ID)
	})
	t.Run("refused over plaintext at dial time", func(t *testing.T) {
		conn, err := grpc.NewClient(plainAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(fiefgrpc.PerRPCCredentials(ts)))
		if err == nil {
			conn.Close()
			t.Fatal("NewClient accepted secure per-RPC credentials on a plaintext connection")
		}
	})
	t.Run("refused over plaintext at call time", func(t *testing.T) {
		conn := dial(t, plainAddr)
		before := plainHealth.calls.Load()
		for _, method := range []string{mList, mWatch} {
			if _, err := call(t, conn, method, nil, grpc.PerRPCCredentials(fiefgrpc.PerRPCCredentials(ts))); err == nil {
				t.Errorf("%s: the call went through", method)
			}
		}
		if plainHealth.calls.Load() != before {
			t.Error("a call reached the server")
		}
	})
	t.Run("insecure variant over plaintext", func(t *testing.T) {
		conn := dial(t, plainAddr, grpc.WithPerRPCCredentials(fiefgrpc.InsecurePerRPCCredentials(ts)))
		for _, k := range kinds {
			md, err := call(t, conn, k.method, nil)
			wantUser(t, md, err, u.ID)
			if got := md.Get("x-token"); len(got) != 1 || got[0] != tokenHash(valid) {
				t.Errorf("x-token %q, want the hash of the token", got)
			}
		}
	})
	t.Run("insecure variant over TLS", func(t *testing.T) {
		conn := dial(t, tlsAddr, grpc.WithTransportCredentials(clientTLS), grpc.WithPerRPCCredentials(fiefgrpc.InsecurePerRPCCredentials(ts)))
		md, err := call(t, conn, mWatch, nil)
		wantUser(t, md, err, u.ID)
	})
	t.Run("token source failing", func(t *testing.T) {
		failing := failingSource{}
		for name, conn := range map[string]*grpc.ClientConn{
			"secure":   dial(t, tlsAddr, grpc.WithTransportCredentials(clientTLS), grpc.WithPerRPCCredentials(fiefgrpc.PerRPCCredentials(failing))),
			"insecure": dial(t, plainAddr, grpc.WithPerRPCCredentials(fiefgrpc.InsecurePerRPCCredentials(failing))),
		} {
			before := tlsHealth.calls.Load() + plainHealth.calls.Load()
			if _, err := call(t, conn, mList, nil); err == nil {
				t.Errorf("%s: the call went through without a token", name)
			}
			if tlsHealth.calls.Load()+plainHealth.calls.Load() != before {
				t.Errorf("%s: the call reached the server", name)
			}
		}
	})
	t.Run("nil token source", func(t *testing.T) {
		for name, f := range map[string]func(oauth2.TokenSource) any{
			"PerRPCCredentials":         func(ts oauth2.TokenSource) any { return fiefgrpc.PerRPCCredentials(ts) },
			"InsecurePerRPCCredentials": func(ts oauth2.TokenSource) any { return fiefgrpc.InsecurePerRPCCredentials(ts) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s(nil) did not panic", name)
					}
				}()
				f(nil)
			}()
		}
	})
}

type failingSource struct{}

func (failingSource) Token() (*oauth2.Token, error) { return nil, errors.New("no token today") }

// TestPerRPCCredentialsRefresh: with fief.Client.TokenSource, an access
// token about to expire is refreshed through Fief before a call, once, and
// the calls go on with the new token.
func TestPerRPCCredentialsRefresh(t *testing.T) {
	srv := newFief(t)
	u := addUser(srv)
	c := newClient(t, srv)
	const redirectURI = "http://127.0.0.1/callback"
	code := srv.IssueCode(fieftest.CodeRequest{UserID: u.ID, RedirectURI: redirectURI, Scopes: []string{"openid", "offline_access"}})
	tokens, _, err := c.AuthCallback(t.Context(), code, redirectURI, "")
	if err != nil {
		t.Fatal(err)
	}
	// The session's access token expires in a second: too soon to be sent.
	tokens.AccessToken = srv.AccessToken(u.ID, fieftest.ExpiresIn(time.Second))
	tokens.ExpiresIn, tokens.Expiry = 1, time.Now().Add(time.Second)
	var mu sync.Mutex
	var saved []*fief.Tokens
	ts := c.TokenSource(tokens, func(t *fief.Tokens) { mu.Lock(); saved = append(saved, t); mu.Unlock() })

	serverTLS, clientTLS := newTLS(t)
	addr, _ := serve(t, newInterceptor(t, newAuth(t, srv), fiefgrpc.WithDefault()), grpc.Creds(serverTLS))
	conn := dial(t, addr, grpc.WithTransportCredentials(clientTLS), grpc.WithPerRPCCredentials(fiefgrpc.PerRPCCredentials(ts)))

	srv.ResetRequests()
	for range 2 {
		for _, k := range kinds {
			md, err := call(t, conn, k.method, nil)
			wantUser(t, md, err, u.ID)
			mu.Lock()
			if len(saved) != 1 {
				mu.Unlock()
				t.Fatalf("%d refreshes, want 1", len(saved))
			}
			refreshed := saved[0].AccessToken
			mu.Unlock()
			if got := md.Get("x-token"); len(got) != 1 || got[0] != tokenHash(refreshed) {
				t.Errorf("%s: the server did not get the refreshed token", k.name)
			}
		}
	}
	if n := srv.Requests(fieftest.EndpointToken); n != 1 {
		t.Errorf("%d token requests for four calls, want 1", n)
	}
}
