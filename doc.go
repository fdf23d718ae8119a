// Package fief is the Go client for the Fief authentication server (an
// OpenID Connect provider) and authentication middleware built on it.
//
// There are three ways in:
//
//   - The [Client] ([New]) talks to one Fief tenant for one OAuth client: it
//     validates access tokens offline ([Client.ValidateAccessToken]: RS256
//     pinned, exp required, iss and aud checked, then scopes, ACR and
//     permissions), runs the authorization code flow with PKCE
//     ([Client.AuthURL], [Client.AuthCallback], [Client.AuthRefreshToken],
//     [Client.TokenSource] for golang.org/x/oauth2 clients), decodes and
//     decrypts ID tokens, and calls Fief's user endpoints ([Client.UserInfo],
//     [Client.UpdateProfile], ...). It performs OpenID discovery and caches
//     the tenant key set, refreshed when Fief rotates its key. Construction
//     never touches the network; discovery and the key set are fetched on
//     first use.
//   - The [Authenticator] ([NewAuthenticator]) authenticates requests:
//     [Authenticator.Authenticated] and [Authenticator.CurrentUser] are
//     net/http middleware reading the token with an [Extractor] and checking
//     each route's requirements ([RequireScopes], [RequireACR],
//     [RequirePermissions], [Optional]); handlers read the result with
//     [AccessTokenInfoFromContext] and [UserInfoFromContext].
//   - The [LoginFlow] ([NewLoginFlow]) is the browser login of a web
//     application: login, callback and logout handlers, state and PKCE in
//     sealed cookies bound to the browser, a session cookie the
//     Authenticator reads.
//
// The package has the methods and the semantics of Fief's official Python
// client, with stricter validation where it is safe. Errors wrap the
// sentinels of errors.go ([ErrAccessTokenInvalid], ...) or are a
// [*RequestError]; branch on them with errors.Is and errors.As. Every
// request to Fief takes a context, has a timeout and reads at most 1 MiB.
// Everything is safe for concurrent use.
//
// Importing the package brings in the standard library,
// github.com/lestrrat-go/jwx/v2 and golang.org/x/oauth2 (and what they
// need), nothing else. Package fieftest is Fief in a test; fiefcli logs a
// command-line user in; the rediscache module shares user info on Redis.
package fief
