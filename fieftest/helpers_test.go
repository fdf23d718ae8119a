package fieftest_test

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief/fieftest"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// testKey is one signing key shared by the tests' servers: generating a key
// per server would dominate the run time.
var testKey = sync.OnceValue(func() *rsa.PrivateKey { return fieftest.GenerateKey(2048) })

// otherKey is a key no server publishes.
var otherKey = sync.OnceValue(func() *rsa.PrivateKey { return fieftest.GenerateKey(2048) })

const redirectURI = "http://app.test/callback"

// newServer starts a Server with the shared key, closed when t ends.
func newServer(t *testing.T, opts ...fieftest.Option) *fieftest.Server {
	t.Helper()
	return fieftest.NewTB(t, append([]fieftest.Option{fieftest.WithSigningKey(testKey())}, opts...)...)
}

// httpClient is the tests' client: it never follows redirects.
var httpClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// response is a read HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body as a JSON object.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return v
}

// do sends a request and reads the whole response.
func do(t *testing.T, method, target string, body io.Reader, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func get(t *testing.T, target string) response {
	t.Helper()
	return do(t, http.MethodGet, target, nil, nil)
}

// bearer returns an Authorization header with the token.
func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// tokenRequest posts form to the token endpoint, with Basic credentials
// when basic is non-nil.
func tokenRequest(t *testing.T, s *fieftest.Server, form url.Values, basic []string) response {
	t.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if basic != nil {
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(basic[0]+":"+basic[1])))
	}
	return do(t, http.MethodPost, s.URL+"/api/token", strings.NewReader(form.Encode()), h)
}

// exchange posts a code exchange for the default client (client_secret_post).
func exchange(t *testing.T, s *fieftest.Server, code string, extra url.Values) response {
	t.Helper()
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"client_id":     {s.ClientID},
		"client_secret": {s.ClientSecret},
	}
	for k, vs := range extra {
		form[k] = vs
	}
	return tokenRequest(t, s, form, nil)
}

// wantTokenError checks a token endpoint error answer.
func wantTokenError(t *testing.T, r response, code string) {
	t.Helper()
	if r.status != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400 (body %s)", r.status, r.body)
	}
	if got := r.json(t); len(got) != 1 || got["error"] != code {
		t.Fatalf("body = %s, want {\"error\":%q}", r.body, code)
	}
}

// jwksOf fetches the server's key set.
func jwksOf(t *testing.T, s *fieftest.Server) jwk.Set {
	t.Helper()
	r := get(t, s.URL+"/.well-known/jwks.json")
	set, err := jwk.Parse(r.body)
	if err != nil {
		t.Fatalf("JWKS %s: %v", r.body, err)
	}
	return set
}

// verify checks token against the server's published keys (RS256, by kid)
// and returns its protected header and claims.
func verify(t *testing.T, s *fieftest.Server, token string) (header, claims map[string]any) {
	t.Helper()
	header = jwtHeader(t, token)
	kid, _ := header["kid"].(string)
	key, ok := jwksOf(t, s).LookupKeyID(kid)
	if !ok {
		t.Fatalf("kid %q is not published", kid)
	}
	var pub rsa.PublicKey
	if err := key.Raw(&pub); err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify([]byte(token), jws.WithKey(jwa.RS256, &pub))
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return header, claims
}

// jwtHeader decodes the protected header of a compact JWS or JWE.
func jwtHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	part, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatalf("header of %q: %v", token, err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// keysOf returns the sorted member names of a JSON object.
func keysOf(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// addAlice registers the tests' usual user.
func addAlice(s *fieftest.Server) fieftest.User {
	return s.AddUser(fieftest.User{
		Email:         "alice@example.com",
		Password:      "correct horse",
		EmailVerified: true,
		Fields:        map[string]any{"first_name": "Alice"},
		Permissions:   []string{"castles:read"},
	})
}

// equalJSON reports whether a and b encode to the same JSON.
func equalJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
