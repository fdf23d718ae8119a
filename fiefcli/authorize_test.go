package fiefcli_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefcli"
	"github.com/fief-go/fief/fieftest"
)

func TestAuthorize(t *testing.T) {
	e := newEnv(t)
	b := &browser{t: t, srv: e.srv}
	var out bytes.Buffer
	a := e.auth(t, fiefcli.WithBrowser(b.open), fiefcli.WithOutput(&out),
		fiefcli.WithScopes("castles:read", "openid"), fiefcli.WithLang("fr"))

	tokens, user, err := a.Authorize(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	// The authorization request: PKCE S256, a state, the scopes in a fixed
	// order, the redirect URI on the loopback address.
	u, _ := url.Parse(b.authURL)
	q := u.Query()
	for k, want := range map[string]string{
		"response_type":         "code",
		"client_id":             clientID,
		"redirect_uri":          e.redirectURI,
		"scope":                 "openid offline_access castles:read",
		"code_challenge_method": "S256",
		"lang":                  "fr",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("auth URL %s = %q, want %q", k, got, want)
		}
	}
	if len(q.Get("state")) < 43 || len(q.Get("code_challenge")) != 43 {
		t.Errorf("auth URL state %q, code_challenge %q: want 256-bit state and an S256 challenge", q.Get("state"), q.Get("code_challenge"))
	}
	if !strings.Contains(out.String(), b.authURL) {
		t.Errorf("the URL is not printed; output:\n%s", out.String())
	}

	// The browser's page and what Authorize returns.
	if b.status != http.StatusOK || !strings.Contains(b.body, "You are logged in") {
		t.Errorf("callback answer %d %q", b.status, b.body)
	}
	if user.Email() != email || user.Sub() != e.user.ID {
		t.Errorf("user info %v", user)
	}
	if tokens.AccessToken == "" || tokens.RefreshToken == "" || tokens.IDToken == "" {
		t.Errorf("tokens %+v", tokens)
	}
	info, err := e.client.ValidateAccessToken(context.Background(), tokens.AccessToken)
	if err != nil || info.ACR() != fief.ACRLevelOne || !info.HasScope("castles:read") {
		t.Errorf("access token: %+v, %v", info, err)
	}

	// The credentials file: 0600, the reference format.
	checkPerm(t, e.path, 0o600)
	f := readFile(t, e.path)
	if f.Tokens == nil || f.Tokens.AccessToken != tokens.AccessToken || f.Tokens.RefreshToken != tokens.RefreshToken ||
		f.Tokens.TokenType != "bearer" || f.Tokens.ExpiresIn != 86400 {
		t.Errorf("saved tokens %+v", f.Tokens)
	}
	if f.UserInfo["email"] != email || f.UserInfo["sub"] != e.user.ID {
		t.Errorf("saved user info %v", f.UserInfo)
	}
	entries, _ := os.ReadDir(strings.TrimSuffix(e.path, "credentials.json"))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}

	// The saved credentials are usable at once, and by a new Session.
	if _, err := a.AccessTokenInfo(context.Background(), false); err != nil {
		t.Error(err)
	}
	again := e.auth(t)
	if saved, err := again.UserInfo(context.Background(), false); err != nil || saved.Email() != email {
		t.Errorf("reloaded user %v, %v", saved, err)
	}
	checkAddrFree(t, e.addr)
}

// A second login replaces the credentials and leaves no goroutine behind.
func TestAuthorizeTwiceNoLeak(t *testing.T) {
	e := newEnv(t)
	b := &browser{t: t, srv: e.srv}
	a := e.auth(t, fiefcli.WithBrowser(b.open))
	first, _, err := a.Authorize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	baseline := runtime.NumGoroutine()

	second, _, err := a.Authorize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if second.RefreshToken == first.RefreshToken {
		t.Error("the second login did not get new tokens")
	}
	if got := readFile(t, e.path).Tokens.RefreshToken; got != second.RefreshToken {
		t.Error("the second login's tokens are not saved")
	}
	waitGoroutines(t, baseline)
	checkAddrFree(t, e.addr)
}

// A wrong or missing state is refused with a fixed page and ignored: the
// real callback still completes the login. Other paths and methods, and a
// foreign Host, are refused too.
func TestAuthorizeRejectsForeignRequests(t *testing.T) {
	e := newEnv(t)
	const payload = `<script>alert(1)</script>`
	b := &browser{t: t, srv: e.srv}
	b.beforeCallback = func(callback *url.URL) bool {
		code := callback.Query().Get("code")
		for _, tc := range []struct {
			name, url, host string
			status          int
		}{
			{"wrong state", withQuery(callback, url.Values{"code": {code}, "state": {"forged" + payload}}), "", 400},
			{"state of another length", withQuery(callback, url.Values{"code": {code}, "state": {"x"}}), "", 400},
			{"no state", withQuery(callback, url.Values{"code": {code}}), "", 400},
			{"error without state", withQuery(callback, url.Values{"error": {"access_denied"}}), "", 400},
			{"other path", strings.Replace(callback.String(), "/callback", "/other", 1), "", 404},
			{"foreign host", callback.String(), "evil.example:" + callback.Port(), http.StatusMisdirectedRequest},
		} {
			status, body := get(t, tc.url, tc.host)
			if status != tc.status {
				t.Errorf("%s: status %d, want %d", tc.name, status, tc.status)
			}
			if strings.Contains(body, "<script>") || strings.Contains(body, "forged") {
				t.Errorf("%s: the page reflects the request: %s", tc.name, body)
			}
		}
		req, _ := http.NewRequest(http.MethodPost, callback.String(), nil)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST callback: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
		return true
	}
	a := e.auth(t, fiefcli.WithBrowser(b.open))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := a.Authorize(ctx); err != nil {
		t.Fatal(err)
	}
	if b.status != http.StatusOK {
		t.Errorf("the real callback got %d", b.status)
	}
	if e.srv.Requests(fieftest.EndpointToken) != 1 {
		t.Errorf("%d token requests, want 1", e.srv.Requests(fieftest.EndpointToken))
	}
}

// Only the first callback with the right state is handled.
func TestAuthorizeCallbackReplay(t *testing.T) {
	e := newEnv(t)
	b := &browser{t: t, srv: e.srv}
	var replay string
	b.beforeCallback = func(callback *url.URL) bool {
		replay = callback.String()
		return true
	}
	// The replay happens while the server still runs: from the browser
	// func, after the first delivery.
	open := func(authURL string) error {
		if err := b.open(authURL); err != nil {
			return err
		}
		if status, _ := get(t, replay, ""); status != http.StatusConflict {
			t.Errorf("replayed callback: status %d, want 409", status)
		}
		return nil
	}
	a := e.auth(t, fiefcli.WithBrowser(open))
	if _, _, err := a.Authorize(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Requests(fieftest.EndpointToken); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

func TestAuthorizeFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []fiefcli.Option
		// deliver returns the query the browser sends instead of Fief's
		// (nil: Fief's).
		deliver func(state string, fiefQuery url.Values) url.Values
		setup   func(*env)
		check   func(*testing.T, error)
	}{{
		name: "Fief error",
		opts: []fiefcli.Option{fiefcli.WithExtraParams(map[string]string{"prompt": "none"})},
		check: func(t *testing.T, err error) {
			var ce *fiefcli.CallbackError
			if !errors.As(err, &ce) || ce.Code != "login_required" || ce.Description == "" {
				t.Errorf("err = %v, want a CallbackError login_required", err)
			}
			if !errors.Is(err, fiefcli.ErrAuthorizationCodeMissing) {
				t.Errorf("err = %v, want ErrAuthorizationCodeMissing", err)
			}
		},
	}, {
		name: "Fief error with odd values",
		deliver: func(state string, _ url.Values) url.Values {
			return url.Values{"state": {state}, "error": {strings.Repeat("x", 500)}, "error_description": {"\x1b[31mred"}}
		},
		check: func(t *testing.T, err error) {
			var ce *fiefcli.CallbackError
			if !errors.As(err, &ce) || len(ce.Code) != 200 || ce.Description != "\x1b[31mred" {
				t.Fatalf("err = %#v", err)
			}
			if msg := err.Error(); strings.Contains(msg, "\x1b") || !strings.Contains(msg, `\x1b[31mred`) {
				t.Errorf("Error() = %q: want the values quoted", msg)
			}
		},
	}, {
		name: "code missing",
		deliver: func(state string, _ url.Values) url.Values {
			return url.Values{"state": {state}}
		},
		check: func(t *testing.T, err error) {
			if !errors.Is(err, fiefcli.ErrAuthorizationCodeMissing) {
				t.Errorf("err = %v, want ErrAuthorizationCodeMissing", err)
			}
		},
	}, {
		name: "exchange refused",
		setup: func(e *env) {
			e.srv.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: 400, Body: `{"error":"invalid_grant"}`})
		},
		check: func(t *testing.T, err error) {
			var re *fief.RequestError
			if !errors.As(err, &re) || re.StatusCode != 400 {
				t.Errorf("err = %v, want a *fief.RequestError 400", err)
			}
		},
	}, {
		name: "wrong code",
		deliver: func(state string, q url.Values) url.Values {
			q.Set("code", "not-"+q.Get("code"))
			return q
		},
		check: func(t *testing.T, err error) {
			var re *fief.RequestError
			if !errors.As(err, &re) || re.StatusCode != 400 || !strings.Contains(re.Body, "invalid_grant") {
				t.Errorf("err = %v, want invalid_grant", err)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.setup != nil {
				tc.setup(e)
			}
			b := &browser{t: t, srv: e.srv}
			if tc.deliver != nil {
				b.beforeCallback = func(callback *url.URL) bool {
					b.status, b.body = get(t, withQuery(callback, tc.deliver(stateOf(t, b.authURL), callback.Query())), "")
					return false
				}
			}
			a := e.auth(t, append(tc.opts, fiefcli.WithBrowser(b.open))...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tokens, user, err := a.Authorize(ctx)
			if err == nil || tokens != nil || !user.IsZero() {
				t.Fatalf("Authorize = %v, %v, %v; want an error", tokens, user, err)
			}
			tc.check(t, err)
			if errors.Is(err, context.DeadlineExceeded) {
				t.Error("Authorize waited for the timeout")
			}
			if b.status != http.StatusBadRequest || !strings.Contains(b.body, "The login failed") ||
				strings.Contains(b.body, "login_required") || strings.Contains(b.body, "invalid_grant") {
				t.Errorf("callback answer %d %q: want the fixed failure page", b.status, b.body)
			}
			if _, err := os.Stat(e.path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("credentials saved after a failed login: %v", err)
			}
			if _, err := a.AccessTokenInfo(ctx, true); !errors.Is(err, fiefcli.ErrNotAuthenticated) {
				t.Errorf("AccessTokenInfo after a failed login: %v", err)
			}
			checkAddrFree(t, e.addr)
		})
	}
}

// When nobody comes back, the context ends the wait, the server stops, the
// address is free again and no goroutine is left.
func TestAuthorizeContextTimeout(t *testing.T) {
	e := newEnv(t)
	var opened string
	a := e.auth(t, fiefcli.WithBrowser(func(u string) error { opened = u; return nil }))
	// Warm the client up (discovery), so that its connections are counted
	// in the baseline.
	if _, err := e.client.AuthURL(context.Background(), e.redirectURI, fief.AuthURLOptions{}); err != nil {
		t.Fatal(err)
	}
	baseline := runtime.NumGoroutine()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := a.Authorize(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second { // hang guard
		t.Errorf("Authorize returned after %v", d)
	}
	if opened == "" {
		t.Error("the browser was not opened")
	}
	checkAddrFree(t, e.addr)
	waitGoroutines(t, baseline)
}

// An already cancelled context fails before anything is opened, and a busy
// address is reported.
func TestAuthorizeSetupErrors(t *testing.T) {
	e := newEnv(t)
	opened := false
	a := e.auth(t, fiefcli.WithBrowser(func(string) error { opened = true; return nil }))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := a.Authorize(ctx); err == nil || opened {
		t.Errorf("cancelled context: err = %v, browser opened = %v", err, opened)
	}
	checkAddrFree(t, e.addr)

	ln, err := net.Listen("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, _, err := a.Authorize(context.Background()); err == nil || !strings.Contains(err.Error(), "listening") {
		t.Errorf("busy address: err = %v", err)
	}
}

// The browser func's error is printed; the login can still complete (here
// the "user" opens the URL by hand).
func TestAuthorizeBrowserError(t *testing.T) {
	e := newEnv(t)
	b := &browser{t: t, srv: e.srv}
	var out bytes.Buffer
	userDone := make(chan struct{})
	a := e.auth(t, fiefcli.WithOutput(&out), fiefcli.WithBrowser(func(u string) error {
		go func() { // the user, by hand
			defer close(userDone)
			_ = b.open(u)
		}()
		return errors.New("no browser here")
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := a.Authorize(ctx)
	<-userDone
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "no browser here") {
		t.Errorf("output does not report the browser error:\n%s", out.String())
	}
}

// With WithBrowser(nil) the URL is only printed.
func TestAuthorizeNoBrowser(t *testing.T) {
	e := newEnv(t)
	r, w, _ := os.Pipe()
	defer r.Close()
	a := e.auth(t, fiefcli.WithBrowser(nil), fiefcli.WithOutput(w))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := a.Authorize(ctx)
		w.Close()
		done <- err
	}()
	// Read the printed URL like a user would, and log in with it.
	buf := make([]byte, 4096)
	var printed string
	for !strings.Contains(printed, "Waiting") {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatalf("reading the output: %v (so far %q)", err, printed)
		}
		printed += string(buf[:n])
	}
	var authURL string
	for _, f := range strings.Fields(printed) {
		if strings.HasPrefix(f, e.srv.URL) {
			authURL = f
		}
	}
	b := &browser{t: t, srv: e.srv}
	if err := b.open(authURL); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A custom redirect path is the one registered and served.
func TestAuthorizeRedirectPath(t *testing.T) {
	e := newEnv(t)
	redirectURI := "http://" + e.addr + "/auth/done"
	e.srv.AddClient(fieftest.Client{ID: clientID, RedirectURIs: []string{redirectURI}})
	b := &browser{t: t, srv: e.srv}
	b.beforeCallback = func(callback *url.URL) bool {
		if callback.Path != "/auth/done" {
			t.Errorf("callback %s", callback)
		}
		if status, _ := get(t, strings.Replace(callback.String(), "/auth/done", "/callback", 1), ""); status != http.StatusNotFound {
			t.Errorf("default path: status %d, want 404", status)
		}
		return true
	}
	a := e.auth(t, fiefcli.WithBrowser(b.open), fiefcli.WithRedirectPath("/auth/done"))
	if _, _, err := a.Authorize(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := stateOf(t, b.authURL); got == "" {
		t.Error("no state")
	}
	if u, _ := url.Parse(b.authURL); u.Query().Get("redirect_uri") != redirectURI {
		t.Errorf("redirect_uri %q", u.Query().Get("redirect_uri"))
	}
}
