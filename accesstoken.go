package fief

import (
	"encoding"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/fief-go/fief/internal/keyset"
)

// ACR is an authentication context class reference: how strongly the user
// authenticated. Levels are ordered, so compare them with < and >=.
type ACR uint8

// The ACR levels Fief issues.
const (
	// ACRLevelZero: the session was reused or the token was refreshed.
	ACRLevelZero ACR = 0
	// ACRLevelOne: the user typed a password. Fief requires it to change the
	// password or the email address.
	ACRLevelOne ACR = 1
)

var (
	_ encoding.TextMarshaler   = ACR(0)
	_ encoding.TextUnmarshaler = (*ACR)(nil)
)

// ParseACR parses the string form of an ACR ("0" or "1").
func ParseACR(s string) (ACR, error) {
	switch s {
	case "0":
		return ACRLevelZero, nil
	case "1":
		return ACRLevelOne, nil
	}
	return 0, fmt.Errorf("fief: unknown ACR %q", s)
}

// String returns "0" or "1", the form used in tokens.
func (a ACR) String() string {
	return string('0' + byte(a))
}

// MarshalText implements encoding.TextMarshaler.
func (a ACR) MarshalText() ([]byte, error) {
	if a > ACRLevelOne {
		return nil, fmt.Errorf("fief: unknown ACR %d", a)
	}
	return []byte(a.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *ACR) UnmarshalText(b []byte) error {
	v, err := ParseACR(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// AccessTokenInfo is what a valid access token says. It is an immutable
// value, like [time.Time]: the verified-token cache, the request context
// and every caller share one AccessTokenInfo per token, and its methods
// return copies, so a handler cannot change what another request sees. The
// zero value holds no token ([AccessTokenInfo.IsZero]).
type AccessTokenInfo struct{ t *tokenInfo }

// tokenInfo is the content of an AccessTokenInfo, never modified once
// built.
type tokenInfo struct {
	userID      string
	scopes      []string
	acr         ACR
	permissions []string
	expiry      time.Time
	token       string
}

// IsZero reports whether i holds no token.
func (i AccessTokenInfo) IsZero() bool { return i.t == nil }

// UserID returns the user's UUID (the sub claim), in canonical lower-case
// form.
func (i AccessTokenInfo) UserID() string {
	if i.t == nil {
		return ""
	}
	return i.t.userID
}

// Scopes returns a copy of the granted scopes.
func (i AccessTokenInfo) Scopes() []string {
	if i.t == nil {
		return nil
	}
	return slices.Clone(i.t.scopes)
}

// HasScope reports whether the token grants scope.
func (i AccessTokenInfo) HasScope(scope string) bool {
	return i.t != nil && slices.Contains(i.t.scopes, scope)
}

// ACR returns how strongly the user authenticated.
func (i AccessTokenInfo) ACR() ACR {
	if i.t == nil {
		return ACRLevelZero
	}
	return i.t.acr
}

// Permissions returns a copy of the user's permission codenames.
func (i AccessTokenInfo) Permissions() []string {
	if i.t == nil {
		return nil
	}
	return slices.Clone(i.t.permissions)
}

// HasPermission reports whether the token carries permission.
func (i AccessTokenInfo) HasPermission(permission string) bool {
	return i.t != nil && slices.Contains(i.t.permissions, permission)
}

// Expiry returns the token's exp claim.
func (i AccessTokenInfo) Expiry() time.Time {
	if i.t == nil {
		return time.Time{}
	}
	return i.t.expiry
}

// AccessToken returns the token itself, to call Fief's API on the user's
// behalf. It is not part of the JSON form, so that logging the info does
// not leak it.
func (i AccessTokenInfo) AccessToken() string {
	if i.t == nil {
		return ""
	}
	return i.t.token
}

// accessTokenJSON is the JSON form of an AccessTokenInfo.
type accessTokenJSON struct {
	UserID      string    `json:"id"`
	Scopes      []string  `json:"scope"`
	ACR         ACR       `json:"acr"`
	Permissions []string  `json:"permissions"`
	Expiry      time.Time `json:"expiry"`
}

// MarshalJSON encodes the info as {"id", "scope", "acr", "permissions",
// "expiry"}, without the token; the zero AccessTokenInfo is null.
func (i AccessTokenInfo) MarshalJSON() ([]byte, error) {
	if i.t == nil {
		return []byte("null"), nil
	}
	return json.Marshal(accessTokenJSON{i.t.userID, i.t.scopes, i.t.acr, i.t.permissions, i.t.expiry})
}

// verifiedToken is what the verified-token cache remembers of a token.
type verifiedToken struct {
	info AccessTokenInfo // immutable, shared by every hit
	key  keyset.Key      // the key that verified the signature
}

// AccessTokenValues are what [NewAccessTokenInfo] puts in an
// AccessTokenInfo.
type AccessTokenValues struct {
	UserID      string
	Scopes      []string
	ACR         ACR
	Permissions []string
	Expiry      time.Time
	AccessToken string
}

// NewAccessTokenInfo returns an AccessTokenInfo holding v (copied), for
// the unit tests of handlers ([ContextWithAccessTokenInfo]) and for
// custom transports. It checks nothing: only an [Authenticator] or
// [Client.ValidateAccessToken] says a token is valid.
func NewAccessTokenInfo(v AccessTokenValues) AccessTokenInfo {
	return AccessTokenInfo{&tokenInfo{
		userID:      v.UserID,
		scopes:      slices.Clone(v.Scopes),
		acr:         v.ACR,
		permissions: slices.Clone(v.Permissions),
		expiry:      v.Expiry,
		token:       v.AccessToken,
	}}
}
