// Package fieftest runs an in-process server that speaks Fief's
// client-facing protocol, for tests, examples and local development.
//
// A Server listens on a loopback address (httptest) and serves, under its
// tenant path, everything a Fief client talks to:
//
//	GET  /.well-known/openid-configuration  discovery
//	GET  /.well-known/jwks.json             the published signing keys (RSA, no "alg")
//	GET  /authorize                         a real HTML login form
//	POST /login                             the form's target; redirects with a code
//	POST /api/token                         authorization_code (PKCE) and refresh_token grants
//	GET  /api/userinfo (or POST)            the user's claims
//	PATCH /api/profile                      custom fields
//	PATCH /api/password                     password change (ACR 1)
//	PATCH /api/email/change                 email change request (ACR 1)
//	POST /api/email/verify                  email change confirmation (ACR 1)
//	GET  /logout                            redirect to redirect_uri
//
// Status codes, error bodies, token claims and headers follow Fief 0.30: an
// RS256 JWS with header {"alg":"RS256","kid":...}, ID tokens optionally
// encrypted per client (RSA-OAEP-256, A256CBC-HS512), token-endpoint errors
// as 400 {"error":...}, other errors as FastAPI's {"detail":...}. Like a real
// Fief, the issuer does not depend on the serving URL: it defaults to
// "https://fief.test" (plus the tenant path), so clients that check it are
// exercised against an issuer that differs from the address they call.
//
// Besides serving, a Server creates users and clients, mints access and ID
// tokens with chosen scopes, ACR, permissions, lifetimes, claims and headers,
// rotates and removes keys, injects faults (status codes, bodies, latency,
// dropped connections) per endpoint and counts the requests each endpoint
// receives. It issues authorization codes without a browser (IssueCode) and
// drives the login form like a browser would (Authorize).
//
// Every method of Server is safe for concurrent use, so tests can mint tokens
// and change users while requests are being served.
//
// fieftest is not a security boundary: it keeps passwords and codes in memory
// in clear and is meant for loopback use only.
package fieftest
