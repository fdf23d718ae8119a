// Package bench compares fief-go's access-token validation with other Go
// JWT validators on the same Fief-shaped RS256 token, signed with an
// RSA-4096 key like Fief's, in one run. It is its own module so that the
// peers never enter the library's go.mod.
//
// Every peer gets its keys from the fieftest server's JWKS over real HTTP,
// fetched once before timing, and checks the same things: an RS256
// signature, exp, iss (the fieftest issuer), aud containing the client ID
// and the "castles" scope.
//
// Run ./run.sh for the comparison table.
package bench_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	jwtmiddleware "github.com/auth0/go-jwt-middleware/v3"
	"github.com/auth0/go-jwt-middleware/v3/jwks"
	"github.com/auth0/go-jwt-middleware/v3/validator"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	jwxjwt "github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// requiredScope is the scope every validator demands.
const requiredScope = "castles"

// signingKey is the tenant's RSA-4096 key (the size Fief generates), shared
// by every benchmark and test of the package: generating it takes seconds.
var signingKey = sync.OnceValue(func() *rsa.PrivateKey { return fieftest.GenerateKey(4096) })

// allEndpoints are the fieftest endpoints whose requests the tests count.
var allEndpoints = []fieftest.Endpoint{
	fieftest.EndpointDiscovery, fieftest.EndpointJWKS, fieftest.EndpointAuthorize,
	fieftest.EndpointLogin, fieftest.EndpointToken, fieftest.EndpointUserinfo,
	fieftest.EndpointProfile, fieftest.EndpointPassword, fieftest.EndpointEmailChange,
	fieftest.EndpointEmailVerify, fieftest.EndpointLogout,
}

// fiefRequests returns the number of requests the server received, all
// endpoints together.
func fiefRequests(s *fieftest.Server) int {
	n := 0
	for _, e := range allEndpoints {
		n += s.Requests(e)
	}
	return n
}

// newServer starts a fieftest tenant signing with signingKey and returns it
// with a user and a Fief-shaped access token for that user.
func newServer(tb testing.TB) (*fieftest.Server, string, string) {
	tb.Helper()
	s := fieftest.NewTB(tb, fieftest.WithSigningKey(signingKey()))
	u := s.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc",
		Permissions: []string{"castles:read", "castles:write"}})
	token := s.AccessToken(u.ID, fieftest.Scopes("openid", "offline_access", requiredScope), fieftest.ACR("1"))
	return s, u.ID, token
}

// hasScope reports whether the space-separated scope claim holds want,
// without allocating.
func hasScope(scope, want string) bool {
	for f := range strings.FieldsSeq(scope) {
		if f == want {
			return true
		}
	}
	return false
}

// errNoScope is what the peers return for a token without requiredScope.
var errNoScope = errors.New("missing scope " + requiredScope)

// counting is a terminal handler that counts the requests it serves.
type counting struct{ served atomic.Int64 }

func (c *counting) ServeHTTP(http.ResponseWriter, *http.Request) { c.served.Add(1) }

// newFiefClient returns a fief client for s that checks the audience like
// the peers do; cacheSize < 0 keeps the default verified-token cache.
func newFiefClient(tb testing.TB, s *fieftest.Server, cacheSize int) *fief.Client {
	tb.Helper()
	opts := []fief.Option{fief.WithAudiences(s.ClientID)}
	if cacheSize >= 0 {
		opts = append(opts, fief.WithVerifiedTokenCache(cacheSize))
	}
	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// newFiefMiddleware returns Authenticated(RequireScopes(requiredScope))
// around a counting handler.
func newFiefMiddleware(tb testing.TB, c *fief.Client) (http.Handler, *counting) {
	tb.Helper()
	auth, err := fief.NewAuthenticator(c)
	if err != nil {
		tb.Fatal(err)
	}
	next := &counting{}
	return auth.Authenticated(fief.RequireScopes(requiredScope))(next), next
}

// countingHandler is an http.Handler counting the requests it serves, for
// one goroutine only: no memory shared between the parallel benchmark's
// goroutines but the middleware's own.
type countingHandler struct{ served int64 }

func (c *countingHandler) ServeHTTP(http.ResponseWriter, *http.Request) { c.served++ }

// bearerRequest returns a GET request carrying token as a bearer token.
func bearerRequest(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/castles", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// serve sends one request with token through h and turns a non-200 answer
// into an error.
func serve(h http.Handler, token string) error {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, bearerRequest(token))
	if w.Code != http.StatusOK {
		return fmt.Errorf("status %d: %s", w.Code, strings.TrimSpace(w.Body.String()))
	}
	return nil
}

// auth0Claims are the custom claims go-jwt-middleware decodes after its own
// registered-claims checks; Validate demands the scope.
type auth0Claims struct {
	Scope string `json:"scope"`
}

func (c *auth0Claims) Validate(context.Context) error {
	if !hasScope(c.Scope, requiredScope) {
		return errNoScope
	}
	return nil
}

// golangJWTClaims are the claims golang-jwt decodes.
type golangJWTClaims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope"`
}

// peers holds every validator under comparison, each warmed up (discovery
// and key set fetched) on construction.
type peers struct {
	s     *fieftest.Server
	token string

	fiefCached, fiefUncached *fief.Client
	fiefMW, fiefMWUncached   http.Handler
	fiefServed, fiefUncSrv   *counting

	auth0MW     http.Handler
	auth0Served *counting

	oidcVerifier *oidc.IDTokenVerifier

	jwtParser  *jwt.Parser
	jwtKeyfunc jwt.Keyfunc

	jwxSet jwk.Set
}

// newPeers builds every validator against s and warms each one up with
// token. The key-set caches' background work stops with tb.
func newPeers(tb testing.TB, s *fieftest.Server, token string) *peers {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	jwksURL := s.URL + "/.well-known/jwks.json"
	p := &peers{s: s, token: token}

	// fief-go: the default client (verified-token cache on) and one without
	// the cache; the middleware over each.
	p.fiefCached = newFiefClient(tb, s, -1)
	p.fiefUncached = newFiefClient(tb, s, 0)
	p.fiefMW, p.fiefServed = newFiefMiddleware(tb, p.fiefCached)
	p.fiefMWUncached, p.fiefUncSrv = newFiefMiddleware(tb, p.fiefUncached)

	// auth0/go-jwt-middleware v3: its http middleware (CheckJWT) over a
	// validator fed by its caching JWKS provider. The provider is given the
	// JWKS URL directly: its discovery insists that the issuer be the URL it
	// fetched from, and Fief's issuer is not its serving address.
	issuerURL, err := url.Parse(s.Issuer())
	if err != nil {
		tb.Fatal(err)
	}
	jwksU, err := url.Parse(jwksURL)
	if err != nil {
		tb.Fatal(err)
	}
	provider, err := jwks.NewCachingProvider(jwks.WithIssuerURL(issuerURL), jwks.WithCustomJWKSURI(jwksU))
	if err != nil {
		tb.Fatal(err)
	}
	v, err := validator.New(
		validator.WithKeyFunc(provider.KeyFunc),
		validator.WithAlgorithm(validator.RS256),
		validator.WithIssuer(s.Issuer()),
		validator.WithAudience(s.ClientID),
		validator.WithCustomClaims(func() *auth0Claims { return &auth0Claims{} }),
	)
	if err != nil {
		tb.Fatal(err)
	}
	mw, err := jwtmiddleware.New(jwtmiddleware.WithValidator(v))
	if err != nil {
		tb.Fatal(err)
	}
	p.auth0Served = &counting{}
	p.auth0MW = mw.CheckJWT(p.auth0Served)

	// coreos/go-oidc: discovery at the tenant URL, issuer taken as Fief's
	// (InsecureIssuerURLContext, since the two differ as they do with a
	// real Fief behind a proxy); the verifier's remote key set fetches the
	// JWKS on first use.
	oidcProvider, err := oidc.NewProvider(oidc.InsecureIssuerURLContext(ctx, s.Issuer()), s.URL)
	if err != nil {
		tb.Fatal(err)
	}
	p.oidcVerifier = oidcProvider.VerifierContext(ctx, &oidc.Config{ClientID: s.ClientID})

	// golang-jwt v5 with MicahParks/keyfunc v3 (a jwkset HTTP storage that
	// fetches the JWKS on creation and refreshes it in the background).
	kf, err := keyfunc.NewDefaultCtx(ctx, []string{jwksURL})
	if err != nil {
		tb.Fatal(err)
	}
	p.jwtKeyfunc = kf.Keyfunc
	p.jwtParser = jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(s.Issuer()),
		jwt.WithAudience(s.ClientID),
		jwt.WithExpirationRequired(),
	)

	// jwx v2: a jwk.Cache-backed set; the keys have no alg, like Fief's, so
	// WithKeySet infers it from the key type (matched against the header).
	cache := jwk.NewCache(ctx)
	if err := cache.Register(jwksURL); err != nil {
		tb.Fatal(err)
	}
	if _, err := cache.Refresh(ctx, jwksURL); err != nil {
		tb.Fatal(err)
	}
	p.jwxSet = jwk.NewCachedSet(cache, jwksURL)

	for _, c := range p.checks() {
		if err := c.check(context.Background(), token); err != nil {
			tb.Fatalf("warm-up %s: %v", c.name, err)
		}
	}
	return p
}

// namedCheck is one validator as a function of the token.
type namedCheck struct {
	name  string
	check func(ctx context.Context, token string) error
}

// checks returns every validator in benchmark order (middleware ones send a
// fresh request per call).
func (p *peers) checks() []namedCheck {
	return []namedCheck{
		{"fief-first-sight", p.fiefFirstSight},
		{"fief-repeat", p.fiefRepeat},
		{"fief-middleware", func(_ context.Context, t string) error { return serve(p.fiefMW, t) }},
		{"fief-middleware-first-sight", func(_ context.Context, t string) error { return serve(p.fiefMWUncached, t) }},
		{"auth0-go-jwt-middleware", func(_ context.Context, t string) error { return serve(p.auth0MW, t) }},
		{"go-oidc", p.goOIDC},
		{"golang-jwt-v5-keyfunc", p.golangJWT},
		{"jwx-jwt-parse", p.jwxParse},
	}
}

func (p *peers) fiefFirstSight(ctx context.Context, token string) error {
	_, err := p.fiefUncached.ValidateAccessToken(ctx, token, fief.RequireScopes(requiredScope))
	return err
}

func (p *peers) fiefRepeat(ctx context.Context, token string) error {
	_, err := p.fiefCached.ValidateAccessToken(ctx, token, fief.RequireScopes(requiredScope))
	return err
}

func (p *peers) goOIDC(ctx context.Context, token string) error {
	idt, err := p.oidcVerifier.Verify(ctx, token)
	if err != nil {
		return err
	}
	var c struct {
		Scope string `json:"scope"`
	}
	if err := idt.Claims(&c); err != nil {
		return err
	}
	if !hasScope(c.Scope, requiredScope) {
		return errNoScope
	}
	return nil
}

func (p *peers) golangJWT(_ context.Context, token string) error {
	var c golangJWTClaims
	if _, err := p.jwtParser.ParseWithClaims(token, &c, p.jwtKeyfunc); err != nil {
		return err
	}
	if !hasScope(c.Scope, requiredScope) {
		return errNoScope
	}
	return nil
}

func (p *peers) jwxParse(_ context.Context, token string) error {
	t, err := jwxjwt.ParseString(token,
		jwxjwt.WithKeySet(p.jwxSet, jws.WithInferAlgorithmFromKey(true)),
		jwxjwt.WithValidate(true),
		jwxjwt.WithIssuer(p.s.Issuer()),
		jwxjwt.WithAudience(p.s.ClientID),
		jwxjwt.WithRequiredClaim(jwxjwt.ExpirationKey),
	)
	if err != nil {
		return err
	}
	scope, _ := t.Get("scope")
	if s, _ := scope.(string); !hasScope(s, requiredScope) {
		return errNoScope
	}
	return nil
}

// benchCheck times check on the same token.
func benchCheck(b *testing.B, check func(context.Context, string) error, token string) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := check(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

// benchHandler times requests through h, reusing one request and one
// recorder as the in-package benchmarks do.
func benchHandler(b *testing.B, h http.Handler, served *counting, token string) {
	r, w := bearerRequest(token), httptest.NewRecorder()
	served.served.Store(0)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
	if w.Code != http.StatusOK || served.served.Load() != int64(b.N) {
		b.Fatalf("status %d, %d of %d requests served", w.Code, served.served.Load(), b.N)
	}
}

// BenchmarkCompare validates one Fief-shaped RS256 token (RSA-4096) with
// the bare RSA check (the floor), fief-go and its peers, in one run.
func BenchmarkCompare(b *testing.B) {
	s, _, token := newServer(b)
	p := newPeers(b, s, token)
	warm := fiefRequests(s)

	b.Run("bare-rsa-verify", func(b *testing.B) {
		pub := s.PublicKey()
		dot := strings.LastIndexByte(token, '.')
		sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			sum := sha256.Sum256([]byte(token[:dot]))
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fief-first-sight", func(b *testing.B) { benchCheck(b, p.fiefFirstSight, token) })
	b.Run("fief-repeat", func(b *testing.B) { benchCheck(b, p.fiefRepeat, token) })
	b.Run("fief-middleware", func(b *testing.B) { benchHandler(b, p.fiefMW, p.fiefServed, token) })
	b.Run("fief-middleware-first-sight", func(b *testing.B) {
		benchHandler(b, p.fiefMWUncached, p.fiefUncSrv, token)
	})
	b.Run("auth0-go-jwt-middleware", func(b *testing.B) { benchHandler(b, p.auth0MW, p.auth0Served, token) })
	b.Run("go-oidc", func(b *testing.B) { benchCheck(b, p.goOIDC, token) })
	b.Run("golang-jwt-v5-keyfunc", func(b *testing.B) { benchCheck(b, p.golangJWT, token) })
	b.Run("jwx-jwt-parse", func(b *testing.B) { benchCheck(b, p.jwxParse, token) })
	b.Run("fief-middleware-parallel", func(b *testing.B) {
		// One Auth and one Client shared by every goroutine, as in a
		// server; each goroutine counts what its handler served in memory
		// of its own, so that the benchmark adds no shared cache line.
		auth, err := fief.NewAuthenticator(p.fiefCached)
		if err != nil {
			b.Fatal(err)
		}
		mw := auth.Authenticated(fief.RequireScopes(requiredScope))
		var served atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			next := &countingHandler{}
			h := mw(next)
			r, w := bearerRequest(token), httptest.NewRecorder()
			for pb.Next() {
				h.ServeHTTP(w, r)
			}
			served.Add(next.served)
		})
		if served.Load() != int64(b.N) {
			b.Fatalf("%d of %d requests served", served.Load(), b.N)
		}
	})

	if n := fiefRequests(s) - warm; n != 0 {
		b.Fatalf("%d requests reached the fieftest server while timing", n)
	}
}

// TestPeersAgree checks that every validator accepts the benchmark token
// and refuses the same bad ones, so that they are compared doing the same
// work.
func TestPeersAgree(t *testing.T) {
	s, userID, token := newServer(t)
	p := newPeers(t, s, token)
	other := fieftest.GenerateKey(2048)
	scopes := fieftest.Scopes("openid", "offline_access", requiredScope)
	bad := map[string]string{
		"expired":        s.AccessToken(userID, scopes, fieftest.ACR("1"), fieftest.ExpiresIn(-time.Hour)),
		"other-audience": s.AccessToken(userID, scopes, fieftest.ACR("1"), fieftest.Audience("someone-else")),
		"other-issuer":   s.AccessToken(userID, scopes, fieftest.ACR("1"), fieftest.Claim("iss", "https://evil.test")),
		"no-scope":       s.AccessToken(userID, fieftest.Scopes("openid"), fieftest.ACR("1")),
		"foreign-key":    s.AccessToken(userID, scopes, fieftest.ACR("1"), fieftest.SignWith(other), fieftest.Header("kid", s.KeyID())),
		"tampered":       token[:len(token)-4] + "AAAA",
	}
	ctx := context.Background()
	for _, c := range p.checks() {
		if err := c.check(ctx, token); err != nil {
			t.Errorf("%s refuses the good token: %v", c.name, err)
		}
		for name, tok := range bad {
			if err := c.check(ctx, tok); err == nil {
				t.Errorf("%s accepts the %s token", c.name, name)
			}
		}
	}
}

type scalingKey struct{}

// BenchmarkScaling is the yardstick of the middleware's -cpu scaling on the
// machine at hand: two parallel loops, one doing only what every
// context-based middleware must do per request (r.WithContext of a
// context.WithValue: two allocations), one doing only CPU work (SHA-256 of
// 1 KiB). Compare each at -cpu 1 and -cpu 2.
func BenchmarkScaling(b *testing.B) {
	b.Run("with-context-only", func(b *testing.B) {
		b.ReportAllocs()
		var sink atomic.Pointer[http.Request]
		b.RunParallel(func(pb *testing.PB) {
			r := httptest.NewRequest(http.MethodGet, "/castles", nil)
			var info int
			for pb.Next() {
				r2 := r.WithContext(context.WithValue(r.Context(), scalingKey{}, &info))
				if r2.Method == "" {
					sink.Store(r2) // never: keeps r2 alive for the compiler
				}
			}
		})
	})
	b.Run("sha256-1KiB", func(b *testing.B) {
		buf := make([]byte, 1024)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				sha256.Sum256(buf)
			}
		})
	})
}
