package fief_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

// A custom transport (here a message consumer; a WebSocket upgrade or a
// server-sent events stream is the same) authenticates with the core:
// a Route checks the token the message carries and returns the context
// the handler runs with, or an error of one of three classes.
func ExampleRoute_Authenticate() {
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Permissions: []string{"orders:write"}})
	client, _ := fief.New(srv.URL, srv.ClientID, srv.ClientSecret)
	auth, err := fief.NewAuthenticator(client)
	if err != nil {
		log.Fatal(err)
	}
	placeOrder := auth.Route(fief.RequirePermissions("orders:write")) // built once

	type message struct{ Token, Body string }
	consume := func(m message) {
		ctx, err := placeOrder.Authenticate(context.Background(), m.Token)
		switch {
		case errors.Is(err, fief.ErrUnauthenticated):
			fmt.Println("dropped: unauthenticated")
		case errors.Is(err, fief.ErrForbidden):
			fmt.Println("dropped: forbidden")
		case err != nil: // fief.ErrUnavailable: Fief cannot be reached, retry later
			fmt.Println("requeued")
		default:
			info, _ := fief.AccessTokenInfoFromContext(ctx)
			fmt.Println("order from", info.UserID() == user.ID, m.Body)
		}
	}
	consume(message{Token: srv.AccessToken(user.ID), Body: "two castles"})
	consume(message{Token: "forged", Body: "ten castles"})
	consume(message{Token: srv.AccessToken(user.ID, fieftest.Permissions()), Body: "a duchy"})
	// Output:
	// order from true two castles
	// dropped: unauthenticated
	// dropped: forbidden
}

// One service for several Fief tenants: each token is verified by the
// client of the tenant its iss names, and handlers learn which tenant it was.
func ExampleNewMultiTenantAuthenticator() {
	bretagne := fieftest.New(fieftest.WithIssuer("https://fief.test/bretagne"))
	defer bretagne.Close()
	anjou := fieftest.New(fieftest.WithIssuer("https://fief.test/anjou"))
	defer anjou.Close()

	var tenants []fief.Tenant
	for name, srv := range map[string]*fieftest.Server{"bretagne": bretagne, "anjou": anjou} {
		client, err := fief.New(srv.URL, srv.ClientID, srv.ClientSecret, fief.WithIssuer(srv.Issuer()))
		if err != nil {
			log.Fatal(err)
		}
		tenants = append(tenants, fief.Tenant{Name: name, Client: client})
	}
	auth, err := fief.NewMultiTenantAuthenticator(tenants)
	if err != nil {
		log.Fatal(err)
	}
	h := auth.Authenticated()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant, _ := fief.TenantFromContext(r.Context())
		fmt.Fprint(w, "hello from ", tenant)
	}))
	for _, srv := range []*fieftest.Server{bretagne, anjou} {
		u := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy"})
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+srv.AccessToken(u.ID))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body)
	}
	// Output:
	// 200 hello from bretagne
	// 200 hello from anjou
}

// Handlers are unit-tested without a token: put an identity in the context.
func ExampleContextWithAccessTokenInfo() {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := fief.AccessTokenInfoFromContext(r.Context())
		if !ok || !info.HasPermission("castles:read") {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		fmt.Fprint(w, "castles of ", info.UserID())
	})

	info := fief.NewAccessTokenInfo(fief.AccessTokenValues{UserID: "anne", Permissions: []string{"castles:read"}})
	r := httptest.NewRequest("GET", "/castles", nil)
	r = r.WithContext(fief.ContextWithAccessTokenInfo(r.Context(), info))
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body)
	// Output:
	// 200 castles of anne
}
