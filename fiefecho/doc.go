// Package fiefecho authenticates the requests of an echo (v4) application
// with Fief access tokens: middleware that checks the token with the core
// of package fief ([fief.Route.AuthenticateRequest]) and, when it refuses a
// request, returns an [*echo.HTTPError] for the application's
// HTTPErrorHandler to render, instead of writing the response itself as
// the net/http middleware wrapped by [echo.WrapMiddleware] does.
//
//	auth, err := fief.NewAuthenticator(client)
//	...
//	e := echo.New()
//	api := e.Group("/api", fiefecho.Authenticated(auth))
//	api.GET("/castles", func(c echo.Context) error {
//		info, _ := fiefecho.AccessTokenInfo(c)
//		return c.JSON(http.StatusOK, castlesOf(info.UserID()))
//	})
//	// Outside the group, whose middleware would check the token again:
//	e.DELETE("/api/castles/:id", deleteCastle, fiefecho.Authenticated(auth, fief.RequirePermissions("castles:delete")))
//	e.GET("/me", me, fiefecho.CurrentUser(auth)) // the user's info too
//
// # Refusals
//
// A refused request never reaches the handler. The middleware returns, by
// default ([DefaultErrorHandler]), an [*echo.HTTPError] with a fixed
// message, whose Internal field holds the core's error: the class
// ([fief.ErrUnauthenticated], [fief.ErrForbidden], [fief.ErrUnavailable])
// and the cause, for the application's logs ([errors.Is] and [errors.As]
// see both through the HTTPError). It sets the response's headers first,
// which echo's DefaultHTTPErrorHandler keeps:
//
//   - no token, or an invalid or expired one: 401 "Unauthorized", with
//     WWW-Authenticate: Bearer, plus error="invalid_token" when a token was
//     presented (RFC 6750);
//   - a valid token without a required scope, ACR or permission: 403
//     "Forbidden", with WWW-Authenticate: Bearer error="insufficient_scope";
//   - Fief unavailable: 503 "Service Unavailable", with Retry-After: 5.
//
// With echo's default error handler the body is {"message":"Unauthorized"}
// (and so on). In Debug mode (e.Debug = true) that handler also writes the
// error's text, Internal included, into the body: it can describe Fief's
// answers, so never turn Debug on in production. A [Config.ErrorHandler]
// answers refusals otherwise, e.g. redirecting browsers to a login page.
//
// The middleware does not use the answers configured on the
// [fief.Authenticator] ([fief.WithUnauthorizedHandler],
// [fief.WithForbiddenHandler], [fief.WithUnavailableHandler]): a
// [fief.LoginFlow]'s RedirectToLogin set there does nothing under
// [Authenticated] and [CurrentUser], which always refuse with
// [DefaultErrorHandler]. To answer with them, give [Middleware] the
// [AuthenticatorErrorHandler] of the Authenticator; it writes the response
// ([fief.Authenticator.Refuse]) instead of returning an HTTPError.
//
// # Identity
//
// On success the middleware replaces the request with one carrying the
// derived context, so that handlers find the identity with
// [AccessTokenInfo], [UserInfo] and [Tenant], or with package fief's
// accessors on c.Request().Context(); the same values are stored in the
// echo context under [AccessTokenInfoKey], [UserInfoKey] and [TenantKey],
// for code that reads c.Get. Where the token comes from (the Authorization
// header by default, a cookie, a query parameter) is the
// [fief.Authenticator]'s [fief.Extractor].
package fiefecho
