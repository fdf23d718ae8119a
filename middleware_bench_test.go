package fief_test

import (
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

// authBenchKey is an RSA-4096 key, the size Fief generates.
var authBenchKey = sync.OnceValue(func() *rsa.PrivateKey { return fieftest.GenerateKey(4096) })

// BenchmarkAuthenticated measures one request through Authenticated (bearer
// header, one required scope, a Fief-shaped RS256 token signed with a
// 4096-bit key) next to the bare RSA signature check of the same token, the
// floor of any validation, in one run.
func BenchmarkAuthenticated(b *testing.B) {
	s := fieftest.NewTB(b, fieftest.WithSigningKey(authBenchKey()))
	u := s.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc",
		Permissions: []string{"castles:read", "castles:write"}})
	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret)
	if err != nil {
		b.Fatal(err)
	}
	auth, err := fief.NewAuth(c)
	if err != nil {
		b.Fatal(err)
	}
	token := s.AccessToken(u.ID, fieftest.Scopes("openid", "offline_access", "castles"), fieftest.ACR("1"))
	var served atomic.Int64
	h := auth.Authenticated(fief.RequireScopes("castles"))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		served.Add(1)
	}))
	newRequest := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/castles", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		return r
	}
	// Warm up: discovery and key set.
	warm := httptest.NewRecorder()
	h.ServeHTTP(warm, newRequest())
	if warm.Code != http.StatusOK {
		b.Fatalf("warm-up: %d", warm.Code)
	}

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
	b.Run("middleware", func(b *testing.B) {
		r, w := newRequest(), httptest.NewRecorder()
		served.Store(0)
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
		if w.Code != http.StatusOK || served.Load() != int64(b.N) {
			b.Fatalf("status %d, %d of %d requests served", w.Code, served.Load(), b.N)
		}
	})
	b.Run("middleware-parallel", func(b *testing.B) {
		served.Store(0)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r, w := newRequest(), httptest.NewRecorder()
			for pb.Next() {
				h.ServeHTTP(w, r)
			}
		})
		if served.Load() != int64(b.N) {
			b.Fatalf("%d of %d requests served", served.Load(), b.N)
		}
	})
	if n := s.Requests(fieftest.EndpointJWKS); n != 1 {
		b.Fatalf("key set fetched %d times", n)
	}
}
