package fief

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// UserInfo is a user's claims: those of Fief's userinfo endpoint (sub,
// email, email_verified, is_active, tenant_id, fields) or, after
// [Client.AuthCallback] and [Client.AuthRefreshToken], every claim of the
// ID token. It is an immutable value holding the claims' JSON object as
// Fief sent it, like [AccessTokenInfo]: caches store and hand it out as is,
// and its accessors and [UserInfo.Claims] decode from it. Its JSON form is
// that object. The zero UserInfo holds no claims ([UserInfo.IsZero]).
type UserInfo struct{ u *userClaims }

// userClaims is the content of a UserInfo, never modified once built.
type userClaims struct {
	raw []byte // one JSON object
	std standardClaims
}

// standardClaims are the claims UserInfo has accessors for.
type standardClaims struct {
	Sub           string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	IsActive      bool   `json:"is_active"`
	TenantID      string `json:"tenant_id"`
}

// ParseUserInfo returns the UserInfo of a JSON object, such as Fief's
// userinfo answer or a cache entry made with [UserInfo.MarshalJSON]. It
// fails unless b is exactly one JSON object whose standard claims (sub,
// email, email_verified, is_active, tenant_id), when present, have their
// JSON types. b is copied.
func ParseUserInfo(b []byte) (UserInfo, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return UserInfo{}, errors.New("fief: user info is not a JSON object")
	}
	u := &userClaims{raw: bytes.Clone(b)}
	// Unmarshal checks that the whole input is valid JSON first.
	if err := json.Unmarshal(u.raw, &u.std); err != nil {
		return UserInfo{}, errors.New("fief: user info is not a JSON object of well-typed claims")
	}
	return UserInfo{u}, nil
}

// IsZero reports whether u holds no claims.
func (u UserInfo) IsZero() bool { return u.u == nil }

// Sub returns the user's ID (the sub claim), a UUID.
func (u UserInfo) Sub() string { return u.std().Sub }

// Email returns the user's email address.
func (u UserInfo) Email() string { return u.std().Email }

// EmailVerified reports whether the user verified their email address.
func (u UserInfo) EmailVerified() bool { return u.std().EmailVerified }

// IsActive reports whether the user is active.
func (u UserInfo) IsActive() bool { return u.std().IsActive }

// TenantID returns the UUID of the user's tenant.
func (u UserInfo) TenantID() string { return u.std().TenantID }

func (u UserInfo) std() standardClaims {
	if u.u == nil {
		return standardClaims{}
	}
	return u.u.std
}

// Fields returns a new map of the user's custom field values, by slug (nil
// if there are none). Numbers are json.Number, so that they keep every
// digit; decode into your own type with [UserInfo.Claims] for typed values.
func (u UserInfo) Fields() map[string]any {
	var v struct {
		Fields map[string]any `json:"fields"`
	}
	if u.u == nil || decodeNumbers(u.u.raw, &v) != nil {
		return nil
	}
	return v.Fields
}

// Claims decodes the claims into v, as [encoding/json.Unmarshal] does, for
// example into a struct with the tenant's custom fields:
//
//	var claims struct {
//		Email  string `json:"email"`
//		Fields struct {
//			FirstName string `json:"first_name"`
//			Age       int    `json:"age"`
//		} `json:"fields"`
//	}
//	err := user.Claims(&claims)
//
// The zero UserInfo decodes as null.
func (u UserInfo) Claims(v any) error {
	if u.u == nil {
		return json.Unmarshal([]byte("null"), v)
	}
	return json.Unmarshal(u.u.raw, v)
}

// MarshalJSON returns (a copy of) the claims' JSON object, as Fief sent
// it; the zero UserInfo is null.
func (u UserInfo) MarshalJSON() ([]byte, error) {
	if u.u == nil {
		return []byte("null"), nil
	}
	return bytes.Clone(u.u.raw), nil
}

// UnmarshalJSON sets u to the claims of a JSON object, as ParseUserInfo
// does; null sets the zero UserInfo.
func (u *UserInfo) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		*u = UserInfo{}
		return nil
	}
	v, err := ParseUserInfo(b)
	if err != nil {
		return err
	}
	*u = v
	return nil
}

// decodeNumbers decodes b into v with numbers as json.Number.
func decodeNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// userRequest calls one of Fief's user endpoints with the access token and
// decodes the user's claims from the answer.
func (c *Client) userRequest(ctx context.Context, method, endpointURL, endpoint, accessToken string, payload any) (UserInfo, error) {
	var body *bytes.Reader
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return UserInfo{}, fmt.Errorf("fief: %s request: %w", endpoint, err)
		}
		body = bytes.NewReader(b)
	}
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequestWithContext(ctx, method, endpointURL, body)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, endpointURL, nil)
	}
	if err != nil {
		return UserInfo{}, fmt.Errorf("fief: %s request: %w", endpoint, err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	b, err := c.send(req, endpoint)
	if err != nil {
		return UserInfo{}, err
	}
	info, err := ParseUserInfo(b)
	if err != nil {
		return UserInfo{}, fmt.Errorf("fief: %s response: %w", endpoint, err)
	}
	return info, nil
}

// UserInfo fetches the user's claims from Fief's userinfo endpoint with the
// access token. A token Fief refuses gives a [*RequestError] with status 401.
func (c *Client) UserInfo(ctx context.Context, accessToken string) (UserInfo, error) {
	cfg, err := c.openIDConfig(ctx)
	if err != nil {
		return UserInfo{}, err
	}
	start := c.hooks.userInfoStart()
	u, err := c.userRequest(ctx, http.MethodGet, cfg.UserinfoEndpoint, "userinfo", accessToken, nil)
	if h := c.hooks; h != nil && h.UserInfoFetched != nil {
		o := OutcomeOK
		switch {
		case refusedByFief(err):
			o = OutcomeRefused
		case err != nil:
			o = OutcomeError
		}
		h.UserInfoFetched(ctx, UserInfoFetch{Outcome: o, Duration: time.Since(start)})
	}
	return u, err
}

// UpdateProfile updates the user's custom fields (by slug) and returns the
// updated claims. Fields Fief does not let users update are ignored by Fief.
func (c *Client) UpdateProfile(ctx context.Context, accessToken string, fields map[string]any) (UserInfo, error) {
	return c.userRequest(ctx, http.MethodPatch, c.apiURL("/api/profile"), "profile", accessToken,
		map[string]any{"fields": fields})
}

// ChangePassword changes the user's password. Fief requires an access token
// with ACR 1 (a [*RequestError] with status 403 and ACR_TOO_LOW otherwise)
// and a strong enough password (status 400, USER_UPDATE_INVALID_PASSWORD).
func (c *Client) ChangePassword(ctx context.Context, accessToken, newPassword string) (UserInfo, error) {
	return c.userRequest(ctx, http.MethodPatch, c.apiURL("/api/password"), "password", accessToken,
		map[string]string{"password": newPassword})
}

// EmailChange asks Fief to change the user's email address. Fief sends a
// code to the new address and answers with the claims unchanged; the change
// takes effect with EmailVerify. Requires ACR 1.
func (c *Client) EmailChange(ctx context.Context, accessToken, email string) (UserInfo, error) {
	return c.userRequest(ctx, http.MethodPatch, c.apiURL("/api/email/change"), "email_change", accessToken,
		map[string]string{"email": email})
}

// EmailVerify completes an email change with the code the user received and
// returns the claims with the new address. Requires ACR 1.
func (c *Client) EmailVerify(ctx context.Context, accessToken, code string) (UserInfo, error) {
	return c.userRequest(ctx, http.MethodPost, c.apiURL("/api/email/verify"), "email_verify", accessToken,
		map[string]string{"code": code})
}
