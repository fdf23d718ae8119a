package fiefgin_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefgin"
	"github.com/fief-go/fief/fieftest"
	"github.com/gin-gonic/gin"
)

// call sends GET url with the access token (none if "") and prints the
// answer.
func call(url, token string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
}

// An API group whose routes all require the castles scope; one of them also
// requires a permission.
func ExampleAuthenticated() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Permissions: []string{"castles:read"}})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	auth, err := fief.NewAuthenticator(client)
	if err != nil {
		log.Fatal(err)
	}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	api := r.Group("/api", fiefgin.Authenticated(auth, fief.RequireScopes("castles")))
	api.GET("/castles", fiefgin.Authenticated(auth, fief.RequirePermissions("castles:read")), func(c *gin.Context) {
		info, _ := fiefgin.AccessTokenInfo(c)
		c.String(http.StatusOK, "castles for %s", info.Scopes())
	})
	app := httptest.NewServer(r)
	defer app.Close()

	call(app.URL+"/api/castles", "")
	call(app.URL+"/api/castles", srv.AccessToken(user.ID, fieftest.Scopes("openid")))
	call(app.URL+"/api/castles", srv.AccessToken(user.ID, fieftest.Scopes("openid", "castles"), fieftest.Permissions()))
	call(app.URL+"/api/castles", srv.AccessToken(user.ID, fieftest.Scopes("openid", "castles")))
	// Output:
	// 401 {"detail":"Unauthorized"}
	// 403 {"detail":"Forbidden"}
	// 403 {"detail":"Forbidden"}
	// 200 castles for [openid castles]
}

// A page greeting the current user, whose info comes from Fief once and
// then from the cache.
func ExampleCurrentUser() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy"})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	cache, err := fief.NewMemoryCache(10_000, 5*time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	auth, err := fief.NewAuthenticator(client, fief.WithUserInfoCache(cache))
	if err != nil {
		log.Fatal(err)
	}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/hello", fiefgin.CurrentUser(auth, fief.Optional()), func(c *gin.Context) {
		if user, ok := fiefgin.UserInfo(c); ok {
			c.String(http.StatusOK, "Hello, %s", user.Email())
			return
		}
		c.String(http.StatusOK, "Hello, anonymous visitor")
	})
	app := httptest.NewServer(r)
	defer app.Close()

	token := srv.AccessToken(user.ID)
	call(app.URL+"/hello", "")
	call(app.URL+"/hello", token)
	call(app.URL+"/hello", token)
	fmt.Println("userinfo calls:", srv.Requests(fieftest.EndpointUserinfo))
	// Output:
	// 200 Hello, anonymous visitor
	// 200 Hello, anne@bretagne.duchy
	// 200 Hello, anne@bretagne.duchy
	// userinfo calls: 1
}

// Where a handler finds the identity: the accessors and c.Get always, and
// fief's functions on c.Request.Context(); on the *gin.Context itself only
// when the engine has ContextWithFallback.
func ExampleAccessTokenInfo() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy"})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	auth, err := fief.NewAuthenticator(client)
	if err != nil {
		log.Fatal(err)
	}
	token := srv.AccessToken(user.ID)

	gin.SetMode(gin.ReleaseMode)
	for _, fallback := range []bool{false, true} {
		r := gin.New()
		r.ContextWithFallback = fallback
		r.GET("/", fiefgin.Authenticated(auth), func(c *gin.Context) {
			_, accessor := fiefgin.AccessTokenInfo(c)
			_, key := c.Get(fiefgin.AccessTokenInfoKey)
			_, request := fief.AccessTokenInfoFromContext(c.Request.Context())
			_, ginContext := fief.AccessTokenInfoFromContext(c)
			c.String(http.StatusOK, "ContextWithFallback=%v: accessor %v, c.Get %v, c.Request.Context() %v, c %v",
				fallback, accessor, key, request, ginContext)
		})
		app := httptest.NewServer(r)
		call(app.URL, token)
		app.Close()
	}
	// Output:
	// 200 ContextWithFallback=false: accessor true, c.Get true, c.Request.Context() true, c false
	// 200 ContextWithFallback=true: accessor true, c.Get true, c.Request.Context() true, c true
}
