package fiefecho_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefecho"
	"github.com/fief-go/fief/fieftest"
	"github.com/labstack/echo/v4"
)

// get sends a GET request with token as a Bearer token ("" for none) and
// prints the answer's status, WWW-Authenticate or Location header, and body.
func get(url, token string, header ...string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	line := fmt.Sprint(resp.StatusCode)
	for _, h := range []string{"WWW-Authenticate", "Location"} {
		if v := resp.Header.Get(h); v != "" {
			line += " " + h + ": " + v
		}
	}
	if b := strings.TrimSpace(string(body)); b != "" {
		line += " " + b
	}
	fmt.Println(line)
}

// A group of API routes behind Fief access tokens, and a route with a
// permission to hold. Refusals go through echo's HTTPErrorHandler.
func Example() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Permissions: []string{"castles:read"}})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	auth, err := fief.NewAuthenticator(client)
	if err != nil {
		log.Fatal(err)
	}

	e := echo.New()
	api := e.Group("/api", fiefecho.Authenticated(auth))
	api.GET("/castles", func(c echo.Context) error {
		info, _ := fiefecho.AccessTokenInfo(c) // or fief.AccessTokenInfoFromContext(c.Request().Context())
		return c.String(http.StatusOK, fmt.Sprint("castles of the user: ", info.UserID() == user.ID))
	})
	// Outside the group, whose middleware would check the token again.
	e.DELETE("/api/castles/:id", func(c echo.Context) error {
		return c.NoContent(http.StatusNoContent)
	}, fiefecho.Authenticated(auth, fief.RequirePermissions("castles:delete")))
	app := httptest.NewServer(e)
	defer app.Close()

	token := srv.AccessToken(user.ID)
	get(app.URL+"/api/castles", token)
	get(app.URL+"/api/castles", "")
	get(app.URL+"/api/castles", "forged")
	req, _ := http.NewRequest(http.MethodDelete, app.URL+"/api/castles/3", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("DELETE:", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	// Output:
	// 200 castles of the user: true
	// 401 WWW-Authenticate: Bearer {"message":"Unauthorized"}
	// 401 WWW-Authenticate: Bearer error="invalid_token" {"message":"Unauthorized"}
	// DELETE: 403 Bearer error="insufficient_scope"
}

// CurrentUser also loads the user's info, once per user with a cache.
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

	e := echo.New()
	e.GET("/me", func(c echo.Context) error {
		u, _ := fiefecho.UserInfo(c)
		return c.String(http.StatusOK, "hello "+u.Email())
	}, fiefecho.CurrentUser(auth))
	app := httptest.NewServer(e)
	defer app.Close()

	token := srv.AccessToken(user.ID)
	get(app.URL+"/me", token)
	get(app.URL+"/me", token)
	fmt.Println("userinfo calls:", srv.Requests(fieftest.EndpointUserinfo))
	// Output:
	// 200 hello anne@bretagne.duchy
	// 200 hello anne@bretagne.duchy
	// userinfo calls: 1
}

// Middleware takes a Config like echo's own middleware: a Skipper, and an
// ErrorHandler that here sends browsers to the login page and hands the
// other refusals to DefaultErrorHandler.
func ExampleMiddleware() {
	srv := fieftest.New()
	defer srv.Close()
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	auth, err := fief.NewAuthenticator(client)
	if err != nil {
		log.Fatal(err)
	}

	e := echo.New()
	e.Use(fiefecho.Middleware(auth.Route(), fiefecho.Config{
		Skipper: func(c echo.Context) bool { return c.Path() == "/health" },
		ErrorHandler: func(err error, c echo.Context) error {
			if errors.Is(err, fief.ErrUnauthenticated) && strings.Contains(c.Request().Header.Get("Accept"), "text/html") {
				return c.Redirect(http.StatusSeeOther, "/login")
			}
			return fiefecho.DefaultErrorHandler(err, c)
		},
	}))
	e.GET("/health", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	e.GET("/castles", func(c echo.Context) error { return c.String(http.StatusOK, "castles") })
	app := httptest.NewServer(e)
	defer app.Close()

	get(app.URL+"/health", "")
	get(app.URL+"/castles", "", "Accept", "text/html")
	get(app.URL+"/castles", "")
	// Output:
	// 200 ok
	// 303 Location: /login
	// 401 WWW-Authenticate: Bearer {"message":"Unauthorized"}
}

// The application's HTTPErrorHandler sees each refusal as an
// *echo.HTTPError whose Internal error tells the class and the cause, for
// its logs; the response shows only the fixed message.
func ExampleDefaultErrorHandler() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy"})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	auth, err := fief.NewAuthenticator(client)
	if err != nil {
		log.Fatal(err)
	}

	e := echo.New()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			fmt.Println("log:", he.Code, he.Message, errors.Is(err, fief.ErrForbidden), errors.Is(err, fief.ErrAccessTokenMissingScope))
		}
		e.DefaultHTTPErrorHandler(err, c)
	}
	e.GET("/admin", func(c echo.Context) error { return c.String(http.StatusOK, "admin") },
		fiefecho.Authenticated(auth, fief.RequireScopes("admin")))
	app := httptest.NewServer(e)
	defer app.Close()

	get(app.URL+"/admin", srv.AccessToken(user.ID))
	// Output:
	// log: 403 Forbidden true true
	// 403 WWW-Authenticate: Bearer error="insufficient_scope" {"message":"Forbidden"}
}

// The answers configured on the Authenticator, here a LoginFlow's redirect
// to Fief's login page, apply only through AuthenticatorErrorHandler:
// Authenticated and CurrentUser refuse with DefaultErrorHandler.
func ExampleAuthenticatorErrorHandler() {
	srv := fieftest.New()
	defer srv.Close()
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	flow, err := fief.NewLoginFlow(client, fief.LoginFlowConfig{
		RedirectURI:     "http://127.0.0.1:8000/auth-callback",
		InsecureCookies: true, // plain HTTP: local development only
	})
	if err != nil {
		log.Fatal(err)
	}
	auth, err := fief.NewAuthenticator(client,
		fief.WithExtractor(flow.Extractor()),
		fief.WithUnauthorizedHandler(flow.RedirectToLogin()),
		fief.WithForbiddenHandler(flow.RedirectToStepUp()),
	)
	if err != nil {
		log.Fatal(err)
	}

	e := echo.New()
	page := func(c echo.Context) error { return c.String(http.StatusOK, "castles") }
	e.GET("/castles", page, fiefecho.Middleware(auth.Route(), fiefecho.Config{
		ErrorHandler: fiefecho.AuthenticatorErrorHandler(auth),
	}))
	e.GET("/plain", page, fiefecho.Authenticated(auth))
	app := httptest.NewServer(e)
	defer app.Close()

	req, _ := http.NewRequest(http.MethodGet, app.URL+"/castles", nil)
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, strings.HasPrefix(resp.Header.Get("Location"), srv.URL+"/authorize?"))
	get(app.URL+"/plain", "")
	// Output:
	// 303 true
	// 401 WWW-Authenticate: Bearer {"message":"Unauthorized"}
}
