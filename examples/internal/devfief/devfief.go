// Package devfief gives the examples a Fief to talk to: a real one when the
// environment names it, else an embedded fieftest server with a demo user, so
// that every example runs on a machine without Fief.
//
// A real Fief is used when FIEF_BASE_URL, FIEF_CLIENT_ID and
// FIEF_CLIENT_SECRET are set (FIEF_ENCRYPTION_KEY too if the client encrypts
// its ID tokens). This package is scaffolding for the examples; an
// application builds its *fief.Client with fief.New from its own
// configuration.
package devfief

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// The demo user of the embedded server.
const (
	DemoEmail    = "anne@bretagne.duchy"
	DemoPassword = "herminetruc"
)

// DemoPermissions returns the permissions of the demo user.
func DemoPermissions() []string { return []string{"castles:read", "castles:create"} }

// Fief is the Fief tenant an example talks to. Close it when done.
type Fief struct {
	// Client is a client of the tenant.
	Client *fief.Client
	// BaseURL is the tenant's base URL.
	BaseURL string
	// Server is the embedded test server, nil when a real Fief is used.
	// Examples use it to mint tokens and to log in without a browser.
	Server *fieftest.Server
	// User is the demo user of the embedded server (zero with a real Fief).
	User fieftest.User
}

// Setup returns the real Fief described by the environment or, when
// FIEF_BASE_URL, FIEF_CLIENT_ID and FIEF_CLIENT_SECRET are all unset, an
// embedded one (see Embedded). Setting only some of them is an error rather
// than a silent fallback to the embedded server.
func Setup(embeddedAddr string) (*Fief, error) {
	vars := []string{"FIEF_BASE_URL", "FIEF_CLIENT_ID", "FIEF_CLIENT_SECRET"}
	var set, unset []string
	for _, v := range vars {
		if os.Getenv(v) != "" {
			set = append(set, v)
		} else {
			unset = append(unset, v)
		}
	}
	switch {
	case len(set) == 0:
		return Embedded(embeddedAddr)
	case len(unset) > 0:
		return nil, fmt.Errorf("devfief: %s set but not %s: set all three to use a real Fief, or none for the embedded one",
			strings.Join(set, ", "), strings.Join(unset, ", "))
	}
	var opts []fief.Option
	if key := os.Getenv("FIEF_ENCRYPTION_KEY"); key != "" {
		opts = append(opts, fief.WithEncryptionKey(key))
	}
	baseURL := strings.TrimRight(os.Getenv("FIEF_BASE_URL"), "/")
	client, err := fief.New(baseURL, os.Getenv("FIEF_CLIENT_ID"), os.Getenv("FIEF_CLIENT_SECRET"), opts...)
	if err != nil {
		return nil, err
	}
	return &Fief{Client: client, BaseURL: baseURL}, nil
}

// Embedded starts a fieftest server on addr (a random port of 127.0.0.1 when
// addr is empty) with the demo user, and returns it with a client of its
// default client, which accepts any redirect URI.
func Embedded(addr string) (*Fief, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	srv, err := startServer(addr)
	if err != nil {
		return nil, err
	}
	user := srv.AddUser(fieftest.User{
		Email:         DemoEmail,
		Password:      DemoPassword,
		EmailVerified: true,
		Permissions:   DemoPermissions(),
	})
	client, err := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	if err != nil {
		srv.Close()
		return nil, err
	}
	return &Fief{Client: client, BaseURL: srv.URL, Server: srv, User: user}, nil
}

// startServer starts a fieftest server, turning its panic on a busy
// address into an error.
func startServer(addr string) (srv *fieftest.Server, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("devfief: cannot start the embedded Fief on %s: %v", addr, v)
		}
	}()
	return fieftest.New(fieftest.WithAddr(addr)), nil
}

// Close stops the embedded server, if any.
func (f *Fief) Close() {
	if f.Server != nil {
		f.Server.Close()
	}
}

// Describe writes which Fief is used and who can log in.
func (f *Fief) Describe(w io.Writer) {
	if f.Server == nil {
		fmt.Fprintf(w, "Fief:      %s (from FIEF_BASE_URL)\n", f.BaseURL)
		fmt.Fprintf(w, "Log in as: a user of your tenant\n")
		return
	}
	fmt.Fprintf(w, "Fief:      %s (embedded test server; set FIEF_BASE_URL, FIEF_CLIENT_ID and FIEF_CLIENT_SECRET to use yours)\n", f.BaseURL)
	fmt.Fprintf(w, "Log in as: %s / %s (permissions: %s)\n", f.User.Email, DemoPassword, strings.Join(f.User.Permissions, ", "))
}

// DescribeWebApp writes, after Describe, what to do to log in to the web
// application at appURL: with a real Fief, allow its redirect URI
// <appURL>/auth-callback on the client; then open its protected page.
func (f *Fief) DescribeWebApp(w io.Writer, appURL string) {
	if f.Server == nil {
		fmt.Fprintf(w, "Allow the redirect URI %s/auth-callback on your Fief client.\n", appURL)
	}
	fmt.Fprintf(w, "\nOpen %s/protected in your browser. Press Ctrl-C to stop.\n", appURL)
}

// CookieKey decodes the hex key that seals the cookies of logins in
// progress (APP_COOKIE_KEY, for fief.LoginFlowConfig.CookieKey): at least
// 32 bytes, the same on every instance of an application. "" gives nil,
// which makes LoginFlow use a random key for this process; with
// RefreshSessions, NewLoginFlow refuses nil, and the command must make a
// key itself.
func CookieKey(hexKey string) ([]byte, error) {
	if hexKey == "" {
		return nil, nil
	}
	key, err := hex.DecodeString(hexKey)
	if err != nil || len(key) < 32 {
		return nil, errors.New("APP_COOKIE_KEY must be at least 32 bytes in hex (64 hex digits), e.g. from: openssl rand -hex 32")
	}
	return key, nil
}
