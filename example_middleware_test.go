package fief_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// An API whose routes require an access token in the Authorization header,
// some with a scope or a permission.
func ExampleNewAuthenticator() {
	srv := fieftest.New() // in your app: your Fief tenant
	defer srv.Close()
	client, err := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	if err != nil {
		log.Fatal(err)
	}
	auth, err := fief.NewAuthenticator(client, fief.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /castles/{id}", auth.Authenticated(fief.RequireScopes("castles"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info, _ := fief.AccessTokenInfoFromContext(r.Context())
			fmt.Fprintf(w, "castle %s, ACR %s", r.PathValue("id"), info.ACR())
		})))
	mux.Handle("DELETE /castles/{id}", auth.Authenticated(fief.RequirePermissions("castles:delete"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		})))

	// A client calls the API.
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc"})
	token := srv.AccessToken(user.ID, fieftest.Scopes("openid", "castles"), fieftest.ACR("1"))
	for _, req := range []struct{ method, token string }{
		{"GET", token},
		{"GET", ""},
		{"GET", "forged"},
		{"DELETE", token},
	} {
		r := httptest.NewRequest(req.method, "/castles/nantes", nil)
		if req.token != "" {
			r.Header.Set("Authorization", "Bearer "+req.token)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(req.method, w.Code, w.Header().Get("WWW-Authenticate"), w.Body)
	}
	// Output:
	// GET 200  castle nantes, ACR 1
	// GET 401 Bearer {"detail":"Unauthorized"}
	// GET 401 Bearer error="invalid_token" {"detail":"Unauthorized"}
	// DELETE 403 Bearer error="insufficient_scope" {"detail":"Forbidden"}
}

// An Optional route serves anonymous visitors too; the handler tells them
// apart by the context.
func ExampleOptional() {
	srv := fieftest.New()
	defer srv.Close()
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	auth, _ := fief.NewAuthenticator(client)

	home := auth.Authenticated(fief.Optional())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info, ok := fief.AccessTokenInfoFromContext(r.Context()); ok {
			fmt.Fprintf(w, "welcome back (%d permissions)", len(info.Permissions()))
			return
		}
		fmt.Fprint(w, "welcome, stranger")
	}))

	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc", Permissions: []string{"castles:read"}})
	for _, token := range []string{srv.AccessToken(user.ID), "", "expired-or-forged"} {
		r := httptest.NewRequest("GET", "/", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		home.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body)
	}
	// Output:
	// 200 welcome back (1 permissions)
	// 200 welcome, stranger
	// 200 welcome, stranger
}

// CurrentUser adds the user's profile from Fief's userinfo endpoint, cached
// by user ID: the second request does not call Fief.
func ExampleAuthenticator_CurrentUser() {
	srv := fieftest.New()
	defer srv.Close()
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	cache, err := fief.NewMemoryCache(10_000, 5*time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	auth, err := fief.NewAuthenticator(client, fief.WithUserInfoCache(cache))
	if err != nil {
		log.Fatal(err)
	}
	profile := auth.CurrentUser()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := fief.UserInfoFromContext(r.Context())
		fmt.Fprintf(w, "%s (%s)", user.Email(), user.Fields()["first_name"])
	}))

	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc",
		Fields: map[string]any{"first_name": "Anne"}})
	token := srv.AccessToken(user.ID)
	for range 2 {
		r := httptest.NewRequest("GET", "/me", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		profile.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body)
	}
	fmt.Println("userinfo calls:", srv.Requests(fieftest.EndpointUserinfo))

	// After changing the profile, evict the user (or use Refresh on the
	// route that must see the change at once).
	if _, err := client.UpdateProfile(context.Background(), token, map[string]any{"first_name": "Anna"}); err != nil {
		log.Fatal(err)
	}
	_ = cache.Delete(context.Background(), user.ID)
	r := httptest.NewRequest("GET", "/me", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	profile.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body)
	// Output:
	// 200 anne@bretagne.duchy (Anne)
	// 200 anne@bretagne.duchy (Anne)
	// userinfo calls: 1
	// 200 anne@bretagne.duchy (Anna)
}

// An API answers refused requests in its own error format. It branches on
// the error, but never writes its text: that is for the server's logs. (A
// web application sends browsers to Fief's login page instead, with state
// and PKCE: LoginFlow.RedirectToLogin, see NewLoginFlow.)
func ExampleWithUnauthorizedHandler() {
	srv := fieftest.New()
	defer srv.Close()
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)

	auth, err := fief.NewAuthenticator(client,
		fief.WithUnauthorizedHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			code := "invalid_token"
			switch {
			case errors.Is(err, fief.ErrNoToken):
				code = "login_required"
			case errors.Is(err, fief.ErrAccessTokenExpired):
				code = "token_expired"
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":%q}`, code)
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	api := auth.Authenticated()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "your castles")
	}))
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy"})
	for _, token := range []string{"", srv.AccessToken(user.ID, fieftest.ExpiresIn(-time.Hour)), srv.AccessToken(user.ID)} {
		r := httptest.NewRequest("GET", "/castles", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body)
	}
	// Output:
	// 401 {"error":"login_required"}
	// 401 {"error":"token_expired"}
	// 200 your castles
}

// A valid token that misses a route's requirement gets 403; the handler
// can tell which kind of requirement failed.
func ExampleWithForbiddenHandler() {
	srv := fieftest.New()
	defer srv.Close()
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	auth, err := fief.NewAuthenticator(client,
		fief.WithForbiddenHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			msg := "missing permission"
			switch {
			case errors.Is(err, fief.ErrAccessTokenMissingScope):
				msg = "missing scope"
			case errors.Is(err, fief.ErrAccessTokenACRTooLow):
				msg = "log in again with your password"
			}
			http.Error(w, msg, http.StatusForbidden)
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	deleteCastle := auth.Authenticated(fief.RequireACR(fief.ACRLevelOne), fief.RequirePermissions("castles:delete"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "deleted") }))

	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy"})
	for _, token := range []string{
		srv.AccessToken(user.ID, fieftest.ACR("0"), fieftest.Permissions("castles:delete")),
		srv.AccessToken(user.ID, fieftest.ACR("1"), fieftest.Permissions("castles:read")),
		srv.AccessToken(user.ID, fieftest.ACR("1"), fieftest.Permissions("castles:delete")),
	} {
		r := httptest.NewRequest("DELETE", "/castles/1", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		deleteCastle.ServeHTTP(w, r)
		fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	}
	// Output:
	// 403 log in again with your password
	// 403 missing permission
	// 200 deleted
}

// Any http.Handler can answer refused requests.
func ExampleErrorHandlerFunc() {
	srv := fieftest.New()
	defer srv.Close()
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)

	notFound := http.NotFoundHandler() // hide the resource from strangers
	auth, _ := fief.NewAuthenticator(client, fief.WithUnauthorizedHandler(
		fief.ErrorHandlerFunc(func(w http.ResponseWriter, r *http.Request, _ error) { notFound.ServeHTTP(w, r) })))

	w := httptest.NewRecorder()
	auth.Authenticated()(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest("GET", "/admin", nil))
	fmt.Println(w.Code)
	// Output:
	// 404
}

// A server-sent events endpoint reads the token from the Authorization
// header or, for browsers' EventSource, which cannot set headers, from the
// query string.
func ExampleFirstToken() {
	srv := fieftest.New()
	defer srv.Close()
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	auth, _ := fief.NewAuthenticator(client, fief.WithExtractor(
		fief.FirstToken(fief.BearerToken(), fief.QueryToken("access_token"))))
	events := auth.Authenticated()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: hello\n\n")
	}))

	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc"})
	token := srv.AccessToken(user.ID)
	w := httptest.NewRecorder()
	events.ServeHTTP(w, httptest.NewRequest("GET", "/events?access_token="+token, nil))
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	// Output:
	// 200 text/event-stream
}
