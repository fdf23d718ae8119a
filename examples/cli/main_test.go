package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefcli"
	"github.com/fief-go/fief/fieftest"
)

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func noEnv(string) string { return "" }

// The embedded demo: one run logs in, reads the user, prints a token and
// logs out.
func TestEmbeddedDemo(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "cli", "credentials.json")
	var stdout, stderr bytes.Buffer
	args := []string{"-credentials", creds, "-listen", freeAddr(t), "login", "whoami", "token"}
	if err := run(context.Background(), args, &stdout, &stderr, noEnv); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	login, rest, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(login, "Logged in as "+demoEmail) {
		t.Errorf("login printed %q", login)
	}
	dec := json.NewDecoder(strings.NewReader(rest))
	var user map[string]any
	if err := dec.Decode(&user); err != nil || user["email"] != demoEmail {
		t.Errorf("whoami printed %v (%v)", user, err)
	}
	token := strings.TrimSpace(rest[dec.InputOffset():])
	if strings.Count(token, ".") != 2 {
		t.Errorf("token printed %q", token)
	}
	if !strings.Contains(stderr.String(), "embedded demo") {
		t.Errorf("the embedded demo is not announced:\n%s", stderr.String())
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(creds); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("credentials file: %v, %v", fi, err)
		}
	}

	// The next run has another embedded Fief: the saved token is refused
	// and the user is told what to do.
	stdout.Reset()
	stderr.Reset()
	args = []string{"-credentials", creds, "-listen", freeAddr(t), "token"}
	if err := run(context.Background(), args, &stdout, &stderr, noEnv); !errors.Is(err, fief.ErrAccessTokenInvalid) {
		t.Errorf("token in a new run: %v", err)
	}
	if !strings.Contains(stderr.String(), "login whoami token") || stdout.Len() != 0 {
		t.Errorf("stdout %q, stderr:\n%s", stdout.String(), stderr.String())
	}

	args = []string{"-credentials", creds, "-listen", freeAddr(t), "logout"}
	if err := run(context.Background(), args, io.Discard, io.Discard, noEnv); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(creds); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("logout left the file: %v", err)
	}
}

// terminalUser reads the program's messages like a user at a terminal and,
// when the login URL appears, logs in with it in a browser (scripted).
type terminalUser struct {
	t   *testing.T
	srv *fieftest.Server

	mu      sync.Mutex
	text    strings.Builder
	started bool
	done    chan struct{}
}

func newTerminalUser(t *testing.T, srv *fieftest.Server) *terminalUser {
	return &terminalUser{t: t, srv: srv, done: make(chan struct{})}
}

func (u *terminalUser) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.text.Write(p)
	if u.started {
		return len(p), nil
	}
	for _, f := range strings.Fields(u.text.String()) {
		if strings.HasPrefix(f, u.srv.URL+"/authorize?") {
			u.started = true
			go u.login(f)
			break
		}
	}
	return len(p), nil
}

func (u *terminalUser) String() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.text.String()
}

func (u *terminalUser) login(authURL string) {
	defer close(u.done)
	callback, err := u.srv.Authorize(authURL, demoEmail, demoPassword)
	if err != nil {
		u.t.Errorf("login: %v", err)
		return
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(callback.String())
	if err != nil {
		u.t.Errorf("callback: %v", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		u.t.Errorf("callback: %s", resp.Status)
	}
}

// With FIEF_BASE_URL and FIEF_CLIENT_ID, separate runs share the
// credentials: login (the user opens the printed URL), whoami, token with
// an automatic refresh, logout.
func TestYourFief(t *testing.T) {
	addr := freeAddr(t)
	srv := fieftest.NewTB(t, fieftest.WithClient(fieftest.Client{ID: "my-cli", RedirectURIs: []string{"http://" + addr + "/callback"}}))
	alice := srv.AddUser(fieftest.User{Email: demoEmail, Password: demoPassword})
	env := func(k string) string {
		return map[string]string{"FIEF_BASE_URL": srv.URL, "FIEF_CLIENT_ID": "my-cli"}[k]
	}
	creds := filepath.Join(t.TempDir(), "credentials.json")
	cli := func(t *testing.T, stderr io.Writer, args ...string) (string, error) {
		t.Helper()
		var stdout bytes.Buffer
		args = append([]string{"-credentials", creds, "-listen", addr}, args...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := run(ctx, args, &stdout, stderr, env)
		return stdout.String(), err
	}

	user := newTerminalUser(t, srv)
	out, err := cli(t, user, "-no-browser", "login")
	<-user.done
	if err != nil {
		t.Fatalf("login: %v\n%s", err, user.String())
	}
	if !strings.HasPrefix(out, "Logged in as "+demoEmail) || strings.Contains(user.String(), "embedded") {
		t.Errorf("login: stdout %q, stderr:\n%s", out, user.String())
	}

	out, err = cli(t, io.Discard, "whoami")
	var claims map[string]any
	if err != nil || json.Unmarshal([]byte(out), &claims) != nil || claims["sub"] != alice.ID {
		t.Errorf("whoami: %q, %v", out, err)
	}

	client, _ := fief.New(srv.URL, "my-cli", "")
	out, err = cli(t, io.Discard, "token")
	token := strings.TrimSpace(out)
	if info, verr := client.ValidateAccessToken(context.Background(), token); err != nil || verr != nil || info.UserID() != alice.ID {
		t.Errorf("token: %q, %v, %v", out, err, verr)
	}

	// The access token expires: the next run refreshes it and saves the
	// rotated tokens.
	var saved struct {
		UserInfo map[string]any `json:"userinfo"`
		Tokens   fief.Tokens    `json:"tokens"`
	}
	b, _ := os.ReadFile(creds)
	json.Unmarshal(b, &saved)
	saved.Tokens.AccessToken = srv.AccessToken(alice.ID, fieftest.ForClient("my-cli"), fieftest.ExpiresIn(-time.Hour))
	b, _ = json.Marshal(saved)
	os.WriteFile(creds, b, 0o600)
	srv.ResetRequests()
	out, err = cli(t, io.Discard, "token")
	if err != nil || strings.TrimSpace(out) == saved.Tokens.AccessToken || srv.Requests(fieftest.EndpointToken) != 1 {
		t.Errorf("token after expiry: %q, %v, %d token requests", out, err, srv.Requests(fieftest.EndpointToken))
	}
	b, _ = os.ReadFile(creds)
	if bytes.Contains(b, []byte(saved.Tokens.RefreshToken)) {
		t.Error("the rotated refresh token is not saved")
	}

	if _, err := cli(t, io.Discard, "logout"); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if _, err := cli(t, &stderr, "token"); !errors.Is(err, fiefcli.ErrNotAuthenticated) ||
		!strings.Contains(stderr.String(), "go -C examples run ./cli login") {
		t.Errorf("token after logout: %v\n%s", err, stderr.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"no command":      {args: nil},
		"unknown command": {args: []string{"login", "dance"}},
		"unknown flag":    {args: []string{"-dance", "login"}},
		"half the env":    {args: []string{"whoami"}, env: map[string]string{"FIEF_BASE_URL": "http://127.0.0.1:1"}},
		"bad listen addr": {args: []string{"-listen", "0.0.0.0:51562", "whoami"}},
	} {
		var stderr bytes.Buffer
		args := append([]string{"-credentials", filepath.Join(t.TempDir(), "c.json")}, tc.args...)
		err := run(context.Background(), args, io.Discard, &stderr, func(k string) string { return tc.env[k] })
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, io.Discard, &stderr, noEnv); !errors.Is(err, flag.ErrHelp) ||
		!strings.Contains(stderr.String(), "login    log in") {
		t.Errorf("-h: %v\n%s", err, stderr.String())
	}
}
