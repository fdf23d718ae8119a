package fief

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief/fieftest"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwe"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// FuzzDecodeIDToken feeds decodeIDToken, with and without an encryption
// key: it must never panic, fail only with ErrIDTokenInvalid, and succeed
// only for a token the tenant key signed (inside a JWE the client's key
// opens, for the encrypting client), unexpired, from the tenant's issuer,
// for the client, with claims equal to an exact reading of its JSON.
func FuzzDecodeIDToken(f *testing.F) {
	s := fieftest.NewTB(f)
	s.AddClient(fieftest.Client{ID: "enc", Secret: "s", EncryptIDToken: true})
	u := s.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc", Fields: map[string]any{"n": 1}})
	plain, err := New(s.URL, s.ClientID, s.ClientSecret)
	if err != nil {
		f.Fatal(err)
	}
	enc, err := New(s.URL, "enc", "s", WithEncryptionKey(s.EncryptionKey("enc")))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { plain.Close(); enc.Close() })
	encKey, err := jwk.ParseKey([]byte(s.EncryptionKey("enc")))
	if err != nil {
		f.Fatal(err)
	}
	valid := s.IDToken(u.ID)
	parts := strings.Split(valid, ".")
	for _, seed := range []string{
		valid,
		s.IDToken(u.ID, fieftest.Header("kid", nil)),
		s.IDToken(u.ID, fieftest.ATHash("x")),
		s.IDToken(u.ID, fieftest.ExpiresIn(-time.Hour)),
		s.IDToken(u.ID, fieftest.Audience("other")),
		s.IDToken(u.ID, fieftest.ForClient("enc")),
		s.IDToken(u.ID, fieftest.Encrypt("enc"), fieftest.Audience(s.ClientID)),
		s.IDToken(u.ID, fieftest.SignWith(fieftest.GenerateKey(2048))),
		s.AccessToken(u.ID),
		parts[0] + "." + parts[1] + ".",
		parts[0] + ".." + parts[2],
		"a.b.c.d.e",
		strings.Repeat(".", 4),
	} {
		f.Add(seed)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, token string) {
		for _, c := range []*Client{plain, enc} {
			info, err := c.decodeIDToken(ctx, token, "", "")
			if err != nil {
				if !errors.Is(err, ErrIDTokenInvalid) {
					t.Fatalf("error of an unexpected class: %v", err)
				}
				continue
			}
			jws := token
			if c.encKey != nil {
				inner, err := jwe.Decrypt([]byte(token), jwe.WithKey(jwa.RSA_OAEP_256, encKey))
				if err != nil {
					t.Fatalf("accepted a token the client key cannot decrypt: %q", token)
				}
				jws = string(inner)
			}
			checkIDToken(t, s, c.clientID, jws, info)
		}
	})
}

// checkIDToken checks an accepted ID token against an independent reading.
func checkIDToken(t *testing.T, s *fieftest.Server, clientID, token string, info UserInfo) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("accepted an ID token of %d parts", len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err != nil || rsa.VerifyPKCS1v15(s.PublicKey(), crypto.SHA256, sum[:], sig) != nil {
		t.Fatalf("accepted an ID token the tenant key did not sign: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal("accepted a payload that is not base64url")
	}
	// Names matched exactly, duplicates refused, numbers kept as text.
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("accepted payload %s", payload)
	}
	claims := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		name, _ := tok.(string)
		if _, dup := claims[name]; err != nil || dup {
			t.Fatalf("accepted payload %s", payload)
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("accepted payload %s", payload)
		}
		claims[name] = v
	}
	iss, _ := claims["iss"].(string)
	exp, _ := claims["exp"].(json.Number)
	expSec, expErr := exp.Float64()
	audOK := claims["aud"] == clientID
	if list, ok := claims["aud"].([]any); ok {
		audOK = slices.Contains(list, any(clientID))
	}
	switch {
	case iss != s.Issuer():
		t.Fatalf("accepted iss %q", iss)
	case !audOK:
		t.Fatalf("accepted aud %v for %s", claims["aud"], clientID)
	case expErr != nil || time.Unix(int64(expSec), 0).Add(DefaultLeeway).Before(time.Now()):
		t.Fatalf("accepted exp %v", claims["exp"])
	}
	var got map[string]any
	if err := decodeNumbers(must(info.MarshalJSON()), &got); err != nil {
		t.Fatal(err)
	}
	if len(claims) != len(got) {
		t.Fatalf("%d claims returned, %d in the token", len(got), len(claims))
	}
	for name, v := range claims {
		a, _ := json.Marshal(v)
		b, _ := json.Marshal(got[name])
		if !bytes.Equal(a, b) {
			t.Fatalf("claim %s: returned %s, token says %s", name, b, a)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
