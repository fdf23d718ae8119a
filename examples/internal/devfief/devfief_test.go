package devfief

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

func TestSetupEmbedded(t *testing.T) {
	for _, v := range []string{"FIEF_BASE_URL", "FIEF_CLIENT_ID", "FIEF_CLIENT_SECRET"} {
		t.Setenv(v, "")
	}
	f, err := Setup("")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Server == nil || f.BaseURL != f.Server.URL || !strings.HasPrefix(f.BaseURL, "http://127.0.0.1:") {
		t.Fatalf("not an embedded server on 127.0.0.1: %+v", f)
	}
	if f.User.Email != DemoEmail || !slices.Equal(f.User.Permissions, DemoPermissions()) {
		t.Errorf("demo user %+v", f.User)
	}

	// The client works with the server, and the demo user can log in.
	info, err := f.Client.ValidateAccessToken(t.Context(), f.Server.AccessToken(f.User.ID))
	if err != nil || info.UserID() != f.User.ID {
		t.Fatalf("ValidateAccessToken: %+v, %v", info, err)
	}
	authURL, err := f.Client.AuthURL(t.Context(), "http://127.0.0.1:1/cb", fief.AuthURLOptions{Scopes: []string{"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Server.Authorize(authURL, DemoEmail, DemoPassword); err != nil {
		t.Errorf("the demo user cannot log in: %v", err)
	}

	var out strings.Builder
	f.Describe(&out)
	if !strings.Contains(out.String(), f.BaseURL) || !strings.Contains(out.String(), DemoEmail+" / "+DemoPassword) {
		t.Errorf("Describe: %s", &out)
	}
}

func TestSetupRealFief(t *testing.T) {
	t.Setenv("FIEF_BASE_URL", "https://fief.example.com/tenant/")
	t.Setenv("FIEF_CLIENT_ID", "id")
	t.Setenv("FIEF_CLIENT_SECRET", "secret")
	t.Setenv("FIEF_ENCRYPTION_KEY", "")
	f, err := Setup("")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Server != nil || f.BaseURL != "https://fief.example.com/tenant" || f.Client == nil {
		t.Errorf("got %+v", f)
	}
	if got, want := f.Client.LogoutURL("http://app/"), "https://fief.example.com/tenant/logout?"; !strings.HasPrefix(got, want) {
		t.Errorf("LogoutURL %s, want it under %s", got, want)
	}

	t.Setenv("FIEF_ENCRYPTION_KEY", "not a JWK")
	if _, err := Setup(""); err == nil {
		t.Error("Setup accepted an invalid FIEF_ENCRYPTION_KEY")
	}
	srv := fieftest.NewTB(t)
	srv.AddClient(fieftest.Client{ID: "enc", Secret: "s", EncryptIDToken: true})
	t.Setenv("FIEF_ENCRYPTION_KEY", srv.EncryptionKey("enc"))
	if _, err := Setup(""); err != nil {
		t.Errorf("Setup with an encryption key: %v", err)
	}
}

func TestSetupPartialEnvironment(t *testing.T) {
	t.Setenv("FIEF_BASE_URL", "https://fief.example.com")
	t.Setenv("FIEF_CLIENT_ID", "")
	t.Setenv("FIEF_CLIENT_SECRET", "secret")
	_, err := Setup("")
	if err == nil || !strings.Contains(err.Error(), "FIEF_CLIENT_ID") {
		t.Errorf("error %v, want one naming FIEF_CLIENT_ID", err)
	}
}

func TestEmbeddedBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := Embedded(ln.Addr().String()); err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("error %v, want one naming the address", err)
	}
}

func TestCookieKey(t *testing.T) {
	if key, err := CookieKey(""); key != nil || err != nil {
		t.Errorf(`CookieKey(""): %x, %v; want nil (a random key)`, key, err)
	}
	for _, bad := range []string{"abcd", strings.Repeat("ab", 31), strings.Repeat("zz", 32)} {
		if _, err := CookieKey(bad); err == nil || !strings.Contains(err.Error(), "APP_COOKIE_KEY") {
			t.Errorf("CookieKey(%q): %v, want an error naming APP_COOKIE_KEY", bad, err)
		}
	}
	if key, err := CookieKey(strings.Repeat("ab", 32)); err != nil || len(key) != 32 || key[0] != 0xab {
		t.Errorf("CookieKey of 32 bytes: %x, %v", key, err)
	}
}

func TestDescribeWebApp(t *testing.T) {
	var out strings.Builder
	(&Fief{Server: &fieftest.Server{}}).DescribeWebApp(&out, "http://127.0.0.1:8000")
	if got, want := out.String(), "\nOpen http://127.0.0.1:8000/protected in your browser. Press Ctrl-C to stop.\n"; got != want {
		t.Errorf("embedded Fief: %q, want %q", got, want)
	}
	out.Reset()
	(&Fief{}).DescribeWebApp(&out, "https://app.example.com")
	if !strings.HasPrefix(out.String(), "Allow the redirect URI https://app.example.com/auth-callback on your Fief client.\n") {
		t.Errorf("real Fief: %q", &out)
	}
}
