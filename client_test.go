package fief_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name    string
		base    string
		id      string
		opts    []fief.Option
		wantErr bool
	}{
		{"ok", "https://fief.example.com", "id", nil, false},
		{"tenant path with slash", "https://fief.example.com/tenant/", "id", nil, false},
		{"no scheme", "fief.example.com", "id", nil, true},
		{"ftp", "ftp://fief.example.com", "id", nil, true},
		{"query", "https://fief.example.com?x=1", "id", nil, true},
		{"credentials", "https://u:p@fief.example.com", "id", nil, true},
		{"no client id", "https://fief.example.com", "", nil, true},
		{"bad encryption key", "https://fief.example.com", "id", []fief.Option{fief.WithEncryptionKey("{}")}, true},
		{"public key as encryption key", "https://fief.example.com", "id", []fief.Option{fief.WithEncryptionKey(`{"kty":"RSA","n":"AQAB","e":"AQAB"}`)}, true},
		{"negative leeway", "https://fief.example.com", "id", []fief.Option{fief.WithLeeway(-time.Second)}, true},
		{"huge leeway", "https://fief.example.com", "id", []fief.Option{fief.WithLeeway(time.Hour)}, true},
		{"empty audience", "https://fief.example.com", "id", []fief.Option{fief.WithAudiences("")}, true},
		{"nil http client", "https://fief.example.com", "id", []fief.Option{fief.WithHTTPClient(nil)}, true},
		{"bad host", "https://fief.example.com", "id", []fief.Option{fief.WithHost("a/b")}, true},
		{"zero timeout", "https://fief.example.com", "id", []fief.Option{fief.WithTimeout(0)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fief.New(tt.base, tt.id, "secret", tt.opts...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestNewMakesNoRequest(t *testing.T) {
	s := fieftest.NewTB(t)
	newClient(t, s)
	for _, e := range []fieftest.Endpoint{fieftest.EndpointDiscovery, fieftest.EndpointJWKS} {
		if n := s.Requests(e); n != 0 {
			t.Fatalf("%s requests = %d", e, n)
		}
	}
}

func TestTenantPath(t *testing.T) {
	s := fieftest.NewTB(t, fieftest.WithTenantPath("/secondary"))
	if !strings.HasSuffix(s.URL, "/secondary") || !strings.HasSuffix(s.Issuer(), "/secondary") {
		t.Fatalf("URL %s issuer %s", s.URL, s.Issuer())
	}
	c := newClient(t, s)
	u := addUser(s)
	ctx := context.Background()
	authURL, err := c.AuthURL(ctx, redirectURI, fief.AuthURLOptions{Scopes: []string{"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(authURL, s.URL+"/authorize?") {
		t.Fatalf("AuthURL = %s", authURL)
	}
	code, _ := login(t, s, authURL, u)
	tokens, _, err := c.AuthCallback(ctx, code, redirectURI, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ValidateAccessToken(ctx, tokens.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UserInfo(ctx, tokens.AccessToken); err != nil {
		t.Fatal(err)
	}
	if got := c.LogoutURL("https://x.test"); !strings.HasPrefix(got, s.URL+"/logout?") {
		t.Fatalf("LogoutURL = %s", got)
	}

	// A client pointed at the wrong tenant gets a clear discovery error.
	root := strings.TrimSuffix(s.URL, "/secondary")
	wrong, _ := fief.New(root+"/nope", s.ClientID, s.ClientSecret)
	_, err = wrong.ValidateAccessToken(ctx, tokens.AccessToken)
	if !errors.Is(err, fief.ErrDiscovery) || !strings.Contains(err.Error(), root+"/nope/.well-known/openid-configuration") {
		t.Fatalf("err = %v", err)
	}
	requestError(t, err, http.StatusBadRequest, "Bad Request")
}

func TestHostOverride(t *testing.T) {
	s := fieftest.NewTB(t)
	u := addUser(s)
	c := newClient(t, s, fief.WithHost("fief.public.test"))
	ctx := context.Background()
	authURL, err := c.AuthURL(ctx, redirectURI, fief.AuthURLOptions{Scopes: []string{"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	// The browser-facing URL keeps the public host Fief advertises...
	if !strings.HasPrefix(authURL, "http://fief.public.test/authorize?") {
		t.Fatalf("AuthURL = %s", authURL)
	}
	// ...while server-side calls reach the base URL with the Host header.
	code := s.IssueCode(fieftest.CodeRequest{UserID: u.ID, RedirectURI: redirectURI, Scopes: []string{"openid"}})
	tokens, _, err := c.AuthCallback(ctx, code, redirectURI, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ValidateAccessToken(ctx, tokens.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UserInfo(ctx, tokens.AccessToken); err != nil {
		t.Fatal(err)
	}
}

func TestDiscoveryErrorsAreNotCached(t *testing.T) {
	s := fieftest.NewTB(t)
	u := addUser(s)
	ctx := context.Background()
	tok := s.AccessToken(u.ID)
	tests := []struct {
		name   string
		ep     fieftest.Endpoint
		fault  fieftest.Fault
		status int
	}{
		{"discovery 400 body", fieftest.EndpointDiscovery, fieftest.Fault{Status: 400, Body: `{"detail":"Bad Request"}`}, 400},
		{"discovery 500", fieftest.EndpointDiscovery, fieftest.Fault{Status: 500}, 500},
		{"discovery not JSON", fieftest.EndpointDiscovery, fieftest.Fault{Status: 200, Body: "<html>"}, 0},
		{"discovery JSON without endpoints", fieftest.EndpointDiscovery, fieftest.Fault{Status: 200, Body: `{"detail":"x"}`}, 0},
		{"discovery huge", fieftest.EndpointDiscovery, fieftest.Fault{Status: 200, Body: `{"issuer":"` + strings.Repeat("a", 2<<20) + `"}`}, 0},
		{"discovery down", fieftest.EndpointDiscovery, fieftest.Fault{Down: true}, 0},
		{"jwks 503", fieftest.EndpointJWKS, fieftest.Fault{Status: 503}, 503},
		{"jwks not a key set", fieftest.EndpointJWKS, fieftest.Fault{Status: 200, Body: `{"keys":"no"}`}, 0},
		{"jwks empty", fieftest.EndpointJWKS, fieftest.Fault{Status: 200, Body: `{"keys":[]}`}, 0},
		{"jwks down", fieftest.EndpointJWKS, fieftest.Fault{Down: true}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, s)
			s.SetFault(tt.ep, tt.fault)
			_, err := c.ValidateAccessToken(ctx, tok)
			if !errors.Is(err, fief.ErrDiscovery) {
				t.Fatalf("err = %v, want ErrDiscovery", err)
			}
			var re *fief.RequestError
			if tt.status != 0 && (!errors.As(err, &re) || re.StatusCode != tt.status) {
				t.Fatalf("err = %v, want a RequestError %d", err, tt.status)
			}
			s.ClearFaults()
			// Within a short backoff (1 s) the failure is answered from
			// memory, without a request to Fief...
			before := s.Requests(tt.ep)
			if _, err := c.ValidateAccessToken(ctx, tok); !errors.Is(err, fief.ErrDiscovery) {
				t.Fatalf("within the backoff: %v", err)
			}
			if n := s.Requests(tt.ep) - before; n != 0 {
				t.Fatalf("within the backoff: %d requests to %s", n, tt.ep)
			}
			// ...but it is not cached: after the backoff the client recovers.
			time.Sleep(1100 * time.Millisecond)
			if _, err := c.ValidateAccessToken(ctx, tok); err != nil {
				t.Fatalf("after recovery: %v", err)
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	s := fieftest.NewTB(t)
	u := addUser(s)
	c := newClient(t, s, fief.WithTimeout(100*time.Millisecond))
	s.SetFault(fieftest.EndpointDiscovery, fieftest.Fault{Latency: 5 * time.Second, Times: 1})
	_, err := c.ValidateAccessToken(context.Background(), s.AccessToken(u.ID))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, fief.ErrDiscovery) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	// The caller's context is honoured too.
	c2 := newClient(t, s)
	s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Latency: 5 * time.Second, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c2.UserInfo(ctx, s.AccessToken(u.ID)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

// TestLongTimeoutHonoured: WithTimeout longer than DefaultTimeout is the
// bound, not the default HTTP client's own timeout. It waits for an answer
// DefaultTimeout plus half a second late, in parallel with the other tests.
func TestLongTimeoutHonoured(t *testing.T) {
	t.Parallel()
	s := fieftest.NewTB(t)
	u := addUser(s)
	c := newClient(t, s, fief.WithTimeout(fief.DefaultTimeout+5*time.Second))
	s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Latency: fief.DefaultTimeout + 500*time.Millisecond, Times: 1})
	if _, err := c.UserInfo(context.Background(), s.AccessToken(u.ID)); err != nil {
		t.Fatalf("an answer within WithTimeout's bound: %v", err)
	}
}

func TestResponseBodiesAreCapped(t *testing.T) {
	s := fieftest.NewTB(t)
	u := addUser(s)
	c := newClient(t, s)
	ctx := context.Background()
	s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: 200, Body: `{"sub":"` + strings.Repeat("a", 2<<20) + `"}`})
	if _, err := c.UserInfo(ctx, s.AccessToken(u.ID)); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("err = %v", err)
	}
	s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: 500, Body: strings.Repeat("e", 100<<10)})
	_, err := c.UserInfo(ctx, s.AccessToken(u.ID))
	var re *fief.RequestError
	if !errors.As(err, &re) || re.StatusCode != 500 || len(re.Body) > 4096 {
		t.Fatalf("err = %v", err)
	}
	s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: 200, Body: `[1,2]`})
	if _, err := c.UserInfo(ctx, s.AccessToken(u.ID)); err == nil {
		t.Fatal("non-object userinfo accepted")
	}
}

func TestClose(t *testing.T) {
	s, _, c, tok := newWarmClient(t)
	ctx := context.Background()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c.Close() // idempotent
	// Cached keys still validate offline; anything that needs Fief fails.
	if _, err := c.ValidateAccessToken(ctx, tok); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	c2 := newClient(t, s)
	c2.Close()
	if _, err := c2.ValidateAccessToken(ctx, tok); !errors.Is(err, fief.ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

// TestReady: Ready fetches what validation needs, fails while Fief is
// unreachable, and stays ready once it has it.
func TestReady(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s)
	ctx := context.Background()
	s.SetDown(true)
	if err := c.Ready(ctx); !errors.Is(err, fief.ErrDiscovery) {
		t.Fatalf("Ready with Fief down = %v, want ErrDiscovery", err)
	}
	s.SetDown(false)
	time.Sleep(1100 * time.Millisecond) // a failed discovery is answered from memory for one second
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Requests(fieftest.EndpointJWKS) != 1 {
		t.Fatalf("JWKS fetches = %d", s.Requests(fieftest.EndpointJWKS))
	}
	s.SetDown(true)
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("ready client with Fief down: %v", err)
	}
}

func TestReadinessHandler(t *testing.T) {
	s1, s2 := newServer(t), newServer(t)
	h := fief.ReadinessHandler(nil, newClient(t, s1), newClient(t, s2))
	probe := func(method string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, "/readyz", nil))
		return w
	}
	s2.SetDown(true)
	if w := probe("GET"); w.Code != 503 || w.Body.String() != `{"status":"unavailable"}` || w.Header().Get("Retry-After") == "" {
		t.Fatalf("one tenant down: %d %s", w.Code, w.Body)
	}
	s2.SetDown(false)
	time.Sleep(1100 * time.Millisecond)
	if w := probe("GET"); w.Code != 200 || w.Body.String() != `{"status":"ready"}` {
		t.Fatalf("both up: %d %s", w.Code, w.Body)
	}
	if w := probe("POST"); w.Code != 405 {
		t.Fatalf("POST: %d", w.Code)
	}
}

// TestAirGapped: with the issuer and the key set configured, a client
// validates tokens and is ready while Fief cannot be reached at all.
func TestAirGapped(t *testing.T) {
	s := newServer(t)
	u := addUser(s)
	resp, err := http.Get(s.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.SetDown(true)
	s.ResetRequests()
	c := newClient(t, s, fief.WithIssuer(s.Issuer()), fief.WithKeySet(jwks))
	ctx := context.Background()
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if _, err := c.ValidateAccessToken(ctx, s.AccessToken(u.ID)); err != nil {
		t.Fatalf("validation with Fief unreachable: %v", err)
	}
	// A forged issuer is still refused, and an unknown key is just unknown.
	if _, err := c.ValidateAccessToken(ctx, s.AccessToken(u.ID, fieftest.Claim("iss", "https://evil"))); !errors.Is(err, fief.ErrAccessTokenInvalid) {
		t.Fatalf("forged issuer: %v", err)
	}
	if _, err := c.ValidateAccessToken(ctx, s.AccessToken(u.ID, fieftest.SignWith(fieftest.GenerateKey(2048)))); !errors.Is(err, fief.ErrAccessTokenInvalid) {
		t.Fatalf("unknown key: %v", err)
	}
	for _, e := range []fieftest.Endpoint{fieftest.EndpointDiscovery, fieftest.EndpointJWKS} {
		if n := s.Requests(e); n > 1 { // the unknown key may try one refresh
			t.Errorf("%s requests: %d", e, n)
		}
	}
	if _, err := fief.New(s.URL, s.ClientID, s.ClientSecret, fief.WithKeySet([]byte(`{"keys":[]}`))); err == nil {
		t.Error("an empty key set accepted")
	}
}
