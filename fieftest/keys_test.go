package fieftest_test

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"maps"
	"math/big"
	"net/http"
	"slices"
	"testing"

	"github.com/fief-go/fief/fieftest"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// publishedKeys returns the raw JWKS members, by kid.
func publishedKeys(t *testing.T, s *fieftest.Server) map[string]map[string]any {
	t.Helper()
	r := get(t, s.URL+"/.well-known/jwks.json")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("JWKS: status %d, content type %q", r.status, r.header.Get("Content-Type"))
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &set); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]map[string]any)
	for _, k := range set.Keys {
		out[k["kid"].(string)] = k
	}
	return out
}

func TestJWKSShape(t *testing.T) {
	s := newServer(t)
	keys := publishedKeys(t, s)
	if len(keys) != 1 {
		t.Fatalf("%d keys, want 1", len(keys))
	}
	k, ok := keys[s.KeyID()]
	if !ok {
		t.Fatalf("the current kid %q is not published", s.KeyID())
	}
	// Like Fief: kty, kid, use, n, e and no alg.
	if got := keysOf(k); !slices.Equal(got, []string{"e", "kid", "kty", "n", "use"}) {
		t.Errorf("members = %v", got)
	}
	if k["kty"] != "RSA" || k["use"] != "sig" {
		t.Errorf("kty = %v, use = %v", k["kty"], k["use"])
	}
	n, _ := base64.RawURLEncoding.DecodeString(k["n"].(string))
	e, _ := base64.RawURLEncoding.DecodeString(k["e"].(string))
	pub := s.PublicKey()
	if new(big.Int).SetBytes(n).Cmp(pub.N) != 0 || int(new(big.Int).SetBytes(e).Int64()) != pub.E {
		t.Error("published key differs from PublicKey()")
	}
	if !pub.Equal(&testKey().PublicKey) {
		t.Error("WithSigningKey was not used")
	}
}

func TestKeySize(t *testing.T) {
	s := fieftest.NewTB(t, fieftest.WithKeySize(2048))
	s.AddClient(fieftest.Client{ID: "enc", EncryptIDToken: true})
	for name, bits := range map[string]int{
		"signing key": s.PublicKey().N.BitLen(),
		"rotated key": func() int { s.RotateKey(); return s.PublicKey().N.BitLen() }(),
		"encryption key": func() int {
			k, err := jwk.ParseKey([]byte(s.EncryptionKey("enc")))
			if err != nil {
				t.Fatal(err)
			}
			var raw rsa.PrivateKey
			if err := k.Raw(&raw); err != nil {
				t.Fatal(err)
			}
			return raw.N.BitLen()
		}(),
	} {
		if bits != 2048 {
			t.Errorf("%s: %d bits, want 2048", name, bits)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	oldKID := s.KeyID()
	oldToken := s.AccessToken(alice.ID)

	newKID := s.RotateKey()
	if newKID == oldKID || s.KeyID() != newKID {
		t.Fatalf("RotateKey = %q, KeyID = %q, old %q", newKID, s.KeyID(), oldKID)
	}
	if s.PublicKey().Equal(&testKey().PublicKey) {
		t.Error("PublicKey did not change")
	}
	keys := publishedKeys(t, s)
	if _, ok := keys[oldKID]; !ok || len(keys) != 2 {
		t.Fatalf("published %v, want both %q and %q", slices.Sorted(maps.Keys(keys)), oldKID, newKID)
	}
	newToken := s.AccessToken(alice.ID)
	if h := jwtHeader(t, newToken); h["kid"] != newKID {
		t.Errorf("new token kid = %v, want %q", h["kid"], newKID)
	}
	verify(t, s, newToken)
	verify(t, s, oldToken)
	for name, token := range map[string]string{"old": oldToken, "new": newToken} {
		if r := do(t, http.MethodGet, s.URL+"/api/userinfo", nil, bearer(token)); r.status != http.StatusOK {
			t.Errorf("%s token at userinfo: %d", name, r.status)
		}
	}

	s.RemoveKey(oldKID)
	if keys := publishedKeys(t, s); len(keys) != 1 || keys[newKID] == nil {
		t.Fatalf("after RemoveKey: %v", slices.Sorted(maps.Keys(keys)))
	}
	if r := do(t, http.MethodGet, s.URL+"/api/userinfo", nil, bearer(oldToken)); r.status != http.StatusUnauthorized {
		t.Errorf("token of a removed key: status %d, want 401", r.status)
	}
	s.RemoveKey("unknown") // no-op

	// Removing the current key makes the newest remaining one current.
	third := s.RotateKey()
	s.RemoveKey(third)
	if s.KeyID() != newKID {
		t.Errorf("KeyID = %q after removing the current key, want %q", s.KeyID(), newKID)
	}
	defer func() {
		if recover() == nil {
			t.Error("removing the only key did not panic")
		}
	}()
	s.RemoveKey(newKID)
}

func TestGenerateKey(t *testing.T) {
	k := fieftest.GenerateKey(2048)
	if k.N.BitLen() != 2048 {
		t.Errorf("size %d", k.N.BitLen())
	}
}
