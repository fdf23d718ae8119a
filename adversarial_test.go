package fief_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwe"
)

// foreignKey is an RSA key Fief never published: the attacker's.
var foreignKey = sync.OnceValue(func() *rsa.PrivateKey { return fieftest.GenerateKey(2048) })

var b64 = base64.RawURLEncoding

// compactRS256 signs header.payload (both raw JSON text, encoded as given)
// with RS256 and key.
func compactRS256(t testing.TB, key *rsa.PrivateKey, header, payload string) string {
	t.Helper()
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

// compactHS256 "signs" header.payload with HMAC-SHA256 keyed with secret.
func compactHS256(header, payload string, secret []byte) string {
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + b64.EncodeToString(mac.Sum(nil))
}

// tokenParts splits a compact token and decodes its header and payload.
func tokenParts(t testing.TB, token string) (header, payload string, sig []byte) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	h, err1 := b64.DecodeString(parts[0])
	p, err2 := b64.DecodeString(parts[1])
	s, err3 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatal("token parts are not base64url")
	}
	return string(h), string(p), s
}

// withHeader re-encodes token's header as header, keeping payload and
// signature.
func withHeader(token, header string) string {
	parts := strings.SplitN(token, ".", 3)
	return b64.EncodeToString([]byte(header)) + "." + parts[1] + "." + parts[2]
}

// withPayload re-encodes token's payload as payload, keeping header and
// signature.
func withPayload(token, payload string) string {
	parts := strings.SplitN(token, ".", 3)
	return parts[0] + "." + b64.EncodeToString([]byte(payload)) + "." + parts[2]
}

// advClaims returns the JSON members (without braces) of a valid access
// token of s for userID with the given scope, aud the default client.
func advClaims(s *fieftest.Server, userID, scope string) string {
	now := time.Now().Unix()
	return fmt.Sprintf(`"iss":%q,"sub":%q,"aud":[%q],"exp":%d,"iat":%d,"auth_time":%d,"azp":%q,"acr":"1","scope":%q,"permissions":["castles:read"]`,
		s.Issuer(), userID, s.ClientID, now+3600, now, now, s.ClientID, scope)
}

// advCase is one row of the adversarial table.
type advCase struct {
	name string
	// token is sent as "Authorization: Bearer <token>", unless headers
	// gives the Authorization headers to send instead.
	token   string
	headers []string
	want    mwAnswer
	// maxJWKS is how many key-set fetches the case may cause: 1 for a
	// plausible token naming an unknown key (a refresh, cooldown permitting),
	// 0 otherwise. Discovery is never refetched.
	maxJWKS int
	why     string // for the rows whose outcome needs an explanation
}

// TestAdversarialTokens sends hostile tokens through Authenticated and
// CurrentUser over real HTTP, with fieftest as Fief and a separate attacker
// server that headers point at, and checks for each: the exact answer
// (status, fixed body, WWW-Authenticate), that the handler never ran, and
// which requests reached Fief and the attacker.
func TestAdversarialTokens(t *testing.T) {
	k1 := testKey()
	s := fieftest.NewTB(t, fieftest.WithSigningKey(k1))
	kid1 := s.KeyID()
	kid2 := s.RotateKey() // two published keys; kid2 signs s.AccessToken's tokens
	user := addNamedUser(s, "anne", "castles:read")
	uid := user.ID

	var attackerHits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		attackerHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"keys":[]}`)
	}))
	defer attacker.Close()

	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret, fief.WithAudiences(s.ClientID))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := fief.NewAuthenticator(c, fief.WithUserInfoCache(memCache(t, 100, time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		info, _ := fief.AccessTokenInfoFromContext(r.Context())
		fmt.Fprintf(w, "user=%s", info.UserID())
	})
	mux := http.NewServeMux()
	mux.Handle("/castles", a.Authenticated(fief.RequireScopes("castles"))(ok))
	mux.Handle("/me", a.CurrentUser(fief.RequireScopes("castles"))(ok))
	app := httptest.NewUnstartedServer(mux)
	// Let 1 MB headers reach the middleware instead of net/http's 431.
	app.Config.MaxHeaderBytes = 4 << 20
	app.Start()
	defer app.Close()

	valid := s.AccessToken(uid, fieftest.Scopes("openid", "castles"), fieftest.ACR("1"))
	ansValid := mwAnswer{200, "", "user=" + uid}

	// Warm up: discovery and the key set are fetched once.
	get := func(path string, headers []string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, app.URL+path, nil)
		for _, h := range headers {
			req.Header.Add("Authorization", h)
		}
		resp, err := app.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(body)
	}
	if code, _, body := get("/me", []string{"Bearer " + valid}); code != 200 {
		t.Fatalf("warm-up: %d %s", code, body)
	}

	header := func(kid string, extra string) string {
		return fmt.Sprintf(`{"alg":"RS256","kid":%q%s}`, kid, extra)
	}
	claims := advClaims(s, uid, "openid castles")
	payload := "{" + claims + "}"
	// sign1 signs raw JSON with k1, a published key with a known private part.
	sign1 := func(hdr, pl string) string { return compactRS256(t, k1, hdr, pl) }

	// Public-key material an attacker has, for HMAC key confusion.
	pkix, err := x509.MarshalPKIXPublicKey(&k1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemPKIX := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	pkcs1 := x509.MarshalPKCS1PublicKey(&k1.PublicKey)
	pemPKCS1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1})
	hsHeader := fmt.Sprintf(`{"alg":"HS256","kid":%q,"typ":"JWT"}`, kid1)

	// PS256 with a published key: a genuine signature by a trusted key, with
	// an algorithm that is not RS256.
	ps256 := func() string {
		input := b64.EncodeToString([]byte(fmt.Sprintf(`{"alg":"PS256","kid":%q}`, kid1))) + "." + b64.EncodeToString([]byte(payload))
		sum := sha256.Sum256([]byte(input))
		sig, err := rsa.SignPSS(rand.Reader, k1, crypto.SHA256, sum[:], nil)
		if err != nil {
			t.Fatal(err)
		}
		return input + "." + b64.EncodeToString(sig)
	}()
	es256 := func() string {
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		input := b64.EncodeToString([]byte(fmt.Sprintf(`{"alg":"ES256","kid":%q}`, kid2))) + "." + b64.EncodeToString([]byte(payload))
		sum := sha256.Sum256([]byte(input))
		r, ss, err := ecdsa.Sign(rand.Reader, ek, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
		return input + "." + b64.EncodeToString(sig)
	}()

	// The attacker's own key, embedded or referenced by the header.
	fk := foreignKey()
	fkN := b64.EncodeToString(fk.N.Bytes())
	fkE := b64.EncodeToString(big.NewInt(int64(fk.E)).Bytes())
	jwkHeader := fmt.Sprintf(`{"alg":"RS256","kid":"attacker","jwk":{"kty":"RSA","kid":"attacker","n":%q,"e":%q}}`, fkN, fkE)
	fkDER, _ := x509.MarshalPKIXPublicKey(&fk.PublicKey)

	// Tokens encrypted rather than signed.
	jweOf := func(plain string) string {
		out, err := jwe.Encrypt([]byte(plain), jwe.WithKey(jwa.RSA_OAEP_256, &k1.PublicKey), jwe.WithContentEncryption(jwa.A256CBC_HS512))
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}

	// Signature malleability: the last character of an RS256-2048
	// signature carries 4 padding bits; setting them changes the string but
	// not the decoded bytes.
	malleable := func() string {
		i := strings.LastIndexByte(valid, '.')
		sig := valid[i+1:]
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		last := strings.IndexByte(alphabet, sig[len(sig)-1])
		return valid[:i+1] + sig[:len(sig)-1] + string(alphabet[last|1])
	}()

	validHeader, _, validSig := tokenParts(t, valid)
	// A payload part whose length no base64 encoding can have (4n+1).
	badLength := func() string {
		parts := strings.Split(valid, ".")
		for len(parts[1])%4 != 1 {
			parts[1] += "A"
		}
		return strings.Join(parts, ".")
	}()
	other := s.AccessToken(uid, fieftest.Scopes("openid", "castles", "admin"), fieftest.ACR("1"))

	perms := func(n int, f string) []string {
		p := make([]string, n)
		for i := range p {
			p[i] = fmt.Sprintf(f, i)
		}
		return p
	}
	tenThousand := s.AccessToken(uid, fieftest.Scopes("openid", "castles"), fieftest.Permissions(perms(10000, "castles:%d")...))
	// The most permissions that fit under MaxTokenLength with short names.
	manyPerms := s.AccessToken(uid, fieftest.Scopes("openid", "castles"), fieftest.Permissions(perms(1500, "p%d")...))
	if len(manyPerms) > fief.MaxTokenLength {
		t.Fatalf("manyPerms is %d bytes", len(manyPerms))
	}
	tok := func(opts ...fieftest.TokenOption) string {
		return s.AccessToken(uid, append([]fieftest.TokenOption{fieftest.Scopes("openid", "castles"), fieftest.ACR("1")}, opts...)...)
	}
	scoped := func(scope string) string { return tok(fieftest.Scopes(scope)) }
	raw := func(members string) string { return sign1(header(kid1, ""), "{"+members+"}") }
	without := func(name string) string { return tok(fieftest.Claim(name, nil)) }
	// claimsWith replaces one member of the valid claims by raw JSON text.
	claimsWith := func(name, value string) string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(payload), &m); err != nil {
			t.Fatal(err)
		}
		m[name] = json.RawMessage(value)
		b, _ := json.Marshal(m)
		return sign1(header(kid1, ""), string(b))
	}

	tests := []advCase{
		// Algorithms and keys.
		{name: "alg none, no signature", token: b64.EncodeToString([]byte(`{"alg":"none"}`)) + "." + b64.EncodeToString([]byte(payload)) + ".", want: ansInvalid},
		{name: "alg none, RS256 signature kept", token: withHeader(valid, fmt.Sprintf(`{"alg":"none","kid":%q}`, kid2)), want: ansInvalid},
		{name: "alg NONE", token: withHeader(valid, fmt.Sprintf(`{"alg":"NONE","kid":%q}`, kid2)), want: ansInvalid},
		{name: "HS256 keyed with the public key's PEM (PKIX)", token: compactHS256(hsHeader, payload, pemPKIX), want: ansInvalid},
		{name: "HS256 keyed with the public key's PEM (PKCS#1)", token: compactHS256(hsHeader, payload, pemPKCS1), want: ansInvalid},
		{name: "HS256 keyed with the public key's DER", token: compactHS256(hsHeader, payload, pkix), want: ansInvalid},
		{name: "HS256 keyed with the modulus", token: compactHS256(hsHeader, payload, k1.N.Bytes()), want: ansInvalid},
		{name: "RS256 header, HMAC signature", token: compactHS256(header(kid1, ""), payload, pemPKIX), want: ansInvalid},
		{name: "PS256 by a published key", token: ps256, want: ansInvalid},
		{name: "ES256 with the tenant's kid", token: es256, want: ansInvalid},
		{name: "RS256 by an unknown key, unknown kid", token: tok(fieftest.SignWith(fk)), want: ansInvalid, maxJWKS: 1,
			why: "a plausible token naming an unknown key may refresh the key set once per cooldown"},
		{name: "RS256 by an unknown key, the tenant's kid", token: tok(fieftest.SignWith(fk), fieftest.Header("kid", kid2)), want: ansInvalid},
		{name: "kid naming another published key", token: tok(fieftest.SignWith(k1), fieftest.Header("kid", kid2)), want: ansInvalid},
		{name: "no kid, unknown key", token: tok(fieftest.SignWith(fk), fieftest.Header("kid", nil)), want: ansInvalid},
		{name: "empty kid, unknown key", token: tok(fieftest.SignWith(fk), fieftest.Header("kid", "")), want: ansInvalid},
		{name: "kid is a number", token: sign1(`{"alg":"RS256","kid":1}`, payload), want: ansInvalid},
		{name: "kid is a path", token: tok(fieftest.SignWith(fk), fieftest.Header("kid", "../../../../etc/passwd")), want: ansInvalid, maxJWKS: 1},
		{name: "kid is SQL", token: tok(fieftest.SignWith(fk), fieftest.Header("kid", "' OR 1=1 --")), want: ansInvalid, maxJWKS: 1},
		{name: "unknown kid, wrong issuer", token: tok(fieftest.SignWith(fk), fieftest.Header("kid", "k-evil"), fieftest.Claim("iss", "https://evil.example")), want: ansInvalid,
			why: "implausible: never worth a key-set fetch"},

		// Tampering.
		{name: "tampered header (typ added)", token: withHeader(valid, strings.TrimSuffix(validHeader, "}")+`,"typ":"JWT"}`), want: ansInvalid},
		{name: "tampered header (kid of the other published key)", token: withHeader(valid, header(kid1, "")), want: ansInvalid},
		{name: "tampered payload (scope widened)", token: withPayload(valid, "{"+advClaims(s, uid, "openid castles admin")+"}"), want: ansInvalid},
		{name: "tampered payload (one character)", token: withPayload(valid, strings.Replace(payload, `"acr":"1"`, `"acr":"0"`, 1)), want: ansInvalid},
		{name: "signature stripped", token: valid[:strings.LastIndexByte(valid, '.')+1], want: ansInvalid},
		{name: "signature and its dot stripped", token: valid[:strings.LastIndexByte(valid, '.')], want: ansInvalid},
		{name: "signature truncated", token: valid[:len(valid)-40], want: ansInvalid},
		{name: "signature of another token", token: other[:strings.LastIndexByte(other, '.')+1] + b64.EncodeToString(validSig), want: ansInvalid},
		{name: "signature with non-zero padding bits", token: malleable, want: ansInvalid,
			why: "RFC 7515 base64url is canonical; accepting it would let one token have several spellings"},
		{name: "padded base64", token: strings.Replace(valid, ".", "=.", 1), want: ansInvalid},
		{name: "standard base64 alphabet", token: strings.NewReplacer("-", "+", "_", "/").Replace(valid), want: ansInvalid},

		// Claims: time, issuer, audience, subject.
		{name: "expired an hour ago", token: tok(fieftest.ExpiresIn(-time.Hour)), want: ansInvalid},
		{name: "expired beyond the leeway", token: tok(fieftest.ExpiresIn(-2 * fief.DefaultLeeway)), want: ansInvalid},
		{name: "no exp", token: without("exp"), want: ansInvalid},
		{name: "exp a string", token: claimsWith("exp", fmt.Sprintf(`"%d"`, time.Now().Add(time.Hour).Unix())), want: ansInvalid},
		{name: "exp far beyond 2^40", token: claimsWith("exp", "1e300"), want: ansInvalid},
		{name: "nbf in the future", token: tok(fieftest.Claim("nbf", time.Now().Add(time.Hour).Unix())), want: ansInvalid},
		{name: "iat in the future", token: tok(fieftest.IssuedAt(time.Now().Add(time.Hour)), fieftest.ExpiresIn(2*time.Hour)), want: ansInvalid},
		{name: "wrong iss", token: tok(fieftest.Claim("iss", "https://evil.example")), want: ansInvalid},
		{name: "iss is the serving URL, not the issuer", token: tok(fieftest.Claim("iss", s.URL)), want: ansInvalid},
		{name: "iss with a trailing slash", token: tok(fieftest.Claim("iss", s.Issuer()+"/")), want: ansInvalid},
		{name: "wrong aud", token: tok(fieftest.Audience("another-client")), want: ansInvalid},
		{name: "no aud", token: without("aud"), want: ansInvalid},
		{name: "ID token as access token", token: s.IDToken(uid), want: ansInvalid},
		{name: "sub not a UUID", token: tok(fieftest.Claim("sub", "anne")), want: ansInvalid},
		{name: "sub UUID without hyphens", token: tok(fieftest.Claim("sub", strings.ReplaceAll(uid, "-", ""))), want: ansInvalid},
		{name: "sub UUID in braces", token: tok(fieftest.Claim("sub", "{"+uid+"}")), want: ansInvalid},
		{name: "sub a number", token: claimsWith("sub", "12345"), want: ansInvalid},

		// Claims: scope, acr, permissions.
		{name: "no scope", token: without("scope"), want: ansInvalid},
		{name: "scope an array", token: claimsWith("scope", `["openid","castles"]`), want: ansInvalid},
		{name: "scope null", token: claimsWith("scope", `null`), want: ansInvalid},
		{name: "no acr", token: without("acr"), want: ansInvalid},
		{name: "acr a number", token: claimsWith("acr", `1`), want: ansInvalid},
		{name: "acr 2", token: claimsWith("acr", `"2"`), want: ansInvalid},
		{name: "no permissions", token: without("permissions"), want: ansInvalid},
		{name: "permissions a string", token: claimsWith("permissions", `"castles:read"`), want: ansInvalid},
		{name: "permissions with null", token: claimsWith("permissions", `[null,"castles:read"]`), want: ansInvalid,
			why: "encoding/json turns null into \"\": a wrongly typed claim must not pass"},
		{name: "permissions with numbers", token: claimsWith("permissions", `[1]`), want: ansInvalid},

		// Duplicate members: refused, never the wider reading.
		{name: "duplicate scope", token: raw(advClaims(s, uid, "openid") + `,"scope":"openid castles"`), want: ansInvalid},
		{name: "duplicate scope, upper case", token: raw(advClaims(s, uid, "openid") + `,"SCOPE":"openid castles"`), want: ansInvalid,
			why: "encoding/json matches member names case-insensitively"},
		{name: "duplicate scope, long s (U+017F folds to s)", token: raw(advClaims(s, uid, "openid") + `,"ſcope":"openid castles"`), want: ansInvalid},
		{name: "scope only as SCOPE", token: raw(strings.Replace(advClaims(s, uid, "openid castles"), `"scope"`, `"Scope"`, 1)), want: ansInvalid,
			why: "a reader matching names exactly sees no scope claim"},
		{name: "escaped duplicate scope", token: raw(advClaims(s, uid, "openid") + `,"sc\u006fpe":"openid castles"`), want: ansInvalid},
		{name: "duplicate acr", token: raw(strings.Replace(advClaims(s, uid, "openid castles"), `"acr":"1"`, `"acr":"0"`, 1) + `,"acr":"1"`), want: ansInvalid},
		{name: "duplicate permissions", token: raw(advClaims(s, uid, "openid castles") + `,"permissions":["castles:read","castles:admin"]`), want: ansInvalid},
		{name: "duplicate sub", token: raw(advClaims(s, uid, "openid castles") + `,"sub":"4b6a1bde-0d8c-4f3d-9d32-3f1a2c0b0e11"`), want: ansInvalid},
		{name: "duplicate alg in the header", token: sign1(fmt.Sprintf(`{"alg":"RS256","kid":%q,"alg":"none"}`, kid1), payload), want: ansInvalid},
		{name: "duplicate kid, case variant", token: sign1(fmt.Sprintf(`{"alg":"RS256","kid":%q,"KID":%q}`, kid1, kid2), payload), want: ansInvalid},

		// Shapes and sizes.
		{name: "JWE of bare claims", token: jweOf(payload), want: ansInvalid},
		{name: "JWE wrapping a valid JWS", token: jweOf(valid), want: ansInvalid},
		{name: "JWS whose payload is a signed token", token: sign1(header(kid1, `,"cty":"JWT"`), valid), want: ansInvalid},
		{name: "JWS whose payload is a JSON string of a token", token: sign1(header(kid1, ""), fmt.Sprintf("%q", valid)), want: ansInvalid},
		{name: "1 MB token", token: strings.Repeat("a", 1_000_000), want: ansInvalid},
		{name: "1 MB token of dots", token: strings.Repeat(".", 1_000_000), want: ansInvalid},
		{name: "MaxTokenLength+1 bytes", token: valid + "." + strings.Repeat("a", fief.MaxTokenLength-len(valid)), want: ansInvalid},
		{name: "10,000 dots", token: strings.Repeat(".", 10000), want: ansInvalid},
		{name: "five empty parts", token: "....", want: ansInvalid},
		{name: "invalid base64 length in the payload", token: badLength, want: ansInvalid},
		{name: "payload not JSON", token: sign1(header(kid1, ""), "not json"), want: ansInvalid},
		{name: "payload a JSON array", token: sign1(header(kid1, ""), "["+payload+"]"), want: ansInvalid},
		{name: "payload with trailing data", token: sign1(header(kid1, ""), payload+"{}"), want: ansInvalid},
		{name: "header not JSON", token: sign1("RS256", payload), want: ansInvalid},
		{name: "character outside base64url", token: valid[:10] + "!" + valid[10:], want: ansInvalid},
		{name: "10,000 permissions", token: tenThousand, want: ansInvalid,
			why: fmt.Sprintf("the token is %d bytes, over MaxTokenLength: refused by the extractor before any parsing", len(tenThousand))},

		// Unicode and spelling: a valid token whose scope is not "castles".
		{name: "scope with a Cyrillic а", token: scoped("openid cаstles"), want: ansForbidden},
		{name: "scope in upper case", token: scoped("openid CASTLES"), want: ansForbidden},
		{name: "scope in title case", token: scoped("openid Castles"), want: ansForbidden},
		{name: "scope in fullwidth letters", token: scoped("openid ｃａｓｔｌｅｓ"), want: ansForbidden},
		{name: "scope with a zero-width space", token: scoped("openid castles\u200b"), want: ansForbidden},
		{name: "scope with a combining accent", token: scoped("openid castles\u0301"), want: ansForbidden},
		{name: "scope with a long s", token: scoped("openid caſtles"), want: ansForbidden},
		{name: "scopes joined by a comma", token: scoped("openid,castles"), want: ansForbidden},
		{name: "scope prefix", token: scoped("openid castles:read"), want: ansForbidden},
		{name: "scope suffix", token: scoped("openid mycastles"), want: ansForbidden},

		// Headers that name key sources: never followed.
		{name: "crit header", token: sign1(header(kid1, `,"crit":["exp"]`), payload), want: ansInvalid},
		{name: "jku header", token: sign1(header(kid1, fmt.Sprintf(`,"jku":%q`, attacker.URL+"/jwks.json")), payload), want: ansInvalid},
		{name: "jku header, attacker's key and kid", token: compactRS256(t, fk, fmt.Sprintf(`{"alg":"RS256","kid":"attacker","jku":%q}`, attacker.URL+"/jwks.json"), payload), want: ansInvalid},
		{name: "x5u header", token: compactRS256(t, fk, fmt.Sprintf(`{"alg":"RS256","kid":"attacker","x5u":%q}`, attacker.URL+"/cert.pem"), payload), want: ansInvalid},
		{name: "jwk header with the attacker's key", token: compactRS256(t, fk, jwkHeader, payload), want: ansInvalid},
		{name: "x5c header", token: compactRS256(t, fk, fmt.Sprintf(`{"alg":"RS256","x5c":[%q]}`, base64.StdEncoding.EncodeToString(fkDER)), payload), want: ansInvalid},
		{name: "b64 false header", token: sign1(header(kid1, `,"b64":false,"crit":["b64"]`), payload), want: ansInvalid},
		{name: "zip header", token: sign1(header(kid1, `,"zip":"DEF"`), payload), want: ansInvalid},
		{name: "enc header on a JWS", token: sign1(header(kid1, `,"enc":"A256GCM"`), payload), want: ansInvalid},

		// Credentials presented wrongly.
		{name: "two Authorization headers", headers: []string{"Bearer " + valid, "Bearer " + valid}, want: ansInvalid},
		{name: "token followed by junk", headers: []string{"Bearer " + valid + " admin"}, want: ansNoToken},
		{name: "token in another scheme", headers: []string{"Token " + valid}, want: ansNoToken},

		// Controls: what must still pass.
		{name: "control: valid", token: valid, want: ansValid},
		{name: "control: valid, signed by the older published key", token: sign1(header(kid1, ""), payload), want: ansValid},
		{name: "control: no kid, tenant key", token: tok(fieftest.Header("kid", nil)), want: ansValid,
			why: "tokens without kid are tried against every tenant key (DESIGN.md)"},
		{name: "control: 1,500 permissions under MaxTokenLength", token: manyPerms, want: ansValid,
			why: fmt.Sprintf("%d bytes: parsed and accepted like any other token", len(manyPerms))},
		{name: "control: aud array with ours among others", token: tok(fieftest.Audience("another-client", s.ClientID)), want: ansValid},
		{name: "control: scopes separated by tabs and newlines", token: scoped("openid\tcastles\nadmin"), want: ansValid,
			why: "scope is split on white space, as the reference client does"},
	}

	refused := 0
	totalJWKS := 0
	for _, tc := range tests {
		if tc.want.status >= 400 {
			refused++
		}
		t.Run(tc.name, func(t *testing.T) {
			headers := tc.headers
			if headers == nil {
				headers = []string{"Bearer " + tc.token}
			}
			if tc.why != "" {
				t.Log(tc.why)
			}
			disc, jwks, ui := s.Requests(fieftest.EndpointDiscovery), s.Requests(fieftest.EndpointJWKS), s.Requests(fieftest.EndpointUserinfo)
			handledBefore := handled.Load()
			for _, path := range []string{"/castles", "/me"} {
				code, h, body := get(path, headers)
				tc.want.check(t, path, code, h, body)
				if code >= 400 && h.Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("%s: X-Content-Type-Options %q", path, h.Get("X-Content-Type-Options"))
				}
			}
			if tc.want.status >= 400 && handled.Load() != handledBefore {
				t.Errorf("the handler ran for a refused request")
			}
			dDisc := s.Requests(fieftest.EndpointDiscovery) - disc
			dJWKS := s.Requests(fieftest.EndpointJWKS) - jwks
			dUI := s.Requests(fieftest.EndpointUserinfo) - ui
			totalJWKS += dJWKS
			if dDisc != 0 {
				t.Errorf("%d discovery requests", dDisc)
			}
			if dJWKS > tc.maxJWKS {
				t.Errorf("%d key-set requests, want at most %d", dJWKS, tc.maxJWKS)
			}
			// Refused tokens never reach userinfo; accepted ones at most
			// once (then the user-info cache answers).
			if maxUI := map[bool]int{true: 0, false: 1}[tc.want.status >= 400]; dUI > maxUI {
				t.Errorf("%d userinfo requests, want at most %d", dUI, maxUI)
			}
			if n := attackerHits.Load(); n != 0 {
				t.Fatalf("the attacker's server received %d requests", n)
			}
		})
	}
	t.Logf("%d refused cases, %d controls", refused, len(tests)-refused)
	if refused < 40 {
		t.Errorf("only %d refused cases", refused)
	}
	// Every unknown kid above fell within one cooldown: one refresh at most.
	if totalJWKS > 1 {
		t.Errorf("%d key-set refreshes over the table, want at most 1", totalJWKS)
	}
}
