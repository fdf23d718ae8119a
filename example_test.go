package fief_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
	"golang.org/x/oauth2"
)

// The whole login flow of a web app against a Fief-compatible test server:
// authorization URL with PKCE, login, code exchange, token validation.
func Example() {
	srv := fieftest.New() // in your app: your Fief tenant's URL
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc"})

	client, err := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	const redirectURI = "http://localhost:8000/auth-callback"

	verifier := fief.GenerateCodeVerifier()
	authURL, err := client.AuthURL(ctx, redirectURI, fief.AuthURLOptions{
		State:        "random-state",
		Scopes:       []string{"openid", "offline_access"},
		CodeVerifier: verifier,
	})
	if err != nil {
		log.Fatal(err)
	}

	// The user logs in on Fief's page; Fief redirects to redirectURI?code=…
	callback, err := srv.Authorize(authURL, user.Email, user.Password)
	if err != nil {
		log.Fatal(err)
	}
	tokens, userInfo, err := client.AuthCallback(ctx, callback.Query().Get("code"), redirectURI, verifier)
	if err != nil {
		log.Fatal(err)
	}
	info, err := client.ValidateAccessToken(ctx, tokens.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(userInfo.Email())
	fmt.Println(info.UserID() == user.ID, info.ACR(), tokens.RefreshToken != "")
	// Output:
	// anne@bretagne.duchy
	// true 1 true
}

func ExampleClient_ValidateAccessToken() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Permissions: []string{"castles:read"}})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	ctx := context.Background()

	token := srv.AccessToken(user.ID, fieftest.Scopes("openid", "castles"))
	info, err := client.ValidateAccessToken(ctx, token,
		fief.RequireScopes("castles"),
		fief.RequirePermissions("castles:read"),
	)
	fmt.Println(info.Scopes(), info.Permissions(), err)

	_, err = client.ValidateAccessToken(ctx, token, fief.RequireACR(fief.ACRLevelOne))
	fmt.Println(errors.Is(err, fief.ErrAccessTokenACRTooLow))

	_, err = client.ValidateAccessToken(ctx, "forged.token.value")
	fmt.Println(errors.Is(err, fief.ErrAccessTokenInvalid))
	// Output:
	// [openid castles] [castles:read] <nil>
	// true
	// true
}

func ExampleClient_AuthURL() {
	srv := fieftest.New()
	defer srv.Close()
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)

	u, err := client.AuthURL(context.Background(), "https://www.bretagne.duchy/callback", fief.AuthURLOptions{
		Scopes: []string{"openid", "offline_access"},
		Lang:   "fr",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.TrimPrefix(u, srv.URL))
	// Output:
	// /authorize?response_type=code&client_id=fieftest-client&redirect_uri=https%3A%2F%2Fwww.bretagne.duchy%2Fcallback&scope=openid+offline_access&lang=fr
}

func ExampleClient_AuthRefreshToken() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy"})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	ctx := context.Background()
	code := srv.IssueCode(fieftest.CodeRequest{UserID: user.ID, RedirectURI: "http://localhost/cb", Scopes: []string{"openid", "offline_access"}})
	tokens, _, _ := client.AuthCallback(ctx, code, "http://localhost/cb", "")

	refreshed, _, err := client.AuthRefreshToken(ctx, tokens.RefreshToken)
	fmt.Println(err, refreshed.RefreshToken != tokens.RefreshToken)

	// Fief rotates refresh tokens: the old one is spent.
	_, _, err = client.AuthRefreshToken(ctx, tokens.RefreshToken)
	var reqErr *fief.RequestError
	fmt.Println(errors.As(err, &reqErr), reqErr.StatusCode, reqErr.Code)
	// Output:
	// <nil> true
	// true 400 invalid_grant
}

func ExampleClient_UpdateProfile() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy"})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)

	info, err := client.UpdateProfile(context.Background(), srv.AccessToken(user.ID),
		map[string]any{"first_name": "Anne"})
	fmt.Println(info.Fields()["first_name"], err)
	// Output:
	// Anne <nil>
}

func ExampleClient_LogoutURL() {
	client, _ := fief.New("https://fief.example.com", "CLIENT_ID", "CLIENT_SECRET")
	fmt.Println(client.LogoutURL("https://www.example.com"))
	// Output:
	// https://fief.example.com/logout?redirect_uri=https%3A%2F%2Fwww.example.com
}

// A Client for a tenant: the default tenant at the root of Fief's domain, or
// another one under its slug. New makes no request: discovery and the key
// set are fetched on first use.
func ExampleNew() {
	client, err := fief.New("https://fief.example.com/bretagne", "CLIENT_ID", "CLIENT_SECRET",
		fief.WithTimeout(5*time.Second),               // per request to Fief
		fief.WithAudiences("CLIENT_ID", "SPA_CLIENT"), // tokens of these clients are accepted
	)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	fmt.Println(client.LogoutURL("https://app.example.com/"))
	// Output:
	// https://fief.example.com/bretagne/logout?redirect_uri=https%3A%2F%2Fapp.example.com%2F
}

// The redirect URI's handler: check the state, exchange the code with the
// PKCE verifier kept since AuthURL, and read the ID token's claims.
func ExampleClient_AuthCallback() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc"})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	ctx := context.Background()
	const redirectURI = "https://app.example.com/auth-callback"

	state, verifier := "a-random-state", fief.GenerateCodeVerifier() // kept in the user's session
	authURL, _ := client.AuthURL(ctx, redirectURI, fief.AuthURLOptions{State: state, Scopes: []string{"openid"}, CodeVerifier: verifier})
	callback, _ := srv.Authorize(authURL, user.Email, user.Password) // the browser comes back here

	q := callback.Query()
	if q.Get("state") != state {
		log.Fatal("state mismatch")
	}
	tokens, claims, err := client.AuthCallback(ctx, q.Get("code"), redirectURI, verifier)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.Email(), claims.Sub() == user.ID, tokens.TokenType, tokens.ExpiresIn)

	// A code is single use: Fief refuses it the second time.
	_, _, err = client.AuthCallback(ctx, q.Get("code"), redirectURI, verifier)
	var reqErr *fief.RequestError
	fmt.Println(errors.As(err, &reqErr) && reqErr.Code == "invalid_grant")
	// Output:
	// anne@bretagne.duchy true bearer 86400
	// true
}

// The user's claims from Fief's userinfo endpoint, with the user's access
// token; custom fields decode into the caller's own struct.
func ExampleClient_UserInfo() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Fields: map[string]any{"first_name": "Anne", "birth_year": 1477}})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)

	info, err := client.UserInfo(context.Background(), srv.AccessToken(user.ID))
	if err != nil {
		log.Fatal(err)
	}
	var claims struct {
		Fields struct {
			FirstName string `json:"first_name"`
			BirthYear int    `json:"birth_year"`
		} `json:"fields"`
	}
	if err := info.Claims(&claims); err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Email(), claims.Fields.FirstName, claims.Fields.BirthYear)
	// Output:
	// anne@bretagne.duchy Anne 1477
}

// An x/oauth2 HTTP client that calls an API with the user's access token,
// refreshed through Fief when it expires; the rotated refresh token is saved.
func ExampleClient_TokenSource() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy"})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	ctx := context.Background()
	code := srv.IssueCode(fieftest.CodeRequest{UserID: user.ID, RedirectURI: "http://localhost/cb", Scopes: []string{"openid", "offline_access"}})
	tokens, _, _ := client.AuthCallback(ctx, code, "http://localhost/cb", "")

	ts := client.TokenSource(tokens, func(t *fief.Tokens) {
		// Save t: the previous refresh token is spent.
	})
	httpClient := oauth2.NewClient(ctx, ts) // sends Authorization: Bearer <access token>
	_ = httpClient
	tok, err := ts.Token()
	fmt.Println(tok.AccessToken == tokens.AccessToken, tok.Type(), err)
	// Output:
	// true Bearer <nil>
}

// Fief's refusals carry its status and error code; the error's text never
// quotes the body (Fief's validation errors echo the input).
func ExampleRequestError() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy"})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)

	// Changing the password needs a token from a password login (ACR 1).
	_, err := client.ChangePassword(context.Background(), srv.AccessToken(user.ID, fieftest.ACR("0")), "n3w-passw0rd!")
	var reqErr *fief.RequestError
	if errors.As(err, &reqErr) {
		fmt.Println(reqErr.Endpoint, reqErr.StatusCode, reqErr.Code)
	}
	fmt.Println(err)
	// Output:
	// password 403 ACR_TOO_LOW
	// fief: password request failed with status 403 (ACR_TOO_LOW)
}

// A bounded in-memory cache of users' info for CurrentUser: at most 10,000
// users, each for 5 minutes (the longest a change made in Fief's admin takes
// to be seen).
func ExampleNewMemoryCache() {
	cache, err := fief.NewMemoryCache(10_000, 5*time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	user, _ := fief.ParseUserInfo([]byte(`{"sub":"7c3f4a1e-2b9d-4c57-8a0e-6f1d2c3b4a59","email":"anne@bretagne.duchy"}`))
	ctx := context.Background()
	cache.Set(ctx, user.Sub(), user)
	got, ok, _ := cache.Get(ctx, user.Sub())
	fmt.Println(got.Email(), ok, cache.Len())

	_, err = fief.NewMemoryCache(0, time.Minute)
	fmt.Println(err)
	// Output:
	// anne@bretagne.duchy true 1
	// fief: NewMemoryCache: maxEntries 0 is not positive
}
