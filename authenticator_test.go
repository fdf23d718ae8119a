package fief_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// TestMultiTenant: one authenticator for two tenants picks each token's
// tenant by its iss, verifies it with that tenant's keys only, and never
// asks any Fief about an unknown issuer.
func TestMultiTenant(t *testing.T) {
	rec := &recorder{}
	sa, sb, auth := twoTenants(t, rec.hooks(), fief.WithUserInfoCache(memCache(t, 10, time.Minute)))
	ua, ub := addUser(sa), addUser(sb)
	ctx := context.Background()
	requests := func() int {
		n := 0
		for _, s := range []*fieftest.Server{sa, sb} {
			for _, e := range []fieftest.Endpoint{fieftest.EndpointDiscovery, fieftest.EndpointJWKS, fieftest.EndpointUserinfo} {
				n += s.Requests(e)
			}
		}
		return n
	}
	for _, tc := range []struct {
		tenant string
		s      *fieftest.Server
		u      fieftest.User
	}{{"a", sa, ua}, {"b", sb, ub}} {
		tok := tc.s.AccessToken(tc.u.ID)
		for pass := 0; pass < 2; pass++ { // the second pass is a verified-token cache hit
			out, err := auth.Route(fief.LoadUserInfo()).Authenticate(ctx, tok)
			if err != nil {
				t.Fatalf("tenant %s: %v", tc.tenant, err)
			}
			if got := rec.lastCheck(t); got.Cached != (pass == 1) {
				t.Fatalf("tenant %s, pass %d: %+v, want a verified-token cache hit on the second pass only", tc.tenant, pass, got)
			}
			name, ok := fief.TenantFromContext(out)
			info, _ := fief.AccessTokenInfoFromContext(out)
			user, _ := fief.UserInfoFromContext(out)
			if !ok || name != tc.tenant || info.UserID() != tc.u.ID || user.Email() != tc.u.Email {
				t.Fatalf("tenant %q (%v), user %s, email %s; want %s", name, ok, info.UserID(), user.Email(), tc.tenant)
			}
		}
	}
	if sb.Requests(fieftest.EndpointJWKS) != 1 || sa.Requests(fieftest.EndpointJWKS) != 1 {
		t.Fatalf("key-set fetches: a %d, b %d; want 1 each", sa.Requests(fieftest.EndpointJWKS), sb.Requests(fieftest.EndpointJWKS))
	}

	t.Run("unknown issuer: refused, no request to any Fief", func(t *testing.T) {
		before := requests()
		for _, iss := range []string{"https://evil.example", "http://127.0.0.1:1", sa.URL, ""} {
			_, err := auth.Route().Authenticate(ctx, sa.AccessToken(ua.ID, fieftest.Claim("iss", iss)))
			if !errors.Is(err, fief.ErrUnauthenticated) || !errors.Is(err, fief.ErrAccessTokenInvalid) {
				t.Fatalf("iss %q: %v", iss, err)
			}
		}
		if n := requests() - before; n != 0 {
			t.Fatalf("%d requests to Fief for unknown issuers", n)
		}
	})
	t.Run("tenant A's token with tenant B's iss forged", func(t *testing.T) {
		for _, tok := range []string{
			sa.AccessToken(ua.ID, fieftest.Claim("iss", sb.Issuer())),                              // A's kid, unknown to B
			sa.AccessToken(ua.ID, fieftest.Claim("iss", sb.Issuer()), fieftest.Header("kid", nil)), // no kid: every B key tried
			sa.AccessToken(ua.ID, fieftest.Claim("iss", sb.Issuer()), fieftest.Header("kid", sb.KeyID())),
		} {
			_, err := auth.Route().Authenticate(ctx, tok)
			if !errors.Is(err, fief.ErrUnauthenticated) || !errors.Is(err, fief.ErrAccessTokenInvalid) {
				t.Fatalf("forged iss: %v", err)
			}
		}
	})
	t.Run("through net/http", func(t *testing.T) {
		h := auth.Authenticated()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name, _ := fief.TenantFromContext(r.Context())
			w.Write([]byte(name))
		}))
		for tok, want := range map[string]string{sa.AccessToken(ua.ID): "a", sb.AccessToken(ub.ID): "b"} {
			if w := mwServe(h, tok); w.Code != 200 || w.Body.String() != want {
				t.Fatalf("%d %q, want %q", w.Code, w.Body, want)
			}
		}
		if w := mwServe(h, sa.AccessToken(ua.ID, fieftest.Claim("iss", "https://evil.example"))); w.Code != 401 {
			t.Fatalf("unknown issuer: %d", w.Code)
		}
	})
}

func TestNewMultiTenantAuthenticatorErrors(t *testing.T) {
	s := newServer(t)
	withIss := func(iss string) *fief.Client { return newClient(t, s, fief.WithIssuer(iss)) }
	for name, tenants := range map[string][]fief.Tenant{
		"none":        nil,
		"no name":     {{Client: withIss("https://a.test")}},
		"no client":   {{Name: "a"}},
		"no issuer":   {{Name: "a", Client: newClient(t, s)}},
		"same name":   {{Name: "a", Client: withIss("https://a.test")}, {Name: "a", Client: withIss("https://b.test")}},
		"same issuer": {{Name: "a", Client: withIss("https://a.test")}, {Name: "b", Client: withIss("https://a.test")}},
	} {
		if a, err := fief.NewMultiTenantAuthenticator(tenants); err == nil || a != nil {
			t.Errorf("%s: %v, %v", name, a, err)
		}
	}
	if _, err := fief.New(s.URL, s.ClientID, s.ClientSecret, fief.WithIssuer("not a URL")); err == nil {
		t.Error("WithIssuer accepted a non-URL")
	}
}
