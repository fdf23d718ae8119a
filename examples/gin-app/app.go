package main

// The application: a gin engine with an API group for access tokens and
// pages for users logged in through fief.LoginFlow.

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/webpage"
	"github.com/fief-go/fief/fiefgin"
	"github.com/gin-gonic/gin"
)

// The permissions the API requires. In Fief, permissions are created in the
// tenant and granted to users directly or through roles.
const (
	permRead   = "castles:read"
	permDelete = "castles:delete"
)

// config is the application's configuration.
type config struct {
	// URL is where browsers reach the application, without a trailing
	// slash: https://app.example.com in production. <URL>/auth-callback
	// must be an allowed redirect URI of the Fief client.
	URL string
	// CookieKey seals the cookies of logins in progress: a secret of at
	// least 32 bytes, the same on every instance. nil: a random key for
	// this process.
	CookieKey []byte
}

// newApp returns the application's handler.
func newApp(client *fief.Client, cfg config, logger *slog.Logger) (http.Handler, error) {
	// The users' info, filled at login from the ID token and on a miss
	// from Fief's userinfo endpoint.
	cache, err := fief.NewMemoryCache(10_000, 5*time.Minute)
	if err != nil {
		return nil, err
	}

	// The API: "Authorization: Bearer <token>", answered with RFC 6750's
	// 401 and 403 (and a 503 when Fief cannot be reached).
	api, err := fief.NewAuthenticator(client, fief.WithUserInfoCache(cache), fief.WithLogger(logger))
	if err != nil {
		return nil, err
	}

	// The pages: the session cookie that the login flow sets; a visitor
	// without a valid one is sent to Fief's login page, to come back to the
	// page asked for.
	flow, err := fief.NewLoginFlow(client, fief.LoginFlowConfig{
		RedirectURI:     cfg.URL + "/auth-callback",
		CookieKey:       cfg.CookieKey,
		UserInfoCache:   cache,
		InsecureCookies: strings.HasPrefix(cfg.URL, "http://"), // plain HTTP: local development only
		Logger:          logger,
	})
	if err != nil {
		return nil, err
	}
	web, err := fief.NewAuthenticator(client,
		fief.WithExtractor(flow.Extractor()),
		fief.WithUserInfoCache(cache),
		fief.WithUnauthorizedHandler(flow.RedirectToLogin()),
		fief.WithLogger(logger),
	)
	if err != nil {
		return nil, err
	}

	r := gin.New()
	r.Use(gin.Recovery())
	// With ContextWithFallback, c itself works as the request's context:
	// fief.AccessTokenInfoFromContext(c) finds the identity, and calls made
	// with c end with the request. fiefgin's accessors work either way.
	r.ContextWithFallback = true

	// Every API route requires castles:read, and is authenticated by one
	// middleware holding all its requirements: a route's middleware inside
	// a group's would check the token a second time. The group is for the
	// routes that need castles:read only; the others, which need more
	// (castles:delete, the user's info), have their own. A refused request
	// is aborted: no handler runs.
	readers := r.Group("/api", fiefgin.Authenticated(api, fief.RequirePermissions(permRead)))
	readers.GET("/castles", listCastles)
	r.DELETE("/api/castles/:id", fiefgin.Authenticated(api, fief.RequirePermissions(permRead, permDelete)), deleteCastle)
	r.GET("/api/me", fiefgin.CurrentUser(api, fief.RequirePermissions(permRead)), me)

	// The pages, and the login flow's handlers as they are (gin.WrapH).
	r.GET("/", gin.WrapF(webpage.Home))
	r.GET("/login", gin.WrapH(flow.Login()))
	r.GET("/auth-callback", gin.WrapH(flow.Callback()))
	r.POST("/logout", gin.WrapH(flow.Logout()))
	r.GET("/protected", fiefgin.CurrentUser(web), protected)
	return r, nil
}

// listCastles answers the castles as JSON.
func listCastles(c *gin.Context) {
	c.JSON(http.StatusOK, []string{"nantes", "rennes", "vannes"})
}

// deleteCastle pretends to delete a castle.
func deleteCastle(c *gin.Context) {
	c.Status(http.StatusNoContent)
}

// me answers who the caller is: the token's user ID and permissions, and
// the user's email address, which CurrentUser loaded.
func me(c *gin.Context) {
	info, _ := fiefgin.AccessTokenInfo(c)
	user, _ := fiefgin.UserInfo(c)
	c.JSON(http.StatusOK, gin.H{"id": info.UserID(), "email": user.Email(), "permissions": info.Permissions()})
}

// protected greets the logged-in user by email address. (The HTML is
// package webpage's.)
func protected(c *gin.Context) {
	user, _ := fiefgin.UserInfo(c)
	c.Header("Cache-Control", "no-store")
	webpage.Protected(c.Writer, c.Request, user.Email())
}
