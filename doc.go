// Package fief is a Go client for the Fief authentication server (an OpenID
// Connect provider) and net/http middleware built on it.
//
// A Client performs OpenID discovery, caches the tenant key set (JWKS) and
// refreshes it when Fief rotates its key, builds authorization URLs with
// PKCE, exchanges codes and refreshes tokens through golang.org/x/oauth2,
// decodes (and decrypts) ID tokens, validates access tokens offline and calls
// Fief's user endpoints. It has the methods and the semantics of the official
// Python client, with stricter validation where it is safe: RS256 is pinned,
// exp is required, iss must equal the discovered issuer, audiences can be
// restricted, and every response body is capped.
//
// Construction never touches the network; discovery and the key set are
// fetched on first use and cached. A Client is safe for concurrent use.
package fief
