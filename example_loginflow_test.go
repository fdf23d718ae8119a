package fief_test

import (
	"crypto/rand"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// A web application whose pages require a login on Fief's login page: the
// flow's handlers do the redirects, the callback and the logout; the
// middleware reads the session cookie and starts a login for visitors
// without one.
func ExampleNewLoginFlow() {
	srv := fieftest.New() // in your app: your Fief tenant
	defer srv.Close()
	srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc"})
	client, err := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	if err != nil {
		log.Fatal(err)
	}

	// In your app: a secret from your configuration, the same on every
	// instance that serves the application.
	cookieKey := make([]byte, 32)
	_, _ = rand.Read(cookieKey)
	cache, err := fief.NewMemoryCache(10_000, 5*time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	flow, err := fief.NewLoginFlow(client, fief.LoginFlowConfig{
		RedirectURI:   "https://app.example.com/auth-callback", // allowed on the Fief client
		CookieKey:     cookieKey,
		UserInfoCache: cache, // the login fills it from the ID token
	})
	if err != nil {
		log.Fatal(err)
	}
	auth, err := fief.NewAuthenticator(client,
		fief.WithExtractor(flow.Extractor()),
		fief.WithUserInfoCache(cache),
		fief.WithUnauthorizedHandler(flow.RedirectToLogin()))
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /login", flow.Login())
	mux.Handle("GET /auth-callback", flow.Callback())
	mux.Handle("POST /logout", flow.Logout())
	mux.Handle("GET /account", auth.CurrentUser()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := fief.UserInfoFromContext(r.Context())
		fmt.Fprintf(w, "Hello %s", user.Email())
	})))

	// browse sends a request with the cookies a browser would have.
	var cookies []*http.Cookie
	browse := func(method, target string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		cookies = append(cookies, w.Result().Cookies()...)
		return w
	}

	// A visitor without a session is sent to Fief's login page.
	w := browse("GET", "https://app.example.com/account?tab=castles")
	authURL, _ := url.Parse(w.Header().Get("Location"))
	fmt.Println(w.Code, authURL.Path, authURL.Query().Get("code_challenge_method"))

	// The user logs in there, and Fief sends the browser back to the
	// callback, which sets the session cookie and returns to the page.
	callback, err := srv.Authorize(authURL.String(), "anne@bretagne.duchy", "herminetruc")
	if err != nil {
		log.Fatal(err)
	}
	w = browse("GET", callback.String())
	fmt.Println(w.Code, w.Header().Get("Location"))

	w = browse("GET", "https://app.example.com/account?tab=castles")
	fmt.Println(w.Code, w.Body)

	// Logging out goes through Fief's logout page, back to the home page.
	w = browse("POST", "https://app.example.com/logout")
	fmt.Println(w.Code, w.Header().Get("Location") == client.LogoutURL("https://app.example.com/"))
	// Output:
	// 303 /authorize S256
	// 303 /account?tab=castles
	// 200 Hello anne@bretagne.duchy
	// 303 true
}

// Sessions that outlive the access token: with RefreshSessions, the login
// keeps Fief's refresh token in a sealed cookie, and Session, in front of
// the middleware, refreshes the tokens of a request whose access token has
// expired, before the handler runs. The refreshed token has ACR 0.
func ExampleLoginFlow_Session() {
	srv := fieftest.New() // in your app: your Fief tenant
	defer srv.Close()
	srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc"})
	client, err := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	if err != nil {
		log.Fatal(err)
	}
	flow, err := fief.NewLoginFlow(client, fief.LoginFlowConfig{
		RedirectURI:     "https://app.example.com/auth-callback",
		CookieKey:       make([]byte, 32), // in your app: a secret, the same on every instance
		RefreshSessions: true,
		// RefreshCoordinator: rediscache.NewRefreshCoordinator(...) for several instances
	})
	if err != nil {
		log.Fatal(err)
	}
	auth, err := fief.NewAuthenticator(client,
		fief.WithExtractor(flow.Extractor()),
		fief.WithUnauthorizedHandler(flow.RedirectToLogin()),
		fief.WithForbiddenHandler(flow.RedirectToStepUp())) // ACR 1 routes: a password login
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /auth-callback", flow.Callback())
	mux.Handle("GET /account", auth.Authenticated()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := fief.AccessTokenInfoFromContext(r.Context())
		fmt.Fprintf(w, "ACR %s", info.ACR())
	})))
	app := flow.Session()(mux)

	// browse sends a request with the cookies a browser would have.
	jar := map[string]string{}
	browse := func(target string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", target, nil)
		for name, value := range jar {
			r.AddCookie(&http.Cookie{Name: name, Value: value})
		}
		w := httptest.NewRecorder()
		app.ServeHTTP(w, r)
		for _, c := range w.Result().Cookies() {
			if jar[c.Name] = c.Value; c.MaxAge < 0 {
				delete(jar, c.Name)
			}
		}
		return w
	}

	w := browse("https://app.example.com/account")
	callback, err := srv.Authorize(w.Header().Get("Location"), "anne@bretagne.duchy", "herminetruc")
	if err != nil {
		log.Fatal(err)
	}
	browse(callback.String())
	fmt.Println(browse("https://app.example.com/account").Body)

	// The access token expired, and the browser dropped its cookie.
	refresh := jar["__Host-fief_app_session_refresh"]
	delete(jar, "__Host-fief_app_session")
	w = browse("https://app.example.com/account")
	fmt.Println(w.Code, w.Body, jar["__Host-fief_app_session"] != "", jar["__Host-fief_app_session_refresh"] != refresh)
	// Output:
	// ACR 1
	// 200 ACR 0 true true
}
