package fief_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// The benchmarks of this file put fief-go next to the floor of any access
// token validation, the bare RSA signature check of the same token, in one
// run:
//
//	go test -run '^$' -bench 'ValidateAccessToken|Authenticated' -benchmem -count 5 .

// benchKey is one RSA-4096 key, the size Fief generates, shared by every
// benchmark of the package (generating it takes seconds).
var benchKey = sync.OnceValue(func() *rsa.PrivateKey { return fieftest.GenerateKey(4096) })

// benchFixture returns a server signing with the 4096-bit key and a
// Fief-shaped access token requiring nothing but what Fief puts in it.
func benchFixture(b *testing.B) (*fieftest.Server, string) {
	b.Helper()
	s := fieftest.NewTB(b, fieftest.WithSigningKey(benchKey()))
	u := s.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc", Permissions: []string{"castles:read", "castles:write"}})
	return s, s.AccessToken(u.ID, fieftest.Scopes("openid", "offline_access", "castles"), fieftest.ACR("1"))
}

// benchClient returns a client of s that has fetched its key set.
func benchClient(b *testing.B, s *fieftest.Server, token string, opts ...fief.Option) *fief.Client {
	b.Helper()
	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret, opts...)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.ValidateAccessToken(context.Background(), token); err != nil {
		b.Fatal(err)
	}
	return c
}

// benchBareVerify is the floor: SHA-256 and rsa.VerifyPKCS1v15 of the token.
func benchBareVerify(b *testing.B, pub *rsa.PublicKey, token string) {
	dot := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.Sum256([]byte(token[:dot]))
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateAccessToken: a token seen for the first time (the
// verified-token cache off) and seen again (a cache hit).
func BenchmarkValidateAccessToken(b *testing.B) {
	s, tok := benchFixture(b)
	uncached := benchClient(b, s, tok, fief.WithVerifiedTokenCache(0))
	cached := benchClient(b, s, tok)
	ctx := context.Background()
	validate := func(c *fief.Client) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.ValidateAccessToken(ctx, tok, fief.RequireScopes("castles")); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("bare-rsa-verify", func(b *testing.B) { benchBareVerify(b, s.PublicKey(), tok) })
	b.Run("fief-first-sight", validate(uncached))
	b.Run("fief-repeat", validate(cached))
	if n := s.Requests(fieftest.EndpointJWKS); n != 2 { // one per client
		b.Fatalf("JWKS fetched %d times during the benchmark", n)
	}
}

// countingHandler counts the requests it serves. Each goroutine of a
// parallel benchmark has its own, so that the benchmark shares no memory
// between goroutines but the middleware's.
type countingHandler struct{ served int64 }

func (c *countingHandler) ServeHTTP(http.ResponseWriter, *http.Request) { c.served++ }

// BenchmarkAuthenticated: one request through Authenticated (bearer
// header, one required scope), for a token seen for the first time and for
// a token seen before, and the latter from parallel goroutines.
func BenchmarkAuthenticated(b *testing.B) {
	s, tok := benchFixture(b)
	middleware := func(c *fief.Client) func(http.Handler) http.Handler {
		auth, err := fief.NewAuthenticator(c)
		if err != nil {
			b.Fatal(err)
		}
		return auth.Authenticated(fief.RequireScopes("castles"))
	}
	newRequest := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/castles", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	serve := func(mw func(http.Handler) http.Handler) func(b *testing.B) {
		return func(b *testing.B) {
			next := &countingHandler{}
			h, r, w := mw(next), newRequest(), httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
			if w.Code != http.StatusOK || next.served != int64(b.N) {
				b.Fatalf("status %d, %d of %d requests served", w.Code, next.served, b.N)
			}
		}
	}
	uncached := middleware(benchClient(b, s, tok, fief.WithVerifiedTokenCache(0)))
	cached := middleware(benchClient(b, s, tok))

	b.Run("bare-rsa-verify", func(b *testing.B) { benchBareVerify(b, s.PublicKey(), tok) })
	b.Run("middleware-first-sight", serve(uncached))
	b.Run("middleware-repeat", serve(cached))
	b.Run("middleware-repeat-parallel", func(b *testing.B) {
		var served atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			next := &countingHandler{}
			h, r, w := cached(next), newRequest(), httptest.NewRecorder()
			for pb.Next() {
				h.ServeHTTP(w, r)
			}
			served.Add(next.served)
		})
		if served.Load() != int64(b.N) {
			b.Fatalf("%d of %d requests served", served.Load(), b.N)
		}
	})
	// The floor of any context-based middleware: what it must do per
	// request, r.WithContext of a context.WithValue, and nothing else. The
	// cached path should scale across CPUs as well as this does.
	b.Run("context-floor-parallel", func(b *testing.B) {
		var served atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			next := &countingHandler{}
			h := contextFloor(next)
			r, w := newRequest(), httptest.NewRecorder()
			for pb.Next() {
				h.ServeHTTP(w, r)
			}
			served.Add(next.served)
		})
		if served.Load() != int64(b.N) {
			b.Fatalf("%d of %d requests served", served.Load(), b.N)
		}
	})
	if n := s.Requests(fieftest.EndpointJWKS); n != 2 { // one per client
		b.Fatalf("key set fetched %d times", n)
	}
}

type floorKey struct{}

// contextFloor is the minimal context middleware.
func contextFloor(next http.Handler) http.Handler {
	info := new(int)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), floorKey{}, info)))
	})
}

// BenchmarkForgedToken: what forged tokens of various shapes cost, naming
// a key the client does not have (so no RSA work hides the parsing): a
// small one, one nested as deep as allowed, one with a long permission
// list, and one nested deeper than allowed (refused by the shape scan).
func BenchmarkForgedToken(b *testing.B) {
	s, token := benchFixture(b)
	c := benchClient(b, s, token)
	ctx := context.Background()
	forge := func(extra string) string {
		hdr := b64.EncodeToString([]byte(`{"alg":"RS256","kid":"forged"}`))
		payload := `{"iss":"` + s.Issuer() + `","sub":"00000000-0000-0000-0000-000000000000","exp":4102444800,"scope":"openid","acr":"0"` + extra + `}`
		return hdr + "." + b64.EncodeToString([]byte(payload)) + "." + strings.Repeat("A", 683)
	}
	perms := make([]string, 700)
	for i := range perms {
		perms[i] = `"perm-` + strings.Repeat("x", 4) + `"`
	}
	cases := []struct{ name, token string }{
		{"small", forge(`,"permissions":[]`)},
		{"nested-16", forge(`,"permissions":[],"x":` + strings.Repeat("[", 15) + strings.Repeat("]", 15))},
		{"permissions-700", forge(`,"permissions":[` + strings.Join(perms, ",") + `]`)},
		{"nested-4000", forge(`,"permissions":[],"x":` + strings.Repeat("[", 4000) + strings.Repeat("]", 4000))},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.ValidateAccessToken(ctx, tc.token); err == nil {
					b.Fatal("forged token accepted")
				}
			}
		})
	}
}
