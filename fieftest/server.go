package fieftest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is an in-process Fief tenant. Create it with New or NewTB and stop
// it with Close. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL to configure a Fief client with:
	// "http://127.0.0.1:<port>" followed by the tenant path.
	URL string
	// ClientID and ClientSecret identify the default client: by default
	// "fieftest-client" and "fieftest-secret" (confidential, any redirect
	// URI), or the client given to WithClient.
	ClientID, ClientSecret string

	ts              *httptest.Server
	issuer          string
	tenantPath      string
	tenantID        string
	lifetime        time.Duration
	refreshLifetime time.Duration
	keySize         int // of client encryption keys
	closed          chan struct{}
	closeOnce       sync.Once

	mu            sync.Mutex
	keys          []*signingKey // published keys, oldest first; the last one signs
	jwks          []byte        // JSON of the published key set
	clients       map[string]*client
	users         map[string]*User // by ID
	codes         map[string]*authCode
	refreshTokens map[string]*refreshGrant
	loginSessions map[string]*loginSession
	emailChanges  map[string]emailChange // by user ID
	faults        map[Endpoint]*Fault
	down          bool
	requests      map[Endpoint]int
}

// route is one endpoint of the tenant.
type route struct {
	endpoint Endpoint
	methods  []string
	handle   func(*Server, http.ResponseWriter, *http.Request)
}

// routes maps the paths below the tenant path to their endpoints.
var routes = map[string]route{
	"/.well-known/openid-configuration": {EndpointDiscovery, []string{http.MethodGet}, (*Server).handleDiscovery},
	"/.well-known/jwks.json":            {EndpointJWKS, []string{http.MethodGet}, (*Server).handleJWKS},
	"/authorize":                        {EndpointAuthorize, []string{http.MethodGet}, (*Server).handleAuthorize},
	"/login":                            {EndpointLogin, []string{http.MethodGet, http.MethodPost}, (*Server).handleLogin},
	"/api/token":                        {EndpointToken, []string{http.MethodPost}, (*Server).handleToken},
	"/api/userinfo":                     {EndpointUserinfo, []string{http.MethodGet, http.MethodPost}, (*Server).handleUserinfo},
	"/api/profile":                      {EndpointProfile, []string{http.MethodPatch}, (*Server).handleProfile},
	"/api/password":                     {EndpointPassword, []string{http.MethodPatch}, (*Server).handlePassword},
	"/api/email/change":                 {EndpointEmailChange, []string{http.MethodPatch}, (*Server).handleEmailChange},
	"/api/email/verify":                 {EndpointEmailVerify, []string{http.MethodPost}, (*Server).handleEmailVerify},
	"/logout":                           {EndpointLogout, []string{http.MethodGet}, (*Server).handleLogout},
}

// New starts a Server on a random loopback port (or the WithAddr address)
// with a fresh signing key and the default client. It panics if it cannot
// listen or if an option is invalid.
func New(opts ...Option) *Server {
	cfg := defaultConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.client.ID == "" {
		panic("fieftest: WithClient: the client has no ID")
	}
	key := cfg.signingKey
	if key == nil {
		key = GenerateKey(cfg.keySize)
	}
	issuer := cfg.issuer
	if issuer == "" {
		issuer = defaultIssuer + cfg.tenantPath
	}

	s := &Server{
		ClientID:        cfg.client.ID,
		ClientSecret:    cfg.client.Secret,
		issuer:          issuer,
		tenantPath:      cfg.tenantPath,
		tenantID:        newUUID(),
		lifetime:        cfg.lifetime,
		refreshLifetime: cfg.refresh,
		keySize:         cfg.keySize,
		closed:          make(chan struct{}),
		clients:         make(map[string]*client),
		users:           make(map[string]*User),
		codes:           make(map[string]*authCode),
		refreshTokens:   make(map[string]*refreshGrant),
		loginSessions:   make(map[string]*loginSession),
		emailChanges:    make(map[string]emailChange),
		faults:          make(map[Endpoint]*Fault),
		requests:        make(map[Endpoint]int),
	}
	s.publishKey(newSigningKey(key))
	s.AddClient(cfg.client)

	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	if cfg.addr != "" {
		l, err := net.Listen("tcp", cfg.addr)
		if err != nil {
			panic(fmt.Sprintf("fieftest: WithAddr: %v", err))
		}
		s.ts.Listener.Close()
		s.ts.Listener = l
	}
	s.ts.Start()
	s.URL = s.ts.URL + s.tenantPath
	return s
}

// NewTB is New followed by tb.Cleanup(s.Close).
func NewTB(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := New(opts...)
	tb.Cleanup(s.Close)
	return s
}

// Close stops the Server: it aborts pending fault latencies, closes the
// listener and waits for the requests in flight. Calling it again does
// nothing.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.ts.Close()
	})
}

// Issuer returns the issuer advertised by discovery and put into the iss
// claim of every token.
func (s *Server) Issuer() string { return s.issuer }

// serveHTTP routes a request to its endpoint after applying faults.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rel, inTenant := strings.CutPrefix(r.URL.Path, s.tenantPath)
	rt, found := routes[rel]
	if !inTenant || !found {
		s.mu.Lock()
		down := s.down
		s.mu.Unlock()
		switch {
		case down:
			dropConnection(w)
		case s.otherTenant(r.URL.Path):
			writeDetail(w, http.StatusBadRequest)
		default:
			writeDetail(w, http.StatusNotFound)
		}
		return
	}
	if !s.applyFault(w, r, rt.endpoint) {
		return
	}
	if !slices.Contains(rt.methods, r.Method) {
		w.Header().Set("Allow", strings.Join(rt.methods, ", "))
		writeDetail(w, http.StatusMethodNotAllowed)
		return
	}
	rt.handle(s, w, r)
}

// otherTenant reports whether p is a route of another tenant: a known route
// under another one-segment prefix, or at the root when the Server has a
// tenant path. Fief answers those 400 (unknown tenant).
func (s *Server) otherTenant(p string) bool {
	if s.tenantPath != "" {
		if _, known := routes[p]; known {
			return true
		}
	}
	if _, rest, ok := strings.Cut(strings.TrimPrefix(p, "/"), "/"); ok {
		_, known := routes["/"+rest]
		return known
	}
	return false
}

// baseURL returns the tenant's base URL as seen by the client that sent r:
// its scheme, X-Forwarded-Host or Host, and the tenant path.
func (s *Server) baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if fwd := r.Header.Get("X-Forwarded-Host"); fwd != "" {
		host, _, _ = strings.Cut(fwd, ",")
		host = strings.TrimSpace(host)
	}
	return scheme + "://" + host + s.tenantPath
}
