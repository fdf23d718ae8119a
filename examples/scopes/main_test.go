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

func TestScopeRequired(t *testing.T) {
	f, appURL := start(t)
	withScope := f.Server.AccessToken(f.User.ID, fieftest.Scopes("openid", requiredScope))
	expired := f.Server.AccessToken(f.User.ID, fieftest.Scopes("openid", requiredScope), fieftest.ExpiresIn(-time.Hour))
	withoutScope := f.Server.AccessToken(f.User.ID)
	withAnother := f.Server.AccessToken(f.User.ID, fieftest.Scopes("openid", "castles:read"))

	const (
		unauthorized = `{"detail":"Unauthorized"}`
		forbidden    = `{"detail":"Forbidden"}`
		invalid      = `Bearer error="invalid_token"`
		insufficient = `Bearer error="insufficient_scope"`
	)
	exampletest.RunCases(t, appURL, []exampletest.Case{
		{Name: "no token", Path: "/user",
			Status: http.StatusUnauthorized, WWWAuthenticate: "Bearer", Body: unauthorized},
		{Name: "forged token", Path: "/user", Authorization: exampletest.Bearer("forged"),
			Status: http.StatusUnauthorized, WWWAuthenticate: invalid, Body: unauthorized},
		{Name: "expired token with the scope", Path: "/user", Authorization: exampletest.Bearer(expired),
			Status: http.StatusUnauthorized, WWWAuthenticate: invalid, Body: unauthorized},
		{Name: "token without the scope", Path: "/user", Authorization: exampletest.Bearer(withoutScope),
			Status: http.StatusForbidden, WWWAuthenticate: insufficient, Body: forbidden},
		{Name: "token with another scope", Path: "/user", Authorization: exampletest.Bearer(withAnother),
			Status: http.StatusForbidden, WWWAuthenticate: insufficient, Body: forbidden},
		{Name: "token with the scope", Path: "/user", Authorization: exampletest.Bearer(withScope),
			Status: http.StatusOK, BodyHas: `"scope":["openid","castles"]`},
	})
}

// start serves the API with an embedded Fief.
func start(t *testing.T) (*devfief.Fief, string) {
	app := exampletest.StartApp(t, func(client *fief.Client, _ string) (http.Handler, error) {
		return newApp(client, slog.New(slog.DiscardHandler))
	})
	return app.Fief, app.URL
}
