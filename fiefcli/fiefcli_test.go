package fiefcli_test

import (
	"bytes"
	"context"
	"errors"
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

// An expired access token is refreshed with the saved refresh token and the
// rotated tokens are saved; the next call uses them without refreshing.
func TestAccessTokenInfoRefreshes(t *testing.T) {
	e := newEnv(t)
	tokens, user := e.login(t)
	oldRefresh := tokens.RefreshToken
	tokens.AccessToken = e.expiredAccessToken()
	writeFile(t, e.path, 0o600, user, tokens)
	e.srv.ResetRequests()
	a := e.auth(t)
	ctx := context.Background()

	info, err := a.AccessTokenInfo(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if info.UserID() != e.user.ID || info.AccessToken() == tokens.AccessToken {
		t.Errorf("info %+v: want a new token of the user", info)
	}
	if n := e.srv.Requests(fieftest.EndpointToken); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
	saved := readFile(t, e.path)
	if saved.Tokens.AccessToken != info.AccessToken() || saved.Tokens.RefreshToken == "" || saved.Tokens.RefreshToken == oldRefresh {
		t.Errorf("saved tokens %+v: want the refreshed ones", saved.Tokens)
	}
	if saved.UserInfo["email"] != email {
		t.Errorf("saved user info %v", saved.UserInfo)
	}
	checkPerm(t, e.path, 0o600)

	// Rotation: the old refresh token is dead at Fief.
	var re *fief.RequestError
	if _, _, err := e.client.AuthRefreshToken(ctx, oldRefresh); !errors.As(err, &re) || re.StatusCode != 400 {
		t.Errorf("old refresh token: %v, want refused", err)
	}
	e.srv.ResetRequests()

	again, err := a.AccessTokenInfo(ctx, true)
	if err != nil || again.AccessToken() != info.AccessToken() {
		t.Errorf("second call: %v, %v: want the same token", again, err)
	}
	if n := e.srv.Requests(fieftest.EndpointToken); n != 0 {
		t.Errorf("second call: %d token requests, want 0", n)
	}
	// The saved refresh token works (it is the live one).
	if _, _, err := e.client.AuthRefreshToken(ctx, saved.Tokens.RefreshToken); err != nil {
		t.Errorf("saved refresh token: %v", err)
	}
}

// A token about to expire is refreshed too when refreshing is allowed.
func TestAccessTokenInfoRefreshesBeforeExpiry(t *testing.T) {
	e := newEnv(t)
	tokens, user := e.login(t)
	tokens.AccessToken = e.srv.AccessToken(e.user.ID, fieftest.ForClient(clientID), fieftest.ExpiresIn(20e9))
	writeFile(t, e.path, 0o600, user, tokens)
	a := e.auth(t)
	info, err := a.AccessTokenInfo(context.Background(), false)
	if err != nil || info.AccessToken() != tokens.AccessToken {
		t.Fatalf("without refresh: %v, %v; want the saved token", info, err)
	}
	info, err = a.AccessTokenInfo(context.Background(), true)
	if err != nil || info.AccessToken() == tokens.AccessToken {
		t.Fatalf("with refresh: %v, %v; want a new token", info, err)
	}
}

func TestAccessTokenInfoErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("expired without refresh", func(t *testing.T) {
		e := newEnv(t)
		tokens, user := e.login(t)
		tokens.AccessToken = e.expiredAccessToken()
		writeFile(t, e.path, 0o600, user, tokens)
		e.srv.ResetRequests()
		_, err := e.auth(t).AccessTokenInfo(ctx, false)
		if !errors.Is(err, fief.ErrAccessTokenExpired) {
			t.Errorf("err = %v, want ErrAccessTokenExpired", err)
		}
		if n := e.srv.Requests(fieftest.EndpointToken); n != 0 {
			t.Errorf("%d token requests, want 0", n)
		}
	})
	t.Run("no refresh token", func(t *testing.T) {
		e := newEnv(t)
		tokens, user := e.login(t)
		tokens.AccessToken, tokens.RefreshToken = e.expiredAccessToken(), ""
		writeFile(t, e.path, 0o600, user, tokens)
		if _, err := e.auth(t).AccessTokenInfo(ctx, true); !errors.Is(err, fiefcli.ErrRefreshTokenMissing) {
			t.Errorf("err = %v, want ErrRefreshTokenMissing", err)
		}
	})
	t.Run("refresh token already used", func(t *testing.T) {
		e := newEnv(t)
		tokens, user := e.login(t)
		if _, _, err := e.client.AuthRefreshToken(ctx, tokens.RefreshToken); err != nil { // rotated away
			t.Fatal(err)
		}
		tokens.AccessToken = e.expiredAccessToken()
		writeFile(t, e.path, 0o600, user, tokens)
		before, _ := os.ReadFile(e.path)
		a := e.auth(t)
		_, err := a.AccessTokenInfo(ctx, true)
		var re *fief.RequestError
		if !errors.As(err, &re) || re.StatusCode != 400 || re.Endpoint != "token" {
			t.Errorf("err = %v, want a *fief.RequestError from the token endpoint", err)
		}
		if after, _ := os.ReadFile(e.path); !bytes.Equal(before, after) {
			t.Error("the credentials file changed after a failed refresh")
		}
	})
	t.Run("invalid token", func(t *testing.T) {
		e := newEnv(t)
		tokens, user := e.login(t)
		tokens.AccessToken = "not.a.token"
		writeFile(t, e.path, 0o600, user, tokens)
		e.srv.ResetRequests()
		if _, err := e.auth(t).AccessTokenInfo(ctx, true); !errors.Is(err, fief.ErrAccessTokenInvalid) {
			t.Errorf("err = %v, want ErrAccessTokenInvalid", err)
		}
		if n := e.srv.Requests(fieftest.EndpointToken); n != 0 {
			t.Errorf("an invalid token was refreshed (%d token requests)", n)
		}
	})
}

// Concurrent callers share one refresh: a refresh token is never used twice.
func TestAccessTokenInfoConcurrentRefresh(t *testing.T) {
	e := newEnv(t)
	tokens, user := e.login(t)
	tokens.AccessToken = e.expiredAccessToken()
	writeFile(t, e.path, 0o600, user, tokens)
	e.srv.ResetRequests()
	a := e.auth(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := a.AccessTokenInfo(context.Background(), true); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Go(func() {
		if _, err := a.UserInfo(context.Background(), false); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	if n := e.srv.Requests(fieftest.EndpointToken); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

// Two programs share the file: the second one picks up the tokens the
// first one refreshed instead of using its dead refresh token.
func TestAccessTokenInfoSharedFile(t *testing.T) {
	e := newEnv(t)
	tokens, user := e.login(t)
	tokens.AccessToken = e.expiredAccessToken()
	writeFile(t, e.path, 0o600, user, tokens)
	first, second := e.auth(t), e.auth(t)
	e.srv.ResetRequests()
	ctx := context.Background()

	info1, err := first.AccessTokenInfo(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	info2, err := second.AccessTokenInfo(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if info2.AccessToken() != info1.AccessToken() {
		t.Error("the second Session did not pick up the refreshed token")
	}
	if n := e.srv.Requests(fieftest.EndpointToken); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}

	// Logged out by another program: the expired token is not refreshed.
	tokens.AccessToken = e.expiredAccessToken()
	writeFile(t, e.path, 0o600, user, tokens)
	third := e.auth(t)
	os.Remove(e.path)
	if _, err := third.AccessTokenInfo(ctx, true); !errors.Is(err, fiefcli.ErrNotAuthenticated) {
		t.Errorf("refresh after another program's logout: %v, want ErrNotAuthenticated", err)
	}
	if _, err := os.Stat(e.path); !errors.Is(err, os.ErrNotExist) {
		t.Error("the credentials came back after a logout")
	}
}

func TestSessionUserInfo(t *testing.T) {
	e := newEnv(t)
	tokens, _ := e.login(t)
	stale, _ := fief.ParseUserInfo([]byte(`{"sub":"` + e.user.ID + `","email":"old@bretagne.duchy","fields":{"a":"b"}}`))
	writeFile(t, e.path, 0o644, stale, tokens)
	a := e.auth(t)
	ctx := context.Background()
	e.srv.ResetRequests()

	user, err := a.UserInfo(ctx, false)
	if err != nil || user.Email() != "old@bretagne.duchy" {
		t.Fatalf("saved user %v, %v", user, err)
	}
	user.Fields()["a"] = "changed by the caller"
	if again, _ := a.UserInfo(ctx, false); again.Fields()["a"] != "b" {
		t.Error("the returned user info aliases the Session's state")
	}
	if n := e.srv.Requests(fieftest.EndpointUserinfo); n != 0 {
		t.Errorf("%d userinfo requests without refresh, want 0", n)
	}

	user, err = a.UserInfo(ctx, true)
	if err != nil || user.Email() != email || !user.EmailVerified() {
		t.Fatalf("fresh user %v, %v", user, err)
	}
	if n := e.srv.Requests(fieftest.EndpointUserinfo); n != 1 {
		t.Errorf("%d userinfo requests, want 1", n)
	}
	saved := readFile(t, e.path)
	if saved.UserInfo["email"] != email || saved.Tokens.AccessToken != tokens.AccessToken {
		t.Errorf("saved %+v: want the fresh user info and the same tokens", saved)
	}
	checkPerm(t, e.path, 0o600)
}

// UserInfo(refresh) refreshes an expired access token first.
func TestUserInfoRefreshesToken(t *testing.T) {
	e := newEnv(t)
	tokens, user := e.login(t)
	tokens.AccessToken = e.expiredAccessToken()
	writeFile(t, e.path, 0o600, user, tokens)
	e.srv.ResetRequests()
	got, err := e.auth(t).UserInfo(context.Background(), true)
	if err != nil || got.Sub() != e.user.ID {
		t.Fatalf("%v, %v", got, err)
	}
	if e.srv.Requests(fieftest.EndpointToken) != 1 || e.srv.Requests(fieftest.EndpointUserinfo) != 1 {
		t.Errorf("requests: token %d, userinfo %d; want 1 and 1",
			e.srv.Requests(fieftest.EndpointToken), e.srv.Requests(fieftest.EndpointUserinfo))
	}
	if readFile(t, e.path).Tokens.AccessToken == tokens.AccessToken {
		t.Error("the refreshed tokens are not saved")
	}
}

func TestNotAuthenticated(t *testing.T) {
	for name, content := range map[string]string{
		"no file":         "",
		"empty":           "-",
		"not JSON":        "{not json",
		"null":            "null",
		"no tokens":       `{"userinfo": {"sub": "x"}}`,
		"no access token": `{"userinfo": {"sub": "x"}, "tokens": {"refresh_token": "r"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			switch content {
			case "":
			case "-":
				os.WriteFile(e.path, nil, 0o600)
			default:
				os.WriteFile(e.path, []byte(content), 0o600)
			}
			a := e.auth(t)
			ctx := context.Background()
			for _, refresh := range []bool{false, true} {
				if _, err := a.AccessTokenInfo(ctx, refresh); !errors.Is(err, fiefcli.ErrNotAuthenticated) {
					t.Errorf("AccessTokenInfo(%v): %v", refresh, err)
				}
				if _, err := a.UserInfo(ctx, refresh); !errors.Is(err, fiefcli.ErrNotAuthenticated) {
					t.Errorf("UserInfo(%v): %v", refresh, err)
				}
			}
			if n := e.srv.Requests(fieftest.EndpointToken) + e.srv.Requests(fieftest.EndpointUserinfo); n != 0 {
				t.Errorf("%d requests to Fief", n)
			}
		})
	}
}

// A file other users can read (the reference client writes 0644) is
// tightened when it is loaded, and replaced by a 0600 file on save.
func TestPermissionsTightened(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	e := newEnv(t)
	tokens, user := e.login(t)
	writeFile(t, e.path, 0o644, user, tokens)
	a := e.auth(t)
	checkPerm(t, e.path, 0o600)
	if _, err := a.UserInfo(context.Background(), false); err != nil {
		t.Errorf("the loaded credentials are not used: %v", err)
	}

	// A 0644 file replaced by a login.
	os.Chmod(e.path, 0o666)
	b := &browser{t: t, srv: e.srv}
	if _, _, err := e.auth(t, fiefcli.WithBrowser(b.open)).Authorize(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkPerm(t, e.path, 0o600)
}

// A missing directory is created 0700.
func TestDirectoryCreated(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "config", "fief")
	e.path = filepath.Join(dir, "credentials.json")
	b := &browser{t: t, srv: e.srv}
	if _, _, err := e.auth(t, fiefcli.WithBrowser(b.open)).Authorize(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkPerm(t, dir, 0o700)
	checkPerm(t, filepath.Dir(dir), 0o700)
	checkPerm(t, e.path, 0o600)
}

// A symbolic link at the credentials path is neither read through nor
// written through.
func TestSymlinkNotFollowed(t *testing.T) {
	e := newEnv(t)
	tokens, user := e.login(t)
	target := filepath.Join(t.TempDir(), "target.json")
	writeFile(t, target, 0o600, user, tokens)
	before, _ := os.ReadFile(target)
	if err := os.Symlink(target, e.path); err != nil {
		t.Skipf("no symbolic links: %v", err)
	}
	if _, err := fiefcli.New(e.client, e.path); err == nil {
		t.Error("New read credentials through a symbolic link")
	}

	// Planted after loading: a save replaces the link.
	os.Remove(e.path)
	writeFile(t, e.path, 0o600, user, tokens)
	a := e.auth(t)
	os.Remove(e.path)
	os.Symlink(target, e.path)
	if _, err := a.UserInfo(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(e.path); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("the credentials path is not a regular file after a save: %v, %v", fi, err)
	}
	if after, _ := os.ReadFile(target); !bytes.Equal(before, after) {
		t.Error("the save wrote through the symbolic link")
	}
}

func TestNotARegularFile(t *testing.T) {
	e := newEnv(t)
	os.Mkdir(e.path, 0o700)
	if _, err := fiefcli.New(e.client, e.path); err == nil {
		t.Error("New accepted a directory as credentials file")
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	tokens, user := e.login(t)
	writeFile(t, e.path, 0o600, user, tokens)
	a := e.auth(t)
	if err := a.Logout(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file is still there: %v", err)
	}
	if _, err := a.UserInfo(context.Background(), false); !errors.Is(err, fiefcli.ErrNotAuthenticated) {
		t.Errorf("after logout: %v", err)
	}
	if err := a.Logout(); err != nil {
		t.Errorf("second logout: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	e := newEnv(t)
	for name, tc := range map[string]struct {
		client *fief.Client
		path   string
		opt    fiefcli.Option
	}{
		"nil client":                 {nil, e.path, nil},
		"empty path":                 {e.client, "", nil},
		"all interfaces":             {e.client, e.path, fiefcli.WithListenAddr("0.0.0.0:51562")},
		"localhost":                  {e.client, e.path, fiefcli.WithListenAddr("localhost:51562")},
		"no port":                    {e.client, e.path, fiefcli.WithListenAddr("127.0.0.1")},
		"relative redirect path":     {e.client, e.path, fiefcli.WithRedirectPath("callback")},
		"redirect path with query":   {e.client, e.path, fiefcli.WithRedirectPath("/callback?x=1")},
		"extra param state":          {e.client, e.path, fiefcli.WithExtraParams(map[string]string{"state": "x"})},
		"extra param code_challenge": {e.client, e.path, fiefcli.WithExtraParams(map[string]string{"code_challenge": "x"})},
		"scope with a space":         {e.client, e.path, fiefcli.WithScopes("a b")},
		"nil output":                 {e.client, e.path, fiefcli.WithOutput(nil)},
		"redirect host name":         {e.client, e.path, fiefcli.WithRedirectHost("example.com")},
		"redirect host IP":           {e.client, e.path, fiefcli.WithRedirectHost("127.0.0.1")},
		"redirect host upper case":   {e.client, e.path, fiefcli.WithRedirectHost("LOCALHOST")},
		"redirect host with port":    {e.client, e.path, fiefcli.WithRedirectHost("localhost:51562")},
		"redirect host with dot":     {e.client, e.path, fiefcli.WithRedirectHost("localhost.")},
	} {
		var opts []fiefcli.Option
		if tc.opt != nil {
			opts = append(opts, tc.opt)
		}
		if _, err := fiefcli.New(tc.client, tc.path, opts...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	for _, addr := range []string{"127.0.0.1:51562", "[::1]:51562", "127.0.0.2:0"} {
		if _, err := fiefcli.New(e.client, e.path, fiefcli.WithListenAddr(addr)); err != nil {
			t.Errorf("WithListenAddr(%q): %v", addr, err)
		}
	}
	// localhost does not lead to 127.0.0.2, whatever the order of the
	// options.
	if _, err := fiefcli.New(e.client, e.path, fiefcli.WithRedirectHost("localhost"), fiefcli.WithListenAddr("127.0.0.2:51562")); err == nil {
		t.Error("WithRedirectHost(localhost) with 127.0.0.2: no error")
	}
	// WithListenAddr refuses localhost and points to WithRedirectHost.
	if _, err := fiefcli.New(e.client, e.path, fiefcli.WithListenAddr("localhost:51562")); err == nil || !strings.Contains(err.Error(), "WithRedirectHost") {
		t.Errorf("WithListenAddr(localhost): %v, want an error naming WithRedirectHost", err)
	}
	for _, opts := range [][]fiefcli.Option{
		{fiefcli.WithRedirectHost("localhost")},
		{fiefcli.WithRedirectHost("")},
		{fiefcli.WithRedirectHost("localhost"), fiefcli.WithRedirectHost("")},
		{fiefcli.WithListenAddr("[::1]:51562"), fiefcli.WithRedirectHost("localhost")},
	} {
		if _, err := fiefcli.New(e.client, e.path, opts...); err != nil {
			t.Errorf("%d options: %v", len(opts), err)
		}
	}
}

// When the refreshed tokens cannot be saved, the error says so, and the
// process keeps them: the old refresh token is dead. The next save that
// succeeds writes them.
func TestRefreshSaveFailure(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("relies on a 255-byte file name limit")
	}
	// Tokens shorter-lived than the refresh margin: every call refreshes.
	e := newEnv(t, fieftest.WithTokenLifetime(30*time.Second))
	tokens, user := e.login(t)
	tokens.AccessToken = e.expiredAccessToken()
	// A name that fits the file system's limit, while the temporary file
	// written next to it (a longer name) does not: saving fails, even for
	// root, and reading works.
	long := filepath.Join(filepath.Dir(e.path), strings.Repeat("c", 250))
	writeFile(t, long, 0o600, user, tokens)
	e.path = long
	a := e.auth(t)
	ctx := context.Background()
	e.srv.ResetRequests()

	if _, err := a.AccessTokenInfo(ctx, true); err == nil || !strings.Contains(err.Error(), "saving the credentials") {
		t.Fatalf("err = %v, want a save error", err)
	}
	// The next refresh uses the live refresh token in memory, not the dead
	// one in the file.
	if _, err := a.AccessTokenInfo(ctx, true); err == nil || !strings.Contains(err.Error(), "saving the credentials") {
		t.Fatalf("second refresh: %v, want a save error", err)
	}
	if n := e.srv.Requests(fieftest.EndpointToken); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
	if readFile(t, long).Tokens.AccessToken != tokens.AccessToken {
		t.Error("the file changed")
	}
	if _, err := a.UserInfo(ctx, true); err == nil {
		t.Error("UserInfo saved nothing and reported no error")
	}
	if got, err := a.UserInfo(ctx, false); err != nil || got.Email() != email {
		t.Errorf("in-memory user %v, %v", got, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(long)); len(entries) != 1 {
		t.Errorf("files left in the directory: %v", entries)
	}
}
