package jose

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwe"
	"github.com/lestrrat-go/jwx/v2/jws"
)

var key = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func sign(t *testing.T, hdr map[string]any, payload string) string {
	t.Helper()
	h := jws.NewHeaders()
	for k, v := range hdr {
		if err := h.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	out, err := jws.Sign([]byte(payload), jws.WithKey(jwa.RS256, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestParseJWS(t *testing.T) {
	good := sign(t, map[string]any{"kid": "k1"}, `{"sub":"x"}`)
	parts := strings.Split(good, ".")
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"valid", good, nil},
		{"empty", "", ErrMalformed},
		{"one part", "abc", ErrMalformed},
		{"two parts", "abc.def", ErrMalformed},
		{"four parts", good + ".x", ErrMalformed},
		{"JWE shape", "a.b.c.d.e", ErrMalformed},
		{"empty signature", parts[0] + "." + parts[1] + ".", ErrMalformed},
		{"padding", parts[0] + "." + parts[1] + "." + parts[2] + "=", ErrMalformed},
		{"standard base64 chars", parts[0] + "." + parts[1] + "+/." + parts[2], ErrMalformed},
		{"too large", strings.Repeat("a", MaxTokenSize+1), ErrTooLarge},
		{"dots only", strings.Repeat(".", 10000), ErrMalformed},
		{"header not JSON", b64("nope") + "." + parts[1] + "." + parts[2], ErrHeader},
		{"alg none", b64(`{"alg":"none"}`) + "." + parts[1] + "." + parts[2], ErrAlgorithm},
		{"alg HS256", b64(`{"alg":"HS256"}`) + "." + parts[1] + "." + parts[2], ErrAlgorithm},
		{"alg PS256", b64(`{"alg":"PS256"}`) + "." + parts[1] + "." + parts[2], ErrAlgorithm},
		{"alg rs256 lower case", b64(`{"alg":"rs256"}`) + "." + parts[1] + "." + parts[2], ErrAlgorithm},
		{"enc in JWS", b64(`{"alg":"RS256","enc":"A256GCM"}`) + "." + parts[1] + "." + parts[2], ErrAlgorithm},
		{"crit", b64(`{"alg":"RS256","crit":["exp"]}`) + "." + parts[1] + "." + parts[2], ErrForbiddenHdr},
		{"jku", b64(`{"alg":"RS256","jku":"http://evil"}`) + "." + parts[1] + "." + parts[2], ErrForbiddenHdr},
		{"x5u", b64(`{"alg":"RS256","x5u":"http://evil"}`) + "." + parts[1] + "." + parts[2], ErrForbiddenHdr},
		{"jwk", b64(`{"alg":"RS256","jwk":{}}`) + "." + parts[1] + "." + parts[2], ErrForbiddenHdr},
		{"b64", b64(`{"alg":"RS256","b64":false}`) + "." + parts[1] + "." + parts[2], ErrForbiddenHdr},
		{"kid wrong type", b64(`{"alg":"RS256","kid":5}`) + "." + parts[1] + "." + parts[2], ErrHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := ParseJWS(tt.token)
			if err == nil {
				err = j.DecodePayload()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err == nil && (j.Header.Kid != "k1" || string(j.Payload) != `{"sub":"x"}`) {
				t.Fatalf("parsed %+v", j)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	token := sign(t, nil, `{"a":1}`)
	j, err := ParseJWS(token)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Verify(&key.PublicKey); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	if err := j.Verify(&other.PublicKey); !errors.Is(err, ErrSignature) {
		t.Fatalf("other key: %v", err)
	}
	// Tampered payload: same header and signature, other claims.
	parts := strings.Split(token, ".")
	j2, err := ParseJWS(parts[0] + "." + b64(`{"a":2}`) + "." + parts[2])
	if err != nil {
		t.Fatal(err)
	}
	if err := j2.Verify(&key.PublicKey); !errors.Is(err, ErrSignature) {
		t.Fatalf("tampered payload: %v", err)
	}
}

func TestDecrypt(t *testing.T) {
	encKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	plain := []byte("inner.jws.token")
	enc := func(alg jwa.KeyEncryptionAlgorithm, cea jwa.ContentEncryptionAlgorithm) string {
		out, err := jwe.Encrypt(plain, jwe.WithKey(alg, &encKey.PublicKey), jwe.WithContentEncryption(cea))
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	got, err := Decrypt(enc(jwa.RSA_OAEP_256, jwa.A256CBC_HS512), encKey)
	if err != nil || string(got) != string(plain) {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
	if _, err := Decrypt(enc(jwa.RSA_OAEP, jwa.A256CBC_HS512), encKey); !errors.Is(err, ErrEncryptionAlg) {
		t.Fatalf("RSA-OAEP accepted: %v", err)
	}
	if _, err := Decrypt(enc(jwa.RSA_OAEP_256, jwa.A128GCM), encKey); !errors.Is(err, ErrEncryptionAlg) {
		t.Fatalf("A128GCM accepted: %v", err)
	}
	if _, err := Decrypt("a.b.c", encKey); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("JWS accepted as JWE: %v", err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	if _, err := Decrypt(enc(jwa.RSA_OAEP_256, jwa.A256CBC_HS512), other); !errors.Is(err, ErrDecryption) {
		t.Fatalf("wrong key: %v", err)
	}
	pbes := b64(`{"alg":"PBES2-HS256+A128KW","enc":"A256CBC-HS512","p2c":100000000}`) + ".a.b.c.d"
	if _, err := Decrypt(pbes, encKey); !errors.Is(err, ErrEncryptionAlg) {
		t.Fatalf("PBES2 accepted: %v", err)
	}
	zip := b64(`{"alg":"RSA-OAEP-256","enc":"A256CBC-HS512","zip":"DEF"}`) + ".a.b.c.d"
	if _, err := Decrypt(zip, encKey); !errors.Is(err, ErrForbiddenHdr) {
		t.Fatalf("zip accepted: %v", err)
	}
}

func TestRegisteredClaims(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	leeway := time.Minute
	tests := []struct {
		name   string
		claims string
		want   error
	}{
		{"valid", `{"exp":1700000100}`, nil},
		{"float exp", `{"exp":1700000100.5}`, nil},
		{"no exp", `{}`, ErrNoExpiry},
		{"expired beyond leeway", `{"exp":1699999940}`, ErrExpired},
		{"expired within leeway", `{"exp":1699999990}`, nil},
		{"nbf future", `{"exp":1700000100,"nbf":1700000061}`, ErrNotYet},
		{"nbf within leeway", `{"exp":1700000100,"nbf":1700000030}`, nil},
		{"iat future", `{"exp":1700009999,"iat":1700000100}`, ErrIssuedLate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Registered
			if err := json.Unmarshal([]byte(tt.claims), &r); err != nil {
				t.Fatal(err)
			}
			if err := r.CheckTimes(now, leeway); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	for _, bad := range []string{`{"exp":"1"}`, `{"exp":-1}`, `{"exp":1e300}`, `{"iss":5}`, `{"aud":5}`, `{"aud":[1]}`} {
		var r Registered
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("%s: decoded without error", bad)
		}
	}
	var r Registered
	json.Unmarshal([]byte(`{"aud":"one"}`), &r)
	if !r.Aud.Contains([]string{"x", "one"}) || r.Aud.Contains([]string{"two"}) {
		t.Fatalf("aud string: %v", r.Aud)
	}
}

func TestValidationHash(t *testing.T) {
	// Vector from the OpenID Connect Core spec, section A.3 (at_hash of the
	// example access token with RS256).
	if got := ValidationHash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"); got != "77QmUPtjPfzWtF2AnpK9RQ" {
		t.Fatalf("ValidationHash = %q", got)
	}
	if !HashMatches("77QmUPtjPfzWtF2AnpK9RQ", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y") || HashMatches("x", "y") {
		t.Fatal("HashMatches")
	}
}

func TestCheckMembers(t *testing.T) {
	tests := []struct {
		json string
		want bool
	}{
		{`{"scope":"openid","acr":"0"}`, true},
		{`{"scope":"openid","scope":"admin"}`, false},
		{`{"scope":"openid", "scope" : "admin"}`, false},
		{`{"sc\u006fpe":"admin","scope":"openid"}`, false},
		{`{"a\"b":1}`, false},
		{`{"fields":{"x":1,"x":2}}`, true}, // nested objects are the claims' own business
		{`{"permissions":["a","a"],"scope":"x"}`, true},
		{`{"a":"x:y","b":"{\"a\":1}"}`, true},
		{`{"a":[{"a":1}],"b":{"a":{"a":2}}}`, true},
		{`{"a":"unterminated`, false},
		{`{}`, true},
		// encoding/json matches names case-insensitively (Unicode folding).
		{`{"scope":"openid","SCOPE":"admin"}`, false},
		{`{"scope":"openid","ſcope":"admin"}`, false},
		{`{"Scope":"admin"}`, false},
		{`{"KID":"x"}`, false},
		{`{"Email":"x","email":"y"}`, false},
		{`{"Email":"x","fields":{"Scope":1}}`, true}, // not decoded by name
	}
	for _, tt := range tests {
		if got := CheckMembers([]byte(tt.json)); (got == nil) != tt.want {
			t.Errorf("CheckMembers(%s) = %v, want ok=%v", tt.json, got, tt.want)
		}
	}
	many := []byte("{")
	for i := 0; i <= maxMembers; i++ {
		if i > 0 {
			many = append(many, ',')
		}
		many = append(many, []byte(`"k`+strings.Repeat("x", i)+`":1`)...)
	}
	many = append(many, '}')
	if CheckMembers(many) == nil {
		t.Error("more than maxMembers members accepted")
	}
	if testing.AllocsPerRun(100, func() { CheckMembers([]byte(`{"a":1,"b":2}`)) }) != 0 {
		t.Error("CheckMembers allocates")
	}
	// Shape bounds, at every depth.
	nest := func(n int, open, close string) []byte {
		return []byte(`{"a":` + strings.Repeat(open, n-1) + "0" + strings.Repeat(close, n-1) + "}")
	}
	if err := CheckMembers(nest(maxDepth, "[", "]")); err != nil {
		t.Errorf("depth %d refused: %v", maxDepth, err)
	}
	if err := CheckMembers(nest(maxDepth+1, "[", "]")); err != ErrShape {
		t.Errorf("depth %d: %v, want ErrShape", maxDepth+1, err)
	}
	if err := CheckMembers(nest(maxDepth+1, `{"a":`, "}")); err != ErrShape {
		t.Errorf("object depth %d: %v, want ErrShape", maxDepth+1, err)
	}
	wide := func(n int) []byte {
		b := []byte(`{"f":{`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, fmt.Sprintf(`"m%d":0`, i)...)
		}
		return append(b, "}}"...)
	}
	if err := CheckMembers(wide(maxAllMembers - 1)); err != nil {
		t.Errorf("%d members refused: %v", maxAllMembers, err)
	}
	if err := CheckMembers(wide(maxAllMembers)); err != ErrShape {
		t.Errorf("%d members: %v, want ErrShape", maxAllMembers+1, err)
	}
	// Strings are not members, nor structure: brackets inside them do
	// not count.
	if err := CheckMembers([]byte(`{"a":"` + strings.Repeat("[{", 100) + `"}`)); err != nil {
		t.Errorf("brackets in a string: %v", err)
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		json string
		want []string // nil: refused
	}{
		{`["a","b"]`, []string{"a", "b"}},
		{`[]`, []string{}},
		{`["null","n\"n"]`, []string{"null", `n"n`}},
		{`[null]`, nil},
		{`["a", null]`, nil},
		{`null`, nil},
		{`[1]`, nil},
		{`"a"`, nil},
	}
	for _, tt := range tests {
		var s Strings
		err := json.Unmarshal([]byte(tt.json), &s)
		if (err == nil) != (tt.want != nil) || (err == nil && strings.Join(s, ",") != strings.Join(tt.want, ",")) {
			t.Errorf("Strings(%s) = %q, %v", tt.json, s, err)
		}
	}
}

// TestDecodedNames: every member name the structs of this package decode is
// in decodedNames, which CheckMembers makes exact.
func TestDecodedNames(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[Header](), reflect.TypeFor[Registered](), reflect.TypeFor[AccessClaimsJSON]()} {
		for _, f := range reflect.VisibleFields(typ) {
			if f.Anonymous {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !slices.Contains(decodedNames[:], name) {
				t.Errorf("%s.%s (%q) is not in decodedNames", typ.Name(), f.Name, name)
			}
		}
	}
}
