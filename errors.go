package fief

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/fief-go/fief/internal/bg"
	"github.com/fief-go/fief/internal/oidc"
)

// Sentinel errors, one per exception of the reference Python client. Token
// errors wrap one of them and an error status from Fief is a [*RequestError]
// (possibly wrapped). When Fief cannot be reached or its answer cannot be
// used (a transport error, a timeout, a body over 1 MiB, not the JSON
// expected), the error wraps its cause where there is one
// (context.DeadlineExceeded, a net.Error, [ErrClosed]), and [ErrDiscovery] for
// the OpenID configuration and the key set. Callers branch with errors.Is
// and errors.As, never on text.
var (
	// ErrAccessTokenInvalid reports an access token that is malformed, not
	// signed by the tenant key, signed with another algorithm than RS256,
	// issued by another issuer, not yet valid, or missing a required claim.
	ErrAccessTokenInvalid = errors.New("fief: access token invalid")

	// ErrAccessTokenExpired reports an access token whose exp claim, plus the
	// configured leeway, is in the past.
	ErrAccessTokenExpired = errors.New("fief: access token expired")

	// ErrAccessTokenMissingScope reports a valid access token that lacks a
	// required scope.
	ErrAccessTokenMissingScope = errors.New("fief: access token missing scope")

	// ErrAccessTokenACRTooLow reports a valid access token whose ACR is below
	// the required level.
	ErrAccessTokenACRTooLow = errors.New("fief: access token ACR too low")

	// ErrAccessTokenMissingPermission reports a valid access token that lacks
	// a required permission.
	ErrAccessTokenMissingPermission = errors.New("fief: access token missing permission")

	// ErrIDTokenInvalid reports an ID token that cannot be decrypted or
	// verified, or whose c_hash or at_hash does not match.
	ErrIDTokenInvalid = errors.New("fief: ID token invalid")

	// ErrDiscovery reports a failure to fetch or use the OpenID configuration
	// or the key set (JWKS) of the tenant. The wrapping error says which URL
	// failed and why; it may also wrap a [*RequestError].
	ErrDiscovery = errors.New("fief: discovery failed")

	// ErrClosed reports a call that needed to fetch the OpenID
	// configuration or the key set on a Client after Close.
	ErrClosed = bg.ErrClosed
)

// RequestError reports an HTTP response from Fief with a status of 400 or
// more. It matches the reference client's FiefRequestError.
type RequestError struct {
	// Endpoint names the Fief endpoint that answered, e.g. "token" or
	// "userinfo".
	Endpoint string
	// StatusCode is the HTTP status of the response.
	StatusCode int
	// Code is Fief's error code from the body: the "error" member of the
	// token endpoint's answers (e.g. invalid_grant) or a "detail" string
	// (e.g. ACR_TOO_LOW, or Unauthorized, the reason phrase of the
	// status); "" when the body has neither or it does not look like a
	// code (free text, which may echo the request's input, is never taken).
	Code string
	// Body is the raw response body, cut to 2 KiB. Fief's error bodies are
	// JSON such as {"error":"invalid_grant"} or {"detail":"ACR_TOO_LOW"}.
	Body string
}

// refusedByFief reports whether err is Fief's refusal of the request
// itself (a 4xx answer), not a failure to answer it: 408 and 429 say
// "later", like a 5xx.
func refusedByFief(err error) bool {
	var re *RequestError
	return errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500 &&
		re.StatusCode != http.StatusRequestTimeout && re.StatusCode != http.StatusTooManyRequests
}

// newRequestError returns the RequestError of a response, its code parsed
// once.
func newRequestError(endpoint string, status int, body []byte) *RequestError {
	return &RequestError{Endpoint: endpoint, StatusCode: status, Code: errorCode(body, status), Body: oidc.Snippet(body)}
}

// Error implements error. It names Fief's error code when the body has one
// but never quotes the body itself: Fief's validation errors echo the
// request's input, a password for instance, and error texts end up in
// logs.
func (e *RequestError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("fief: %s request failed with status %d (%s)", e.Endpoint, e.StatusCode, e.Code)
	}
	return fmt.Sprintf("fief: %s request failed with status %d", e.Endpoint, e.StatusCode)
}

// errorCode returns the error code of an error body (see RequestError.Code).
func errorCode(b []byte, status int) string {
	var body struct {
		Error  any `json:"error"`
		Detail any `json:"detail"`
	}
	if json.Unmarshal(b, &body) != nil {
		return ""
	}
	for _, v := range []any{body.Error, body.Detail} {
		if s, ok := v.(string); ok && isCode(s, status) {
			return s
		}
	}
	return ""
}

// isCode accepts what Fief puts in its error bodies as codes: one word of
// letters, digits and '_', with at least one letter and in a single case
// (invalid_grant, ACR_TOO_LOW), or the reason phrase of the response's
// status (FastAPI's default detail, such as "Not Found"). Anything else may
// be free text from Fief or a proxy in front of it, which can echo the
// request's input, or a token (mixed-case base64), and is never quoted.
func isCode(s string, status int) bool {
	if s != "" && s == http.StatusText(status) {
		return true
	}
	if len(s) > 64 {
		return false
	}
	lower, upper := false, false
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= '0' && c <= '9' || c == '_':
		default:
			return false
		}
	}
	return lower != upper
}

// invalidAccessToken returns an [ErrAccessTokenInvalid] error with a reason.
func invalidAccessToken(reason string) error {
	return fmt.Errorf("%w: %s", ErrAccessTokenInvalid, reason)
}

// invalidIDToken returns an [ErrIDTokenInvalid] error with a reason.
func invalidIDToken(reason string) error {
	return fmt.Errorf("%w: %s", ErrIDTokenInvalid, reason)
}

// The classes of authentication failures. Every error of
// [Route.Authenticate] wraps exactly one of them, and its cause
// ([ErrNoToken], [ErrAccessTokenExpired], [ErrAccessTokenMissingScope],
// [ErrDiscovery], a [*RequestError], ...): adapters map the class to their
// transport's answer and may look at the cause for details (a challenge, a
// log line), never showing its text to the caller.
var (
	// ErrUnauthenticated: no token, or a malformed, invalid or expired
	// one, or one Fief refused at its userinfo endpoint. HTTP 401, gRPC and
	// Connect Unauthenticated.
	ErrUnauthenticated = errors.New("fief: unauthenticated")
	// ErrForbidden: a valid token without a scope, the ACR or a permission
	// the route requires. HTTP 403, gRPC and Connect PermissionDenied.
	ErrForbidden = errors.New("fief: forbidden")
	// ErrUnavailable: Fief cannot be used (no key set yet, userinfo
	// failing), or the caller went away. HTTP 503, gRPC and Connect
	// Unavailable.
	ErrUnavailable = errors.New("fief: authentication unavailable")
)

// authError is an error of a class, with its cause.
type authError struct {
	class, cause error
}

func (e *authError) Error() string { return e.cause.Error() }

func (e *authError) Unwrap() []error { return []error{e.class, e.cause} }

// classify wraps a cause in its class.
func classify(cause error) error {
	switch {
	case errors.Is(cause, ErrNoToken), errors.Is(cause, ErrAccessTokenInvalid), errors.Is(cause, ErrAccessTokenExpired):
		return &authError{ErrUnauthenticated, cause}
	case errors.Is(cause, ErrAccessTokenMissingScope), errors.Is(cause, ErrAccessTokenACRTooLow),
		errors.Is(cause, ErrAccessTokenMissingPermission):
		return &authError{ErrForbidden, cause}
	}
	return &authError{ErrUnavailable, cause}
}

// ErrNoToken is the error the unauthorized handler receives when the request
// carries no access token at all. It does not wrap [ErrAccessTokenInvalid]:
// per RFC 6750 a request without credentials is challenged without an error
// code, and a web application typically redirects it to the login page.
var ErrNoToken = errors.New("fief: no access token in the request")
