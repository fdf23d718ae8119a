package fieftest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
)

// randomToken returns 32 random bytes encoded as unpadded base64url (43
// characters), like Python's secrets.token_urlsafe(), which Fief uses for
// key IDs, codes and refresh tokens.
func randomToken() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

// newUUID returns a random (version 4) UUID in its canonical lower-case
// form.
func newUUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// verificationCode returns a 6-character code from [A-Z0-9], like Fief's
// email verification codes.
func verificationCode() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	code := make([]byte, 0, 6)
	for len(code) < cap(code) {
		for _, c := range randomBytes(8) {
			// 252 = 7*36: rejecting larger bytes keeps the draw uniform.
			if c < 252 && len(code) < cap(code) {
				code = append(code, alphabet[c%36])
			}
		}
	}
	return string(code)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error since Go 1.24; it crashes the
	// program if the system's randomness source fails.
	_, _ = rand.Read(b)
	return b
}
