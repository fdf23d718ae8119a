package fief_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// TestRouteAuthenticate runs the transport-neutral core: every outcome, its
// class, its cause, and what the derived context holds.
func TestRouteAuthenticate(t *testing.T) {
	e := newEnv(t)
	a := e.auth(t, fief.WithUserInfoCache(memCache(t, 10, time.Minute)))
	ctx := context.Background()
	type check func(t *testing.T, out context.Context, err error)
	class := func(class, cause error) check {
		return func(t *testing.T, out context.Context, err error) {
			t.Helper()
			if !errors.Is(err, class) || !errors.Is(err, cause) {
				t.Fatalf("err = %v, want %v and %v", err, class, cause)
			}
			if out != ctx {
				t.Fatal("a refusal derived a context")
			}
			for _, other := range []error{fief.ErrUnauthenticated, fief.ErrForbidden, fief.ErrUnavailable} {
				if other != class && errors.Is(err, other) {
					t.Fatalf("err %v is of two classes", err)
				}
			}
		}
	}
	anonymous := func(t *testing.T, out context.Context, err error) {
		t.Helper()
		if err != nil || out != ctx {
			t.Fatalf("anonymous: %v, same context %v", err, out == ctx)
		}
	}
	authenticated := func(wantUser bool) check {
		return func(t *testing.T, out context.Context, err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			info, ok := fief.AccessTokenInfoFromContext(out)
			if !ok || info.UserID() != e.user.ID {
				t.Fatalf("info %v, %v", info, ok)
			}
			user, ok := fief.UserInfoFromContext(out)
			if ok != wantUser || (ok && user.Email() != e.user.Email) {
				t.Fatalf("user info %v, %v; want it: %v", user, ok, wantUser)
			}
			if _, ok := fief.TenantFromContext(out); ok {
				t.Fatal("a single-tenant authenticator set a tenant")
			}
		}
	}
	valid := e.token()
	tests := []struct {
		name  string
		route *fief.Route
		token string
		check check
	}{
		{"no token", a.Route(), "", class(fief.ErrUnauthenticated, fief.ErrNoToken)},
		{"garbage", a.Route(), "garbage", class(fief.ErrUnauthenticated, fief.ErrAccessTokenInvalid)},
		{"too large", a.Route(), string(make([]byte, fief.MaxTokenLength+1)), class(fief.ErrUnauthenticated, fief.ErrTokenTooLarge)},
		{"expired", a.Route(), e.token(fieftest.ExpiresIn(-time.Hour)), class(fief.ErrUnauthenticated, fief.ErrAccessTokenExpired)},
		{"missing scope", a.Route(fief.RequireScopes("admin")), valid, class(fief.ErrForbidden, fief.ErrAccessTokenMissingScope)},
		{"ACR too low", a.Route(fief.RequireACR(fief.ACRLevelOne)), e.token(fieftest.ACR("0")), class(fief.ErrForbidden, fief.ErrAccessTokenACRTooLow)},
		{"missing permission", a.Route(fief.RequirePermissions("castles:delete")), valid, class(fief.ErrForbidden, fief.ErrAccessTokenMissingPermission)},
		{"optional, no token", a.Route(fief.Optional()), "", anonymous},
		{"optional, expired", a.Route(fief.Optional()), e.token(fieftest.ExpiresIn(-time.Hour)), anonymous},
		{"optional, forbidden", a.Route(fief.Optional(), fief.RequireScopes("admin")), valid, class(fief.ErrForbidden, fief.ErrAccessTokenMissingScope)},
		{"valid", a.Route(mwReqs...), valid, authenticated(false)},
		{"valid, user info", a.Route(append(mwRouteOpts(), fief.LoadUserInfo())...), valid, authenticated(true)},
		{"valid, refresh", a.Route(fief.Refresh()), valid, authenticated(true)},
		{"optional, valid", a.Route(fief.Optional()), valid, authenticated(false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.route.Authenticate(ctx, tt.token)
			tt.check(t, out, err)
		})
	}
	t.Run("Fief unreachable", func(t *testing.T) {
		s := newServer(t)
		u := addUser(s)
		c := newClient(t, s)
		a, _ := fief.NewAuthenticator(c)
		s.SetDown(true)
		out, err := a.Route().Authenticate(ctx, s.AccessToken(u.ID))
		class(fief.ErrUnavailable, fief.ErrDiscovery)(t, out, err)
	})
	t.Run("user refused by Fief", func(t *testing.T) {
		u := addNamedUser(e.s, "gone")
		token := e.s.AccessToken(u.ID)
		e.s.DeleteUser(u.ID)
		out, err := a.Route(fief.LoadUserInfo()).Authenticate(ctx, token)
		class(fief.ErrUnauthenticated, fief.ErrAccessTokenInvalid)(t, out, err)
		var re *fief.RequestError
		if !errors.As(err, &re) || re.StatusCode != http.StatusUnauthorized {
			t.Fatalf("cause %v, want Fief's 401", err)
		}
	})
	t.Run("AuthenticateRequest uses the extractor", func(t *testing.T) {
		ca := e.auth(t, fief.WithExtractor(fief.CookieToken("session")))
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: "session", Value: valid})
		out, err := ca.Route().AuthenticateRequest(r)
		authenticated(false)(t, out, err)
		r = httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+valid) // not where this authenticator looks
		if _, err := ca.Route().AuthenticateRequest(r); !errors.Is(err, fief.ErrNoToken) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestRouteOptionsPanic: nil options are programmer errors, refused at once.
func TestRouteOptionsPanic(t *testing.T) {
	a := newEnv(t).auth(t)
	for name, f := range map[string]func(){
		"nil option":               func() { a.Route(nil) },
		"nil requirement":          func() { a.Route(fief.Requirement(nil)) },
		"Authenticated(Refresh())": func() { a.Authenticated(fief.Refresh()) },
		"Authenticated(LoadUserInfo())": func() {
			a.Authenticated(fief.LoadUserInfo())
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}

// TestIdentityInContext: what handler unit tests use instead of a token.
func TestIdentityInContext(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	info := fief.NewAccessTokenInfo(fief.AccessTokenValues{
		UserID: "7c3f4a1e-2b9d-4c57-8a0e-6f1d2c3b4a59", Scopes: []string{"openid"}, ACR: fief.ACRLevelOne,
		Permissions: []string{"castles:read"}, Expiry: exp, AccessToken: "tok",
	})
	user, _ := fief.ParseUserInfo([]byte(`{"sub":"7c3f4a1e-2b9d-4c57-8a0e-6f1d2c3b4a59","email":"anne@bretagne.duchy"}`))
	ctx := fief.ContextWithUserInfo(fief.ContextWithAccessTokenInfo(context.Background(), info), user)
	got, ok := fief.AccessTokenInfoFromContext(ctx)
	if !ok || got.UserID() != info.UserID() || !got.HasScope("openid") || got.ACR() != fief.ACRLevelOne ||
		!got.HasPermission("castles:read") || !got.Expiry().Equal(exp) || got.AccessToken() != "tok" {
		t.Fatalf("info %+v, %v", got, ok)
	}
	if u, ok := fief.UserInfoFromContext(ctx); !ok || u.Email() != "anne@bretagne.duchy" {
		t.Fatalf("user %v, %v", u, ok)
	}
	if _, ok := fief.AccessTokenInfoFromContext(context.Background()); ok {
		t.Fatal("info in an empty context")
	}
}

func TestParseBearer(t *testing.T) {
	for in, want := range map[string]string{
		"Bearer abc":    "abc",
		"bearer abc":    "abc",
		"BEARER\tabc":   "abc",
		"Basic abc":     "",
		"Bearer a b":    "",
		"Bearer":        "",
		"":              "",
		"  Bearer abc ": "abc",
	} {
		got, err := fief.ParseBearer(in)
		if err != nil || got != want {
			t.Errorf("ParseBearer(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := fief.ParseBearer("Bearer " + string(make([]byte, fief.MaxTokenLength+1))); !errors.Is(err, fief.ErrTokenTooLarge) {
		t.Errorf("oversized: %v", err)
	}
}

// twoTenants returns two fieftest tenants with their own issuers and
// keys, and a multi-tenant Authenticator for them.
func twoTenants(t *testing.T, hooks *fief.Hooks, opts ...fief.AuthOption) (a, b *fieftest.Server, auth *fief.Authenticator) {
	t.Helper()
	a = fieftest.NewTB(t, fieftest.WithIssuer("https://fief.test/tenant-a"))
	b = fieftest.NewTB(t, fieftest.WithIssuer("https://fief.test/tenant-b"))
	tenants := []fief.Tenant{}
	for name, s := range map[string]*fieftest.Server{"a": a, "b": b} {
		tenants = append(tenants, fief.Tenant{Name: name, Client: newClient(t, s, fief.WithIssuer(s.Issuer()), fief.WithHooks(hooks))})
	}
	auth, err := fief.NewMultiTenantAuthenticator(tenants, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a, b, auth
}

// TestWithIssuer: the discovery document must announce the configured
// issuer; a Fief that announces another one is not trusted.
func TestWithIssuer(t *testing.T) {
	s := newServer(t)
	u := addUser(s)
	ctx := context.Background()
	good := newClient(t, s, fief.WithIssuer(s.Issuer()))
	if _, err := good.ValidateAccessToken(ctx, s.AccessToken(u.ID)); err != nil {
		t.Fatal(err)
	}
	other := newClient(t, s, fief.WithIssuer("https://other.test"))
	if _, err := other.ValidateAccessToken(ctx, s.AccessToken(u.ID)); !errors.Is(err, fief.ErrDiscovery) {
		t.Fatalf("err = %v, want ErrDiscovery", err)
	}
}

// TestAuthenticateAuthorization reads header values as BearerToken does.
func TestAuthenticateAuthorization(t *testing.T) {
	e := newEnv(t)
	a := e.auth(t)
	ctx := context.Background()
	valid := e.token()
	for _, tc := range []struct {
		name   string
		values []string
		want   error // nil: authenticated
	}{
		{"none", nil, fief.ErrNoToken},
		{"other scheme", []string{"Basic abc"}, fief.ErrNoToken},
		{"valid", []string{"Bearer " + valid}, nil},
		{"lower-case scheme", []string{"bearer " + valid}, nil},
		{"two values", []string{"Bearer " + valid, "Bearer " + valid}, fief.ErrMalformedAuthorization},
		{"too large", []string{"Bearer " + string(make([]byte, fief.MaxTokenLength+1))}, fief.ErrTokenTooLarge},
		{"garbage", []string{"Bearer garbage"}, fief.ErrAccessTokenInvalid},
	} {
		out, err := a.Route().AuthenticateAuthorization(ctx, tc.values)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == nil:
			if _, ok := fief.AccessTokenInfoFromContext(out); !ok {
				t.Errorf("%s: no info", tc.name)
			}
		case !errors.Is(err, tc.want) || !errors.Is(err, fief.ErrUnauthenticated):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		// On an Optional route every unauthenticated case is anonymous.
		if tc.want != nil {
			if out, err := a.Route(fief.Optional()).AuthenticateAuthorization(ctx, tc.values); err != nil || out != ctx {
				t.Errorf("%s, optional: %v", tc.name, err)
			}
		}
	}
}
