package main

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/examples/internal/devfief"
	"github.com/fief-go/fief/examples/internal/exampletest"
	"github.com/fief-go/fief/fieftest"
)

func TestOptionalUser(t *testing.T) {
	f, appURL := start(t)
	valid := exampletest.Bearer(f.Server.AccessToken(f.User.ID))
	expired := exampletest.Bearer(f.Server.AccessToken(f.User.ID, fieftest.ExpiresIn(-time.Hour)))
	gone := f.Server.AddUser(fieftest.User{Email: "jean@bretagne.duchy", Password: "hermine"})
	goneToken := exampletest.Bearer(f.Server.AccessToken(gone.ID))
	f.Server.DeleteUser(gone.ID) // its token is still valid offline, but Fief refuses it

	const (
		anonymous = `{"message":"Hello, anonymous visitor"}`
		anne      = `{"message":"Hello, anne@bretagne.duchy"}`
	)
	exampletest.RunCases(t, appURL, []exampletest.Case{
		{Name: "no token", Path: "/optional-user", Status: http.StatusOK, Body: anonymous},
		{Name: "forged token", Path: "/optional-user", Authorization: exampletest.Bearer("forged"), Status: http.StatusOK, Body: anonymous},
		{Name: "expired token", Path: "/optional-user", Authorization: expired, Status: http.StatusOK, Body: anonymous},
		{Name: "token of a deleted user", Path: "/optional-user", Authorization: goneToken, Status: http.StatusOK, Body: anonymous},
		{Name: "valid token", Path: "/optional-user", Authorization: valid, Status: http.StatusOK, Body: anne},
		{Name: "valid token again", Path: "/optional-user", Authorization: valid, Status: http.StatusOK, Body: anne},
	})
	// The deleted user's token and the first request with the valid one
	// called Fief; the second was served from the cache.
	if n := f.Server.Requests(fieftest.EndpointUserinfo); n != 2 {
		t.Errorf("%d userinfo calls, want 2", n)
	}
}

func TestOptionalUserFiefUnavailable(t *testing.T) {
	f, appURL := start(t)
	f.Server.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Status: http.StatusBadGateway})

	// Anonymous visitors do not need Fief.
	if resp, body := exampletest.Call(t, "GET", appURL+"/optional-user", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("anonymous: %d %s", resp.StatusCode, body)
	}
	// A user's info cannot be read: the request fails instead of passing as
	// anonymous, with a fixed body.
	resp, body := exampletest.Call(t, "GET", appURL+"/optional-user", exampletest.Bearer(f.Server.AccessToken(f.User.ID)))
	if resp.StatusCode != http.StatusServiceUnavailable || body != `{"detail":"Service Unavailable"}` {
		t.Errorf("user: %d %s, want 503 and the fixed body", resp.StatusCode, body)
	}
}

// start serves the API with an embedded Fief.
func start(t *testing.T) (*devfief.Fief, string) {
	app := exampletest.StartApp(t, func(client *fief.Client, _ string) (http.Handler, error) {
		return newApp(client, slog.New(slog.DiscardHandler))
	})
	return app.Fief, app.URL
}
