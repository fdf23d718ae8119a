// Package jose holds the token plumbing of the client: compact-JWS shape
// checks, the protected header, RS256 verification through crypto/rsa with
// the algorithm pinned, typed registered claims, JWE decryption (through
// jwx) and the OpenID validation hash.
package jose

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwe"
)

// MaxTokenSize is the largest token accepted. Fief's tokens are a few KiB;
// anything much larger is rejected before any decoding.
const MaxTokenSize = 16 << 10

// Errors describing why a token was refused. They carry no token content.
var (
	ErrTooLarge      = errors.New("token larger than 16 KiB")
	ErrMalformed     = errors.New("not a compact JWS")
	ErrHeader        = errors.New("invalid protected header")
	ErrAlgorithm     = errors.New("algorithm is not RS256")
	ErrForbiddenHdr  = errors.New("header carries crit, b64, jku, x5u, x5c or jwk")
	ErrSignature     = errors.New("signature verification failed")
	ErrClaims        = errors.New("claims are not a valid JSON object")
	ErrDuplicateKey  = errors.New("JSON object has a duplicate or escaped member name")
	ErrShape         = errors.New("claims shape refused: nested deeper than 16 levels or more than 512 members")
	ErrNotEncrypted  = errors.New("not a compact JWE")
	ErrDecryption    = errors.New("decryption failed")
	ErrEncryptionAlg = errors.New("JWE algorithms are not RSA-OAEP-256 / A256CBC-HS512")
)

// base64URL decodes unpadded base64url strictly: the unused bits of the
// last character must be zero (RFC 4648 section 3.5), so that a token has
// a single spelling and no character of it can change without invalidating
// it (jwx's decoder, and so the reference path, accepts either). Go's
// decoders skip \r and \n even in strict mode: [decode64] refuses them.
var base64URL = base64.RawURLEncoding.Strict()

// decode64 decodes src, canonical unpadded base64url, into dst, which has
// room for base64URL.DecodedLen(len(src)) bytes, and returns the length
// decoded. A part with a skipped character (a line break) decodes to fewer
// bytes than its length encodes, and is refused.
func decode64(dst []byte, src string) (int, bool) {
	n, err := base64URL.Decode(dst, unsafeBytes(src))
	return n, err == nil && base64URL.EncodedLen(n) == len(src)
}

// Header is the protected header of a JWS or JWE, as far as we read it.
type Header struct {
	Alg string `json:"alg"`
	Enc string `json:"enc"`
	Kid string `json:"kid"`

	// Members we refuse: never followed, never honoured.
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
	Jku  json.RawMessage `json:"jku"`
	X5u  json.RawMessage `json:"x5u"`
	X5c  json.RawMessage `json:"x5c"`
	JWK  json.RawMessage `json:"jwk"`
	Zip  json.RawMessage `json:"zip"`
}

func (h *Header) forbidden() bool {
	return h.Crit != nil || h.B64 != nil || h.Jku != nil || h.X5u != nil || h.X5c != nil || h.JWK != nil || h.Zip != nil
}

// JWS is a parsed compact JWS whose signature is not verified yet. Its
// payload is decoded only on demand ([JWS.DecodePayload]): a forged token
// is refused by its signature, or by the key set, without its claims ever
// being decoded, so that it costs the same whatever they hold.
type JWS struct {
	Header       Header
	SigningInput string // base64url(header) "." base64url(payload)
	Signature    []byte
	// Payload is the decoded payload, once DecodePayload succeeded.
	Payload []byte

	payload    string // base64url
	buf        []byte // room for the decoded payload
	decoded    bool
	payloadErr error
}

// ParseJWS checks that token is a compact JWS (three non-empty base64url
// parts) of acceptable size, decodes its header and signature and checks
// that the header says RS256 and carries no dangerous member. It does work
// linear in the length of the header and signature (not the payload) and
// stops at the first problem.
func ParseJWS(token string) (JWS, error) {
	var j JWS
	if len(token) > MaxTokenSize {
		return j, ErrTooLarge
	}
	hdr, rest, ok := strings.Cut(token, ".")
	if !ok {
		return j, ErrMalformed
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || hdr == "" || payload == "" || sig == "" || strings.IndexByte(sig, '.') >= 0 {
		return j, ErrMalformed
	}
	if err := decodeHeader(hdr, &j.Header); err != nil {
		return j, err
	}
	if j.Header.Alg != "RS256" || j.Header.Enc != "" {
		return j, ErrAlgorithm
	}
	j.SigningInput = token[:len(hdr)+1+len(payload)]
	// One allocation holds the signature and, later, the payload.
	n := base64URL.DecodedLen(len(payload))
	buf := make([]byte, n+base64URL.DecodedLen(len(sig)))
	m, ok := decode64(buf[n:], sig)
	if !ok {
		return j, ErrMalformed
	}
	j.Signature = buf[n : n+m : n+m]
	j.payload, j.buf = payload, buf[:0:n]
	return j, nil
}

// DecodePayload decodes the payload (strict base64url) into j.Payload and
// checks its shape with [CheckMembers]. Later calls return the first
// call's result.
func (j *JWS) DecodePayload() error {
	if j.decoded {
		return j.payloadErr
	}
	j.decoded = true
	n, ok := decode64(j.buf[:cap(j.buf)], j.payload)
	if !ok {
		j.payloadErr = ErrMalformed
		return j.payloadErr
	}
	j.Payload = j.buf[:n:n]
	if err := CheckMembers(j.Payload); err != nil {
		j.Payload, j.payloadErr = nil, err
	}
	return j.payloadErr
}

// Bounds of a header or claims object, checked before anything decodes
// it, so that a forged token costs the same whatever its shape. Fief's ID
// tokens have 16 top-level members and nest 3 levels deep (an address
// field); its access tokens are flat.
const (
	maxMembers    = 64  // top-level members
	maxAllMembers = 512 // members at every depth
	maxDepth      = 16  // nested objects and arrays
)

// decodedNames are the member names the client decodes with encoding/json
// (the fields of Header, Registered and the access- and ID-token claims).
// encoding/json matches names case-insensitively, so a token may spell
// them only exactly.
var decodedNames = [...]string{
	"alg", "enc", "kid", "crit", "b64", "jku", "x5u", "x5c", "jwk", "zip",
	"iss", "sub", "aud", "exp", "nbf", "iat",
	"scope", "acr", "permissions", "c_hash", "at_hash",
}

// CheckMembers checks the JSON object b before it is decoded. It returns
// ErrShape when b nests deeper than maxDepth or has more than
// maxAllMembers members in all, and ErrDuplicateKey when b has more than
// maxMembers top-level members, one of them twice, or one with an escape
// sequence in its name (so that "sc\u006fpe" cannot pass for a second
// "scope"). JSON decoders disagree on duplicates (encoding/json keeps the
// last), so tokens with any are refused rather than interpreted. Names
// are compared as encoding/json compares them, case-insensitively with
// Unicode folding, so that "SCOPE" or "ſcope" cannot pass for a second
// "scope" either, and a name that folds to one of decodedNames must be
// spelt exactly: a lone "Scope" is not read as the scope claim. Other
// malformed input is left to the JSON decoder. The scan is linear in
// len(b) (at most maxMembers names are compared) and allocates nothing.
func CheckMembers(b []byte) error {
	var names [maxMembers][2]int
	var simple [maxMembers]bool // the name is lower-case ASCII letters, digits and '_'
	count, all, depth := 0, 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			if depth++; depth > maxDepth {
				return ErrShape
			}
		case '}', ']':
			depth--
		case '"':
			start, escaped := i+1, false
			// The closing quote, found with the vectorised IndexByte; a
			// backslash before it means escapes, read byte by byte.
			j := bytes.IndexByte(b[start:], '"')
			if j >= 0 && bytes.IndexByte(b[start:start+j], '\\') < 0 {
				i = start + j
			} else {
				for i++; i < len(b) && b[i] != '"'; i++ {
					if b[i] == '\\' {
						escaped = true
						i++
					}
				}
				if i >= len(b) {
					return ErrDuplicateKey
				}
			}
			if !followedByColon(b, i+1) {
				continue
			}
			if all++; all > maxAllMembers {
				return ErrShape
			}
			if depth != 1 {
				continue
			}
			if escaped || count == maxMembers {
				return ErrDuplicateKey
			}
			name := b[start:i]
			// Names that fold only to themselves (Fief's claims are all
			// such) compare exactly, and cannot be another spelling of
			// a decoded name, which are such names too.
			isSimple := simpleName(name)
			for k, n := range names[:count] {
				other := b[n[0]:n[1]]
				if isSimple && simple[k] {
					if string(other) == string(name) {
						return ErrDuplicateKey
					}
				} else if bytes.EqualFold(other, name) {
					return ErrDuplicateKey
				}
			}
			if !isSimple {
				for _, d := range decodedNames {
					if bytes.EqualFold(name, unsafeBytes(d)) && string(name) != d {
						return ErrDuplicateKey
					}
				}
			}
			names[count], simple[count] = [2]int{start, i}, isSimple
			count++
		}
	}
	return nil
}

// simpleName reports whether name holds only lower-case ASCII letters,
// digits and '_'. Two such names fold to each other only when they are
// equal: the other spellings of k and s (the Kelvin sign, the long s) are
// not ASCII, nor upper case.
func simpleName(name []byte) bool {
	for _, c := range name {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// followedByColon reports whether the next non-space byte from i is ':'.
func followedByColon(b []byte, i int) bool {
	for ; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			continue
		case ':':
			return true
		}
		return false
	}
	return false
}

func decodeHeader(enc string, h *Header) error {
	var small [256]byte // Fief's headers are about 60 bytes
	var raw []byte
	if n := base64URL.DecodedLen(len(enc)); n <= len(small) {
		raw = small[:n]
	} else {
		raw = make([]byte, n)
	}
	n, ok := decode64(raw, enc)
	if !ok {
		return ErrHeader
	}
	if err := CheckMembers(raw[:n]); err != nil {
		return err
	}
	if err := parseHeader(string(raw[:n]), h); err != nil {
		return err
	}
	if h.forbidden() {
		return ErrForbiddenHdr
	}
	return nil
}

// unsafeBytes returns the bytes of s without copying them, for functions
// that only read their input (base64 decoding, SHA-256, comparisons). The
// result must never be written to.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// isBase64URL reports whether s uses only the unpadded base64url alphabet.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Verify checks the signature with pub, RS256 pinned whatever the header
// says.
func (j *JWS) Verify(pub *rsa.PublicKey) error {
	// RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 section 3.3): the
	// standard library's, as jwx's verifier calls it, without the hash
	// object and the copies it makes.
	sum := sha256.Sum256(unsafeBytes(j.SigningInput))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], j.Signature); err != nil {
		return ErrSignature
	}
	return nil
}

// Decrypt decrypts a compact JWE whose header must say RSA-OAEP-256 and
// A256CBC-HS512 (what Fief uses), with priv, and returns the plaintext.
func Decrypt(token string, priv *rsa.PrivateKey) ([]byte, error) {
	if len(token) > 4*MaxTokenSize {
		return nil, ErrTooLarge
	}
	parts := strings.SplitN(token, ".", 6)
	if len(parts) != 5 {
		return nil, ErrNotEncrypted
	}
	for _, p := range parts {
		if p == "" || !isBase64URL(p) {
			return nil, ErrNotEncrypted
		}
	}
	var h Header
	if err := decodeHeader(parts[0], &h); err != nil {
		return nil, err
	}
	if h.Alg != "RSA-OAEP-256" || h.Enc != "A256CBC-HS512" {
		return nil, ErrEncryptionAlg
	}
	out, err := jwe.Decrypt([]byte(token), jwe.WithKey(jwa.RSA_OAEP_256, priv))
	if err != nil {
		return nil, ErrDecryption
	}
	return out, nil
}

// Audience is the aud claim: a string or an array of strings.
type Audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// Contains reports whether the audience contains any of want.
func (a Audience) Contains(want []string) bool {
	return slices.ContainsFunc(a, func(v string) bool { return slices.Contains(want, v) })
}

// NumericDate is a JWT date: seconds since the epoch, integer or not. Set
// tells whether the claim was present.
type NumericDate struct {
	time.Time
	Set bool
}

// UnmarshalJSON accepts a JSON number.
func (d *NumericDate) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return errors.New("invalid numeric date")
	}
	// Fractions of a second are dropped, as jwx does (its default
	// truncation), so that both validation paths agree to the second.
	d.Time, d.Set = time.Unix(int64(f), 0), true
	return nil
}

// TimeClaims are the claims that tell, before the signature is checked,
// whether a token could be valid at all: its issuer and validity period.
type TimeClaims struct {
	Iss string      `json:"iss"`
	Exp NumericDate `json:"exp"`
	Nbf NumericDate `json:"nbf"`
	Iat NumericDate `json:"iat"`
}

// Registered holds the registered claims we check.
type Registered struct {
	TimeClaims
	Sub string   `json:"sub"`
	Aud Audience `json:"aud"`
}

// Errors of the registered claims' checks (CheckTimes, the issuer and the
// audience, which the client compares).
var (
	ErrExpired    = errors.New("token expired")
	ErrNoExpiry   = errors.New("token has no exp claim")
	ErrNotYet     = errors.New("token not valid yet (nbf)")
	ErrIssuedLate = errors.New("token issued in the future (iat)")
	ErrIssuer     = errors.New("issuer does not match the tenant")
	ErrAudience   = errors.New("audience not accepted")
)

// CheckTimes checks exp (required), nbf and iat against now with leeway.
func (r *TimeClaims) CheckTimes(now time.Time, leeway time.Duration) error {
	if !r.Exp.Set {
		return ErrNoExpiry
	}
	if !now.Before(r.Exp.Add(leeway)) {
		return ErrExpired
	}
	if r.Nbf.Set && now.Add(leeway).Before(r.Nbf.Time) {
		return ErrNotYet
	}
	if r.Iat.Set && now.Add(leeway).Before(r.Iat.Time) {
		return ErrIssuedLate
	}
	return nil
}

// ValidationHash is the c_hash / at_hash of value: the left half of its
// SHA-256, base64url without padding.
func ValidationHash(value string) string {
	sum := sha256.Sum256([]byte(value))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// HashMatches compares a c_hash or at_hash claim with value in constant time.
func HashMatches(claim, value string) bool {
	return subtle.ConstantTimeCompare([]byte(claim), []byte(ValidationHash(value))) == 1
}
