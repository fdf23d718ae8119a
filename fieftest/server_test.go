package fieftest_test

import (
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fief-go/fief/fieftest"
)

func TestDiscovery(t *testing.T) {
	s := newServer(t)
	r := get(t, s.URL+"/.well-known/openid-configuration")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", r.status, r.header.Get("Content-Type"))
	}
	doc := r.json(t)

	wantKeys := []string{
		"acr_values_supported", "authorization_endpoint", "claims_supported",
		"code_challenge_methods_supported", "grant_types_supported",
		"id_token_encryption_alg_values_supported", "id_token_encryption_enc_values_supported",
		"id_token_signing_alg_values_supported", "issuer", "jwks_uri", "registration_endpoint",
		"request_parameter_supported", "response_modes_supported", "response_types_supported",
		"scopes_supported", "service_documentation", "subject_types_supported", "token_endpoint",
		"token_endpoint_auth_methods_supported", "userinfo_endpoint", "userinfo_signing_alg_values_supported",
	}
	if got := keysOf(doc); !slices.Equal(got, wantKeys) {
		t.Errorf("keys = %v\nwant %v", got, wantKeys)
	}
	for _, tc := range []struct {
		key  string
		want any
	}{
		{"issuer", "https://fief.test"},
		{"authorization_endpoint", s.URL + "/authorize"},
		{"token_endpoint", s.URL + "/api/token"},
		{"userinfo_endpoint", s.URL + "/api/userinfo"},
		{"jwks_uri", s.URL + "/.well-known/jwks.json"},
		{"registration_endpoint", s.URL + "/register"},
		{"request_parameter_supported", false},
		{"service_documentation", "https://docs.fief.dev"},
		{"scopes_supported", []any{"openid", "offline_access"}},
		{"response_types_supported", []any{"code", "code id_token", "code token", "code id_token token"}},
		{"grant_types_supported", []any{"authorization_code", "refresh_token"}},
		{"id_token_signing_alg_values_supported", []any{"RS256"}},
		{"id_token_encryption_alg_values_supported", []any{"RSA-OAEP-256"}},
		{"id_token_encryption_enc_values_supported", []any{"A256CBC-HS512"}},
		{"acr_values_supported", []any{"0", "1"}},
		{"token_endpoint_auth_methods_supported", []any{"client_secret_basic", "client_secret_post"}},
		{"claims_supported", []any{"email", "email_verified", "is_active", "tenant_id", "fields"}},
		{"code_challenge_methods_supported", []any{"plain", "S256"}},
	} {
		if got := doc[tc.key]; !equalJSON(got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.key, got, tc.want)
		}
	}
	if s.Issuer() != "https://fief.test" {
		t.Errorf("Issuer() = %q", s.Issuer())
	}
}

func TestDiscoveryHostAndIssuer(t *testing.T) {
	tests := []struct {
		name       string
		opts       []fieftest.Option
		header     http.Header
		wantIssuer string
		wantAuth   string // "" = s.URL + "/authorize"
	}{
		{name: "default"},
		{
			name:       "custom issuer",
			opts:       []fieftest.Option{fieftest.WithIssuer("https://auth.example.com")},
			wantIssuer: "https://auth.example.com",
		},
		{
			name:       "X-Forwarded-Host",
			header:     http.Header{"X-Forwarded-Host": {"proxy.example.com"}},
			wantIssuer: "https://fief.test",
			wantAuth:   "http://proxy.example.com/authorize",
		},
		{
			name:       "tenant path",
			opts:       []fieftest.Option{fieftest.WithTenantPath("/secondary")},
			wantIssuer: "https://fief.test/secondary",
		},
		{
			name:       "tenant path behind a proxy",
			opts:       []fieftest.Option{fieftest.WithTenantPath("secondary/")},
			header:     http.Header{"X-Forwarded-Host": {"proxy.example.com, other.example.com"}},
			wantIssuer: "https://fief.test/secondary",
			wantAuth:   "http://proxy.example.com/secondary/authorize",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opts...)
			doc := do(t, http.MethodGet, s.URL+"/.well-known/openid-configuration", nil, tc.header).json(t)
			if tc.wantIssuer == "" {
				tc.wantIssuer = "https://fief.test"
			}
			if tc.wantAuth == "" {
				tc.wantAuth = s.URL + "/authorize"
			}
			if doc["issuer"] != tc.wantIssuer || s.Issuer() != tc.wantIssuer {
				t.Errorf("issuer = %v, Issuer() = %q, want %q", doc["issuer"], s.Issuer(), tc.wantIssuer)
			}
			if doc["authorization_endpoint"] != tc.wantAuth {
				t.Errorf("authorization_endpoint = %v, want %q", doc["authorization_endpoint"], tc.wantAuth)
			}
		})
	}
}

func TestTenantPathRouting(t *testing.T) {
	s := newServer(t, fieftest.WithTenantPath("/secondary"))
	root := strings.TrimSuffix(s.URL, "/secondary")
	if !strings.HasSuffix(s.URL, "/secondary") {
		t.Fatalf("URL = %q, want the tenant path at the end", s.URL)
	}
	tests := []struct {
		path       string
		wantStatus int
		wantDetail string
	}{
		{"/secondary/.well-known/openid-configuration", http.StatusOK, ""},
		{"/secondary/.well-known/jwks.json", http.StatusOK, ""},
		{"/.well-known/openid-configuration", http.StatusBadRequest, "Bad Request"},
		{"/other/.well-known/openid-configuration", http.StatusBadRequest, "Bad Request"},
		{"/other/.well-known/jwks.json", http.StatusBadRequest, "Bad Request"},
		{"/other/api/userinfo", http.StatusBadRequest, "Bad Request"},
		{"/secondary/nothing", http.StatusNotFound, "Not Found"},
		{"/secondaryx/.well-known/jwks.json", http.StatusBadRequest, "Bad Request"},
		{"/nothing", http.StatusNotFound, "Not Found"},
		{"/a/b/.well-known/jwks.json", http.StatusNotFound, "Not Found"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := get(t, root+tc.path)
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tc.wantStatus, r.body)
			}
			if tc.wantDetail != "" {
				if got := r.json(t)["detail"]; got != tc.wantDetail {
					t.Errorf("detail = %v, want %q", got, tc.wantDetail)
				}
			}
		})
	}
	if n := s.Requests(fieftest.EndpointDiscovery); n != 1 {
		t.Errorf("Requests(discovery) = %d, want 1 (wrong prefixes are not counted)", n)
	}
}

func TestDefaultTenantRouting(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		method     string
		path       string
		wantStatus int
		wantBody   string
		wantAllow  string
	}{
		{http.MethodGet, "/unknown", http.StatusNotFound, `{"detail":"Not Found"}`, ""},
		{http.MethodGet, "/slug/.well-known/openid-configuration", http.StatusBadRequest, `{"detail":"Bad Request"}`, ""},
		{http.MethodPost, "/.well-known/jwks.json", http.StatusMethodNotAllowed, `{"detail":"Method Not Allowed"}`, "GET"},
		{http.MethodGet, "/api/token", http.StatusMethodNotAllowed, `{"detail":"Method Not Allowed"}`, "POST"},
		{http.MethodDelete, "/api/userinfo", http.StatusMethodNotAllowed, `{"detail":"Method Not Allowed"}`, "GET, POST"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := do(t, tc.method, s.URL+tc.path, nil, nil)
			if r.status != tc.wantStatus || string(r.body) != tc.wantBody {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, tc.wantStatus, tc.wantBody)
			}
			if got := r.header.Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
		})
	}
}

func TestWithAddr(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	s := newServer(t, fieftest.WithAddr(addr))
	if s.URL != "http://"+addr {
		t.Fatalf("URL = %q, want http://%s", s.URL, addr)
	}
	if r := get(t, s.URL+"/.well-known/jwks.json"); r.status != http.StatusOK {
		t.Fatalf("status = %d", r.status)
	}
	defer func() {
		if recover() == nil {
			t.Error("New did not panic on an address in use")
		}
	}()
	fieftest.New(fieftest.WithSigningKey(testKey()), fieftest.WithAddr(addr))
}

func TestNewTBClosesOnCleanup(t *testing.T) {
	var url string
	t.Run("server", func(t *testing.T) {
		url = fieftest.NewTB(t, fieftest.WithSigningKey(testKey())).URL
	})
	if _, err := http.Get(url + "/.well-known/jwks.json"); err == nil {
		t.Fatal("the server still answers after its test ended")
	}
}

func TestCloseTwice(t *testing.T) {
	s := fieftest.New(fieftest.WithSigningKey(testKey()))
	s.Close()
	s.Close()
}

func TestDefaultClient(t *testing.T) {
	s := newServer(t)
	if s.ClientID != "fieftest-client" || s.ClientSecret != "fieftest-secret" {
		t.Errorf("default client = %q/%q", s.ClientID, s.ClientSecret)
	}
	s2 := newServer(t, fieftest.WithClient(fieftest.Client{ID: "web", Secret: "s3cret"}))
	if s2.ClientID != "web" || s2.ClientSecret != "s3cret" {
		t.Errorf("WithClient: client = %q/%q", s2.ClientID, s2.ClientSecret)
	}
	if _, claims := verify(t, s2, s2.AccessToken("u")); !equalJSON(claims["aud"], []any{"web"}) {
		t.Errorf("aud = %v, want [web]", claims["aud"])
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestUsers(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	if !uuidV4.MatchString(alice.ID) {
		t.Errorf("generated ID %q is not a lower-case UUID v4", alice.ID)
	}
	bob := s.AddUser(fieftest.User{ID: "b0b", Email: "bob@example.com"})
	if bob.ID != "b0b" {
		t.Errorf("ID = %q, want the given one", bob.ID)
	}

	// Copies in and out: changing them does not change the server's user.
	alice.Fields["first_name"] = "Mallory"
	got, ok := s.User(alice.ID)
	if !ok || got.Fields["first_name"] != "Alice" {
		t.Fatalf("User = %+v, %v", got, ok)
	}
	got.Permissions[0] = "changed"
	if again, _ := s.User(alice.ID); again.Permissions[0] != "castles:read" {
		t.Errorf("User returned shared state: %v", again.Permissions)
	}

	s.SetPermissions(alice.ID, "a", "b")
	if got, _ := s.User(alice.ID); !slices.Equal(got.Permissions, []string{"a", "b"}) {
		t.Errorf("Permissions = %v", got.Permissions)
	}
	s.DeleteUser(alice.ID)
	if _, ok := s.User(alice.ID); ok {
		t.Error("user still exists after DeleteUser")
	}
	s.DeleteUser("unknown") // no-op

	for name, fn := range map[string]func(){
		"duplicate email":               func() { s.AddUser(fieftest.User{Email: "BOB@example.com"}) },
		"duplicate ID":                  func() { s.AddUser(fieftest.User{ID: "b0b"}) },
		"SetPermissions unknown":        func() { s.SetPermissions("nobody", "x") },
		"AddClient without ID":          func() { s.AddClient(fieftest.Client{}) },
		"WithKeySize too small":         func() { fieftest.New(fieftest.WithKeySize(512)) },
		"WithTokenLifetime zero":        func() { fieftest.New(fieftest.WithTokenLifetime(0)) },
		"WithRefreshTokenLifetime zero": func() { fieftest.New(fieftest.WithRefreshTokenLifetime(0)) },
		"WithClient without ID":         func() { fieftest.New(fieftest.WithClient(fieftest.Client{})) },
		"GenerateKey invalid size":      func() { fieftest.GenerateKey(8) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			fn()
		})
	}
}
