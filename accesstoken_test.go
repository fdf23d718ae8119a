package fief_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief"
)

func TestACR(t *testing.T) {
	for _, s := range []string{"0", "1"} {
		a, err := fief.ParseACR(s)
		if err != nil || a.String() != s {
			t.Fatalf("%s: %v %v", s, a, err)
		}
		b, _ := a.MarshalText()
		var back fief.ACR
		if err := back.UnmarshalText(b); err != nil || back != a {
			t.Fatal("round trip")
		}
	}
	for _, s := range []string{"", "2", "01", " 1", "one"} {
		if _, err := fief.ParseACR(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if !(fief.ACRLevelZero < fief.ACRLevelOne) {
		t.Fatal("order")
	}
	if _, err := fief.ACR(7).MarshalText(); err == nil {
		t.Fatal("fief.ACR(7) marshalled")
	}
}

func TestAccessTokenInfoValue(t *testing.T) {
	var zero fief.AccessTokenInfo
	if !zero.IsZero() || zero.UserID() != "" || zero.Scopes() != nil || zero.HasScope("openid") || zero.ACR() != fief.ACRLevelZero ||
		zero.Permissions() != nil || zero.HasPermission("x") || !zero.Expiry().IsZero() || zero.AccessToken() != "" {
		t.Fatal("the zero AccessTokenInfo holds something")
	}
	if b, _ := json.Marshal(zero); string(b) != "null" {
		t.Fatalf("zero JSON = %s", b)
	}
	e := newEnv(t)
	tok := e.token()
	info, err := e.c.ValidateAccessToken(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(b, &got)
	want := map[string]any{"id": e.user.ID, "scope": []any{"openid", "castles"}, "acr": "1", "permissions": []any{"castles:read"},
		"expiry": info.Expiry().Format(time.RFC3339Nano)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("JSON = %s", b)
	}
	if strings.Contains(string(b), tok) {
		t.Fatal("the JSON form holds the token")
	}
	if info.AccessToken() != tok || !info.HasScope("castles") || info.HasScope("admin") || !info.HasPermission("castles:read") {
		t.Fatalf("accessors: %+v", info)
	}
}
