package fief

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/fief-go/fief/internal/jose"
)

// MaxTokenLength is the length in bytes of the longest access token the
// middleware and the client accept, 16 KiB. Fief's tokens are a few KiB;
// longer ones are refused with [ErrTokenTooLarge] before any parsing.
const MaxTokenLength = jose.MaxTokenSize

// Errors of the built-in extractors. Both wrap [ErrAccessTokenInvalid], so the
// middleware answers them like an invalid token (401).
var (
	// ErrTokenTooLarge reports a token longer than MaxTokenLength.
	ErrTokenTooLarge = fmt.Errorf("%w: token longer than %d bytes", ErrAccessTokenInvalid, MaxTokenLength)

	// ErrMalformedAuthorization reports credentials that cannot be read
	// unambiguously: several Authorization headers, or several query
	// parameters with the token's name.
	ErrMalformedAuthorization = fmt.Errorf("%w: credentials given more than once", ErrAccessTokenInvalid)
)

// Extractor finds the access token in a request. A request without a token
// gives "" and a nil error: that is not an error, and [Optional] routes let it
// through. An error means the request tried to present a token but did it
// wrong; the middleware answers it like an invalid token. Implementations
// must be safe for concurrent use and must not modify the request.
type Extractor interface {
	Extract(r *http.Request) (token string, err error)
}

// ExtractorFunc adapts a function to the Extractor interface.
type ExtractorFunc func(r *http.Request) (token string, err error)

// Extract calls f(r).
func (f ExtractorFunc) Extract(r *http.Request) (string, error) { return f(r) }

// BearerToken returns the Extractor of the Authorization header in the
// Bearer scheme of RFC 6750: "Bearer <token>", the scheme in any case. A
// header with another scheme, or that is not exactly a scheme and a token
// separated by white space, gives no token; several Authorization headers
// give [ErrMalformedAuthorization], a token longer than [MaxTokenLength]
// ErrTokenTooLarge. It is the middleware's default.
func BearerToken() Extractor { return bearerExtractor{} }

type bearerExtractor struct{}

func (bearerExtractor) Extract(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", nil
	case 1:
		return parseBearer(values[0])
	}
	return "", ErrMalformedAuthorization
}

// parseBearer returns the token of an Authorization header value in the
// Bearer scheme, as the reference client does: split on white space, two
// parts exactly, case-insensitive scheme.
func parseBearer(v string) (string, error) {
	v = strings.Trim(v, " \t")
	i := indexBlank(v)
	if i < 0 || !strings.EqualFold(v[:i], "Bearer") {
		return "", nil
	}
	token := strings.TrimLeft(v[i:], " \t")
	if len(token) > MaxTokenLength {
		return "", ErrTokenTooLarge
	}
	if indexBlank(token) >= 0 {
		return "", nil
	}
	return token, nil
}

// indexBlank returns the index of the first space or tab in s, or -1. It
// runs on every request over the whole token: strings.IndexByte is
// vectorised, where strings.IndexAny tests byte by byte.
func indexBlank(s string) int {
	i, j := strings.IndexByte(s, ' '), strings.IndexByte(s, '\t')
	if i < 0 || (j >= 0 && j < i) {
		return j
	}
	return i
}

// CookieToken returns the Extractor of the cookie called name, for web
// applications that keep the access token in an HttpOnly cookie. A missing
// or empty cookie gives no token; when the browser sends several cookies
// with that name, the first one counts, as with http.Request.Cookie. A value
// longer than [MaxTokenLength] gives ErrTokenTooLarge. [CookieToken] panics if
// name is empty.
func CookieToken(name string) Extractor {
	if name == "" {
		panic("fief: CookieToken: empty cookie name")
	}
	return cookieExtractor{name: name}
}

type cookieExtractor struct{ name string }

func (e cookieExtractor) Extract(r *http.Request) (string, error) {
	c, err := r.Cookie(e.name)
	if err != nil {
		return "", nil
	}
	if len(c.Value) > MaxTokenLength {
		return "", ErrTokenTooLarge
	}
	return c.Value, nil
}

// QueryToken returns the Extractor of the URL query parameter called name.
// Use it only where a header cannot be set, such as EventSource and
// WebSocket connections from browsers: URLs end up in access logs, proxy
// logs and browser history, tokens with them. A missing or empty parameter
// gives no token; several parameters with that name give
// [ErrMalformedAuthorization], a value longer than [MaxTokenLength]
// ErrTokenTooLarge. [QueryToken] panics if name is empty.
func QueryToken(name string) Extractor {
	if name == "" {
		panic("fief: QueryToken: empty parameter name")
	}
	return queryExtractor{name: name}
}

type queryExtractor struct{ name string }

func (e queryExtractor) Extract(r *http.Request) (string, error) {
	if r.URL == nil || r.URL.RawQuery == "" {
		return "", nil
	}
	values := r.URL.Query()[e.name]
	switch {
	case len(values) == 0:
		return "", nil
	case len(values) > 1:
		return "", ErrMalformedAuthorization
	case len(values[0]) > MaxTokenLength:
		return "", ErrTokenTooLarge
	}
	return values[0], nil
}

// FirstToken returns an Extractor that tries each of extractors in order
// and returns the first token found. An error stops the search: a request
// that presents a malformed token is not rescued by another source.
// FirstToken panics if an extractor is nil.
func FirstToken(extractors ...Extractor) Extractor {
	for _, e := range extractors {
		if e == nil {
			panic("fief: FirstToken: nil extractor")
		}
	}
	return firstExtractor(append([]Extractor(nil), extractors...))
}

type firstExtractor []Extractor

func (f firstExtractor) Extract(r *http.Request) (string, error) {
	for _, e := range f {
		token, err := e.Extract(r)
		if err != nil {
			return "", err
		}
		if token != "" {
			return token, nil
		}
	}
	return "", nil
}
