package fief_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
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
	fmt.Println(errors.As(err, &reqErr), reqErr.StatusCode, reqErr.Body)
	// Output:
	// <nil> true
	// true 400 {"error":"invalid_grant"}
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
