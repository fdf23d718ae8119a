package fieftest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// User is a user of the tenant.
type User struct {
	// ID is the user's UUID, the sub claim. AddUser generates a random
	// lower-case UUID v4 when it is empty.
	ID string
	// Email and Password are the credentials accepted by the login form.
	// Emails are unique (compared case-insensitively).
	Email, Password string
	// EmailVerified is the email_verified claim.
	EmailVerified bool
	// Inactive disables the user: it cannot log in and its tokens are
	// rejected at /api/*. The is_active claim is !Inactive, so the zero
	// value is an active user.
	Inactive bool
	// Fields holds the custom user fields (the fields claim), by slug, with
	// values as JSON carries them: string, bool, float64 or json.Number,
	// map[string]any, []any.
	Fields map[string]any
	// Permissions are the codenames of the user's permissions; they go into
	// the permissions claim of access tokens.
	Permissions []string
}

// emailChange is a pending email change of a user.
type emailChange struct {
	email, code string
}

// AddUser registers u and returns it with its ID filled in. It panics if
// the ID or a non-empty email is already taken.
func (s *Server) AddUser(u User) User {
	u = u.clone()
	if u.ID == "" {
		u.ID = newUUID()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[u.ID]; ok {
		panic(fmt.Sprintf("fieftest: AddUser: user ID %q already exists", u.ID))
	}
	if u.Email != "" && s.userByEmail(u.Email) != nil {
		panic(fmt.Sprintf("fieftest: AddUser: email %q already exists", u.Email))
	}
	s.users[u.ID] = &u
	return u.clone()
}

// User returns the current state of user id (after profile, password and
// email changes) and whether it exists.
func (s *Server) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[id]; ok {
		return u.clone(), true
	}
	return User{}, false
}

// SetPermissions replaces the permissions of user userID; tokens issued
// afterwards carry them. It panics if the user does not exist.
func (s *Server) SetPermissions(userID string, perms ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok {
		panic(fmt.Sprintf("fieftest: SetPermissions: unknown user %q", userID))
	}
	u.Permissions = slices.Clone(perms)
}

// DeleteUser removes user userID with its pending authorization codes,
// refresh tokens and email change. Tokens already issued to it are then
// rejected at /api/*. Unknown users are ignored.
func (s *Server) DeleteUser(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, userID)
	delete(s.emailChanges, userID)
	maps.DeleteFunc(s.codes, func(_ string, c *authCode) bool { return c.userID == userID })
	maps.DeleteFunc(s.refreshTokens, func(_ string, g *refreshGrant) bool { return g.userID == userID })
}

// EmailVerificationCode returns the code that confirms the pending email
// change of user userID (requested at /api/email/change), the code Fief
// would send by email, or "" if there is none.
func (s *Server) EmailVerificationCode(userID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.emailChanges[userID].code
}

// userByEmail returns the user with the given email, compared
// case-insensitively, or nil. s.mu must be held.
func (s *Server) userByEmail(email string) *User {
	for _, u := range s.users {
		if strings.EqualFold(u.Email, email) {
			return u
		}
	}
	return nil
}

// claims returns the claims Fief gives for u (User.get_claims): the body of
// /api/userinfo and of the user endpoints, and the user part of ID tokens.
// s.mu must be held.
func (s *Server) claims(u *User) map[string]any {
	return map[string]any{
		"sub":            u.ID,
		"email":          u.Email,
		"email_verified": u.EmailVerified,
		"is_active":      !u.Inactive,
		"tenant_id":      s.tenantID,
		"fields":         cloneValue(u.Fields), // {} when nil
	}
}

// clone returns a deep copy of u, so callers and the Server never share
// maps or slices.
func (u *User) clone() User {
	c := *u
	c.Permissions = slices.Clone(u.Permissions)
	if u.Fields != nil {
		c.Fields = cloneValue(u.Fields).(map[string]any)
	}
	return c
}

// cloneValue deep-copies the maps and slices of a JSON-like value.
func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(v))
		for k, e := range v {
			c[k] = cloneValue(e)
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = cloneValue(e)
		}
		return c
	default:
		return v
	}
}
