package fief

import (
	"bytes"
	"html/template"
	"net/http"
)

// The messages of the error page: fixed text, never request data.
const (
	msgIncomplete  = "The login response is incomplete. Please log in again."
	msgInvalidFlow = "This login attempt is invalid, has expired or was already completed. Please log in again."
	msgRefused     = "The login could not be completed. Please log in again."
	msgUnavailable = "Login is temporarily unavailable. Please try again in a few minutes."
	msgDenied      = "The login was cancelled or access was denied."
	msgLoginNeeded = "You need to log in to continue. Please log in again."
	msgFiefRefused = "The authentication server refused this application's login request. Please contact the site's administrators."
	msgFiefError   = "The authentication server could not log you in. Please try again."
	msgAborted     = "The login could not be completed. Please try again later."
)

// fiefErrorMessage returns the status and message of the error page for an
// error code Fief sent to the callback.
func fiefErrorMessage(code string) (int, string) {
	switch code {
	case "access_denied":
		return http.StatusBadRequest, msgDenied
	case "login_required", "interaction_required", "consent_required", "account_selection_required":
		return http.StatusBadRequest, msgLoginNeeded
	case "invalid_request", "invalid_client", "invalid_scope", "unauthorized_client", "unsupported_response_type",
		"request_not_supported", "request_uri_not_supported", "invalid_request_uri", "invalid_request_object",
		"registration_not_supported":
		return http.StatusBadRequest, msgFiefRefused
	case "server_error", "temporarily_unavailable":
		return http.StatusBadGateway, msgUnavailable
	}
	return http.StatusBadRequest, msgFiefError
}

var errorPageTemplate = template.Must(template.New("").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Login failed</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5}</style>
</head>
<body>
<h1>Login failed</h1>
<p id="fief-login-error" role="alert">{{.Message}}</p>
<p><a href="{{.Home}}">Back to the application</a></p>
</body>
</html>
`))

// defaultErrorPage is the built-in error page.
func (f *LoginFlow) defaultErrorPage(w http.ResponseWriter, _ *http.Request, status int, message string) {
	var buf bytes.Buffer
	_ = errorPageTemplate.Execute(&buf, struct{ Message, Home string }{message, f.defaultReturnTo})
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	noStore(w)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
}
