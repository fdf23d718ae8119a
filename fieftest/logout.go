package fieftest

import (
	"net/http"
	"net/url"
)

// handleLogout serves GET /logout: like Fief, it redirects to any absolute
// redirect_uri (not checked against the clients' redirect URIs) and clears
// the Fief session cookie.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	redirectURI := r.URL.Query().Get("redirect_uri")
	if u, err := url.Parse(redirectURI); err != nil || u.Scheme == "" || u.Host == "" {
		writeErrorPage(w, http.StatusBadRequest, "invalid_request", "redirect_uri is missing or invalid")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "fief_session", Path: s.cookiePath(), MaxAge: -1, HttpOnly: true})
	w.Header().Set("Location", redirectURI)
	w.WriteHeader(http.StatusFound)
}
