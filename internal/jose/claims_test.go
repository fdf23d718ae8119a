package jose

import (
	"encoding/json"
	"reflect"
	"testing"
	"unsafe"
)

// claimsSeeds are the shapes the agreement tests of the root package and
// the adversarial table give tokens, as claims: every type a claim can
// have, nulls, escapes, non-ASCII, numbers at their edges, nesting.
var claimsSeeds = []string{
	`{"iss":"https://fief.test","sub":"99621eb1-103e-4ef2-97b4-ae635c6bbea4","aud":["fieftest-client"],"exp":1796201417,"iat":1796115017,"scope":"openid castles","acr":"1","permissions":["castles:read"]}`,
	`{"iss":"i","aud":"c","exp":1.5,"nbf":0,"scope":"","acr":"0","permissions":[]}`,
	` { "iss" : "i" , "exp" : 1e3 , "scope" : "a b" } `,
	`{"iss":null,"sub":null,"aud":null,"exp":null}`,
	`{"scope":null}`, `{"acr":null}`, `{"permissions":null}`, `{"permissions":[null]}`, `{"permissions":["a",null]}`,
	`{"aud":[null,"x"]}`, `{"aud":[]}`, `{"aud":{}}`, `{"aud":5}`, `{"aud":true}`, `{"aud":["a",1]}`,
	`{"exp":"1796201417"}`, `{"exp":-1}`, `{"exp":-0}`, `{"exp":1099511627776}`, `{"exp":1099511627777}`, `{"exp":1e400}`,
	`{"exp":999999999999}`, `{"exp":0.9}`, `{"exp":1E+2}`, `{"exp":01}`, `{"exp":1.}`, `{"exp":.5}`, `{"exp":-}`, `{"exp":true}`,
	`{"iss":"\u0068ttps://fief.test"}`, `{"sub":"a\"b"}`, `{"scope":"\ud83d\ude00"}`, `{"scope":"\ud83d"}`, "{\"scope\":\"caf\xc3\xa9\"}",
	"{\"scope\":\"\xff\"}", "{\"scope\":\"a\tb\"}", `{"scope":"a\/b"}`, `{"scope":"\x"}`, `{"scope":"\u00"}`,
	`{"x":{"y":[1,2,{"z":null}],"w":"v"},"scope":"s"}`, `{"x":[[[[[]]]]]}`, `{"x":"\u005c"}`, `{"x":tru}`, `{"x":nul}`,
	`{"scope":"s",}`, `{"scope":"s"`, `{"scope":"s"}x`, `{"scope":"s"} `, `{}`, `null`, ` null `, `[]`, `"x"`, `5`, ``, `{`,
	`{"permissions":["a","b","c","d","e","f"]}`, `{"permissions":["\u0061"]}`, `{"iss":5}`, `{"sub":[]}`, `{"acr":1}`,
	`{"c_hash":"x","at_hash":null,"nonce":"n","alg":"none","kid":5}`, `{"x":{"scope":"inner"},"scope":"outer"}`,
}

// sameClaims reports whether two results agree: both errors, or equal
// claims (times compared as instants).
func sameClaims(a, b AccessClaims, errA, errB error) bool {
	if (errA == nil) != (errB == nil) {
		return false
	}
	if errA != nil {
		return true
	}
	ta := []bool{a.Exp.Set, a.Nbf.Set, a.Iat.Set}
	tb := []bool{b.Exp.Set, b.Nbf.Set, b.Iat.Set}
	if !reflect.DeepEqual(ta, tb) || !a.Exp.Equal(b.Exp.Time) || !a.Nbf.Equal(b.Nbf.Time) || !a.Iat.Equal(b.Iat.Time) {
		return false
	}
	a.Exp, a.Nbf, a.Iat, b.Exp, b.Nbf, b.Iat = NumericDate{}, NumericDate{}, NumericDate{}, NumericDate{}, NumericDate{}, NumericDate{}
	return reflect.DeepEqual(a, b)
}

func TestParseAccessClaimsAgrees(t *testing.T) {
	for _, s := range claimsSeeds {
		checkClaimsAgree(t, []byte(s))
	}
}

// FuzzParseClaims differentially fuzzes the claims and header readers
// against encoding/json, on whatever CheckMembers lets through.
func FuzzParseClaims(f *testing.F) {
	for _, s := range claimsSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkClaimsAgree(t, b)
	})
}

func checkClaimsAgree(t *testing.T, b []byte) {
	t.Helper()
	if CheckMembers(b) != nil {
		return // refused before either reader runs
	}
	got, errGot := ParseAccessClaims(string(b))
	want, errWant := ParseAccessClaimsJSON(b)
	if !sameClaims(got, want, errGot, errWant) {
		t.Fatalf("claims %q:\n reader  %+v, %v\n encoding/json %+v, %v", b, got, errGot, want, errWant)
	}
	var hGot, hWant Header
	errGot = parseHeader(string(b), &hGot)
	errWant = json.Unmarshal(b, &hWant)
	if (errGot == nil) != (errWant == nil) {
		t.Fatalf("header %q: reader %v, encoding/json %v", b, errGot, errWant)
	}
	if errGot == nil && (hGot.Alg != hWant.Alg || hGot.Enc != hWant.Enc || hGot.Kid != hWant.Kid || hGot.forbidden() != hWant.forbidden()) {
		t.Fatalf("header %q:\n reader  %+v\n encoding/json %+v", b, hGot, hWant)
	}
}

// TestParseAccessClaimsAllocations: the claims' strings are substrings of
// the payload; only the two lists allocate.
func TestParseAccessClaimsAllocations(t *testing.T) {
	p := claimsSeeds[0]
	if n := testing.AllocsPerRun(100, func() { ParseAccessClaims(p) }); n > 2 {
		t.Fatalf("%.0f allocations, want at most 2 (aud and permissions)", n)
	}
	c, err := ParseAccessClaims(p)
	if err != nil {
		t.Fatal(err)
	}
	start := uintptr(unsafe.Pointer(unsafe.StringData(p)))
	within := func(s string) bool {
		at := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return s != "" && at >= start && at+uintptr(len(s)) <= start+uintptr(len(p))
	}
	for name, v := range map[string]string{"iss": c.Iss, "sub": c.Sub, "scope": c.Scope, "acr": c.ACR} {
		if !within(v) {
			t.Errorf("%s %q is not a substring of the payload's memory", name, v)
		}
	}
}
