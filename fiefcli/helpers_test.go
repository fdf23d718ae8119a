package fiefcli_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefcli"
	"github.com/fief-go/fief/fieftest"
	"golang.org/x/oauth2"
)

const (
	clientID = "fief-cli"
	email    = "anne@bretagne.duchy"
	password = "herminetruc"
)

// signingKey is shared by every test server: key generation is slow.
var signingKey = sync.OnceValue(func() *rsa.PrivateKey { return fieftest.GenerateKey(2048) })

// env is a Fief test server with a public client whose redirect URI is a
// free loopback port, a user, and a credentials path.
type env struct {
	srv         *fieftest.Server
	client      *fief.Client
	user        fieftest.User
	addr        string // the callback server's address
	redirectURI string
	path        string // credentials file
}

func newEnv(t *testing.T, opts ...fieftest.Option) *env {
	t.Helper()
	addr := freeAddr(t)
	e := &env{addr: addr, redirectURI: "http://" + addr + "/callback"}
	e.srv = fieftest.NewTB(t, append([]fieftest.Option{
		fieftest.WithSigningKey(signingKey()),
		fieftest.WithClient(fieftest.Client{ID: clientID, RedirectURIs: []string{e.redirectURI}}),
	}, opts...)...)
	e.user = e.srv.AddUser(fieftest.User{Email: email, Password: password, EmailVerified: true})
	var err error
	if e.client, err = fief.New(e.srv.URL, clientID, ""); err != nil {
		t.Fatal(err)
	}
	e.path = filepath.Join(t.TempDir(), "credentials.json")
	return e
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// auth returns a Session on e's credentials path that listens on e.addr and
// prints nothing.
func (e *env) auth(t *testing.T, opts ...fiefcli.Option) *fiefcli.Session {
	t.Helper()
	opts = append([]fiefcli.Option{fiefcli.WithListenAddr(e.addr), fiefcli.WithOutput(io.Discard)}, opts...)
	a, err := fiefcli.New(e.client, e.path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// login gets tokens for the user without a browser: a code issued by the
// server, exchanged with PKCE like Authorize does.
func (e *env) login(t *testing.T) (*fief.Tokens, fief.UserInfo) {
	t.Helper()
	verifier := fief.GenerateCodeVerifier()
	challenge := oauth2.S256ChallengeFromVerifier(verifier)
	code := e.srv.IssueCode(fieftest.CodeRequest{
		UserID:              e.user.ID,
		ClientID:            clientID,
		RedirectURI:         e.redirectURI,
		Scopes:              []string{"openid", "offline_access"},
		CodeChallenge:       challenge,
		CodeChallengeMethod: "S256",
	})
	tokens, user, err := e.client.AuthCallback(context.Background(), code, e.redirectURI, verifier)
	if err != nil {
		t.Fatal(err)
	}
	return tokens, user
}

// expiredAccessToken mints an access token of the user that expired an hour
// ago.
func (e *env) expiredAccessToken() string {
	return e.srv.AccessToken(e.user.ID, fieftest.ForClient(clientID),
		fieftest.Scopes("openid", "offline_access"), fieftest.ExpiresIn(-time.Hour))
}

// savedFile is the credentials file as JSON.
type savedFile struct {
	UserInfo map[string]any `json:"userinfo"`
	Tokens   *fief.Tokens   `json:"tokens"`
}

// writeFile writes a credentials file by hand.
func writeFile(t *testing.T, path string, perm os.FileMode, user fief.UserInfo, tokens *fief.Tokens) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"userinfo": user, "tokens": tokens})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // beyond the umask
		t.Fatal(err)
	}
}

// readFile reads and decodes the credentials file.
func readFile(t *testing.T, path string) savedFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f savedFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("credentials file is not JSON: %v\n%s", err, b)
	}
	return f
}

// checkPerm checks the permissions of path (not on Windows).
func checkPerm(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

// browser is the scripted stand-in for the user's browser: WithBrowser's
// function. It logs in on the test server's form, then delivers the
// redirect to the local callback server like a browser following it.
type browser struct {
	t   *testing.T
	srv *fieftest.Server
	// beforeCallback, if set, runs with the callback URL before it is
	// delivered; it may tamper with it or send other requests first.
	// Returning false skips the delivery.
	beforeCallback func(callback *url.URL) bool

	authURL string // what open received
	status  int    // the callback server's answer
	body    string
}

func (b *browser) open(authURL string) error {
	b.authURL = authURL
	callback, err := b.srv.Authorize(authURL, email, password)
	if err != nil {
		b.t.Errorf("login: %v", err)
		return err
	}
	if b.beforeCallback != nil && !b.beforeCallback(callback) {
		return nil
	}
	b.status, b.body = get(b.t, callback.String(), "")
	return nil
}

// get sends a GET request like a browser would, with an optional Host
// override, on a connection of its own, and returns the status and body.
func get(t *testing.T, u, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	hc := &http.Client{
		Transport:     &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", u, err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// withQuery returns the callback URL with its query replaced by q.
func withQuery(callback *url.URL, q url.Values) string {
	u := *callback
	u.RawQuery = q.Encode()
	return u.String()
}

// stateOf returns the state parameter of an authorization URL.
func stateOf(t *testing.T, authURL string) string {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("state")
}

// checkAddrFree checks that the callback server released its address.
func checkAddrFree(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("the callback address is still in use: %v", err)
		return
	}
	ln.Close()
}

// waitGoroutines waits until no more than n goroutines run.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, buf)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
