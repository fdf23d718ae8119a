package bench_test

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fief-go/fief/fieftest"
)

const (
	steadyCalls = 10_000 // middleware calls after warm-up
	floodTokens = 10_000 // tokens with random kids
	flooders    = 32     // goroutines sending them
)

// TestNoFiefRequestsAtSteadyState sends 10,000 requests through the
// middleware after one warm-up request and counts the requests that reach
// the fieftest server, all endpoints together: there must be none, with the
// verified-token cache on (the default) or off.
func TestNoFiefRequestsAtSteadyState(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cacheSize int
	}{{"cache-on", -1}, {"cache-off", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, token := newServer(t)
			h, served := newFiefMiddleware(t, newFiefClient(t, s, tc.cacheSize))
			if err := serve(h, token); err != nil {
				t.Fatalf("warm-up: %v", err)
			}
			s.ResetRequests()

			// Two goroutines: the cache-off case is 10,000 RSA-4096
			// verifications.
			var wg sync.WaitGroup
			var refused atomic.Int64
			for g := range 2 {
				wg.Go(func() {
					r := bearerRequest(token)
					for i := g; i < steadyCalls; i += 2 {
						w := httptest.NewRecorder()
						h.ServeHTTP(w, r)
						if w.Code != http.StatusOK {
							refused.Add(1)
						}
					}
				})
			}
			wg.Wait()

			n := fiefRequests(s)
			t.Logf("%d middleware calls after warm-up: %d requests to Fief", steadyCalls, n)
			if refused.Load() != 0 || served.served.Load() != steadyCalls+1 {
				t.Errorf("%d calls refused, %d served", refused.Load(), served.served.Load())
			}
			if n != 0 {
				t.Errorf("%d requests reached the fieftest server, want 0", n)
			}
		})
	}
}

// TestKidFloodFetches sends 10,000 tokens with random key IDs through the
// middleware from 32 goroutines, after a warm-up request, and counts the
// key-set fetches: the initial one plus at most one refresh per cooldown.
//
// The tokens are what an attacker can send: valid-looking claims (right
// issuer, not expired, so refreshes are not ruled out on that ground) with
// a random kid, signed with a key the tenant does not publish.
func TestKidFloodFetches(t *testing.T) {
	s, userID, token := newServer(t)
	h, served := newFiefMiddleware(t, newFiefClient(t, s, -1))

	// Mint the flood first (a 1024-bit attacker key keeps this to seconds;
	// the signature is never checked since no key has the kid).
	attacker := fieftest.GenerateKey(1024)
	scopes := fieftest.Scopes("openid", "offline_access", requiredScope)
	tokens := make([]string, floodTokens)
	var mint sync.WaitGroup
	for g := range 4 {
		mint.Go(func() {
			for i := g; i < floodTokens; i += 4 {
				kid := make([]byte, 16)
				_, _ = rand.Read(kid)
				tokens[i] = s.AccessToken(userID, scopes, fieftest.ACR("1"),
					fieftest.SignWith(attacker), fieftest.Header("kid", hex.EncodeToString(kid)))
			}
		})
	}
	mint.Wait()

	if err := serve(h, token); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	warmJWKS := s.Requests(fieftest.EndpointJWKS)

	var next, accepted atomic.Int64
	var wg sync.WaitGroup
	for range flooders {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= floodTokens {
					return
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, bearerRequest(tokens[i]))
				if w.Code != http.StatusUnauthorized {
					accepted.Add(1)
				}
			}
		})
	}
	wg.Wait()

	fetches := s.Requests(fieftest.EndpointJWKS)
	t.Logf("%d tokens with random kids from %d goroutines: %d JWKS fetches (%d at warm-up), %d discovery requests",
		floodTokens, flooders, fetches, warmJWKS, s.Requests(fieftest.EndpointDiscovery))
	if accepted.Load() != 0 {
		t.Errorf("%d flood requests not answered 401", accepted.Load())
	}
	if fetches > 2 {
		t.Errorf("%d JWKS fetches, want at most 2 (initial + one refresh per cooldown)", fetches)
	}
	// The genuine token still passes after the flood.
	if err := serve(h, token); err != nil {
		t.Errorf("after the flood: %v", err)
	}
	if served.served.Load() != 2 {
		t.Errorf("%d requests served, want 2 (warm-up and after the flood)", served.served.Load())
	}
}
