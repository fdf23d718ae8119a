package fief_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// The fuzz targets run their seeds (f.Add and testdata/fuzz/<FuzzName>)
// with every go test; fuzzing proper is one target per invocation, e.g.
//
//	go test -run '^$' -fuzz '^FuzzValidateAccessToken$' -fuzztime 10s .

// isSpaceOrTab is the white space of an Authorization header value.
func isSpaceOrTab(r rune) bool { return r == ' ' || r == '\t' }

// FuzzBearerToken checks the Authorization header extractor against the
// rule it implements: a scheme and a token separated by spaces or tabs,
// the scheme "Bearer" in any case, nothing else.
func FuzzBearerToken(f *testing.F) {
	for _, seed := range []string{
		"", "Bearer", "Bearer ", "Bearer abc", "bearer abc", "BEARER\tabc", "  Bearer   abc  ",
		"Bearer a b", "Basic YW5uZTpoZXJtaW5l", "Bearerabc", "Bearer\u00a0abc", "Bearer abc\n",
		"Bearer " + strings.Repeat("a", fief.MaxTokenLength), "Bearer " + strings.Repeat("a", fief.MaxTokenLength+1),
		"Bearer " + strings.Repeat("a ", fief.MaxTokenLength), "ſearer abc", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
	} {
		f.Add(seed, false)
	}
	f.Add("Bearer abc", true)
	e := fief.BearerToken()
	f.Fuzz(func(t *testing.T, value string, twice bool) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Add("Authorization", value)
		if twice {
			r.Header.Add("Authorization", value)
		}
		token, err := e.Extract(r)
		if twice {
			if token != "" || !errors.Is(err, fief.ErrMalformedAuthorization) {
				t.Fatalf("two headers: %q, %v", token, err)
			}
			return
		}
		// A scheme, then everything after it up to trailing white space.
		fields := strings.FieldsFunc(value, isSpaceOrTab)
		bearer := len(fields) >= 2 && strings.EqualFold(fields[0], "Bearer")
		switch {
		case err != nil:
			var rest string
			if bearer {
				rest = strings.Trim(strings.TrimLeft(value, " \t")[len(fields[0]):], " \t")
			}
			if !errors.Is(err, fief.ErrTokenTooLarge) || token != "" || !bearer || len(rest) <= fief.MaxTokenLength {
				t.Fatalf("%q: %q, %v", value, token, err)
			}
		case token != "":
			if !bearer || len(fields) != 2 || token != fields[1] || len(token) > fief.MaxTokenLength {
				t.Fatalf("%q: token %q", value, token)
			}
		default:
			if bearer && len(fields) == 2 && len(fields[1]) <= fief.MaxTokenLength {
				t.Fatalf("%q: no token", value)
			}
		}
	})
}

// FuzzExtractors builds a request from an Authorization header, a Cookie
// header and a raw query, and checks every built-in extractor and their
// combination: no panic, errors only as the documented sentinels, tokens
// equal to what net/http reads, the request left untouched.
func FuzzExtractors(f *testing.F) {
	f.Add("Bearer abc", "at=def", "at=ghi")
	f.Add("", "at=def; at=xyz", "at=1&at=2")
	f.Add("", "", "at="+strings.Repeat("a", fief.MaxTokenLength+1))
	f.Add("", "at="+strings.Repeat("a", fief.MaxTokenLength+1), "")
	f.Add("Basic abc", `at="quoted"`, "at=%zz&x=1")
	f.Add("", "at=", "at;x=1")
	f.Add("Bearer a b", "x=1;at=2", "at=a%20b")
	const name = "at"
	bearer, cookie, query := fief.BearerToken(), fief.CookieToken(name), fief.QueryToken(name)
	first := fief.FirstToken(bearer, cookie, query)
	f.Fuzz(func(t *testing.T, authz, cookieHeader, rawQuery string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.RawQuery = rawQuery
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		if cookieHeader != "" {
			r.Header.Set("Cookie", cookieHeader)
		}
		before := r.Header.Clone()
		var results [3]struct {
			token string
			err   error
		}
		for i, e := range []fief.Extractor{bearer, cookie, query} {
			token, err := e.Extract(r)
			results[i].token, results[i].err = token, err
			if err != nil && (token != "" || !errors.Is(err, fief.ErrAccessTokenInvalid)) {
				t.Fatalf("extractor %d: %q, %v", i, token, err)
			}
			if len(token) > fief.MaxTokenLength {
				t.Fatalf("extractor %d: token of %d bytes", i, len(token))
			}
		}
		if c, err := r.Cookie(name); err == nil && results[1].err == nil && results[1].token != c.Value {
			t.Fatalf("cookie: %q, net/http reads %q", results[1].token, c.Value)
		}
		if vs := r.URL.Query()[name]; len(vs) == 1 && results[2].err == nil && results[2].token != vs[0] {
			t.Fatalf("query: %q, net/http reads %q", results[2].token, vs[0])
		} else if len(vs) > 1 && !errors.Is(results[2].err, fief.ErrMalformedAuthorization) {
			t.Fatalf("query with %d values: %v", len(vs), results[2].err)
		}
		token, err := first.Extract(r)
		var wantToken string
		var wantErr error
		for _, res := range results {
			if res.err != nil || res.token != "" {
				wantToken, wantErr = res.token, res.err
				break
			}
		}
		if token != wantToken || err != wantErr {
			t.Fatalf("FirstToken: %q, %v; want %q, %v", token, err, wantToken, wantErr)
		}
		if !reflect.DeepEqual(before, r.Header) || r.URL.RawQuery != rawQuery {
			t.Fatal("the request was modified")
		}
	})
}

// fuzzPayload is a valid access-token payload for the fuzz targets' server
// (the default fieftest issuer and client), valid until 2100.
const fuzzPayload = `{"iss":"https://fief.test","sub":"5ba3c144-cc5e-40c7-9841-858a85354f26","aud":["fieftest-client"],"exp":4102444800,"iat":1700000000,"acr":"1","scope":"openid castles","permissions":["castles:read"]}`

// FuzzValidateAccessToken feeds ValidateAccessToken two kinds of input:
// token, as it comes, which must never be accepted unless its signature is
// the tenant key's (mutations of valid tokens are among the seeds); and
// signed, a payload the target signs with the tenant key, which may be
// accepted only when an exact reading of its JSON (names matched exactly,
// no duplicates, types as Fief issues them) gives the same answer. Neither
// may panic, and errors are the documented sentinels.
func FuzzValidateAccessToken(f *testing.F) {
	key := testKey()
	s := fieftest.NewTB(f, fieftest.WithSigningKey(key))
	u := s.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Permissions: []string{"castles:read"}})
	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret, fief.WithAudiences(s.ClientID))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	valid := s.AccessToken(u.ID, fieftest.Scopes("openid", "castles"), fieftest.ACR("1"))
	if _, err := c.ValidateAccessToken(context.Background(), valid); err != nil {
		f.Fatal(err)
	}
	kid := s.KeyID()
	parts := strings.Split(valid, ".")
	for _, seed := range []string{
		valid,
		s.AccessToken(u.ID, fieftest.Header("kid", nil)),
		s.AccessToken(u.ID, fieftest.ExpiresIn(-time.Hour)),
		s.AccessToken(u.ID, fieftest.Header("kid", "unknown")),
		s.AccessToken(u.ID, fieftest.SignWith(foreignKey()), fieftest.Header("kid", kid)),
		s.IDToken(u.ID),
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1],
		b64.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		b64.EncodeToString([]byte(`{"alg":"HS256","kid":"`+kid+`"}`)) + "." + parts[1] + "." + parts[2],
		parts[0] + "." + b64.EncodeToString([]byte(fuzzPayload)) + "." + parts[2],
		valid + ".",
		strings.Repeat(".", 100),
	} {
		f.Add(seed, "")
	}
	for _, payload := range []string{
		fuzzPayload,
		strings.Replace(fuzzPayload, `"scope":"openid castles"`, `"scope":"openid","SCOPE":"openid castles admin"`, 1),
		strings.Replace(fuzzPayload, `"acr":"1"`, `"acr":"0","acr":"1"`, 1),
		strings.Replace(fuzzPayload, `["castles:read"]`, `[null]`, 1),
		strings.Replace(fuzzPayload, `"exp":4102444800`, `"exp":4102444800.5`, 1),
		strings.Replace(fuzzPayload, `"sub":"5ba3c144`, `"sub":"5BA3C144`, 1),
		`{"sc\u006fpe":"x"}`,
	} {
		f.Add("", payload)
	}
	header := fmt.Sprintf(`{"alg":"RS256","kid":%q}`, kid)
	f.Fuzz(func(t *testing.T, token, signed string) {
		if token != "" {
			checkValidation(t, c, s, key, token)
		}
		if signed != "" && len(signed) < 8<<10 {
			checkValidation(t, c, s, key, compactRS256(t, key, header, signed))
		}
	})
}

// checkValidation validates token and checks the outcome against an
// independent reading of it.
func checkValidation(t *testing.T, c *fief.Client, s *fieftest.Server, key *rsa.PrivateKey, token string) {
	t.Helper()
	info, err := c.ValidateAccessToken(context.Background(), token)
	if err != nil {
		if !errors.Is(err, fief.ErrAccessTokenInvalid) && !errors.Is(err, fief.ErrAccessTokenExpired) {
			t.Fatalf("error of an unexpected class: %v", err)
		}
		if len(token) >= 16 && strings.Contains(err.Error(), token) {
			t.Fatalf("the error quotes the token: %v", err)
		}
		return
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("accepted a token of %d parts", len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err != nil || rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		t.Fatalf("accepted a token the tenant key did not sign: %q", token)
	}
	header, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	payload, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil {
		t.Fatal("accepted a token whose parts are not base64url")
	}
	h, ok := exactObject(header)
	if !ok || string(h["alg"]) != `"RS256"` {
		t.Fatalf("accepted header %s", header)
	}
	m, ok := exactObject(payload)
	if !ok {
		t.Fatalf("accepted a payload whose exact reading fails: %s", payload)
	}
	var (
		iss, sub, scope, acr string
		exp                  float64
		perms                []*string
		aud                  any
	)
	for name, dst := range map[string]any{"iss": &iss, "sub": &sub, "scope": &scope, "acr": &acr, "exp": &exp, "permissions": &perms, "aud": &aud} {
		raw, present := m[name]
		if !present || json.Unmarshal(raw, dst) != nil || string(raw) == "null" {
			t.Fatalf("accepted without a well-typed %s: %s", name, payload)
		}
	}
	var permissions []string
	for _, p := range perms {
		if p == nil {
			t.Fatalf("accepted a null permission: %s", payload)
		}
		permissions = append(permissions, *p)
	}
	audOK := aud == s.ClientID
	if list, isList := aud.([]any); isList {
		audOK = slices.Contains(list, any(s.ClientID))
	}
	switch {
	case iss != s.Issuer():
		t.Fatalf("accepted iss %q", iss)
	case !audOK:
		t.Fatalf("accepted aud %v", aud)
	case time.Unix(int64(exp), 0).Add(fief.DefaultLeeway).Before(time.Now()):
		t.Fatalf("accepted exp %v", exp)
	case !strings.EqualFold(sub, info.UserID()) || info.UserID() != strings.ToLower(info.UserID()):
		t.Fatalf("UserID %q from sub %q", info.UserID(), sub)
	case strings.Join(info.Scopes(), " ") != strings.Join(strings.Fields(scope), " "):
		t.Fatalf("Scopes %q from scope %q", info.Scopes(), scope)
	case info.ACR().String() != acr:
		t.Fatalf("ACR %v from acr %q", info.ACR(), acr)
	case !slices.Equal(info.Permissions(), permissions):
		t.Fatalf("Permissions %q from %q", info.Permissions(), permissions)
	case info.AccessToken() != token:
		t.Fatal("AccessToken is not the token")
	}
}

// exactObject decodes a JSON object into its members, matching names
// exactly, and fails on a duplicate name or trailing data.
func exactObject(b []byte) (map[string]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	m := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		name, _ := tok.(string)
		if _, dup := m[name]; dup {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		m[name] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err == nil {
		return nil, false
	}
	return m, true
}
