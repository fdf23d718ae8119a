package fief

import (
	"errors"
	"io"
	"net/http"
)

// ErrorHandlerFunc answers a request the middleware refuses. err says why;
// branch on it with errors.Is and errors.As and log it if needed, but never
// write its text into the response: it describes the server's view of the
// failure (key set URLs, Fief's answers) to the server's operators only.
//
// An http.Handler h that ignores the reason is adapted with
//
//	fief.ErrorHandlerFunc(func(w http.ResponseWriter, r *http.Request, _ error) { h.ServeHTTP(w, r) })
type ErrorHandlerFunc func(w http.ResponseWriter, r *http.Request, err error)

// The default answers. Their bodies are fixed: no error text ever reaches
// the client.
const (
	bodyUnauthorized = `{"detail":"Unauthorized"}`
	bodyForbidden    = `{"detail":"Forbidden"}`
	bodyUnavailable  = `{"detail":"Service Unavailable"}`
)

func defaultUnauthorized(w http.ResponseWriter, _ *http.Request, err error) {
	if errors.Is(err, ErrNoToken) {
		w.Header().Set("WWW-Authenticate", "Bearer")
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	writeFixed(w, http.StatusUnauthorized, bodyUnauthorized)
}

func defaultForbidden(w http.ResponseWriter, _ *http.Request, _ error) {
	w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
	writeFixed(w, http.StatusForbidden, bodyForbidden)
}

func defaultUnavailable(w http.ResponseWriter, _ *http.Request, _ error) {
	w.Header().Set("Retry-After", "5")
	writeFixed(w, http.StatusServiceUnavailable, bodyUnavailable)
}

func writeFixed(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}
