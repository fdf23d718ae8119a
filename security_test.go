package fief_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// Point 2: the verified-token cache must keep the token, not the request
// header it was cut from.
func TestVerifiedTokenCacheRetainsOnlyTheToken(t *testing.T) {
	const (
		entries = 64
		padding = 256 << 10
	)
	pad := func() string { return strings.Repeat("p", padding) }
	extractors := []struct {
		name string
		ex   fief.Extractor
		req  func(token string) *http.Request
	}{
		{"bearer", fief.BearerToken(), func(tok string) *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+tok+strings.Repeat(" ", padding))
			return r
		}},
		{"cookie", fief.CookieToken("session"), func(tok string) *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Cookie", "pad="+pad()+"; session="+tok)
			return r
		}},
		{"query", fief.QueryToken("access_token"), func(tok string) *http.Request {
			return httptest.NewRequest("GET", "/?pad="+pad()+"&access_token="+tok, nil)
		}},
	}
	s := newServer(t)
	u := addUser(s)
	tokens := make([]string, entries)
	for i := range tokens {
		tokens[i] = s.AccessToken(u.ID, fieftest.Claim("jti", fmt.Sprint(i)))
	}
	for _, x := range extractors {
		t.Run(x.name, func(t *testing.T) {
			c := newClient(t, s)
			auth, err := fief.NewAuthenticator(c, fief.WithExtractor(x.ex))
			if err != nil {
				t.Fatal(err)
			}
			ok := 0
			h := auth.Authenticated()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ok++ }))
			// Warm up discovery and the key set outside the measure.
			h.ServeHTTP(httptest.NewRecorder(), x.req(s.AccessToken(u.ID)))
			before := liveHeap()
			for _, tok := range tokens {
				h.ServeHTTP(httptest.NewRecorder(), x.req(tok))
			}
			after := liveHeap()
			runtime.KeepAlive(c)
			if ok != entries+1 {
				t.Fatalf("%d requests served, want %d", ok, entries+1)
			}
			perEntry := (int64(after) - int64(before)) / entries
			t.Logf("retained heap per cached token: %d bytes (token %d bytes, request %d bytes)", perEntry, len(tokens[0]), padding)
			if perEntry > 16<<10 {
				t.Fatalf("each cached token retains %d bytes: the request header is kept alive", perEntry)
			}
		})
	}
}

func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Point 4: a handler cannot change what later requests with the same token
// are granted.
func TestHandlersCannotRewriteCachedInfo(t *testing.T) {
	s := newServer(t)
	u := addUser(s, "castles:read")
	c := newClient(t, s)
	auth, err := fief.NewAuthenticator(c)
	if err != nil {
		t.Fatal(err)
	}
	tok := s.AccessToken(u.ID, fieftest.Scopes("openid"))
	serve := func(h http.Handler) int {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	rewrite := auth.Authenticated()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What the old mutable struct allowed (info.Scopes = append(...))
		// the value refuses: its slices are copies.
		info, _ := fief.AccessTokenInfoFromContext(r.Context())
		scopes := info.Scopes()
		scopes[0] = "admin"
		_ = append(scopes[:1], "admin")
		info.Permissions()[0] = "castles:delete"
	}))
	if code := serve(rewrite); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	admin := auth.Authenticated(fief.RequireScopes("admin"))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	if code := serve(admin); code != http.StatusForbidden {
		t.Fatalf("a handler's rewrite escalated the next request: status %d, want 403", code)
	}
	info, err := c.ValidateAccessToken(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(info.Scopes(), info.Permissions(), info.UserID()), fmt.Sprint([]string{"openid"}, []string{"castles:read"}, u.ID); got != want {
		t.Fatalf("ValidateAccessToken returns rewritten values: %s, want %s", got, want)
	}
}

// Point 5: a key Fief stopped publishing stops being trusted about
// KeySetMaxAge after the key set was fetched, even when every token is a
// cache hit.
func TestRemovedKeyDistrustedOnCacheHits(t *testing.T) {
	s := newServer(t)
	u := addUser(s)
	clk := newTestClock()
	c := newClient(t, s, fief.WithClock(clk.Now))
	ctx := context.Background()
	tok := s.AccessToken(u.ID, fieftest.ExpiresIn(48*time.Hour))
	if _, err := c.ValidateAccessToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	leaked := s.KeyID()
	s.RotateKey()
	s.RemoveKey(leaked)
	fetches := s.Requests(fieftest.EndpointJWKS)
	clk.Add(47 * time.Hour)
	eventually(t, "the token of a removed key to be refused", func() bool {
		_, err := c.ValidateAccessToken(ctx, tok)
		return errors.Is(err, fief.ErrAccessTokenInvalid)
	})
	if n := s.Requests(fieftest.EndpointJWKS) - fetches; n != 1 {
		t.Fatalf("%d key-set fetches, want 1", n)
	}
}

// Point 6: a forged token with an unknown kid must not keep a genuinely
// new key out for the whole cooldown.
func TestForgedKidDoesNotDelayRotation(t *testing.T) {
	const cooldown = 10 * time.Second
	s := newServer(t)
	u := addUser(s)
	clk := newTestClock()
	c := newClient(t, s, fief.WithClock(clk.Now), fief.WithKeyRefreshCooldown(cooldown))
	ctx := context.Background()
	if _, err := c.ValidateAccessToken(ctx, s.AccessToken(u.ID)); err != nil {
		t.Fatal(err)
	}
	forged := 0
	attack := func() {
		forged++
		tok := s.AccessToken(u.ID, fieftest.Header("kid", fmt.Sprintf("forged-%d", forged)))
		if _, err := c.ValidateAccessToken(ctx, tok); !errors.Is(err, fief.ErrAccessTokenInvalid) {
			t.Fatalf("forged token: %v", err)
		}
	}
	attack() // spends the cooldown on a key that does not exist
	base := s.Requests(fieftest.EndpointJWKS)
	s.RotateKey()
	genuine := s.AccessToken(u.ID)
	var accepted time.Duration
	for elapsed := time.Duration(0); elapsed < cooldown; elapsed += cooldown / 20 {
		attack()
		if _, err := c.ValidateAccessToken(ctx, genuine); err == nil {
			accepted = elapsed
			break
		}
		clk.Add(cooldown / 20)
	}
	if accepted == 0 {
		t.Fatalf("the new key was refused for the whole %v cooldown while forged tokens kept coming", cooldown)
	}
	if accepted > cooldown/5 {
		t.Fatalf("the new key was accepted after %v, want within %v", accepted, cooldown/5)
	}
	if n := s.Requests(fieftest.EndpointJWKS) - base; n != 1 {
		t.Fatalf("%d key-set fetches after the rotation, want 1", n)
	}
	t.Logf("cooldown %v, a forged kid every %v: the new key accepted %v after the rotation, 1 key-set fetch", cooldown, cooldown/20, accepted)
}

// Point 7: requests that carry secrets in their body never follow a
// redirect, whatever HTTP client is configured.
func TestTokenRequestsDoNotFollowRedirects(t *testing.T) {
	s := newServer(t)
	u := addUser(s)
	var stolen atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if len(b) > 0 {
			stolen.Add(1)
		}
		w.WriteHeader(http.StatusBadRequest)
	}))
	t.Cleanup(evil.Close)
	target, _ := url.Parse(s.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Redirect(w, r, evil.URL+r.URL.Path, http.StatusTemporaryRedirect)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts []fief.Option
	}{
		{"default HTTP client", nil},
		{"WithHTTPClient", []fief.Option{fief.WithHTTPClient(&http.Client{Timeout: 5 * time.Second})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stolen.Store(0)
			c, err := fief.New(front.URL, s.ClientID, s.ClientSecret, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			tok := s.AccessToken(u.ID, fieftest.ACR("1"))
			calls := map[string]func() error{
				"code exchange": func() error {
					_, _, err := c.AuthCallback(ctx, s.IssueCode(fieftest.CodeRequest{UserID: u.ID, RedirectURI: redirectURI}), redirectURI, "")
					return err
				},
				"refresh":  func() error { _, _, err := c.AuthRefreshToken(ctx, "a-refresh-token"); return err },
				"password": func() error { _, err := c.ChangePassword(ctx, tok, "n3w-passw0rd-long"); return err },
				"profile":  func() error { _, err := c.UpdateProfile(ctx, tok, map[string]any{"a": 1}); return err },
			}
			for name, call := range calls {
				if err := call(); err == nil {
					t.Errorf("%s: no error", name)
				}
			}
			if n := stolen.Load(); n != 0 {
				t.Fatalf("%d request bodies were re-sent to the redirect target", n)
			}
		})
	}
}

// Point 8: a forged token's claims cost the same whatever their shape:
// they are never decoded before the signature is checked (and, for a
// token naming an unknown key, only after a linear scan that refuses deep
// nesting and long member lists). Five forged tokens of the same size but
// different shapes must cost the same bytes and allocations, with a known
// kid (a bad signature), with an unknown one (the first opens the
// cooldown window; the others are refused within it), and with an unknown
// kid and an issuer that is not the tenant's: such a token can never open a
// key-set fetch, so every one is scanned and decoded before it is refused,
// which is where the scan's bounds work.
func TestHostileClaimsShapes(t *testing.T) {
	s := newServer(t)
	u := addUser(s)
	ctx := context.Background()
	const size = 11000 // bytes of JSON claims, whatever their shape
	claimsWith := func(iss, permissions, extra string) string {
		base := `{"iss":"` + iss + `","sub":"` + u.ID + `","exp":4102444800,"scope":"openid","acr":"0","permissions":[` + permissions + `]`
		pad := size - len(base) - len(extra) - len(`,"pad":""}`)
		return base + extra + `,"pad":"` + strings.Repeat("p", pad) + `"}`
	}
	perms := make([]string, 700)
	for i := range perms {
		perms[i] = fmt.Sprintf(`"perm-%04d"`, i)
	}
	shapes := func(iss string) []struct{ name, claims string } {
		claims := func(extra string) string { return claimsWith(iss, "", extra) }
		return []struct{ name, claims string }{
			{"flat", claims("")},
			{"deep array", claims(`,"x":` + strings.Repeat("[", 4000) + strings.Repeat("]", 4000))},
			{"deep object", claims(`,"x":` + strings.Repeat(`{"a":`, 1000) + "0" + strings.Repeat("}", 1000))},
			{"wide object", claims(`,"x":{` + wideMembers(700) + `}`)},
			{"long permission list", claimsWith(iss, strings.Join(perms, ","), "")},
		}
	}
	good := s.AccessToken(u.ID)
	unknownKid := b64.EncodeToString([]byte(`{"alg":"RS256","kid":"forged"}`))
	for _, kid := range []struct{ name, header, iss string }{
		{"known kid", strings.SplitN(good, ".", 2)[0], s.Issuer()},
		{"unknown kid", unknownKid, s.Issuer()},
		{"unknown kid, foreign issuer", unknownKid, "https://elsewhere.example"},
	} {
		t.Run(kid.name, func(t *testing.T) {
			// A client of its own, whose cooldown window no earlier case
			// has opened.
			c := newClient(t, s)
			if _, err := c.ValidateAccessToken(ctx, good); err != nil {
				t.Fatal(err)
			}
			fetches := s.Requests(fieftest.EndpointJWKS)
			var flat [2]float64
			for i, sh := range shapes(kid.iss) {
				tok := kid.header + "." + b64.EncodeToString([]byte(sh.claims)) + "." + strings.SplitN(good, ".", 3)[2]
				if len(tok) > fief.MaxTokenLength {
					t.Fatalf("%s: test token of %d bytes", sh.name, len(tok))
				}
				if _, err := c.ValidateAccessToken(ctx, tok); !errors.Is(err, fief.ErrAccessTokenInvalid) {
					t.Fatalf("%s: err = %v", sh.name, err)
				}
				cost := allocCost(func() { c.ValidateAccessToken(ctx, tok) })
				if i == 0 {
					flat = cost
				}
				t.Logf("%s: %.0f bytes, %.0f allocations", sh.name, cost[0], cost[1])
				if cost[0] > flat[0]*1.1 || cost[1] > flat[1]+2 {
					t.Errorf("%s costs %.0f bytes and %.0f allocations, a flat token of the same size %.0f and %.0f", sh.name, cost[0], cost[1], flat[0], flat[1])
				}
			}
			// The forged kid cost at most one key-set fetch (the cooldown
			// window it opened), whatever the shapes.
			if n := s.Requests(fieftest.EndpointJWKS) - fetches; n > 1 {
				t.Fatalf("%d key-set fetches", n)
			}
		})
	}
}

// allocCost returns the bytes and allocations f costs per run.
func allocCost(f func()) [2]float64 {
	const runs = 50
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return [2]float64{float64(after.TotalAlloc-before.TotalAlloc) / runs, float64(after.Mallocs-before.Mallocs) / runs}
}

func wideMembers(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"m%d":0`, i)
	}
	return b.String()
}

// TestTokenHasOneSpelling: Go's base64 decoders skip \r and \n, even in
// strict mode. The signature part is not covered by the signature, so a
// token with line breaks in it would validate under as many spellings as
// an attacker likes: distinct verified-token cache keys (each one a full
// RSA check and a cache entry) and a way past any exact-string denylist.
// Every part of a token must be canonical base64url.
func TestTokenHasOneSpelling(t *testing.T) {
	e := newEnv(t)
	tok := e.token()
	ctx := context.Background()
	if _, err := e.c.ValidateAccessToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	h, rest, _ := strings.Cut(tok, ".")
	p, sig, _ := strings.Cut(rest, ".")
	for name, variant := range map[string]string{
		"LF in the signature":   h + "." + p + "." + sig[:10] + "\n" + sig[10:],
		"CR in the signature":   h + "." + p + "." + sig[:10] + "\r" + sig[10:],
		"CRLF ending the token": tok + "\r\n",
		"LF in the payload":     h + "." + p[:10] + "\n" + p[10:] + "." + sig,
		"LF in the header":      h[:5] + "\n" + h[5:] + "." + p + "." + sig,
	} {
		if _, err := e.c.ValidateAccessToken(ctx, variant); !errors.Is(err, fief.ErrAccessTokenInvalid) {
			t.Errorf("%s: %v, want ErrAccessTokenInvalid", name, err)
		}
	}
	// The same through an extractor that can carry a line break.
	a := e.auth(t, fief.WithExtractor(fief.QueryToken("access_token")))
	h2 := a.Authenticated()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	w := httptest.NewRecorder()
	h2.ServeHTTP(w, httptest.NewRequest("GET", "/?access_token="+url.QueryEscape(h+"."+p+"."+sig[:10]+"\n"+sig[10:]), nil))
	if w.Code != http.StatusUnauthorized {
		t.Errorf("query token with a line break in its signature: %d, want 401", w.Code)
	}
}
