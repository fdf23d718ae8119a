package fieftest

import (
	"crypto/subtle"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Lifetimes of the authorization flow's state, Fief's defaults.
const (
	loginSessionLifetime = time.Hour
	codeLifetime         = 10 * time.Minute
)

// loginSessionCookie is the cookie that carries the login session between
// /authorize and /login, as in Fief; the form also carries it.
const loginSessionCookie = "fief_login_session"

// loginSession is an authorization request waiting for the user to log in.
type loginSession struct {
	clientID, redirectURI, state, nonce string
	scopes                              []string
	challenge, challengeMethod          string
	loginHint                           string
	expires                             time.Time
}

// authCode is an issued authorization code, waiting for its exchange.
type authCode struct {
	clientID, redirectURI, userID string
	scopes                        []string
	challenge, challengeMethod    string
	nonce, acr                    string
	authTime, expires             time.Time
}

// CodeRequest describes an authorization code for IssueCode: what
// /authorize and the login form would have recorded.
type CodeRequest struct {
	// UserID is the user who logged in. It must exist.
	UserID string
	// ClientID is the client the code is for; "" means the default client.
	ClientID string
	// RedirectURI is the redirect_uri of the authorization request, which
	// the token request must repeat. It is required.
	RedirectURI string
	// Scopes are the granted scopes; nil means ["openid"]. Include
	// "offline_access" to get a refresh token.
	Scopes []string
	// CodeChallenge and CodeChallengeMethod ("plain", the default when a
	// challenge is given, or "S256") set up PKCE.
	CodeChallenge, CodeChallengeMethod string
	// Nonce goes into the ID token.
	Nonce string
	// ACR is the ACR of the tokens; "" means "1" (the user typed a
	// password).
	ACR string
}

// IssueCode returns an authorization code as /authorize and a successful
// login would have issued it, without a browser. It is valid for 10
// minutes, once. IssueCode panics if the user or the client does not exist,
// if RedirectURI is empty or not allowed for the client, or if
// CodeChallengeMethod is unknown.
func (s *Server) IssueCode(r CodeRequest) string {
	if r.ClientID == "" {
		r.ClientID = s.ClientID
	}
	if r.Scopes == nil {
		r.Scopes = []string{"openid"}
	}
	if r.ACR == "" {
		r.ACR = "1"
	}
	method, ok := challengeMethod(r.CodeChallenge, r.CodeChallengeMethod)
	if !ok {
		panic(fmt.Sprintf("fieftest: IssueCode: unknown code challenge method %q", r.CodeChallengeMethod))
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[r.UserID]; !ok {
		panic(fmt.Sprintf("fieftest: IssueCode: unknown user %q", r.UserID))
	}
	cl, ok := s.clients[r.ClientID]
	if !ok {
		panic(fmt.Sprintf("fieftest: IssueCode: unknown client %q", r.ClientID))
	}
	if r.RedirectURI == "" || !cl.allowsRedirect(r.RedirectURI) {
		panic(fmt.Sprintf("fieftest: IssueCode: redirect URI %q is not allowed for client %q", r.RedirectURI, r.ClientID))
	}
	return s.storeCode(&authCode{
		clientID:        r.ClientID,
		redirectURI:     r.RedirectURI,
		userID:          r.UserID,
		scopes:          slices.Clone(r.Scopes),
		challenge:       r.CodeChallenge,
		challengeMethod: method,
		nonce:           r.Nonce,
		acr:             r.ACR,
		authTime:        time.Now(),
	})
}

// challengeMethod validates a PKCE method: "plain" is the default when a
// challenge is given, and no challenge means no method.
func challengeMethod(challenge, method string) (string, bool) {
	switch {
	case challenge == "":
		return "", true
	case method == "":
		return "plain", true
	case method == "plain" || method == "S256":
		return method, true
	default:
		return "", false
	}
}

// storeCode records c under a new code and returns the code. s.mu must be
// held.
func (s *Server) storeCode(c *authCode) string {
	now := time.Now()
	maps.DeleteFunc(s.codes, func(_ string, c *authCode) bool { return now.After(c.expires) })
	c.expires = now.Add(codeLifetime)
	code := randomToken()
	s.codes[code] = c
	return code
}

// handleAuthorize serves GET /authorize: it validates the authorization
// request like Fief and shows the login form. Errors about the client or
// the redirect URI get an error page; the others are redirected to the
// client. acr_values, lang and max_age are accepted and ignored; "screen=
// register" shows the login form too.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	clientID := q.Get("client_id")
	if clientID == "" {
		writeErrorPage(w, http.StatusBadRequest, "invalid_client", "client_id is missing")
		return
	}
	s.mu.Lock()
	cl, ok := s.clients[clientID]
	s.mu.Unlock()
	if !ok {
		writeErrorPage(w, http.StatusBadRequest, "invalid_client", "Unknown client")
		return
	}
	redirectURI := q.Get("redirect_uri")
	if redirectURI == "" {
		writeErrorPage(w, http.StatusBadRequest, "invalid_redirect_uri", "redirect_uri is missing")
		return
	}
	if !cl.allowsRedirect(redirectURI) {
		writeErrorPage(w, http.StatusBadRequest, "invalid_redirect_uri", "redirect_uri is not allowed for this client")
		return
	}

	sess, oauthErr := parseAuthorizeRequest(q)
	if oauthErr != nil {
		redirectWith(w, redirectURI, url.Values{"error": {oauthErr.code}, "error_description": {oauthErr.description}}, q.Get("state"))
		return
	}
	sess.clientID, sess.redirectURI = clientID, redirectURI
	id := s.storeLoginSession(sess)
	http.SetCookie(w, &http.Cookie{
		Name:     loginSessionCookie,
		Value:    id,
		Path:     s.cookiePath(),
		MaxAge:   int(loginSessionLifetime.Seconds()),
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
	writeLoginPage(w, http.StatusOK, loginPage{Action: s.tenantPath + "/login", Session: id, Email: sess.loginHint})
}

// authorizeError is an error /authorize reports by redirecting to the
// client.
type authorizeError struct {
	code, description string
}

// parseAuthorizeRequest validates the parameters of an authorization
// request other than client_id and redirect_uri, like Fief, and returns
// the login session they describe.
func parseAuthorizeRequest(q url.Values) (*loginSession, *authorizeError) {
	if q.Has("request") {
		return nil, &authorizeError{"request_not_supported", "request parameter is not supported"}
	}
	switch q.Get("response_type") {
	case "code":
	case "":
		return nil, &authorizeError{"invalid_request", "response_type is missing"}
	default:
		return nil, &authorizeError{"unsupported_response_type", "only response_type=code is supported"}
	}
	scopes := strings.Fields(q.Get("scope"))
	if len(scopes) == 0 {
		return nil, &authorizeError{"invalid_request", "scope is missing"}
	}
	if !slices.Contains(scopes, "openid") {
		return nil, &authorizeError{"invalid_scope", "scope must contain openid"}
	}
	challenge := q.Get("code_challenge")
	method, ok := challengeMethod(challenge, q.Get("code_challenge_method"))
	if !ok {
		return nil, &authorizeError{"invalid_request", "code_challenge_method must be plain or S256"}
	}
	switch q.Get("prompt") {
	case "", "login":
	case "none", "consent":
		// There are no Fief sessions to reuse: the user must log in.
		return nil, &authorizeError{"login_required", "the user has no session"}
	default:
		return nil, &authorizeError{"invalid_request", "prompt must be none, login or consent"}
	}
	switch q.Get("screen") {
	case "", "login", "register":
	default:
		return nil, &authorizeError{"invalid_request", "screen must be login or register"}
	}
	return &loginSession{
		state:           q.Get("state"),
		nonce:           q.Get("nonce"),
		scopes:          scopes,
		challenge:       challenge,
		challengeMethod: method,
		loginHint:       q.Get("login_hint"),
	}, nil
}

// handleLogin serves /login: GET shows the form of the current login
// session, POST checks the credentials and redirects with a code.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		writeErrorPage(w, http.StatusBadRequest, "invalid_request", "The form cannot be read.")
		return
	}
	id := r.Form.Get("login_session")
	if id == "" {
		if c, err := r.Cookie(loginSessionCookie); err == nil {
			id = c.Value
		}
	}
	sess, ok := s.loginSession(id)
	if !ok {
		writeInvalidSession(w)
		return
	}
	page := loginPage{Action: s.tenantPath + "/login", Session: id, Email: sess.loginHint}
	if r.Method == http.MethodGet {
		writeLoginPage(w, http.StatusOK, page)
		return
	}

	email, password := r.PostForm.Get("email"), r.PostForm.Get("password")
	userID, ok := s.checkCredentials(email, password)
	if !ok {
		page.Email, page.Error = email, "Invalid email or password."
		writeLoginPage(w, http.StatusBadRequest, page)
		return
	}
	code, ok := s.completeLogin(id, userID)
	if !ok {
		writeInvalidSession(w) // a concurrent submission used the session
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginSessionCookie, Path: s.cookiePath(), MaxAge: -1, HttpOnly: true})
	redirectWith(w, sess.redirectURI, url.Values{"code": {code}}, sess.state)
}

// loginSession returns the unexpired login session id.
func (s *Server) loginSession(id string) (*loginSession, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.loginSessions[id]
	if ok && time.Now().After(sess.expires) {
		delete(s.loginSessions, id)
		return nil, false
	}
	return sess, ok
}

// checkCredentials returns the ID of the active user with that email and
// password.
func (s *Server) checkCredentials(email, password string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userByEmail(email)
	if u == nil || u.Inactive || u.Password == "" ||
		subtle.ConstantTimeCompare([]byte(password), []byte(u.Password)) != 1 {
		return "", false
	}
	return u.ID, true
}

// completeLogin consumes login session id and issues its code for userID,
// with ACR 1 since a password was typed. It reports false if the session
// is gone.
func (s *Server) completeLogin(id, userID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.loginSessions[id]
	if !ok {
		return "", false
	}
	delete(s.loginSessions, id)
	return s.storeCode(&authCode{
		clientID:        sess.clientID,
		redirectURI:     sess.redirectURI,
		userID:          userID,
		scopes:          sess.scopes,
		challenge:       sess.challenge,
		challengeMethod: sess.challengeMethod,
		nonce:           sess.nonce,
		acr:             "1",
		authTime:        time.Now(),
	}), true
}

// writeInvalidSession answers a login without a valid login session.
func writeInvalidSession(w http.ResponseWriter) {
	writeErrorPage(w, http.StatusBadRequest, "invalid_session",
		"Your login session is invalid or has expired. Start again from the application.")
}

// storeLoginSession records sess under a new ID and returns the ID.
func (s *Server) storeLoginSession(sess *loginSession) string {
	now := time.Now()
	sess.expires = now.Add(loginSessionLifetime)
	id := randomToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.DeleteFunc(s.loginSessions, func(_ string, l *loginSession) bool { return now.After(l.expires) })
	s.loginSessions[id] = sess
	return id
}

// cookiePath is the path of the Server's cookies: the tenant path.
func (s *Server) cookiePath() string {
	if s.tenantPath == "" {
		return "/"
	}
	return s.tenantPath
}

// redirectWith answers 302 to redirectURI with params (and state, if any)
// added to its query.
func redirectWith(w http.ResponseWriter, redirectURI string, params url.Values, state string) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		writeErrorPage(w, http.StatusBadRequest, "invalid_redirect_uri", "redirect_uri is not a valid URL")
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}
