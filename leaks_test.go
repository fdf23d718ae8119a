package fief_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
	"golang.org/x/oauth2"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// secretSet holds what must never be written anywhere.
type secretSet struct {
	whole []string // secrets and their long enough pieces
}

// add registers secret; for a token, also each of its parts of 16 bytes
// or more (a payload or a signature alone is a leak too).
func (s *secretSet) add(secret string) {
	if secret == "" {
		return
	}
	s.whole = append(s.whole, secret)
	if strings.Count(secret, ".") >= 2 {
		for _, part := range strings.Split(secret, ".") {
			if len(part) >= 16 {
				s.whole = append(s.whole, part)
			}
		}
	}
}

// check fails if text holds a secret or the upstream marker.
func (s *secretSet) check(t *testing.T, where, text string) {
	t.Helper()
	if strings.Contains(text, upstreamMarker) {
		t.Errorf("%s holds Fief's raw answer: %s", where, text)
	}
	for _, secret := range s.whole {
		if strings.Contains(text, secret) {
			t.Errorf("%s holds a secret (%.12s…): %s", where, secret, text)
		}
	}
}

// TestNoLeaks runs failing and succeeding requests and client calls with a
// debug logger and Fief answering faults with bodies that echo secrets and
// carry a marker, then checks that no token (access, refresh, ID), client
// secret, password or PKCE verifier, and nothing of Fief's raw answers,
// appears in any response, header, log line or error text.
func TestNoLeaks(t *testing.T) {
	s := newServer(t)
	const password = "hermine-Password-8d1f"
	u := s.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: password, Permissions: []string{"castles:read"}})
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret, fief.WithTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var secrets secretSet
	secrets.add(s.ClientSecret)
	secrets.add(password)
	ctx := context.Background()

	// Real tokens, from a real code exchange.
	const verifier = "pkce-verifier-3f9a0c1b7e5d4c2a8b6f0e1d3c5a7b9f"
	code := s.IssueCode(fieftest.CodeRequest{UserID: u.ID, RedirectURI: redirectURI, Scopes: []string{"openid", "offline_access", "castles"},
		CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier), CodeChallengeMethod: "S256"})
	tokens, _, err := c.AuthCallback(ctx, code, redirectURI, verifier)
	if err != nil {
		t.Fatal(err)
	}
	secrets.add(verifier)
	secrets.add(tokens.AccessToken)
	secrets.add(tokens.RefreshToken)
	secrets.add(tokens.IDToken)
	tok := func(opts ...fieftest.TokenOption) string {
		t := s.AccessToken(u.ID, append([]fieftest.TokenOption{fieftest.Scopes("openid", "castles"), fieftest.ACR("1")}, opts...)...)
		secrets.add(t)
		return t
	}
	valid := tok()
	expired := tok(fieftest.ExpiresIn(-time.Hour))
	forged := tok(fieftest.SignWith(foreignKey()))
	unknownKid := tok(fieftest.Header("kid", "rotated"))
	narrow := tok(fieftest.Scopes("openid"))
	stranger := s.AccessToken("00000000-0000-4000-8000-000000000001", fieftest.Scopes("openid", "castles"))
	secrets.add(stranger)
	garbage := "garbage-token-5e1c9b7a3d"
	secrets.add(garbage)

	newApp := func(c *fief.Client) *httptest.Server {
		a, err := fief.NewAuthenticator(c, fief.WithLogger(logger), fief.WithUserInfoCache(memCache(t, 10, time.Minute)))
		if err != nil {
			t.Fatal(err)
		}
		aq, err := fief.NewAuthenticator(c, fief.WithLogger(logger),
			fief.WithExtractor(fief.FirstToken(fief.BearerToken(), fief.CookieToken("at"), fief.QueryToken("access_token"))))
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/token", a.Authenticated(fief.RequireScopes("castles"))(mwEcho))
		mux.Handle("/user", a.CurrentUser(fief.RequireScopes("castles"))(mwEcho))
		mux.Handle("/refresh", a.CurrentUser(fief.Refresh())(mwEcho))
		mux.Handle("/optional", a.CurrentUser(fief.Optional())(mwEcho))
		mux.Handle("/sse", aq.CurrentUser()(mwEcho))
		app := httptest.NewServer(mux)
		t.Cleanup(app.Close)
		return app
	}
	app := newApp(c)
	cold, err := fief.New(s.URL, s.ClientID, s.ClientSecret, fief.WithTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cold.Close()
	coldApp := newApp(cold)

	send := func(base, path, token string, how string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		switch how {
		case "header":
			req.Header.Set("Authorization", "Bearer "+token)
		case "cookie":
			req.AddCookie(&http.Cookie{Name: "at", Value: token})
		case "query":
			req.URL.RawQuery = "access_token=" + url.QueryEscape(token)
		case "two headers":
			req.Header.Add("Authorization", "Bearer "+token)
			req.Header.Add("Authorization", "Bearer "+token)
		}
		resp, err := app.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		where := fmt.Sprintf("response to %s %s (%d)", path, how, resp.StatusCode)
		secrets.check(t, where+" body", string(body))
		for name, values := range resp.Header {
			secrets.check(t, where+" header "+name, strings.Join(values, ", "))
		}
	}

	// Fault bodies: raw text with the marker, and echoes of secrets (as
	// FastAPI's validation errors echo the request's input).
	echo := func(secret string) string {
		return fmt.Sprintf(`{"detail":[{"type":"value_error","loc":["body","x"],"msg":"%s","input":%q}]}`, upstreamMarker, secret)
	}
	faultBodies := []fieftest.Fault{
		{Status: 500, Body: "<html>" + upstreamMarker + " stack trace</html>"},
		{Status: 500, Body: `{"detail":"` + upstreamMarker + ` database unreachable"}`},
		{Status: 502, Body: `{"error":"` + upstreamMarker + `"}`},
		{Status: 401, Body: `{"detail":"` + valid + `"}`},
		{Status: 400, Body: `{"error":"` + tokens.RefreshToken + `"}`},
		{Status: 422, Body: echo(valid)},
		{Status: 422, Body: echo(s.ClientSecret)},
		{Status: 200, Body: `{"sub":"` + upstreamMarker},
		{Status: 200, Body: `{"sub":"` + upstreamMarker + strings.Repeat("x", 2<<20) + `"}`},
		{Latency: time.Second},
		{Down: true},
	}

	// Through the middleware.
	for _, how := range []string{"header", "cookie", "query", "two headers"} {
		for _, token := range []string{valid, expired, forged, unknownKid, narrow, stranger, garbage, strings.Repeat("a", fief.MaxTokenLength+1)} {
			send(app.URL, "/sse", token, how)
		}
	}
	for _, path := range []string{"/token", "/user", "/refresh", "/optional"} {
		for _, token := range []string{valid, expired, forged, unknownKid, narrow, stranger, garbage} {
			send(app.URL, path, token, "header")
		}
	}
	for _, f := range faultBodies {
		s.SetFault(fieftest.EndpointUserinfo, f)
		for _, path := range []string{"/user", "/refresh", "/optional"} {
			send(app.URL, path, valid, "header")
		}
		s.SetFault(fieftest.EndpointDiscovery, f)
		send(coldApp.URL, "/token", valid, "header")
		s.ClearFault(fieftest.EndpointDiscovery)
		s.SetFault(fieftest.EndpointJWKS, f)
		send(coldApp.URL, "/user", valid, "header")
		s.ClearFaults()
	}
	s.SetDown(true)
	send(app.URL, "/refresh", valid, "header")
	send(coldApp.URL, "/token", valid, "header")
	s.SetDown(false)

	// Direct client calls: every error's text.
	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	call := func() {
		_, _, err := c.AuthCallback(ctx, "unknown-code-1b2c3d4e5f", redirectURI, verifier)
		collect(err)
		_, _, err = c.AuthRefreshToken(ctx, tokens.RefreshToken)
		collect(err)
		_, _, err = c.AuthRefreshToken(ctx, "unknown-refresh-token-9a8b7c6d5e4f")
		collect(err)
		for _, token := range []string{valid, expired, forged, unknownKid, stranger, garbage} {
			_, err = c.ValidateAccessToken(ctx, token, fief.RequireScopes("admin"))
			collect(err)
			_, err = c.UserInfo(ctx, token)
			collect(err)
		}
		_, err = c.ChangePassword(ctx, valid, password)
		collect(err)
		_, err = c.ChangePassword(ctx, valid, "short")
		collect(err)
		_, err = c.UpdateProfile(ctx, valid, map[string]any{"secret": password})
		collect(err)
		_, err = c.EmailChange(ctx, valid, "not an email "+password)
		collect(err)
		_, err = c.EmailVerify(ctx, valid, "WRONG1")
		collect(err)
	}
	secrets.add("unknown-refresh-token-9a8b7c6d5e4f")
	call()
	for _, f := range faultBodies {
		if f.Latency > 0 {
			continue // a deadline error quotes nothing; spare the time
		}
		for _, ep := range []fieftest.Endpoint{fieftest.EndpointToken, fieftest.EndpointUserinfo, fieftest.EndpointProfile,
			fieftest.EndpointPassword, fieftest.EndpointEmailChange, fieftest.EndpointEmailVerify} {
			s.SetFault(ep, f)
		}
		call()
		s.ClearFaults()
	}
	if len(errs) < 100 {
		t.Fatalf("only %d errors collected", len(errs))
	}
	for _, err := range errs {
		secrets.check(t, "error", err.Error())
		var re *fief.RequestError
		if errors.As(err, &re) {
			secrets.check(t, "RequestError.Error", re.Error())
			secrets.check(t, "RequestError.Code", re.Code)
		}
	}

	// Every log line.
	out := logs.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, line := range lines {
		secrets.check(t, "log line", line)
	}
	for _, want := range []string{`"level":"WARN"`, `"level":"DEBUG"`, `"msg":"fief: request unauthorized"`, `"msg":"fief: cannot authenticate request: Fief unavailable"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the logs lack %s", want)
		}
	}
	t.Logf("%d log lines and %d errors checked", len(lines), len(errs))
}

// TestSessionRefreshLeaksNothing runs the session refresh paths (refresh,
// reuse of the outcome, Fief's refusals and faults with bodies echoing the
// refresh token, a failing coordinator, step-up, logout) with a debug
// logger, and checks that no refresh token, ID token or client secret
// appears in any answer, header or log line, that access tokens appear
// only in the session cookie, and that the coordinator sees none of them.
func TestSessionRefreshLeaksNothing(t *testing.T) {
	var secrets, access secretSet
	var mu sync.Mutex
	coord := newMemCoordinator()
	e := newLFEnv(t, lfOptions{refresh: true, config: func(c *fief.LoginFlowConfig) {
		c.RefreshCoordinator = coord
		c.OnLogin = func(_ context.Context, tokens *fief.Tokens, _ fief.UserInfo) error {
			mu.Lock()
			defer mu.Unlock()
			secrets.add(tokens.RefreshToken)
			// The ID token, its claims and signature; its header is the
			// access token's, which the session cookie holds.
			secrets.whole = append(secrets.whole, tokens.IDToken)
			secrets.whole = append(secrets.whole, strings.Split(tokens.IDToken, ".")[1:]...)
			access.add(tokens.AccessToken)
			return nil
		}
	}})
	secrets.add(e.srv.ClientSecret)
	secrets.add(lfPassword)

	// check checks an answer, and learns the tokens of the cookies it sets.
	check := func(resp lfResponse) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		where := fmt.Sprintf("answer %d of %s", resp.StatusCode, resp.Request.URL.Path)
		for _, c := range resp.Cookies() {
			switch c.Name {
			case lfSessionCookie:
				access.add(c.Value)
			case lfRefreshCookie:
				secrets.add(fief.RefreshTokenOf(e.flow, c.Value))
			}
		}
		secrets.check(t, where+" body", resp.body)
		access.check(t, where+" body", resp.body)
		for name, values := range resp.Header {
			secrets.check(t, where+" header "+name, strings.Join(values, ", "))
			if name != "Set-Cookie" {
				access.check(t, where+" header "+name, strings.Join(values, ", "))
			}
		}
		for _, c := range resp.Cookies() {
			if c.Name != lfSessionCookie {
				access.check(t, where+" cookie "+c.Name, c.Value)
			}
		}
	}
	send := func(path string, header http.Header, cookies ...*http.Cookie) lfResponse {
		t.Helper()
		resp := e.send(t, path, header, cookies...)
		check(resp)
		return resp
	}

	_, _, refresh := e.loggedIn(t)
	resp := send("/token", nil, refresh)
	send("/token", nil, refresh) // the remembered outcome
	refresh = lfFindCookie(resp, lfRefreshCookie)
	rt := fief.RefreshTokenOf(e.flow, refresh.Value)
	echo := func(secret string) string {
		return fmt.Sprintf(`{"detail":[{"type":"value_error","loc":["body","refresh_token"],"msg":"%s","input":%q}]}`, upstreamMarker, secret)
	}
	for _, f := range []fieftest.Fault{
		{Status: http.StatusBadRequest, Body: `{"error":"` + rt + `"}`},
		{Status: http.StatusBadRequest, Body: `{"error":"invalid_client","error_description":"` + upstreamMarker + `"}`},
		{Status: http.StatusUnprocessableEntity, Body: echo(rt)},
		{Status: http.StatusInternalServerError, Body: "<html>" + upstreamMarker + " " + rt + "</html>"},
		{Status: http.StatusOK, Body: `{"access_token":"` + upstreamMarker + `","refresh_token":"` + rt + `"}`},
		{Status: http.StatusOK, Body: `{"access_token":` + upstreamMarker},
		{Down: true},
	} {
		for _, path := range []string{"/token", "/protected", "/strong", "/optional"} {
			e.srv.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: f.Status, Body: f.Body, Down: f.Down, Times: 1})
			send(path, http.Header{"Sec-Fetch-Mode": {"navigate"}}, refresh)
			_, _, refresh = e.loggedIn(t) // a refusal spent or cleared the session
		}
	}
	// Without faults: a refusal (the spent token), the coordinator down, a
	// step-up, a logout (which spends the refresh token).
	e.srv.ClearFaults()
	send("/token", nil, refresh)
	send("/token", nil, &http.Cookie{Name: lfRefreshCookie, Value: fief.SealRefreshCookie(e.flow, time.Now(), e.user.ID, "spent-"+rt)})
	coord.mu.Lock()
	coord.fail = errors.New("coordinator down")
	coord.mu.Unlock()
	_, _, refresh = e.loggedIn(t)
	send("/strong", nil, refresh)
	_, session, refresh := e.loggedIn(t)
	e.srv.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: http.StatusBadRequest, Body: echo(rt), Times: 1})
	check(e.do(t, e.bare(), http.MethodPost, e.appURL+"/logout", nil, session, refresh))

	coord.mu.Lock()
	for _, k := range coord.keys {
		secrets.check(t, "coordinator key", k)
		access.check(t, "coordinator key", k)
	}
	for _, v := range coord.results {
		secrets.check(t, "coordinator result", string(v))
		access.check(t, "coordinator result", string(v))
	}
	coord.mu.Unlock()
	logs := e.logs.String()
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		secrets.check(t, "log line", line)
		access.check(t, "log line", line)
	}
	for _, want := range []string{"session refreshed", "Fief refused the refresh token", "Fief unavailable", "refresh coordinator failed", "could not spend the refresh token"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %q", want)
		}
	}
	t.Logf("%d log lines, %d secrets and %d access-token parts checked", strings.Count(logs, "\n"), len(secrets.whole), len(access.whole))
}
