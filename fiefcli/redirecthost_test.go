package fiefcli_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fief-go/fief/fiefcli"
	"github.com/fief-go/fief/fieftest"
)

// deliverAs sends the callback to the callback server at listenAddr (its
// IP literal address) with the given Host header, like a browser that
// resolved the callback's host name (localhost) to the loopback address,
// and returns the status and body.
func deliverAs(t *testing.T, callback *url.URL, listenAddr, host string) (int, string) {
	t.Helper()
	u := *callback
	u.Host = listenAddr
	return get(t, u.String(), host)
}

// otherPort returns a port number other than port.
func otherPort(t *testing.T, port string) string {
	t.Helper()
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	if p == 65535 {
		return strconv.Itoa(p - 1)
	}
	return strconv.Itoa(p + 1)
}

// In both modes the callback server answers Host: 127.0.0.1:PORT and
// Host: localhost:PORT, the port being its own, and refuses any other Host
// with 421 (DNS rebinding). The real callback, delivered with the host that
// is not the redirect URI's, completes the login.
func TestAuthorizeCallbackHosts(t *testing.T) {
	for _, tc := range []struct {
		name         string
		opts         []fiefcli.Option
		redirectHost string // of the registered redirect URI
		deliverHost  string // of the real callback's Host header
	}{
		{"default", nil, "127.0.0.1", "localhost"},
		{"localhost redirect", []fiefcli.Option{fiefcli.WithRedirectHost("localhost")}, "localhost", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, port, _ := net.SplitHostPort(e.addr)
			redirectURI := "http://" + net.JoinHostPort(tc.redirectHost, port) + "/callback"
			e.srv.AddClient(fieftest.Client{ID: clientID, RedirectURIs: []string{redirectURI}})
			b := &browser{t: t, srv: e.srv}
			b.beforeCallback = func(callback *url.URL) bool {
				forged := withQuery(callback, url.Values{"code": {callback.Query().Get("code")}, "state": {"forged"}})
				forgedURL, _ := url.Parse(forged)
				// Accepted hosts: the Host check passes, the state does not.
				for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port} {
					if status, _ := deliverAs(t, forgedURL, e.addr, host); status != http.StatusBadRequest {
						t.Errorf("Host %q, wrong state: status %d, want 400 (Host accepted, state refused)", host, status)
					}
				}
				for _, host := range []string{
					"evil.example:" + port,
					"localhost.evil.example:" + port,
					"localhost.:" + port,
					"localhost:" + otherPort(t, port),
					"127.0.0.1:" + otherPort(t, port),
					"[::1]:" + port,
					"localhost",
					"127.0.0.1",
				} {
					if status, _ := deliverAs(t, callback, e.addr, host); status != http.StatusMisdirectedRequest {
						t.Errorf("Host %q: status %d, want 421", host, status)
					}
				}
				b.status, b.body = deliverAs(t, callback, e.addr, net.JoinHostPort(tc.deliverHost, port))
				if b.status != http.StatusOK {
					t.Errorf("real callback with Host %s:%s: status %d, want 200", tc.deliverHost, port, b.status)
					b.status, b.body = get(t, callback.String(), "") // end the login
				}
				return false
			}
			a := e.auth(t, append(tc.opts, fiefcli.WithBrowser(b.open))...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, _, err := a.Authorize(ctx); err != nil {
				t.Fatal(err)
			}
			if u, _ := url.Parse(b.authURL); u.Query().Get("redirect_uri") != redirectURI {
				t.Errorf("redirect_uri %q, want %q", u.Query().Get("redirect_uri"), redirectURI)
			}
			if n := e.srv.Requests(fieftest.EndpointToken); n != 1 {
				t.Errorf("%d token requests, want 1", n)
			}
		})
	}
}

// Regression test for security review point 11: a Fief client registered
// for the Python CLI helper allows only http://localhost:PORT/callback.
// With WithRedirectHost("localhost") the whole login goes through: the
// authorization request and the code exchange both carry that redirect
// URI (fieftest, like Fief, compares them exactly), and the browser's
// request for localhost:PORT reaches the server listening on 127.0.0.1.
func TestAuthorizeLocalhostRedirect(t *testing.T) {
	e := newEnv(t)
	_, port, _ := net.SplitHostPort(e.addr)
	redirectURI := "http://localhost:" + port + "/callback"
	// Replaces newEnv's client: only the localhost redirect URI is allowed.
	e.srv.AddClient(fieftest.Client{ID: clientID, RedirectURIs: []string{redirectURI}})
	b := &browser{t: t, srv: e.srv}
	b.beforeCallback = func(callback *url.URL) bool {
		if callback.Host != "localhost:"+port || callback.Path != "/callback" {
			t.Errorf("Fief redirected to %s, want %s", callback, redirectURI)
		}
		// The browser resolves localhost to the loopback address and sends
		// Host: localhost:PORT.
		b.status, b.body = deliverAs(t, callback, e.addr, callback.Host)
		return false
	}
	var out bytes.Buffer
	a := e.auth(t, fiefcli.WithBrowser(b.open), fiefcli.WithOutput(&out), fiefcli.WithRedirectHost("localhost"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tokens, user, err := a.Authorize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := url.Parse(b.authURL); u.Query().Get("redirect_uri") != redirectURI {
		t.Errorf("auth URL redirect_uri %q, want %q", u.Query().Get("redirect_uri"), redirectURI)
	}
	if b.status != http.StatusOK || !strings.Contains(b.body, "You are logged in") {
		t.Errorf("callback answer %d %q", b.status, b.body)
	}
	if user.Email() != email || tokens.AccessToken == "" || tokens.RefreshToken == "" {
		t.Errorf("user %v, tokens %+v", user, tokens)
	}
	if f := readFile(t, e.path); f.Tokens == nil || f.Tokens.AccessToken != tokens.AccessToken {
		t.Errorf("saved tokens %+v", f.Tokens)
	}
	if !strings.Contains(out.String(), "Waiting for the login on "+redirectURI) {
		t.Errorf("output does not name the redirect URI:\n%s", out.String())
	}
	if n := e.srv.Requests(fieftest.EndpointToken); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
	checkAddrFree(t, e.addr)
}

// With port 0, the redirect URI carries the port actually listened on, on
// 127.0.0.1 or [::1].
func TestAuthorizeLocalhostRedirectFreePort(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(listen, func(t *testing.T) {
			if ln, err := net.Listen("tcp", listen); err != nil {
				t.Skipf("no %s: %v", listen, err)
			} else {
				ln.Close()
			}
			e := newEnv(t)
			e.srv.AddClient(fieftest.Client{ID: clientID}) // any redirect URI
			ip, _, _ := net.SplitHostPort(listen)
			var callbackHost string
			b := &browser{t: t, srv: e.srv}
			b.beforeCallback = func(callback *url.URL) bool {
				callbackHost = callback.Host
				port := callback.Port()
				if callback.Hostname() != "localhost" || port == "" || port == "0" {
					t.Errorf("callback %s: want localhost and the real port", callback)
				}
				listenAddr := net.JoinHostPort(ip, port)
				// The IP literal is accepted too, and a foreign Host is not.
				if status, _ := deliverAs(t, callback, listenAddr, "evil.example:"+port); status != http.StatusMisdirectedRequest {
					t.Errorf("foreign Host: status %d, want 421", status)
				}
				b.status, b.body = deliverAs(t, callback, listenAddr, callback.Host)
				return false
			}
			a := e.auth(t, fiefcli.WithListenAddr(listen), fiefcli.WithRedirectHost("localhost"), fiefcli.WithBrowser(b.open))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, _, err := a.Authorize(ctx); err != nil {
				t.Fatal(err)
			}
			want := "http://" + callbackHost + "/callback"
			if u, _ := url.Parse(b.authURL); u.Query().Get("redirect_uri") != want {
				t.Errorf("auth URL redirect_uri %q, want %q", u.Query().Get("redirect_uri"), want)
			}
			if b.status != http.StatusOK {
				t.Errorf("callback answer %d %q", b.status, b.body)
			}
		})
	}
}
