package fieftest_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief/fieftest"
)

func TestUserinfo(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	off := s.AddUser(fieftest.User{Email: "off@example.com", Inactive: true})
	gone := s.AddUser(fieftest.User{Email: "gone@example.com"})
	goneToken := s.AccessToken(gone.ID)
	s.DeleteUser(gone.ID)
	token := s.AccessToken(alice.ID)

	tests := []struct {
		name       string
		method     string
		header     http.Header
		wantStatus int
	}{
		{"valid", http.MethodGet, bearer(token), http.StatusOK},
		{"POST", http.MethodPost, bearer(token), http.StatusOK},
		{"lower-case scheme", http.MethodGet, http.Header{"Authorization": {"bearer " + token}}, http.StatusOK},
		{"ACR 1", http.MethodGet, bearer(s.AccessToken(alice.ID, fieftest.ACR("1"))), http.StatusOK},
		{"other client's token", http.MethodGet, bearer(s.AccessToken(alice.ID, fieftest.ForClient("another"))), http.StatusOK},
		{"expired within leeway", http.MethodGet, bearer(s.AccessToken(alice.ID, fieftest.ExpiresIn(-30*time.Second))), http.StatusOK},
		{"no kid", http.MethodGet, bearer(s.AccessToken(alice.ID, fieftest.Header("kid", nil))), http.StatusOK},
		{"no exp", http.MethodGet, bearer(s.AccessToken(alice.ID, fieftest.Claim("exp", nil))), http.StatusOK},
		{"no header", http.MethodGet, nil, http.StatusUnauthorized},
		{"no scheme", http.MethodGet, http.Header{"Authorization": {token}}, http.StatusUnauthorized},
		{"wrong scheme", http.MethodGet, http.Header{"Authorization": {"Basic " + token}}, http.StatusUnauthorized},
		{"empty token", http.MethodGet, http.Header{"Authorization": {"Bearer "}}, http.StatusUnauthorized},
		{"garbage", http.MethodGet, bearer("INVALID_TOKEN"), http.StatusUnauthorized},
		{"tampered", http.MethodGet, bearer(token[:len(token)-4] + "AAAA"), http.StatusUnauthorized},
		{"expired", http.MethodGet, bearer(s.AccessToken(alice.ID, fieftest.ExpiresIn(-2*time.Minute))), http.StatusUnauthorized},
		{"not yet valid", http.MethodGet, bearer(s.AccessToken(alice.ID, fieftest.Claim("nbf", time.Now().Add(time.Hour).Unix()))), http.StatusUnauthorized},
		{"exp not a number", http.MethodGet, bearer(s.AccessToken(alice.ID, fieftest.Claim("exp", "tomorrow"))), http.StatusUnauthorized},
		{"unpublished key", http.MethodGet, bearer(s.AccessToken(alice.ID, fieftest.SignWith(otherKey()))), http.StatusUnauthorized},
		{"unpublished key with current kid", http.MethodGet,
			bearer(s.AccessToken(alice.ID, fieftest.SignWith(otherKey()), fieftest.Header("kid", s.KeyID()))), http.StatusUnauthorized},
		{"unknown kid", http.MethodGet, bearer(s.AccessToken(alice.ID, fieftest.Header("kid", "nope"))), http.StatusUnauthorized},
		{"alg header not RS256", http.MethodGet, bearer(s.AccessToken(alice.ID, fieftest.Header("alg", "RS512"))), http.StatusUnauthorized},
		{"unknown acr", http.MethodGet, bearer(s.AccessToken(alice.ID, fieftest.ACR("2"))), http.StatusUnauthorized},
		{"no acr", http.MethodGet, bearer(s.AccessToken(alice.ID, fieftest.Claim("acr", nil))), http.StatusUnauthorized},
		{"no sub", http.MethodGet, bearer(s.AccessToken(alice.ID, fieftest.Claim("sub", nil))), http.StatusUnauthorized},
		{"unknown user", http.MethodGet, bearer(s.AccessToken("00000000-0000-4000-8000-000000000000")), http.StatusUnauthorized},
		{"deleted user", http.MethodGet, bearer(goneToken), http.StatusUnauthorized},
		{"inactive user", http.MethodGet, bearer(s.AccessToken(off.ID)), http.StatusUnauthorized},
		{"JWE", http.MethodGet, bearer("a.b.c.d.e"), http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, s.URL+"/api/userinfo", nil, tc.header)
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tc.wantStatus, r.body)
			}
			if tc.wantStatus == http.StatusUnauthorized {
				if string(r.body) != `{"detail":"Unauthorized"}` {
					t.Errorf("body = %s", r.body)
				}
				return
			}
			claims := r.json(t)
			want := map[string]any{
				"sub": alice.ID, "email": "alice@example.com", "email_verified": true, "is_active": true,
				"tenant_id": claims["tenant_id"], "fields": map[string]any{"first_name": "Alice"},
			}
			if !equalJSON(claims, want) || !uuidV4.MatchString(claims["tenant_id"].(string)) {
				t.Errorf("claims = %v, want %v", claims, want)
			}
		})
	}
}

func TestProfile(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	token := s.AccessToken(alice.ID) // ACR 0 is enough

	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantType   string // of the 422 detail
		wantFields map[string]any
	}{
		{"merge", `{"fields":{"last_name":"Liddell","age":7,"address":{"city":"Oxford"}}}`, http.StatusOK, "",
			map[string]any{"first_name": "Alice", "last_name": "Liddell", "age": 7, "address": map[string]any{"city": "Oxford"}}},
		{"overwrite", `{"fields":{"first_name":"Alicia"}}`, http.StatusOK, "",
			map[string]any{"first_name": "Alicia", "last_name": "Liddell", "age": 7, "address": map[string]any{"city": "Oxford"}}},
		{"empty fields", `{"fields":{}}`, http.StatusOK, "",
			map[string]any{"first_name": "Alicia", "last_name": "Liddell", "age": 7, "address": map[string]any{"city": "Oxford"}}},
		{"invalid JSON", `{"fields":`, http.StatusUnprocessableEntity, "json_invalid", nil},
		{"trailing data", `{"fields":{}} {}`, http.StatusUnprocessableEntity, "json_invalid", nil},
		{"empty body", ``, http.StatusUnprocessableEntity, "json_invalid", nil},
		{"missing fields", `{"email":"x@example.com"}`, http.StatusUnprocessableEntity, "missing", nil},
		{"fields not an object", `{"fields":[1]}`, http.StatusUnprocessableEntity, "dict_type", nil},
		{"null fields", `{"fields":null}`, http.StatusUnprocessableEntity, "dict_type", nil},
		{"body not an object", `["fields"]`, http.StatusUnprocessableEntity, "model_attributes_type", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, http.MethodPatch, s.URL+"/api/profile", strings.NewReader(tc.body), bearer(token))
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tc.wantStatus, r.body)
			}
			body := r.json(t)
			if tc.wantType != "" {
				detail, _ := body["detail"].([]any)
				if len(detail) != 1 || detail[0].(map[string]any)["type"] != tc.wantType {
					t.Errorf("detail = %v, want one error of type %s", body["detail"], tc.wantType)
				}
				return
			}
			if !equalJSON(body["fields"], tc.wantFields) || body["sub"] != alice.ID {
				t.Errorf("claims = %v, want fields %v", body, tc.wantFields)
			}
			if u, _ := s.User(alice.ID); !equalJSON(u.Fields, tc.wantFields) {
				t.Errorf("User().Fields = %v", u.Fields)
			}
		})
	}

	if r := do(t, http.MethodPatch, s.URL+"/api/profile", strings.NewReader(`{"fields":{}}`), nil); r.status != http.StatusUnauthorized {
		t.Errorf("without token: %d", r.status)
	}
	huge := `{"fields":{"x":"` + strings.Repeat("a", 2<<20) + `"}}`
	if r := do(t, http.MethodPatch, s.URL+"/api/profile", strings.NewReader(huge), bearer(token)); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: %d, want 413", r.status)
	}
}

func TestPassword(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	acr1 := s.AccessToken(alice.ID, fieftest.ACR("1"))

	tests := []struct {
		name       string
		token      string
		body       string
		wantStatus int
		wantBody   string // exact, when set
	}{
		{"ACR 0", s.AccessToken(alice.ID), `{"password":"long enough"}`, http.StatusForbidden, `{"detail":"ACR_TOO_LOW"}`},
		{"no token", "", `{"password":"long enough"}`, http.StatusUnauthorized, `{"detail":"Unauthorized"}`},
		{"missing", acr1, `{}`, http.StatusUnprocessableEntity, ""},
		{"not a string", acr1, `{"password":12345678}`, http.StatusUnprocessableEntity, ""},
		{"invalid JSON", acr1, `password`, http.StatusUnprocessableEntity, ""},
		{"too short", acr1, `{"password":"short"}`, http.StatusBadRequest,
			`{"detail":"USER_UPDATE_INVALID_PASSWORD","reason":["Password must be at least 8 characters long."]}`},
		{"seven runes", acr1, `{"password":"ééééééé"}`, http.StatusBadRequest, ""},
		{"changed", acr1, `{"password":"new password"}`, http.StatusOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h http.Header
			if tc.token != "" {
				h = bearer(tc.token)
			}
			r := do(t, http.MethodPatch, s.URL+"/api/password", strings.NewReader(tc.body), h)
			if r.status != tc.wantStatus || (tc.wantBody != "" && string(r.body) != tc.wantBody) {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tc.wantStatus, tc.wantBody)
			}
			if r.status == http.StatusOK && r.json(t)["email"] != "alice@example.com" {
				t.Errorf("claims = %s", r.body)
			}
		})
	}

	if u, _ := s.User(alice.ID); u.Password != "new password" {
		t.Errorf("Password = %q", u.Password)
	}
	if _, err := s.Authorize(authURL(s, nil), "alice@example.com", "correct horse"); err == nil {
		t.Error("the old password still works")
	}
	if _, err := s.Authorize(authURL(s, nil), "alice@example.com", "new password"); err != nil {
		t.Errorf("the new password does not work: %v", err)
	}
}

func TestEmailChange(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	s.AddUser(fieftest.User{Email: "bob@example.com"})
	acr1 := s.AccessToken(alice.ID, fieftest.ACR("1"))
	acr0 := s.AccessToken(alice.ID)

	changeTests := []struct {
		name       string
		token      string
		body       string
		wantStatus int
		wantDetail any
	}{
		{"ACR 0", acr0, `{"email":"alice@new.example"}`, http.StatusForbidden, "ACR_TOO_LOW"},
		{"not an email", acr1, `{"email":"alice"}`, http.StatusUnprocessableEntity, nil},
		{"two @", acr1, `{"email":"a@b@c"}`, http.StatusUnprocessableEntity, nil},
		{"missing", acr1, `{}`, http.StatusUnprocessableEntity, nil},
		{"taken", acr1, `{"email":"Bob@example.com"}`, http.StatusBadRequest, "USER_UPDATE_EMAIL_ALREADY_EXISTS"},
		{"accepted", acr1, `{"email":"alice@new.example"}`, http.StatusAccepted, nil},
	}
	for _, tc := range changeTests {
		t.Run("change/"+tc.name, func(t *testing.T) {
			r := do(t, http.MethodPatch, s.URL+"/api/email/change", strings.NewReader(tc.body), bearer(tc.token))
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tc.wantStatus, r.body)
			}
			body := r.json(t)
			if tc.wantDetail != nil && body["detail"] != tc.wantDetail {
				t.Errorf("detail = %v, want %v", body["detail"], tc.wantDetail)
			}
			if r.status == http.StatusAccepted && (body["email"] != "alice@example.com" || body["email_verified"] != true) {
				t.Errorf("202 body = %v, want the old claims", body)
			}
		})
	}

	code := s.EmailVerificationCode(alice.ID)
	if !regexp.MustCompile(`^[A-Z0-9]{6}$`).MatchString(code) {
		t.Fatalf("EmailVerificationCode = %q, want 6 characters of [A-Z0-9]", code)
	}
	if u, _ := s.User(alice.ID); u.Email != "alice@example.com" {
		t.Errorf("email changed before verification: %q", u.Email)
	}
	wrong := "AAAAAA"
	if code == wrong {
		wrong = "BBBBBB"
	}

	verifyTests := []struct {
		name       string
		token      string
		body       string
		wantStatus int
		wantDetail any
	}{
		{"ACR 0", acr0, `{"code":"` + code + `"}`, http.StatusForbidden, "ACR_TOO_LOW"},
		{"missing", acr1, `{}`, http.StatusUnprocessableEntity, nil},
		{"wrong", acr1, `{"code":"` + wrong + `"}`, http.StatusBadRequest, "USER_UPDATE_INVALID_EMAIL_VERIFICATION_CODE"},
		{"right", acr1, `{"code":"` + code + `"}`, http.StatusOK, nil},
		{"used", acr1, `{"code":"` + code + `"}`, http.StatusBadRequest, "USER_UPDATE_INVALID_EMAIL_VERIFICATION_CODE"},
	}
	for _, tc := range verifyTests {
		t.Run("verify/"+tc.name, func(t *testing.T) {
			r := do(t, http.MethodPost, s.URL+"/api/email/verify", strings.NewReader(tc.body), bearer(tc.token))
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tc.wantStatus, r.body)
			}
			body := r.json(t)
			if tc.wantDetail != nil && body["detail"] != tc.wantDetail {
				t.Errorf("detail = %v, want %v", body["detail"], tc.wantDetail)
			}
			if r.status == http.StatusOK && (body["email"] != "alice@new.example" || body["email_verified"] != true) {
				t.Errorf("claims = %v, want the new, verified email", body)
			}
		})
	}
	if u, _ := s.User(alice.ID); u.Email != "alice@new.example" || !u.EmailVerified {
		t.Errorf("User = %+v", u)
	}
	if c := s.EmailVerificationCode(alice.ID); c != "" {
		t.Errorf("EmailVerificationCode after verification = %q", c)
	}
	if _, err := s.Authorize(authURL(s, nil), "alice@new.example", "correct horse"); err != nil {
		t.Errorf("login with the new email: %v", err)
	}
}
