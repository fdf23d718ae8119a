package fief_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

func TestUserEndpoints(t *testing.T) {
	s := fieftest.NewTB(t)
	c := newClient(t, s)
	u := addUser(s)
	ctx := context.Background()
	acr0 := s.AccessToken(u.ID, fieftest.ACR("0"))
	acr1 := s.AccessToken(u.ID, fieftest.ACR("1"))

	info, err := c.UserInfo(ctx, acr0)
	if err != nil {
		t.Fatal(err)
	}
	if info.Sub() != u.ID || info.Email() != u.Email || claim(info, "iss") != nil {
		t.Fatalf("userinfo = %v", info)
	}
	_, err = c.UserInfo(ctx, "invalid")
	requestError(t, err, http.StatusUnauthorized, "Unauthorized")

	info, err = c.UpdateProfile(ctx, acr0, map[string]any{"first_name": "Isabeau", "age": 42})
	if err != nil {
		t.Fatal(err)
	}
	if info.Fields()["first_name"] != "Isabeau" || fmt.Sprint(info.Fields()["age"]) != "42" {
		t.Fatalf("profile = %v", info)
	}

	_, err = c.ChangePassword(ctx, acr0, "a-much-better-password")
	requestError(t, err, http.StatusForbidden, "ACR_TOO_LOW")
	_, err = c.ChangePassword(ctx, acr1, "short")
	requestError(t, err, http.StatusBadRequest, "USER_UPDATE_INVALID_PASSWORD")
	if _, err := c.ChangePassword(ctx, acr1, "a-much-better-password"); err != nil {
		t.Fatal(err)
	}

	other := addUser(s)
	_, err = c.EmailChange(ctx, acr1, other.Email)
	requestError(t, err, http.StatusBadRequest, "USER_UPDATE_EMAIL_ALREADY_EXISTS")
	info, err = c.EmailChange(ctx, acr1, "isabeau@bretagne.duchy")
	if err != nil {
		t.Fatal(err)
	}
	if info.Email() != u.Email {
		t.Fatalf("email changed before verification: %v", info)
	}
	_, err = c.EmailVerify(ctx, acr1, "WRONG1")
	requestError(t, err, http.StatusBadRequest, "USER_UPDATE_INVALID_EMAIL_VERIFICATION_CODE")
	info, err = c.EmailVerify(ctx, acr1, s.EmailVerificationCode(u.ID))
	if err != nil {
		t.Fatal(err)
	}
	if info.Email() != "isabeau@bretagne.duchy" || !info.EmailVerified() {
		t.Fatalf("verified = %v", info)
	}
}

func TestUserInfoKeepsNumbersExact(t *testing.T) {
	info, err := fief.ParseUserInfo([]byte(`{"sub":"x","fields":{"big":12345678901234567890,"f":1.5,"d":"2024-01-02"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Fields()["big"]; got.(interface{ String() string }).String() != "12345678901234567890" {
		t.Fatalf("big = %v", got)
	}
	for _, bad := range []string{`null`, `[]`, `{"a":1} {"b":2}`, `{`} {
		if _, err := fief.ParseUserInfo([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestUserInfoClaims decodes custom fields into the caller's own types.
func TestUserInfoClaims(t *testing.T) {
	raw := `{"sub":"a","email":"a@bretagne.duchy","email_verified":true,"is_active":true,"tenant_id":"t",` +
		`"fields":{"first_name":"Anne","age":48,"address":{"city":"Nantes"},"big":12345678901234567890}}`
	u, err := fief.ParseUserInfo([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Email  string `json:"email"`
		Fields struct {
			FirstName string `json:"first_name"`
			Age       int    `json:"age"`
			Address   struct {
				City string `json:"city"`
			} `json:"address"`
			Big json.Number `json:"big"`
		} `json:"fields"`
	}
	if err := u.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Email != "a@bretagne.duchy" || c.Fields.FirstName != "Anne" || c.Fields.Age != 48 || c.Fields.Address.City != "Nantes" || c.Fields.Big != "12345678901234567890" {
		t.Fatalf("claims = %+v", c)
	}
	if u.Sub() != "a" || !u.EmailVerified() || !u.IsActive() || u.TenantID() != "t" {
		t.Fatal("accessors")
	}
	// The JSON form is the object as given, and round-trips.
	b, _ := json.Marshal(u)
	if string(b) != raw {
		t.Fatalf("JSON = %s", b)
	}
	var back fief.UserInfo
	if err := json.Unmarshal(b, &back); err != nil || back.Email() != u.Email() {
		t.Fatalf("round trip: %v", err)
	}
	// Wrong types of standard claims are refused; the zero UserInfo is
	// null both ways.
	if _, err := fief.ParseUserInfo([]byte(`{"sub":1}`)); err == nil {
		t.Error("numeric sub accepted")
	}
	var zero fief.UserInfo
	if b, _ := json.Marshal(zero); string(b) != "null" || !zero.IsZero() || zero.Fields() != nil || zero.Claims(&c) != nil {
		t.Errorf("zero UserInfo: %s", b)
	}
	if err := json.Unmarshal([]byte("null"), &back); err != nil || !back.IsZero() {
		t.Error("null did not give the zero UserInfo")
	}
}
