package fieftest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// OAuth error codes of the token endpoint.
const (
	errInvalidRequest       = "invalid_request"
	errInvalidClient        = "invalid_client"
	errInvalidGrant         = "invalid_grant"
	errUnsupportedGrantType = "unsupported_grant_type"
	errInvalidScope         = "invalid_scope"
)

// refreshGrant is what a refresh token stands for.
type refreshGrant struct {
	clientID, userID  string
	scopes            []string
	authTime, expires time.Time
}

// grant is an authorization the token endpoint turns into tokens.
type grant struct {
	userID   string
	scopes   []string
	acr      string
	authTime time.Time
	nonce    string
	code     string // the exchanged code, for c_hash; "" on refresh
}

// handleToken serves POST /api/token with Fief's client authentication,
// grants and error bodies.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		writeTokenError(w, errInvalidRequest)
		return
	}
	form := r.PostForm
	grantType := form.Get("grant_type")
	if grantType == "" {
		writeTokenError(w, errInvalidRequest)
		return
	}
	cl, ok := s.authenticateClient(r, form, grantType)
	if !ok {
		writeTokenError(w, errInvalidClient)
		return
	}

	var g grant
	var errCode string
	switch grantType {
	case "authorization_code":
		g, errCode = s.codeGrant(cl, form)
	case "refresh_token":
		g, errCode = s.refreshGrant(cl, form)
	default:
		errCode = errUnsupportedGrantType
	}
	if errCode != "" {
		writeTokenError(w, errCode)
		return
	}
	s.writeTokens(w, cl, g)
}

// authenticateClient authenticates the client like Fief, first match wins:
// client_secret_basic, client_secret_post, then none (public clients; with
// a code_verifier for the authorization_code grant).
func (s *Server) authenticateClient(r *http.Request, form url.Values, grantType string) (*client, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, secret, ok := r.BasicAuth(); ok {
		if cl, ok := s.clients[id]; ok && cl.secretMatches(secret) {
			return cl, true
		}
	}
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if id == "" {
		return nil, false
	}
	cl, ok := s.clients[id]
	switch {
	case !ok:
		return nil, false
	case secret != "" && cl.secretMatches(secret):
		return cl, true
	case cl.public() && (grantType != "authorization_code" || form.Get("code_verifier") != ""):
		return cl, true
	default:
		return nil, false
	}
}

// codeGrant validates an authorization_code grant and consumes the code.
func (s *Server) codeGrant(cl *client, form url.Values) (grant, string) {
	code, redirectURI, verifier := form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier")
	if code == "" || redirectURI == "" {
		return grant{}, errInvalidRequest
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[code]
	if ok && time.Now().After(c.expires) {
		delete(s.codes, code)
		ok = false
	}
	if !ok || c.clientID != cl.ID || c.redirectURI != redirectURI ||
		!verifyPKCE(c.challenge, c.challengeMethod, verifier) {
		return grant{}, errInvalidGrant
	}
	if _, ok := s.users[c.userID]; !ok {
		return grant{}, errInvalidGrant
	}
	delete(s.codes, code)
	return grant{
		userID:   c.userID,
		scopes:   c.scopes,
		acr:      c.acr,
		authTime: c.authTime,
		nonce:    c.nonce,
		code:     code,
	}, ""
}

// verifyPKCE checks a code_verifier against the stored challenge in
// constant time. Without a challenge, no verifier may be sent.
func verifyPKCE(challenge, method, verifier string) bool {
	if challenge == "" {
		return verifier == ""
	}
	if verifier == "" {
		return false
	}
	computed := verifier
	if method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		computed = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(computed), []byte(challenge)) == 1
}

// refreshGrant validates a refresh_token grant and consumes the refresh
// token (rotation): under the Server's lock, so that of concurrent requests
// with one refresh token exactly one succeeds and the others get
// invalid_grant, as a reused (spent) refresh token does in Fief. The tokens it leads to have ACR 0 and keep the original
// auth_time.
func (s *Server) refreshGrant(cl *client, form url.Values) (grant, string) {
	token := form.Get("refresh_token")
	if token == "" {
		return grant{}, errInvalidRequest
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rg, ok := s.refreshTokens[token]
	if ok && time.Now().After(rg.expires) {
		delete(s.refreshTokens, token)
		ok = false
	}
	if !ok || rg.clientID != cl.ID {
		return grant{}, errInvalidGrant
	}
	scopes := rg.scopes
	if requested := strings.Fields(form.Get("scope")); len(requested) > 0 {
		for _, sc := range requested {
			if !slices.Contains(rg.scopes, sc) {
				return grant{}, errInvalidScope
			}
		}
		scopes = requested
	}
	if _, ok := s.users[rg.userID]; !ok {
		return grant{}, errInvalidGrant
	}
	delete(s.refreshTokens, token)
	return grant{userID: rg.userID, scopes: scopes, acr: "0", authTime: rg.authTime}, ""
}

// writeTokens mints the tokens of g for cl and writes the token response.
func (s *Server) writeTokens(w http.ResponseWriter, cl *client, g grant) {
	sp := &tokenSpec{
		scopes:      g.scopes,
		acr:         g.acr,
		authTime:    g.authTime,
		audience:    []string{cl.ID},
		audienceSet: true,
		clientID:    cl.ID,
		nonce:       g.nonce,
	}
	access := s.mintAccessToken(g.userID, sp)
	sp.atHash = ValidationHash(access)
	if g.code != "" {
		sp.cHash = ValidationHash(g.code)
	}
	body := map[string]any{
		"access_token": access,
		"id_token":     s.mintIDToken(g.userID, sp),
		"token_type":   "bearer",
		"expires_in":   int64(s.lifetime.Seconds()),
	}
	if slices.Contains(g.scopes, "offline_access") {
		body["refresh_token"] = s.storeRefreshToken(&refreshGrant{
			clientID: cl.ID,
			userID:   g.userID,
			scopes:   g.scopes,
			authTime: g.authTime,
		})
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, body)
}

// storeRefreshToken records rg under a new refresh token and returns it.
func (s *Server) storeRefreshToken(rg *refreshGrant) string {
	now := time.Now()
	rg.expires = now.Add(s.refreshLifetime)
	token := randomToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.DeleteFunc(s.refreshTokens, func(_ string, g *refreshGrant) bool { return now.After(g.expires) })
	s.refreshTokens[token] = rg
	return token
}

// writeTokenError answers 400 {"error": code}, the token endpoint's error
// shape (no error_description, as in Fief).
func writeTokenError(w http.ResponseWriter, code string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code})
}
