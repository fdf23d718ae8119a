package fief_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// TestLoginFlowFIPS140Only: in FIPS 140-only mode (GODEBUG=fips140=only),
// which refuses cipher.NewGCM with nonces of the caller's, NewLoginFlow
// works, a login round-trips through its sealed flow cookie, and a session
// is refreshed through its sealed refresh cookie. The mode is fixed at
// process start, so the test runs itself again in a process of the test
// binary with the variable set.
func TestLoginFlowFIPS140Only(t *testing.T) {
	if !fips140.Enforced() {
		block, err := aes.NewCipher(make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cipher.NewGCMWithRandomNonce(block); err != nil {
			// Not the standard library's AES: GOEXPERIMENT=boringcrypto,
			// with which GODEBUG=fips140 cannot be used.
			t.Skipf("this crypto build has no FIPS 140-only mode: %v", err)
		}
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestLoginFlowFIPS140Only$", "-test.count=1", "-test.v")
		godebug := "fips140=only"
		if v := os.Getenv("GODEBUG"); v != "" {
			godebug = v + "," + godebug
		}
		cmd.Env = append(os.Environ(), "GODEBUG="+godebug)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestLoginFlowFIPS140Only") {
			t.Fatalf("with GODEBUG=%s: %v\n%s", godebug, err, out)
		}
		return
	}

	// The mode is in force: the nonces of the caller's are refused.
	if block, err := aes.NewCipher(make([]byte, 32)); err != nil {
		t.Fatal(err)
	} else if _, err := cipher.NewGCM(block); err == nil {
		t.Fatal("cipher.NewGCM works: FIPS 140-only mode is not in force")
	}
	e := newLFEnv(t, lfOptions{refresh: true})
	_, session, refresh := e.loggedIn(t)
	if resp := e.send(t, "/token", nil, session, refresh); resp.StatusCode != http.StatusOK {
		t.Fatalf("the logged-in session: %d %q", resp.StatusCode, resp.body)
	}
	soon := &http.Cookie{Name: lfSessionCookie, Value: e.srv.AccessToken(e.user.ID, fieftest.Scopes("openid", "offline_access"), fieftest.ExpiresIn(-time.Minute))}
	e.checkRefreshed(t, e.send(t, "/token", nil, soon, refresh), soon.Value, refresh.Value)
	if _, err := fief.NewLoginFlow(e.client, fief.LoginFlowConfig{RedirectURI: e.appURL + "/auth-callback"}); err != nil {
		t.Errorf("NewLoginFlow with a key made for the process: %v", err)
	}
}
