package fief

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of session refresh ([LoginFlowConfig].RefreshSessions).
const (
	// DefaultRefreshMargin is how long before its access token expires a
	// session is refreshed.
	DefaultRefreshMargin = time.Minute
	// DefaultMaxSessionAge is how long after the login a refreshed session
	// ends: then the user logs in again (without a password while Fief's own
	// session lasts, 30 days by default). It is nextjs-auth0's default
	// absolute duration.
	DefaultMaxSessionAge = 7 * 24 * time.Hour
)

const (
	// refreshCookieSuffix follows the session cookie's name (without its
	// prefix) in the refresh cookie's.
	refreshCookieSuffix = "_refresh"
	// refreshCookieVersion is the first byte of a refresh cookie's
	// plaintext.
	refreshCookieVersion = 1
	// maxRefreshToken bounds the refresh tokens a refresh cookie holds
	// (Fief's are 43 characters): the cookie stays far under 4 KiB.
	maxRefreshToken = 1024
	// maxRefreshCookie bounds the refresh cookie values the flow tries to
	// open.
	maxRefreshCookie = 2048
	// logoutRefreshTimeout bounds the spending of the refresh token at
	// logout.
	logoutRefreshTimeout = 5 * time.Second
)

// newSessionKeys derives from the configured secret, each bound to its
// purpose, the keys of session refresh.
func newSessionKeys(secret []byte) (sessionKeys, error) {
	var k sessionKeys
	var err error
	if k.cookie, err = newAEAD(secret, "fief-go login flow session refresh cookie v1"); err != nil {
		return k, fmt.Errorf("the refresh cookie key: %w", err)
	}
	if k.result, err = newAEAD(secret, "fief-go login flow session refresh result v1"); err != nil {
		return k, fmt.Errorf("the refresh result key: %w", err)
	}
	if k.id, err = hkdf.Key(sha256.New, secret, nil, "fief-go login flow refresh token id v1", 32); err != nil {
		return k, fmt.Errorf("deriving the refresh token ID key: %w", err)
	}
	return k, nil
}

// refreshCookieName returns the name of the refresh cookie of a session
// cookie: its name without prefix, then "_refresh", with the __Host-
// prefix unless cookies are insecure.
func refreshCookieName(sessionCookie string, secure bool) string {
	if !secure {
		return sessionCookie + refreshCookieSuffix
	}
	base := strings.TrimPrefix(strings.TrimPrefix(sessionCookie, hostPrefix), securePrefix)
	return hostPrefix + base + refreshCookieSuffix
}

// refreshState is what a refresh cookie holds.
type refreshState struct {
	start    time.Time // of the session: the login
	lifetime int64     // of the current access token, in seconds (expires_in)
	userID   string
	token    string // the refresh token
}

// refreshAD is the associated data of refresh cookies: their purpose and
// the names of the refresh and session cookies, so that a value is valid
// under its own name, for its own session cookie, only.
func (f *LoginFlow) refreshAD() []byte {
	return []byte("fief-go session refresh\x00" + f.refreshCookie + "\x00" + f.sessionCookie)
}

// sealRefresh returns the value of the refresh cookie holding st: the
// version, the session's start (Unix seconds), the access token's
// lifetime, the user ID and the refresh token, sealed with AES-256-GCM.
func (f *LoginFlow) sealRefresh(st refreshState) string {
	plain := make([]byte, 0, 14+len(st.userID)+len(st.token))
	plain = append(plain, refreshCookieVersion)
	plain = binary.BigEndian.AppendUint64(plain, uint64(st.start.Unix()))
	plain = binary.BigEndian.AppendUint32(plain, uint32(min(max(st.lifetime, 0), 1<<31)))
	plain = append(plain, byte(len(st.userID)))
	plain = append(plain, st.userID...)
	plain = append(plain, st.token...)
	return sealValue(f.session.cookie, plain, f.refreshAD())
}

// openRefresh returns the state of the first of the refresh cookies that
// opens, or nil.
func (f *LoginFlow) openRefresh(cookies []*http.Cookie) *refreshState {
	for _, c := range cookies[:min(len(cookies), maxFlowCandidates)] {
		if st := f.openRefreshValue(c.Value); st != nil {
			return st
		}
	}
	return nil
}

// openRefreshValue returns the state a refresh cookie value holds, or nil.
func (f *LoginFlow) openRefreshValue(value string) *refreshState {
	p, ok := openValue(f.session.cookie, value, maxRefreshCookie, f.refreshAD())
	if !ok || len(p) < 14 || p[0] != refreshCookieVersion || len(p) < 14+int(p[13]) {
		return nil
	}
	idEnd := 14 + int(p[13])
	st := &refreshState{
		start:    time.Unix(int64(binary.BigEndian.Uint64(p[1:9])), 0),
		lifetime: int64(binary.BigEndian.Uint32(p[9:13])),
		userID:   string(p[14:idEnd]),
		token:    string(p[idEnd:]),
	}
	if st.token == "" {
		return nil
	}
	return st
}

// refreshKey returns the ID of a refresh token: its HMAC-SHA256 under a
// key derived from CookieKey. In-process refreshes and the coordinator are
// keyed by it, never by the token.
func (f *LoginFlow) refreshKey(token string) [32]byte {
	m := hmac.New(sha256.New, f.session.id)
	m.Write([]byte(token))
	var k [32]byte
	m.Sum(k[:0])
	return k
}

// resultAD is the associated data of an outcome shared through the
// coordinator under key: it opens for that key only.
func resultAD(key string) []byte { return []byte("fief-go session refresh result\x00" + key) }

// sealOutcome returns out sealed for the coordinator under key. Results
// are bytes to the coordinator: they are not base64-encoded as cookies are.
func (f *LoginFlow) sealOutcome(key string, out *refreshOutcome) []byte {
	plain, _ := json.Marshal(out)
	return f.session.result.Seal(nil, nil, plain, resultAD(key))
}

// openOutcome returns the outcome that sealOutcome sealed in b under key.
func (f *LoginFlow) openOutcome(key string, b []byte) (*refreshOutcome, error) {
	plain, err := f.session.result.Open(nil, nil, b, resultAD(key))
	if err != nil {
		return nil, errors.New("fief: the refresh coordinator's result does not open with this flow's key (another CookieKey?)")
	}
	var out refreshOutcome
	if err := json.Unmarshal(plain, &out); err != nil || (!out.Refused && out.AccessToken == "") {
		return nil, errors.New("fief: the refresh coordinator's result is not an outcome")
	}
	return &out, nil
}

// Session returns middleware that keeps refreshed sessions alive
// ([LoginFlowConfig].RefreshSessions). Place it in front of the
// Authenticator, around every route that reads the session:
//
//	handler := flow.Session()(mux)
//
// For a request with a refresh cookie whose access token is missing (the
// browser dropped the expired session cookie), expired, invalid, or expires
// within the refresh margin, it refreshes the tokens at Fief before the
// handler runs, sets the rotated session and refresh cookies on the
// response (with Cache-Control: no-store), and passes on a copy of the
// request whose cookies hold the new tokens, so that the Authenticator and
// the handler see the refreshed session. Other requests pass through
// unchanged, at the cost of a cookie lookup and, with a session cookie, of
// a verified-token cache lookup.
//
// Rotation is safe: concurrent requests carrying one refresh token make one
// refresh, in this process, and, with a [RefreshCoordinator], across
// processes; its outcome is handed for [RefreshReuseWindow] to requests
// that still carry the spent token. The refreshed access token has ACR 0,
// as Fief issues it: a route that requires ACR 1 refuses it, and
// [LoginFlow.RedirectToStepUp] sends the user through a password login.
//
// When Fief refuses the refresh token (invalid_grant: it expired, was
// revoked, or was used by someone else), Session deletes both cookies and
// passes the request on without them, so that the Authenticator treats it as
// logged out ([LoginFlow.RedirectToLogin] starts a login for a page, an API
// call gets 401, an Optional route serves it anonymously). A session older
// than MaxSessionAge is not refreshed: its refresh cookie is deleted. When
// Fief cannot be reached, the request passes on unchanged (a session whose
// token is still valid goes on; one whose token expired is answered as
// logged out); the refresh cookie is kept for a later attempt. Nothing is
// ever answered 500.
//
// Without RefreshSessions, Session returns its handler unchanged.
// Session panics on a nil handler.
func (f *LoginFlow) Session() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("fief: LoginFlow.Session: nil handler")
		}
		if !f.refresh {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.serveSession(w, r, next)
		})
	}
}

func (f *LoginFlow) serveSession(w http.ResponseWriter, r *http.Request, next http.Handler) {
	refreshCookies := r.CookiesNamed(f.refreshCookie)
	if len(refreshCookies) == 0 || r.URL.Path == f.callbackPath {
		// Not a refreshed session, or the callback, which replaces it.
		next.ServeHTTP(w, r)
		return
	}
	ctx := r.Context()
	now := f.now()
	var remaining time.Duration
	valid := false
	if token, err := f.extractor.Extract(r); err == nil && token != "" {
		// Not ValidateAccessToken, which would report a token check of its
		// own (Hooks.TokenChecked) before the Authenticator's.
		info, _, err := f.client.verifyAccessToken(ctx, token)
		switch {
		case err == nil:
			remaining, valid = info.Expiry().Sub(now), true
			if remaining >= f.refreshMargin {
				next.ServeHTTP(w, r)
				return
			}
		case errors.Is(err, ErrAccessTokenExpired), errors.Is(err, ErrAccessTokenInvalid):
			// Refresh.
		default:
			// The key set cannot be had: Fief is unreachable, and the
			// Authenticator answers so.
			next.ServeHTTP(w, r)
			return
		}
	}
	st := f.openRefresh(refreshCookies)
	if st == nil {
		f.log(ctx, slog.LevelInfo, "fief: session refresh cookie forged, tampered with, or sealed with another key; deleting it", nil)
		http.SetCookie(w, f.cookie(f.refreshCookie, "", "/", -1))
		next.ServeHTTP(w, withCookies(r, []string{f.refreshCookie}))
		return
	}
	// A margin longer than half the token's lifetime would refresh on
	// every request.
	if valid && remaining >= min(f.refreshMargin, time.Duration(st.lifetime)*time.Second/2) {
		next.ServeHTTP(w, r)
		return
	}
	end := st.start.Add(f.maxSessionAge)
	if !now.Before(end) {
		f.log(ctx, slog.LevelInfo, "fief: session reached MaxSessionAge; not refreshing it", nil)
		http.SetCookie(w, f.cookie(f.refreshCookie, "", "/", -1))
		next.ServeHTTP(w, withCookies(r, []string{f.refreshCookie}))
		return
	}

	key := f.refreshKey(st.token)
	out, err := f.refreshes.do(ctx, key, f.now, func(ctx context.Context) (*refreshOutcome, error) {
		return f.refreshShared(ctx, key, st)
	})
	switch {
	case err != nil:
		// Logged by the refresh, unless the request went away.
		next.ServeHTTP(w, r)
		return
	case out.Refused:
		http.SetCookie(w, f.cookie(f.sessionCookie, "", "/", -1))
		http.SetCookie(w, f.cookie(f.refreshCookie, "", "/", -1))
		next.ServeHTTP(w, withCookies(r, []string{f.sessionCookie, f.refreshCookie}))
		return
	}
	noStore(w)
	now = f.now()
	ageLeft := int(end.Sub(now) / time.Second)
	session := &http.Cookie{Name: f.sessionCookie, Value: out.AccessToken}
	http.SetCookie(w, f.cookie(f.sessionCookie, out.AccessToken, "/", max(1, min(int(out.Expiry-now.Unix()), ageLeft))))
	if out.RefreshToken == "" {
		// Fief ended the chain: the session lasts as long as this token.
		http.SetCookie(w, f.cookie(f.refreshCookie, "", "/", -1))
		next.ServeHTTP(w, withCookies(r, []string{f.sessionCookie, f.refreshCookie}, session))
		return
	}
	value := f.sealRefresh(refreshState{start: st.start, lifetime: out.Lifetime, userID: st.userID, token: out.RefreshToken})
	http.SetCookie(w, f.cookie(f.refreshCookie, value, "/", max(1, ageLeft)))
	next.ServeHTTP(w, withCookies(r, []string{f.sessionCookie, f.refreshCookie}, session,
		&http.Cookie{Name: f.refreshCookie, Value: value}))
}

// withCookies returns a copy of r whose Cookie header lacks the cookies
// named drop and has the cookies add, for the handlers after Session. r is
// not modified.
func withCookies(r *http.Request, drop []string, add ...*http.Cookie) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Header.Del("Cookie")
	for _, c := range r.Cookies() {
		if !slices.Contains(drop, c.Name) {
			r2.AddCookie(c)
		}
	}
	for _, c := range add {
		r2.AddCookie(c)
	}
	return r2
}

// refreshShared refreshes st through the coordinator, if any: the outcome
// another process stored, or the one of refreshing here. When the
// coordinator fails before refreshing, it refreshes in this process.
func (f *LoginFlow) refreshShared(ctx context.Context, key [32]byte, st *refreshState) (*refreshOutcome, error) {
	if f.coordinator == nil {
		return f.refreshAtFief(ctx, st)
	}
	id := hex.EncodeToString(key[:])
	var (
		mu     sync.Mutex
		called bool
		own    *refreshOutcome
		ownErr error
	)
	b, err := f.coordinator.Do(ctx, id, func(ctx context.Context) ([]byte, error) {
		out, err := f.refreshAtFief(ctx, st)
		mu.Lock()
		called, own, ownErr = true, out, err
		mu.Unlock()
		if err != nil {
			return nil, err
		}
		return f.sealOutcome(id, out), nil
	})
	mu.Lock()
	defer mu.Unlock()
	switch {
	case called && own != nil:
		return own, nil // whatever the coordinator did with it
	case called:
		return nil, ownErr
	case err != nil:
		if ctx.Err() != nil {
			return nil, err
		}
		f.log(ctx, slog.LevelWarn, "fief: session refresh: the refresh coordinator failed; refreshing in this process", err)
		return f.refreshAtFief(ctx, st)
	}
	out, err := f.openOutcome(id, b)
	if err != nil {
		// Refreshing here would spend a token another process may have
		// spent: fail this once.
		f.log(ctx, slog.LevelWarn, "fief: session refresh: unusable result from the refresh coordinator", err)
		return nil, err
	}
	return out, nil
}

// refreshAtFief refreshes st's tokens at Fief and checks them as the
// callback does. Fief's refusal (invalid_grant), and tokens that would not
// make a session, are a Refused outcome; Fief unreachable or refusing the
// client's credentials is an error.
func (f *LoginFlow) refreshAtFief(ctx context.Context, st *refreshState) (*refreshOutcome, error) {
	refused := &refreshOutcome{Refused: true}
	tokens, claims, err := f.client.AuthRefreshToken(ctx, st.token)
	if err != nil {
		var re *RequestError
		switch {
		case errors.As(err, &re) && re.StatusCode == http.StatusBadRequest && re.Code != "invalid_client":
			// invalid_grant: the refresh token expired, was revoked (the user
			// was deleted) or was spent, by a request this flow does not
			// know of or by a thief.
			f.log(ctx, slog.LevelInfo, "fief: session ended: Fief refused the refresh token", err)
			return refused, nil
		case errors.Is(err, ErrIDTokenInvalid):
			// Fief answered, so the refresh token is spent.
			f.log(ctx, slog.LevelWarn, "fief: session ended: Fief's refreshed ID token was refused", err)
			return refused, nil
		}
		if ctx.Err() == nil {
			f.log(ctx, slog.LevelWarn, "fief: session refresh failed: Fief unavailable", err)
		}
		return nil, err
	}
	info, _, err := f.client.verifyAccessToken(ctx, tokens.AccessToken)
	switch {
	case errors.Is(err, ErrDiscovery):
		f.log(ctx, slog.LevelWarn, "fief: session refresh failed: Fief unavailable", err)
		return nil, err
	case err != nil:
		f.log(ctx, slog.LevelWarn, "fief: session ended: Fief's refreshed access token was refused", err)
		return refused, nil
	case !strings.EqualFold(info.UserID(), st.userID):
		f.log(ctx, slog.LevelWarn, "fief: session ended: the refreshed access token is another user's", nil)
		return refused, nil
	case slices.ContainsFunc(info.Scopes(), func(s string) bool { return !slices.Contains(f.scopes, s) }):
		f.log(ctx, slog.LevelWarn, "fief: session ended: the refreshed access token has scopes the login did not request", nil)
		return refused, nil
	case len(f.sessionCookie)+len(tokens.AccessToken) > maxCookieBytes || len(tokens.RefreshToken) > maxRefreshToken:
		f.log(ctx, slog.LevelWarn, "fief: session ended: the refreshed tokens are too large for cookies", nil,
			slog.Int("bytes", len(tokens.AccessToken)))
		return refused, nil
	}
	if f.cache != nil && strings.EqualFold(claims.Sub(), info.UserID()) {
		// The new ID token's claims are the user's latest.
		if err := f.cache.Set(ctx, info.UserID(), claims); err != nil {
			f.log(ctx, slog.LevelWarn, "fief: user info cache write failed at session refresh", err)
		}
	}
	lifetime := tokens.ExpiresIn
	if lifetime <= 0 {
		lifetime = int64(info.Expiry().Sub(f.now()) / time.Second)
	}
	f.log(ctx, slog.LevelDebug, "fief: session refreshed", nil)
	return &refreshOutcome{
		AccessToken:  tokens.AccessToken,
		RefreshToken: tokens.RefreshToken,
		Expiry:       info.Expiry().Unix(),
		Lifetime:     lifetime,
	}, nil
}

// setRefreshAtLogin sets the refresh cookie of a new session whose access
// token lives lifetime seconds, or, when Fief issued no refresh token (the
// user removed offline_access from the authorization URL), deletes the
// refresh cookie of a previous session: the new one lasts as long as its
// access token.
func (f *LoginFlow) setRefreshAtLogin(ctx context.Context, w http.ResponseWriter, r *http.Request, tokens *Tokens, lifetime int64, userID string) {
	if tokens.RefreshToken == "" || len(tokens.RefreshToken) > maxRefreshToken {
		f.log(ctx, slog.LevelInfo, "fief: login without a usable refresh token (offline_access not granted, or the token too large): the session lasts as long as its access token", nil)
		if len(r.CookiesNamed(f.refreshCookie)) > 0 {
			http.SetCookie(w, f.cookie(f.refreshCookie, "", "/", -1))
		}
		return
	}
	value := f.sealRefresh(refreshState{start: f.now(), lifetime: lifetime, userID: userID, token: tokens.RefreshToken})
	http.SetCookie(w, f.cookie(f.refreshCookie, value, "/", int(f.maxSessionAge/time.Second)))
}

// spendRefresh makes the session's refresh token worthless at logout: Fief
// has no revocation endpoint, but a refresh narrowed to the openid scope
// consumes the token and issues none in its place. A copy of the refresh
// cookie (a stolen one) is then refused. Failures are logged and ignored.
func (f *LoginFlow) spendRefresh(ctx context.Context, st *refreshState) {
	ctx, cancel := context.WithTimeout(ctx, logoutRefreshTimeout)
	defer cancel()
	if _, _, err := f.client.AuthRefreshToken(ctx, st.token, "openid"); err != nil {
		f.log(ctx, slog.LevelInfo, "fief: logout: could not spend the refresh token at Fief", err)
	}
}
