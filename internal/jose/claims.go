package jose

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// This file reads the two JSON objects of the hot path, an access token's
// protected header and its claims, without encoding/json's reflection: one
// pass, no allocation but the values kept. It must decode exactly what
// encoding/json decodes into Header and AccessClaimsJSON (the reference,
// kept for the differential fuzzing of FuzzParseClaims): the same values,
// and an error for the same inputs. Strings with escapes or non-ASCII
// bytes are handed to encoding/json, whose rules for them (invalid UTF-8
// replaced, surrogates) are subtle; they are rare in tokens.
//
// Callers run CheckMembers first: the readers rely on its guarantees (no
// duplicate or escaped top-level names, a name that folds to a decoded
// one is spelt exactly, depth at most maxDepth), which make an exact
// byte comparison of names equivalent to encoding/json's case-insensitive
// match.

// AccessClaims are the claims of a Fief access token.
type AccessClaims struct {
	Registered
	Scope          string
	ScopeSet       bool
	ACR            string
	ACRSet         bool
	Permissions    []string
	PermissionsSet bool
}

// reader reads JSON from a string.
type reader struct {
	s string
	i int
}

func (r *reader) ws() {
	for r.i < len(r.s) {
		switch r.s[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, 0 at the end.
func (r *reader) peek() byte {
	r.ws()
	if r.i < len(r.s) {
		return r.s[r.i]
	}
	return 0
}

// consume skips the next non-space byte, which must be c.
func (r *reader) consume(c byte) bool {
	if r.peek() != c {
		return false
	}
	r.i++
	return true
}

// rawString returns the next value, a string, raw (quotes included), and
// whether it holds an escape or a byte that is not printable ASCII.
func (r *reader) rawString() (raw string, complex bool, ok bool) {
	if r.peek() != '"' {
		return "", false, false
	}
	start := r.i
	// The common case: no escape before the closing quote, found with the
	// vectorised IndexByte, and only printable ASCII in between.
	if j := strings.IndexByte(r.s[start+1:], '"'); j >= 0 {
		body := r.s[start+1 : start+1+j]
		if strings.IndexByte(body, '\\') < 0 {
			for k := 0; k < len(body); k++ {
				if c := body[k]; c < 0x20 {
					return "", false, false
				} else if c >= 0x80 {
					complex = true
				}
			}
			r.i = start + j + 2
			return r.s[start:r.i], complex, true
		}
	}
	for r.i++; r.i < len(r.s); r.i++ {
		switch c := r.s[r.i]; {
		case c == '"':
			r.i++
			return r.s[start:r.i], complex, true
		case c == '\\':
			complex = true
			r.i++ // the escaped byte; encoding/json checks the escape
		case c < 0x20:
			return "", false, false
		case c >= 0x80:
			complex = true
		}
	}
	return "", false, false
}

// str reads a string value.
func (r *reader) str() (string, bool) {
	raw, complex, ok := r.rawString()
	if !ok {
		return "", false
	}
	if !complex {
		return raw[1 : len(raw)-1], true
	}
	var s string
	if json.Unmarshal([]byte(raw), &s) != nil {
		return "", false
	}
	return s, true
}

// literal reads one of true, false and null.
func (r *reader) literal(lit string) bool {
	r.ws()
	if len(r.s)-r.i >= len(lit) && r.s[r.i:r.i+len(lit)] == lit {
		r.i += len(lit)
		return true
	}
	return false
}

// number reads a number literal (JSON's grammar) and returns its text.
func (r *reader) number() (string, bool) {
	r.ws()
	start := r.i
	if r.i < len(r.s) && r.s[r.i] == '-' {
		r.i++
	}
	switch {
	case r.i < len(r.s) && r.s[r.i] == '0':
		r.i++
	case r.i < len(r.s) && r.s[r.i] >= '1' && r.s[r.i] <= '9':
		r.digits()
	default:
		return "", false
	}
	if r.i < len(r.s) && r.s[r.i] == '.' {
		r.i++
		if !r.digits() {
			return "", false
		}
	}
	if r.i < len(r.s) && (r.s[r.i] == 'e' || r.s[r.i] == 'E') {
		r.i++
		if r.i < len(r.s) && (r.s[r.i] == '+' || r.s[r.i] == '-') {
			r.i++
		}
		if !r.digits() {
			return "", false
		}
	}
	return r.s[start:r.i], true
}

func (r *reader) digits() bool {
	start := r.i
	for r.i < len(r.s) && r.s[r.i] >= '0' && r.s[r.i] <= '9' {
		r.i++
	}
	return r.i > start
}

// skip reads any value, checking its syntax.
func (r *reader) skip(depth int) bool {
	if depth > maxDepth+1 {
		return false
	}
	switch r.peek() {
	case '"':
		raw, complex, ok := r.rawString()
		return ok && (!complex || json.Valid([]byte(raw)))
	case '{':
		r.i++
		if r.consume('}') {
			return true
		}
		for {
			if raw, complex, ok := r.rawString(); !ok || complex && !json.Valid([]byte(raw)) {
				return false
			}
			if !r.consume(':') || !r.skip(depth+1) {
				return false
			}
			if r.consume('}') {
				return true
			}
			if !r.consume(',') {
				return false
			}
		}
	case '[':
		r.i++
		if r.consume(']') {
			return true
		}
		for {
			if !r.skip(depth + 1) {
				return false
			}
			if r.consume(']') {
				return true
			}
			if !r.consume(',') {
				return false
			}
		}
	case 't':
		return r.literal("true")
	case 'f':
		return r.literal("false")
	case 'n':
		return r.literal("null")
	}
	_, ok := r.number()
	return ok
}

// object reads an object's members, calling member for each name with the
// reader at its value, which member must read. A null instead of the
// object reads nothing, as encoding/json does for a struct.
func (r *reader) object(member func(name string) bool) bool {
	if r.peek() == 'n' {
		return r.literal("null") && r.end()
	}
	if !r.consume('{') {
		return false
	}
	if !r.consume('}') {
		for {
			raw, complex, ok := r.rawString()
			if !ok || complex && !json.Valid([]byte(raw)) {
				return false
			}
			if !r.consume(':') || !member(raw[1:len(raw)-1]) {
				return false
			}
			if r.consume('}') {
				break
			}
			if !r.consume(',') {
				return false
			}
		}
	}
	return r.end()
}

// end reports whether nothing but white space is left.
func (r *reader) end() bool {
	r.ws()
	return r.i == len(r.s)
}

// stringField reads a string claim into *dst as encoding/json reads a
// string field: null leaves it as it is.
func (r *reader) stringField(dst *string) bool {
	if r.peek() == 'n' {
		return r.literal("null")
	}
	s, ok := r.str()
	*dst = s
	return ok
}

// optionalString reads what Optional[string] reads: a string, not null.
func (r *reader) optionalString(dst *string, set *bool) bool {
	s, ok := r.str()
	*dst, *set = s, ok
	return ok
}

// date reads what NumericDate reads: a number of seconds.
func (r *reader) date(d *NumericDate) bool {
	lit, ok := r.number()
	if !ok {
		return false
	}
	if n, ok := smallInteger(lit); ok { // Fief's dates: ParseFloat's result, faster
		d.Time, d.Set = time.Unix(n, 0), true
		return true
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return false
	}
	d.Time, d.Set = time.Unix(int64(f), 0), true
	return true
}

// smallInteger returns the value of a literal of at most 12 digits (below
// 2^40, so that float64 holds it exactly).
func smallInteger(lit string) (int64, bool) {
	if len(lit) == 0 || len(lit) > 12 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n <= 1<<40
}

// strings reads an array of strings; nullElems tells what a null element
// gives: "" when true (encoding/json into []string), an error when false
// (Strings).
func (r *reader) strings(nullElems bool) ([]string, bool) {
	if !r.consume('[') {
		return nil, false
	}
	if r.consume(']') {
		return []string{}, true
	}
	list := make([]string, 0, 4)
	for {
		var s string
		switch {
		case r.peek() == 'n' && nullElems:
			if !r.literal("null") {
				return nil, false
			}
		default:
			var ok bool
			if s, ok = r.str(); !ok {
				return nil, false
			}
		}
		list = append(list, s)
		if r.consume(']') {
			return list, true
		}
		if !r.consume(',') {
			return nil, false
		}
	}
}

// audience reads what Audience reads: a string, an array of strings
// (null elements giving ""), or null (no audience).
func (r *reader) audience(a *Audience) bool {
	switch r.peek() {
	case '"':
		s, ok := r.str()
		*a = Audience{s}
		return ok
	case 'n':
		*a = nil
		return r.literal("null")
	}
	list, ok := r.strings(true)
	*a = list
	return ok
}

// ParseAccessClaims decodes the claims of an access token, as
// encoding/json decodes them into AccessClaimsJSON. payload must have
// passed CheckMembers; the strings of the claims are substrings of it.
func ParseAccessClaims(payload string) (AccessClaims, error) {
	var c AccessClaims
	r := reader{s: payload}
	ok := r.object(func(name string) bool {
		switch name {
		case "iss":
			return r.stringField(&c.Iss)
		case "sub":
			return r.stringField(&c.Sub)
		case "aud":
			return r.audience(&c.Aud)
		case "exp":
			return r.date(&c.Exp)
		case "nbf":
			return r.date(&c.Nbf)
		case "iat":
			return r.date(&c.Iat)
		case "scope":
			return r.optionalString(&c.Scope, &c.ScopeSet)
		case "acr":
			return r.optionalString(&c.ACR, &c.ACRSet)
		case "permissions":
			if r.peek() == 'n' {
				return false
			}
			c.Permissions, c.PermissionsSet = r.strings(false)
			return c.PermissionsSet
		}
		return r.skip(1)
	})
	if !ok {
		return AccessClaims{}, ErrClaims
	}
	return c, nil
}

// parseHeader decodes a protected header, as encoding/json decodes it into
// Header. It has passed CheckMembers.
func parseHeader(raw string, h *Header) error {
	r := reader{s: raw}
	present := json.RawMessage("null") // the refused members count by their presence
	ok := r.object(func(name string) bool {
		switch name {
		case "alg":
			return r.stringField(&h.Alg)
		case "enc":
			return r.stringField(&h.Enc)
		case "kid":
			return r.stringField(&h.Kid)
		case "crit", "b64", "jku", "x5u", "x5c", "jwk", "zip":
			switch name {
			case "crit":
				h.Crit = present
			case "b64":
				h.B64 = present
			case "jku":
				h.Jku = present
			case "x5u":
				h.X5u = present
			case "x5c":
				h.X5c = present
			case "jwk":
				h.JWK = present
			case "zip":
				h.Zip = present
			}
		}
		return r.skip(1)
	})
	if !ok {
		return ErrHeader
	}
	return nil
}
