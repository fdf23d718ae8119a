package fieftest

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"unicode/utf8"
)

// passwordMinLength is Fief's default minimum password length.
const passwordMinLength = 8

// Minimum ACR of the user endpoints.
const (
	acrAny      = "0"
	acrPassword = "1"
)

// handleUserinfo serves GET and POST /api/userinfo: the claims of the
// bearer token's user.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	id, ok := s.authenticate(w, r, acrAny)
	if !ok {
		return
	}
	s.withUser(w, id, func(u *User) {
		writeJSON(w, http.StatusOK, s.claims(u))
	})
}

// handleProfile serves PATCH /api/profile: {"fields":{...}} is merged into
// the user's fields.
func (s *Server) handleProfile(w http.ResponseWriter, r *http.Request) {
	id, ok := s.authenticate(w, r, acrAny)
	if !ok {
		return
	}
	body, ok := readJSONObject(w, r)
	if !ok {
		return
	}
	fields, ok := body["fields"].(map[string]any)
	if !ok {
		if _, present := body["fields"]; !present {
			writeMissing(w, "fields")
		} else {
			writeValidationError(w, "dict_type", []any{"body", "fields"}, "Input should be a valid dictionary", body["fields"])
		}
		return
	}
	s.withUser(w, id, func(u *User) {
		if u.Fields == nil {
			u.Fields = make(map[string]any, len(fields))
		}
		for k, v := range fields {
			u.Fields[k] = v
		}
		writeJSON(w, http.StatusOK, s.claims(u))
	})
}

// handlePassword serves PATCH /api/password (ACR 1): {"password":"..."}.
func (s *Server) handlePassword(w http.ResponseWriter, r *http.Request) {
	id, ok := s.authenticate(w, r, acrPassword)
	if !ok {
		return
	}
	password, ok := readStringField(w, r, "password")
	if !ok {
		return
	}
	if utf8.RuneCountInString(password) < passwordMinLength {
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"detail": "USER_UPDATE_INVALID_PASSWORD",
			"reason": []string{"Password must be at least 8 characters long."},
		})
		return
	}
	s.withUser(w, id, func(u *User) {
		u.Password = password
		writeJSON(w, http.StatusOK, s.claims(u))
	})
}

// handleEmailChange serves PATCH /api/email/change (ACR 1): {"email":"..."}
// records a pending change and its verification code, and answers 202 with
// the unchanged claims.
func (s *Server) handleEmailChange(w http.ResponseWriter, r *http.Request) {
	id, ok := s.authenticate(w, r, acrPassword)
	if !ok {
		return
	}
	email, ok := readStringField(w, r, "email")
	if !ok {
		return
	}
	if !plausibleEmail(email) {
		writeValidationError(w, "value_error", []any{"body", "email"}, "value is not a valid email address", email)
		return
	}
	s.withUser(w, id, func(u *User) {
		if other := s.userByEmail(email); other != nil && other.ID != u.ID {
			writeJSON(w, http.StatusBadRequest, map[string]any{"detail": "USER_UPDATE_EMAIL_ALREADY_EXISTS"})
			return
		}
		s.emailChanges[u.ID] = emailChange{email: email, code: verificationCode()}
		writeJSON(w, http.StatusAccepted, s.claims(u))
	})
}

// handleEmailVerify serves POST /api/email/verify (ACR 1): {"code":"..."}
// applies the pending email change, which marks the email verified.
func (s *Server) handleEmailVerify(w http.ResponseWriter, r *http.Request) {
	id, ok := s.authenticate(w, r, acrPassword)
	if !ok {
		return
	}
	code, ok := readStringField(w, r, "code")
	if !ok {
		return
	}
	s.withUser(w, id, func(u *User) {
		change, pending := s.emailChanges[u.ID]
		if !pending || subtle.ConstantTimeCompare([]byte(code), []byte(change.code)) != 1 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"detail": "USER_UPDATE_INVALID_EMAIL_VERIFICATION_CODE"})
			return
		}
		if other := s.userByEmail(change.email); other != nil && other.ID != u.ID {
			writeJSON(w, http.StatusBadRequest, map[string]any{"detail": "USER_UPDATE_EMAIL_ALREADY_EXISTS"})
			return
		}
		delete(s.emailChanges, u.ID)
		u.Email = change.email
		u.EmailVerified = true
		writeJSON(w, http.StatusOK, s.claims(u))
	})
}

// authenticate checks the request's bearer token like Fief's user
// endpoints: a valid token (see verifyToken) with acr "0" or "1" whose sub
// is an existing, active user; otherwise it answers 401. When the token's
// ACR is below minACR it answers 403 {"detail":"ACR_TOO_LOW"}. It returns
// the user's ID.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, minACR string) (string, bool) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "bearer") || token == "" {
		writeDetail(w, http.StatusUnauthorized)
		return "", false
	}
	claims, ok := s.verifyToken(token)
	if !ok {
		writeDetail(w, http.StatusUnauthorized)
		return "", false
	}
	sub, _ := claims["sub"].(string)
	acr, _ := claims["acr"].(string)
	s.mu.Lock()
	u, exists := s.users[sub]
	active := exists && !u.Inactive
	s.mu.Unlock()
	if !active || (acr != acrAny && acr != acrPassword) {
		writeDetail(w, http.StatusUnauthorized)
		return "", false
	}
	if acr < minACR {
		writeJSON(w, http.StatusForbidden, map[string]any{"detail": "ACR_TOO_LOW"})
		return "", false
	}
	return sub, true
}

// withUser runs fn with user id while holding s.mu, so fn can read and
// change the user atomically. A user deleted or deactivated since
// authenticate gets 401.
func (s *Server) withUser(w http.ResponseWriter, id string, fn func(*User)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok || u.Inactive {
		writeDetail(w, http.StatusUnauthorized)
		return
	}
	fn(u)
}

// plausibleEmail reports whether v looks like an email address: one "@"
// between a non-empty local part and a domain, no spaces.
func plausibleEmail(v string) bool {
	local, domain, ok := strings.Cut(v, "@")
	return ok && local != "" && domain != "" && !strings.Contains(domain, "@") &&
		!strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' })
}
