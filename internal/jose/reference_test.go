package jose

import (
	"encoding/json"
	"errors"
)

// The encoding/json decoding the claims reader must agree with
// (FuzzParseClaims and the agreement vectors): test code only.

// AccessClaimsJSON is what encoding/json decodes an access token's claims
// into: the reference ParseAccessClaims must agree with.
type AccessClaimsJSON struct {
	Registered
	Scope       Optional[string]  `json:"scope"`
	ACR         Optional[string]  `json:"acr"`
	Permissions Optional[Strings] `json:"permissions"`
}

// ParseAccessClaimsJSON decodes claims with encoding/json, the reference.
func ParseAccessClaimsJSON(payload []byte) (AccessClaims, error) {
	var j AccessClaimsJSON
	if err := json.Unmarshal(payload, &j); err != nil {
		return AccessClaims{}, ErrClaims
	}
	return AccessClaims{
		Registered: j.Registered,
		Scope:      j.Scope.Value, ScopeSet: j.Scope.Set,
		ACR: j.ACR.Value, ACRSet: j.ACR.Set,
		Permissions: j.Permissions.Value, PermissionsSet: j.Permissions.Set,
	}, nil
}

// Strings is a JSON array of strings. encoding/json would decode a null
// element as "", so null elements fail the decoding, as any other element
// that is not a string does.
type Strings []string

// UnmarshalJSON decodes an array of strings without null elements.
func (s *Strings) UnmarshalJSON(b []byte) error {
	var v []string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	// b is now known to be null or an array of strings, so a 'n' outside
	// the strings starts a null.
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case 'n':
			return errors.New("null in an array of strings")
		}
	}
	*s = v
	return nil
}

// Optional is a claim that may be absent: Set tells whether it was present.
// A present claim of the wrong JSON type (null included) fails decoding.
type Optional[T any] struct {
	Value T
	Set   bool
}

// UnmarshalJSON decodes the claim's value.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return errors.New("null claim")
	}
	if err := json.Unmarshal(b, &o.Value); err != nil {
		return err
	}
	o.Set = true
	return nil
}
