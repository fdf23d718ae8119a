package fief

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Login returns the handler that starts a login: it redirects the browser
// (303) to Fief's authorization page with a new state and PKCE challenge,
// and remembers, in the flow's cookie, where to send the user afterwards:
// the return_to query parameter when it is a path on the application of at
// most 512 bytes (e.g. /login?return_to=/account), else DefaultReturnTo. It answers GET, HEAD
// and POST. When Fief cannot be reached (its discovery document is needed
// once) it answers 503 with the error page.
func (f *LoginFlow) Login() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodPost:
		default:
			methodNotAllowed(w, "GET, HEAD, POST")
			return
		}
		returnTo, ok := cleanReturnTo(r.URL.Query().Get("return_to"))
		if !ok {
			returnTo = f.defaultReturnTo
		}
		f.start(w, r, returnTo, ACRLevelZero)
	})
}

// RedirectToLogin returns an unauthorized handler for [WithUnauthorizedHandler]
// that starts a login, like Login, for browsers navigating to a page: a GET
// or HEAD request without a Sec-Fetch-Mode header or with
// Sec-Fetch-Mode: navigate. The user comes back to the requested path and
// query after login. Other requests (form posts, fetch and XHR calls,
// images) get the middleware's default 401 answer: a redirect to another
// site is of no use to them, and a POST body would be lost.
func (f *LoginFlow) RedirectToLogin() ErrorHandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		if !isNavigation(r) {
			defaultUnauthorized(w, r, err)
			return
		}
		f.start(w, r, f.returnHere(r), ACRLevelZero)
	}
}

// RedirectToStepUp returns a forbidden handler for [WithForbiddenHandler]
// that sends a browser navigating to a page that requires a higher ACR
// ([RequireACR]) than its session's through a fresh login with
// acr_values=1, for which Fief asks for the user's password even when its
// own session would have let the user in: a session refreshed by
// [LoginFlow.Session] has ACR 0, as has one that Fief's session logged in
// without a password. The user comes back to the requested path after
// login; the callback refuses the login if Fief's tokens do not reach ACR 1,
// rather than loop. Navigations are recognized as by
// [LoginFlow.RedirectToLogin]. Other refusals (a missing scope or
// permission) and other requests get the middleware's default 403 answer.
func (f *LoginFlow) RedirectToStepUp() ErrorHandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		if !errors.Is(err, ErrAccessTokenACRTooLow) || !isNavigation(r) {
			defaultForbidden(w, r, err)
			return
		}
		f.start(w, r, f.returnHere(r), ACRLevelOne)
	}
}

// isNavigation reports whether r is a browser's navigation to a page: a
// GET or HEAD without a Sec-Fetch-Mode header or with Sec-Fetch-Mode:
// navigate.
func isNavigation(r *http.Request) bool {
	mode := r.Header.Get("Sec-Fetch-Mode")
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && (mode == "" || mode == "navigate")
}

// returnHere returns the path and query of r to come back to after login,
// or DefaultReturnTo when they are not a path on the application.
func (f *LoginFlow) returnHere(r *http.Request) string {
	if returnTo, ok := cleanReturnTo(requestTarget(r)); ok {
		return returnTo
	}
	return f.defaultReturnTo
}

// requestTarget returns the path and query the browser asked for. The raw
// request target is preferred over r.URL, which http.StripPrefix shortens.
func requestTarget(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// start begins a login that returns to returnTo and must reach acr: it
// sets the flow's cookies, drops the oldest logins in progress beyond
// maxPending, and redirects to Fief.
func (f *LoginFlow) start(w http.ResponseWriter, r *http.Request, returnTo string, acr ACR) {
	noStore(w)
	state := rand.Text()
	o := AuthURLOptions{
		State:        state,
		Scopes:       f.scopes,
		CodeVerifier: f.verifier(state),
	}
	if acr > ACRLevelZero {
		o.Extra = map[string]string{"acr_values": acr.String()}
	}
	authURL, err := f.client.AuthURL(r.Context(), f.redirectURI, o)
	if err != nil {
		f.log(r.Context(), slog.LevelWarn, "fief: cannot start a login: Fief unavailable", err)
		f.errorPage(w, r, http.StatusServiceUnavailable, msgUnavailable)
		return
	}
	now := f.now()
	id := flowID(state)
	b := make([]byte, bindingBytes)
	binary.BigEndian.PutUint64(b, uint64(now.UnixNano()))
	_, _ = rand.Read(b[8:])
	binding := base64.RawURLEncoding.EncodeToString(b)
	value := f.seal(id, binding, state, flowState{ReturnTo: returnTo, Expires: now.Add(LoginFlowLifetime).Unix(), ACR: acr})

	pending := f.pending(r)
	for len(pending) >= maxPending {
		old := pending[0]
		pending = pending[1:]
		http.SetCookie(w, f.cookie(f.bindPrefix+old, "", "/", -1))
		http.SetCookie(w, f.cookie(f.flowPrefix+old, "", f.callbackPath, -1))
	}
	lifetime := int(LoginFlowLifetime / time.Second)
	http.SetCookie(w, f.cookie(f.bindPrefix+id, binding, "/", lifetime))
	http.SetCookie(w, f.cookie(f.flowPrefix+id, value, f.callbackPath, lifetime))
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// Callback returns the handler of the redirect URI, where Fief sends the
// browser back with an authorization code (or an error). It finds the
// flow's cookies by the state parameter, deletes them, checks that the
// flow is authentic, sealed for that state and bound to this browser's
// binding cookie, unexpired and not used before, exchanges the code with
// the PKCE verifier, validates the access token, checks that it
// has no scope beyond [LoginFlowConfig].Scopes, sets the session cookie
// (HttpOnly, Secure unless InsecureCookies, SameSite=Lax, Path=/, Max-Age
// the token's expires_in), stores the ID token's claims in the
// UserInfoCache if one is configured, and redirects (303) to the flow's
// return-to path.
//
// Failures get the error page: 400 for an incomplete request, a missing,
// forged, expired or replayed flow or one started in another browser, an
// error reported by Fief (such as access_denied), a code Fief refuses and
// a token with scopes the flow did not request; 502 when Fief cannot be
// reached. It answers GET only.
func (f *LoginFlow) Callback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := f.callback(w, r); o != "" {
			f.client.hooks.loginDone(r.Context(), o)
		}
	})
}

// callback serves the redirect URI and returns the login's outcome, "" for
// a request that is no login.
func (f *LoginFlow) callback(w http.ResponseWriter, r *http.Request) Outcome {
	noStore(w)
	// The callback's URL carries the code: keep it out of Referer headers.
	w.Header().Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet {
		methodNotAllowed(w, "GET")
		return ""
	}
	ctx := r.Context()
	q := r.URL.Query()
	state, code := single(q, "state"), single(q, "code")
	var flow *flowState
	if state != "" {
		flow = f.takeFlow(w, r, state)
	}
	if q.Has("error") {
		status, msg := fiefErrorMessage(single(q, "error"))
		f.log(ctx, slog.LevelInfo, "fief: login failed: Fief reported an error", nil,
			slog.String("fief_error", truncate(single(q, "error"), 64)))
		f.errorPage(w, r, status, msg)
		if status == http.StatusBadGateway {
			return OutcomeUnavailable // server_error, temporarily_unavailable
		}
		return OutcomeDenied
	}
	if state == "" || code == "" {
		f.log(ctx, slog.LevelInfo, "fief: login failed: callback without code or state", nil)
		f.errorPage(w, r, http.StatusBadRequest, msgIncomplete)
		return OutcomeInvalid
	}
	if flow == nil {
		f.errorPage(w, r, http.StatusBadRequest, msgInvalidFlow)
		return OutcomeInvalid
	}

	tokens, claims, err := f.client.AuthCallback(ctx, code, f.redirectURI, f.verifier(state))
	if err != nil {
		return f.exchangeFailed(w, r, err)
	}
	// The token goes into the cookie the middleware reads: make sure the
	// middleware will accept it, rather than send the user round in circles.
	// The login is reported by Hooks.LoginDone, not as a token check.
	info, _, err := f.client.verifyAccessToken(ctx, tokens.AccessToken)
	if err != nil {
		return f.exchangeFailed(w, r, err)
	}
	// Fief grants the scopes the authorization URL names, which the user
	// may have edited: only those the flow requested may reach a session.
	scopes := info.Scopes()
	if i := slices.IndexFunc(scopes, func(s string) bool { return !slices.Contains(f.scopes, s) }); i >= 0 {
		f.log(ctx, slog.LevelInfo, "fief: login failed: the access token has scopes the login did not request (an edited authorization URL)", nil,
			slog.String("scope", truncate(scopes[i], 64)))
		f.errorPage(w, r, http.StatusBadRequest, msgRefused)
		return OutcomeRefused
	}
	maxAge := tokens.ExpiresIn
	if maxAge <= 0 {
		maxAge = int64(info.Expiry().Sub(f.now()) / time.Second)
	}
	if maxAge <= 0 {
		return f.exchangeFailed(w, r, fmt.Errorf("%w: the new access token has expired", ErrAccessTokenExpired))
	}
	if info.ACR() < flow.ACR {
		// A step-up login that Fief completed without a password: sending
		// the user back would refuse the session again, in a loop.
		f.log(ctx, slog.LevelInfo, "fief: login failed: the step-up login did not reach the ACR it asked for", nil,
			slog.String("acr", info.ACR().String()), slog.String("want", flow.ACR.String()))
		f.errorPage(w, r, http.StatusBadRequest, msgRefused)
		return OutcomeRefused
	}
	if len(f.sessionCookie)+len(tokens.AccessToken) > maxCookieBytes {
		// Browsers drop such a cookie, and the user would be sent round in
		// circles.
		f.log(ctx, slog.LevelWarn, "fief: login failed: the access token is too large for a cookie", nil,
			slog.Int("bytes", len(tokens.AccessToken)))
		f.errorPage(w, r, http.StatusBadGateway, msgRefused)
		return OutcomeRefused
	}
	if f.onLogin != nil {
		cp := *tokens
		if err := f.onLogin(ctx, &cp, claims); err != nil {
			f.log(ctx, slog.LevelWarn, "fief: login aborted by OnLogin", err)
			f.errorPage(w, r, http.StatusInternalServerError, msgAborted)
			return OutcomeError
		}
	}
	if f.cache != nil {
		if strings.EqualFold(claims.Sub(), info.UserID()) {
			if err := f.cache.Set(ctx, info.UserID(), claims); err != nil {
				f.log(ctx, slog.LevelWarn, "fief: user info cache write failed at login", err)
			}
		} else {
			f.log(ctx, slog.LevelWarn, "fief: ID token and access token name different users; claims not cached", nil)
		}
	}
	if f.refresh {
		maxAge = min(maxAge, int64(f.maxSessionAge/time.Second))
		f.setRefreshAtLogin(ctx, w, r, tokens, maxAge, info.UserID())
	}
	http.SetCookie(w, f.cookie(f.sessionCookie, tokens.AccessToken, "/", int(maxAge)))
	returnTo, ok := cleanReturnTo(flow.ReturnTo)
	if !ok {
		returnTo = f.defaultReturnTo
	}
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
	return OutcomeOK
}

// exchangeFailed answers a failed code exchange or token validation, and
// returns the login's outcome.
func (f *LoginFlow) exchangeFailed(w http.ResponseWriter, r *http.Request, err error) Outcome {
	var re *RequestError
	switch {
	case errors.Is(err, ErrDiscovery), errors.As(err, &re) && !refusedByFief(re): // 5xx, 408, 429
		f.log(r.Context(), slog.LevelWarn, "fief: login failed: Fief unavailable", err)
		f.errorPage(w, r, http.StatusBadGateway, msgUnavailable)
		return OutcomeUnavailable
	case re != nil && re.Code == "invalid_client":
		// The application's client ID or secret is wrong: not the user's
		// doing, and retrying will not help until the operators fix it.
		f.log(r.Context(), slog.LevelWarn, "fief: login failed: Fief refused the client credentials", err)
		f.errorPage(w, r, http.StatusBadGateway, msgUnavailable)
		return OutcomeRefused
	case re != nil:
		// Typically a code already used or expired: a reloaded page.
		f.log(r.Context(), slog.LevelInfo, "fief: login failed: Fief refused the code", err)
		f.errorPage(w, r, http.StatusBadRequest, msgRefused)
		return OutcomeRefused
	case errors.Is(err, ErrIDTokenInvalid), errors.Is(err, ErrAccessTokenInvalid), errors.Is(err, ErrAccessTokenExpired):
		f.log(r.Context(), slog.LevelWarn, "fief: login failed: Fief's tokens were refused", err)
		f.errorPage(w, r, http.StatusBadGateway, msgRefused)
		return OutcomeRefused
	default:
		if r.Context().Err() == nil {
			f.log(r.Context(), slog.LevelWarn, "fief: login failed: Fief unavailable", err)
		}
		f.errorPage(w, r, http.StatusBadGateway, msgUnavailable)
		return OutcomeUnavailable
	}
}

// Logout returns the handler that logs the user out: it deletes the
// session cookie (and the refresh cookie), removes the user's entry from
// the [UserInfoCache] when one is configured, calls OnLogout, and
// redirects (303) to Fief's logout page, which ends the Fief session and
// sends the browser to AfterLogout. Fief does not revoke access tokens: a
// copy of the token stays valid until it expires.
//
// The user is the one of the session cookie's token when it is valid,
// else, with RefreshSessions, the one the refresh cookie holds (sealed by
// the flow, so authentic), else none: OnLogout then gets "" and no cache
// entry is removed. With RefreshSessions, Logout also spends the refresh
// token at Fief, so that a copy of the refresh cookie is worthless: Fief
// has no revocation endpoint, and a refresh narrowed to the openid scope
// consumes the token without issuing another. That is a request to Fief
// on the logout's path, bounded by 5 seconds; when it fails, the failure
// is logged and the logout goes on.
//
// It answers POST only (405 with Allow: POST otherwise), so that a link,
// an image or a redirect on another site cannot log the user out, and
// refuses (403) a cross-origin POST, such as a form on another site or on
// a sibling subdomain, with an [http.CrossOriginProtection] that trusts the
// origin of RedirectURI. Mount it as "POST /logout" and log out with a form
// on the application's pages:
//
//	<form method="post" action="/logout"><button>Log out</button></form>
func (f *LoginFlow) Logout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			methodNotAllowed(w, http.MethodPost)
			return
		}
		noStore(w)
		if err := f.crossOrigin.Check(r); err != nil {
			f.log(r.Context(), slog.LevelInfo, "fief: logout refused: cross-origin request", err)
			http.Error(w, "Forbidden", http.StatusForbidden)
			return
		}
		ctx := r.Context()
		var userID string
		if token, err := f.extractor.Extract(r); err == nil && token != "" {
			if info, _, err := f.client.verifyAccessToken(ctx, token); err == nil {
				userID = info.UserID()
			}
		}
		refreshCookies := r.CookiesNamed(f.refreshCookie)
		if f.refresh {
			if st := f.openRefresh(refreshCookies); st != nil {
				if userID == "" {
					userID = st.userID // sealed by this flow: authentic
				}
				f.spendRefresh(ctx, st)
			}
		}
		if f.cache != nil && userID != "" {
			if err := f.cache.Delete(ctx, userID); err != nil {
				f.log(ctx, slog.LevelWarn, "fief: user info cache delete failed at logout", err)
			}
		}
		http.SetCookie(w, f.cookie(f.sessionCookie, "", "/", -1))
		if f.refresh || len(refreshCookies) > 0 {
			http.SetCookie(w, f.cookie(f.refreshCookie, "", "/", -1))
		}
		if f.onLogout != nil {
			f.onLogout(ctx, userID)
		}
		http.Redirect(w, r, f.client.LogoutURL(f.afterLogout), http.StatusSeeOther)
	})
}
