package fief

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// The labels of the sealing keys, as earlier versions derived them: a
// change is a change of the cookies' format.
const (
	oldFlowLabel    = "fief-go login flow cookie v2"
	oldRefreshLabel = "fief-go login flow session refresh cookie v1"
	oldResultLabel  = "fief-go login flow session refresh result v1"
)

// oldGCM is the AEAD earlier versions sealed with: cipher.NewGCM under the
// key derived for label, with nonces of the caller's.
func oldGCM(t *testing.T, secret []byte, label string) cipher.AEAD {
	t.Helper()
	key, err := hkdf.Key(sha256.New, secret, nil, label, 32)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Skipf("cipher.NewGCM refused (FIPS 140-only mode?): %v", err)
	}
	return aead
}

// oldSeal seals as earlier versions did: a random nonce, then cipher.NewGCM's
// Seal of plain.
func oldSeal(aead cipher.AEAD, plain, ad []byte) []byte {
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	_, _ = rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, ad)
}

func oldOpen(aead cipher.AEAD, b, ad []byte) ([]byte, error) {
	n := aead.NonceSize()
	return aead.Open(nil, b[:n], b[n:], ad)
}

// TestSealedLayoutCompatible: values sealed by earlier versions (the nonce,
// then cipher.NewGCM's Seal) open with newAEAD's AEAD and the flow's
// openers, values newAEAD's AEAD seals open the old way, and the fallback
// AEAD for other block ciphers (randomNonceGCM) and the standard library's
// cipher.NewGCMWithRandomNonce open each other's.
func TestSealedLayoutCompatible(t *testing.T) {
	secret := bytes.Repeat([]byte{0x2a}, 32)
	plain, ad := []byte("a plaintext of some length"), []byte("associated data")
	for _, label := range []string{oldFlowLabel, oldRefreshLabel, oldResultLabel} {
		old := oldGCM(t, secret, label)
		aead, err := newAEAD(secret, label)
		if err != nil {
			t.Fatal(err)
		}
		fallback := randomNonceGCM{old}
		// The fallback is taken exactly where the standard library's
		// random-nonce GCM refuses the block (GOEXPERIMENT=boringcrypto).
		key, _ := hkdf.Key(sha256.New, secret, nil, label, 32)
		block, _ := aes.NewCipher(key)
		_, stdErr := cipher.NewGCMWithRandomNonce(block)
		if _, isFallback := aead.(randomNonceGCM); isFallback != (stdErr != nil) {
			t.Errorf("newAEAD gives %T where NewGCMWithRandomNonce gives error %v", aead, stdErr)
		}
		for name, a := range map[string]cipher.AEAD{"newAEAD": aead, "randomNonceGCM": fallback} {
			if a.NonceSize() != 0 || a.Overhead() != 12+16 {
				t.Errorf("%s: NonceSize %d, Overhead %d; want 0 and 28", name, a.NonceSize(), a.Overhead())
			}
			if got, err := a.Open(nil, nil, oldSeal(old, plain, ad), ad); err != nil || !bytes.Equal(got, plain) {
				t.Errorf("%s: an old value opens as %q, %v", name, got, err)
			}
			sealed := a.Seal(nil, nil, plain, ad)
			if len(sealed) != len(plain)+28 {
				t.Errorf("%s: %d bytes sealed, want %d", name, len(sealed), len(plain)+28)
			}
			if got, err := oldOpen(old, sealed, ad); err != nil || !bytes.Equal(got, plain) {
				t.Errorf("%s: its value opens the old way as %q, %v", name, got, err)
			}
			for other, b := range map[string]cipher.AEAD{"newAEAD": aead, "randomNonceGCM": fallback} {
				if got, err := b.Open(nil, nil, sealed, ad); err != nil || !bytes.Equal(got, plain) {
					t.Errorf("%s's value opens with %s as %q, %v", name, other, got, err)
				}
			}
			if _, err := a.Open(nil, nil, sealed, []byte("other data")); err == nil {
				t.Errorf("%s: opens with other associated data", name)
			}
			if _, err := a.Open(nil, nil, sealed[:27], ad); err == nil {
				t.Errorf("%s: opens a value shorter than the overhead", name)
			}
			// Seal appends to dst.
			if got := a.Seal([]byte("head"), nil, plain, ad); !bytes.HasPrefix(got, []byte("head")) || len(got) != 4+len(plain)+28 {
				t.Errorf("%s: Seal with a dst gives %d bytes", name, len(got))
			}
		}
		// Nonces are drawn for each value.
		if bytes.Equal(aead.Seal(nil, nil, plain, ad)[:12], aead.Seal(nil, nil, plain, ad)[:12]) ||
			bytes.Equal(fallback.Seal(nil, nil, plain, ad)[:12], fallback.Seal(nil, nil, plain, ad)[:12]) {
			t.Errorf("%s: one nonce for two values", label)
		}
	}

	// The flow's cookies and results as earlier versions sealed them.
	client, err := New("https://fief.example.com", "id", "secret")
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewLoginFlow(client, LoginFlowConfig{RedirectURI: "https://app.example.com/cb", CookieKey: secret, RefreshSessions: true})
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	const state, id = "state", "0123456789abcdef"
	binding := enc(make([]byte, bindingBytes))
	expires := time.Now().Add(time.Minute).Unix()
	flowPlain := binary.BigEndian.AppendUint64(nil, uint64(expires))
	flowPlain = append(flowPlain, byte(ACRLevelOne))
	flowPlain = append(flowPlain, "/account?tab=1"...)
	value := enc(oldSeal(oldGCM(t, secret, oldFlowLabel), flowPlain, f.flowAD(id, binding, state)))
	if st, ok := f.open(id, binding, state, value); !ok || st.ReturnTo != "/account?tab=1" || st.Expires != expires || st.ACR != ACRLevelOne {
		t.Errorf("an old flow cookie opens as %+v, %v", st, ok)
	}
	if _, ok := f.open(id, binding, state, strings.Repeat("A", maxFlowCookie+1)); ok {
		t.Error("a flow cookie over maxFlowCookie opens")
	}

	start := time.Unix(time.Now().Unix(), 0)
	refreshPlain := []byte{refreshCookieVersion}
	refreshPlain = binary.BigEndian.AppendUint64(refreshPlain, uint64(start.Unix()))
	refreshPlain = binary.BigEndian.AppendUint32(refreshPlain, 3600)
	refreshPlain = append(refreshPlain, 4)
	refreshPlain = append(refreshPlain, "anne"...)
	refreshPlain = append(refreshPlain, "the refresh token"...)
	value = enc(oldSeal(oldGCM(t, secret, oldRefreshLabel), refreshPlain, f.refreshAD()))
	if st := f.openRefreshValue(value); st == nil || !st.start.Equal(start) || st.lifetime != 3600 || st.userID != "anne" || st.token != "the refresh token" {
		t.Errorf("an old refresh cookie opens as %+v", st)
	}

	result := oldSeal(oldGCM(t, secret, oldResultLabel), []byte(`{"access_token":"at","expiry":1}`), resultAD("key"))
	if out, err := f.openOutcome("key", result); err != nil || out.AccessToken != "at" || out.Expiry != 1 {
		t.Errorf("an old coordinator result opens as %+v, %v", out, err)
	}
	if _, err := f.openOutcome("key", result[:10]); err == nil {
		t.Error("a truncated coordinator result opens")
	}
}
