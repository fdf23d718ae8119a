package fief

import (
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Names of the cookies a LoginFlow sets by default. With InsecureCookies
// the prefixes __Host- and __Secure- are left out, since browsers accept
// them on Secure cookies only.
const (
	defaultSessionCookie = "fief_app_session"
	hostPrefix           = "__Host-"
	securePrefix         = "__Secure-"
	flowCookieBase       = "fief_flow_"
	bindCookieBase       = "fief_bind_"
)

// Bounds of a login flow.
const (
	// maxReturnTo bounds the return-to path, which travels in a cookie:
	// maxPending flow cookies with the longest return-to paths and their
	// binding cookies stay under 3.5 KiB, leaving room for the session
	// cookie (at most maxCookieBytes) under the 8 KiB of request headers
	// many servers and proxies accept.
	maxReturnTo = 512
	// maxPending is the number of logins a browser may have in progress:
	// starting one more drops the oldest.
	maxPending = 4
	// maxPendingScan bounds the binding cookies a login start reads.
	maxPendingScan = 32
	// maxFlowCookie bounds the flow cookie values the callback tries to
	// open.
	maxFlowCookie = 4096
	// maxFlowCandidates bounds the cookies with the flow's name the callback
	// tries (a browser sends several when cookies were planted with other
	// paths or domains).
	maxFlowCandidates = 4
	// maxConsumed bounds the set of consumed flows kept against replays.
	maxConsumed = 1 << 16
	// maxCookieBytes is the size of the largest cookie (name and value)
	// every browser keeps (RFC 6265 section 6.1).
	maxCookieBytes = 4096
	// bindingBytes is the size of a binding cookie's value: the start time
	// of its login (Unix nanoseconds, 8 bytes), which orders the logins in
	// progress, and 16 random bytes.
	bindingBytes = 8 + 16
)

// newFlowKeys derives from the configured secret, each bound to its
// purpose, the flow cookies' AEAD and the HMAC-SHA256 key that derives
// PKCE verifiers from states.
func newFlowKeys(secret []byte) (cipher.AEAD, []byte, error) {
	aead, err := newAEAD(secret, "fief-go login flow cookie v2")
	if err != nil {
		return nil, nil, fmt.Errorf("the flow cookie key: %w", err)
	}
	verifierKey, err := hkdf.Key(sha256.New, secret, nil, "fief-go login flow PKCE verifier v1", 32)
	if err != nil {
		return nil, nil, fmt.Errorf("deriving the verifier key: %w", err)
	}
	return aead, verifierKey, nil
}

// newAEAD returns the AES-256-GCM AEAD under the key HKDF-SHA256 derives
// from secret for label. It draws a random 96-bit nonce for each Seal and
// puts it before the ciphertext, where Open takes it from: its NonceSize
// is 0 and its Overhead 28 bytes. It is [cipher.NewGCMWithRandomNonce],
// which FIPS 140-only mode (GODEBUG=fips140=only) allows where it refuses
// nonces of the caller's; where that refuses a block cipher other than the
// standard library's AES (GOEXPERIMENT=boringcrypto), it is the same
// layout over [cipher.NewGCM]. Each opens what the other sealed, and what
// earlier versions sealed as the nonce followed by cipher.NewGCM's Seal.
func newAEAD(secret []byte, label string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, label, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving the key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("AES: %w", err)
	}
	if aead, err := cipher.NewGCMWithRandomNonce(block); err == nil {
		return aead, nil
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("GCM: %w", err)
	}
	return randomNonceGCM{aead}, nil
}

// randomNonceGCM is the layout of [cipher.NewGCMWithRandomNonce] over a
// GCM that takes nonces: Seal draws a random nonce and puts it before the
// ciphertext, Open takes it from there. Unlike the standard library's, its
// Open's dst must not overlap the ciphertext (callers pass nil).
type randomNonceGCM struct{ gcm cipher.AEAD }

func (g randomNonceGCM) NonceSize() int { return 0 }

func (g randomNonceGCM) Overhead() int { return g.gcm.NonceSize() + g.gcm.Overhead() }

func (g randomNonceGCM) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != 0 {
		panic("fief: a nonce passed to an AEAD that draws its own")
	}
	// In a buffer of its own, which cannot overlap plaintext.
	n := g.gcm.NonceSize()
	sealed := make([]byte, n, n+len(plaintext)+g.gcm.Overhead())
	_, _ = rand.Read(sealed)
	sealed = g.gcm.Seal(sealed, sealed, plaintext, additionalData)
	if dst == nil {
		return sealed
	}
	return append(dst, sealed...)
}

func (g randomNonceGCM) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) != 0 {
		panic("fief: a nonce passed to an AEAD that draws its own")
	}
	n := g.gcm.NonceSize()
	if len(ciphertext) < n+g.gcm.Overhead() {
		return nil, errors.New("cipher: message authentication failed")
	}
	return g.gcm.Open(dst, ciphertext[:n], ciphertext[n:], additionalData)
}

// sealValue returns plain sealed with additionalData by aead (one of
// newAEAD's), base64url-encoded without padding: a cookie value.
func sealValue(aead cipher.AEAD, plain, additionalData []byte) string {
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nil, nil, plain, additionalData))
}

// openValue returns the plaintext that sealValue sealed with
// additionalData in value, and false when value is longer than maxLen, is
// not base64url or does not open.
func openValue(aead cipher.AEAD, value string, maxLen int, additionalData []byte) ([]byte, bool) {
	if len(value) > maxLen {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return nil, false
	}
	plain, err := aead.Open(nil, nil, b, additionalData)
	return plain, err == nil
}

// validCookieName reports whether name is an RFC 6265 token, as net/http
// requires of the cookies it sets.
func validCookieName(name string) bool { return (&http.Cookie{Name: name}).Valid() == nil }

// flowState is what a flow cookie holds.
type flowState struct {
	ReturnTo string
	Expires  int64 // Unix seconds
	ACR      ACR   // the least ACR the login must reach (a step-up login's)
}

// pending returns the IDs of the logins in progress in the browser that
// sent r, oldest first, from their binding cookies (at most
// maxPendingScan of them). Concurrent starts in one browser do not see
// each other's cookies, so a browser may briefly have more than maxPending
// logins in progress; the next start drops the excess.
func (f *LoginFlow) pending(r *http.Request) []string {
	type login struct {
		id      string
		started uint64
	}
	var logins []login
	for _, c := range r.Cookies() {
		id, ok := strings.CutPrefix(c.Name, f.bindPrefix)
		if !ok || len(id) != 2*8 || slices.ContainsFunc(logins, func(l login) bool { return l.id == id }) {
			continue
		}
		b, err := base64.RawURLEncoding.DecodeString(c.Value)
		if err != nil || len(b) != bindingBytes {
			continue
		}
		if logins = append(logins, login{id, binary.BigEndian.Uint64(b)}); len(logins) == maxPendingScan {
			break
		}
	}
	slices.SortFunc(logins, func(a, b login) int { return cmp.Or(cmp.Compare(a.started, b.started), strings.Compare(a.id, b.id)) })
	ids := make([]string, len(logins))
	for i, l := range logins {
		ids[i] = l.id
	}
	return ids
}

// flowID returns the ID of the flow with state, which names its cookies:
// 64 bits of the state's SHA-256 in hex, so that flows do not share
// cookies.
func flowID(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:8])
}

// verifier returns the PKCE verifier of the flow with state: its
// HMAC-SHA256 under the verifier key, 43 base64url characters.
func (f *LoginFlow) verifier(state string) string {
	m := hmac.New(sha256.New, f.verifierKey)
	m.Write([]byte(state))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// flowAD is the associated data of the flow cookie of the flow with state
// and id: the names of its cookies, the value of its binding cookie and the
// state, bound to this purpose, so that a sealed value is valid under its
// own name, with its own binding cookie and for its own state only.
func (f *LoginFlow) flowAD(id, binding, state string) []byte {
	return []byte("fief-go login flow v2\x00" + f.flowPrefix + id + "\x00" + f.bindPrefix + id + "\x00" + binding + "\x00" + state)
}

// seal encrypts and authenticates st for the flow cookie of the flow with
// id and state, bound to the binding cookie's value. The plaintext is the
// expiry (8 bytes, big-endian), the least ACR (1 byte) and the return-to
// path.
func (f *LoginFlow) seal(id, binding, state string, st flowState) string {
	plain := make([]byte, 0, 9+len(st.ReturnTo))
	plain = binary.BigEndian.AppendUint64(plain, uint64(st.Expires))
	plain = append(plain, byte(st.ACR))
	plain = append(plain, st.ReturnTo...)
	return sealValue(f.aead, plain, f.flowAD(id, binding, state))
}

// open decrypts and authenticates the value of the flow cookie of the flow
// with id and state with the value of a binding cookie.
func (f *LoginFlow) open(id, binding, state, value string) (*flowState, bool) {
	if len(binding) != base64.RawURLEncoding.EncodedLen(bindingBytes) {
		return nil, false
	}
	plain, ok := openValue(f.aead, value, maxFlowCookie, f.flowAD(id, binding, state))
	if !ok || len(plain) < 9 {
		return nil, false
	}
	return &flowState{ReturnTo: string(plain[9:]), Expires: int64(binary.BigEndian.Uint64(plain)), ACR: ACR(plain[8])}, true
}

// takeFlow returns the flow of state from its cookies, which it deletes,
// and marks the flow consumed. It returns nil if the flow cookie or the
// binding cookie is missing, if the flow cookie is not authentic or not
// bound to the binding cookie, or if the flow expired, is of another state
// or was consumed before.
func (f *LoginFlow) takeFlow(w http.ResponseWriter, r *http.Request, state string) *flowState {
	ctx := r.Context()
	id := flowID(state)
	name, bindName := f.flowPrefix+id, f.bindPrefix+id
	cookies, bindings := r.CookiesNamed(name), r.CookiesNamed(bindName)
	if len(bindings) > 0 {
		http.SetCookie(w, f.cookie(bindName, "", "/", -1))
	}
	if len(cookies) == 0 {
		f.log(ctx, slog.LevelInfo, "fief: login failed: no cookie for this state (unknown or forged state, expired cookie, or a callback already used)", nil,
			f.pathMismatch(r)...)
		return nil
	}
	http.SetCookie(w, f.cookie(name, "", f.callbackPath, -1))
	if len(bindings) == 0 {
		// The flow cookie came without the binding cookie that its browser
		// got with it: planted by another site, or the browser lost it.
		f.log(ctx, slog.LevelInfo, "fief: login failed: no binding cookie for this flow (a flow cookie planted by another site, or a browser that dropped the cookie)", nil)
		return nil
	}
	var flow *flowState
try:
	for _, c := range cookies[:min(len(cookies), maxFlowCandidates)] {
		for _, b := range bindings[:min(len(bindings), maxFlowCandidates)] {
			// The seal covers the state: it opens for this state only.
			if st, ok := f.open(id, b.Value, state, c.Value); ok {
				flow = st
				break try
			}
		}
	}
	now := f.now()
	switch {
	case flow == nil:
		f.log(ctx, slog.LevelInfo, "fief: login failed: flow cookie forged, tampered with or bound to another browser", nil)
		return nil
	case !now.Before(time.Unix(flow.Expires, 0)):
		f.log(ctx, slog.LevelInfo, "fief: login failed: flow expired", nil)
		return nil
	case !f.consumed.add(sha256.Sum256([]byte(state)), now, now.Add(LoginFlowLifetime)):
		f.log(ctx, slog.LevelInfo, "fief: login failed: flow replayed", nil)
		return nil
	}
	return flow
}

// cookie returns a cookie of the flow: HttpOnly, SameSite=Lax (sent on the
// top-level navigation back from Fief), Secure unless InsecureCookies. A
// negative maxAge deletes it.
func (f *LoginFlow) cookie(name, value, path string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     path,
		MaxAge:   maxAge,
		Secure:   f.secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// cleanReturnTo returns s in canonical form if it is a path on the
// application: it starts with exactly one "/", is ASCII without control
// characters, backslashes or a scheme or host, also once unescaped, and
// fits in maxReturnTo bytes.
func cleanReturnTo(s string) (string, bool) {
	if s == "" || len(s) > maxReturnTo || s[0] != '/' || strings.HasPrefix(s, "//") {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return "", false
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	// Once unescaped, the path must be as harmless, for handlers that
	// redirect to it.
	p := u.Path
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsFunc(p, func(c rune) bool {
		return c < 0x20 || c == 0x7f || c == '\\'
	}) {
		return "", false
	}
	out := u.EscapedPath()
	if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") {
		return "", false
	}
	if u.RawQuery != "" || u.ForceQuery {
		out += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		out += "#" + u.EscapedFragment()
	}
	return out, true
}
