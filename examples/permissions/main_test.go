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

func TestPermissionsRequired(t *testing.T) {
	f, appURL := start(t)
	demo := exampletest.Bearer(f.Server.AccessToken(f.User.ID)) // castles:read and castles:create
	admin := exampletest.Bearer(f.Server.AccessToken(f.User.ID, fieftest.Permissions(permRead, permDelete)))
	none := exampletest.Bearer(f.Server.AccessToken(f.User.ID, fieftest.Permissions()))
	expired := exampletest.Bearer(f.Server.AccessToken(f.User.ID, fieftest.Permissions(permRead, permDelete), fieftest.ExpiresIn(-time.Hour)))

	const (
		unauthorized = `{"detail":"Unauthorized"}`
		forbidden    = `{"detail":"Forbidden"}`
		insufficient = `Bearer error="insufficient_scope"`
	)
	exampletest.RunCases(t, appURL, []exampletest.Case{
		{Name: "list without a token", Path: "/castles",
			Status: http.StatusUnauthorized, WWWAuthenticate: "Bearer", Body: unauthorized},
		{Name: "list without permissions", Path: "/castles", Authorization: none,
			Status: http.StatusForbidden, WWWAuthenticate: insufficient, Body: forbidden},
		{Name: "list as the demo user", Path: "/castles", Authorization: demo,
			Status: http.StatusOK, Body: `["nantes","rennes","vannes"]`},
		{Name: "delete without a token", Method: "DELETE", Path: "/castles/nantes",
			Status: http.StatusUnauthorized, WWWAuthenticate: "Bearer", Body: unauthorized},
		{Name: "delete as the demo user", Method: "DELETE", Path: "/castles/nantes", Authorization: demo,
			Status: http.StatusForbidden, WWWAuthenticate: insufficient, Body: forbidden},
		{Name: "delete with castles:delete", Method: "DELETE", Path: "/castles/nantes", Authorization: admin,
			Status: http.StatusNoContent, Body: ""},
		{Name: "expired token with every permission", Method: "DELETE", Path: "/castles/nantes", Authorization: expired,
			Status: http.StatusUnauthorized, WWWAuthenticate: `Bearer error="invalid_token"`, Body: unauthorized},
	})
}

// start serves the API with an embedded Fief.
func start(t *testing.T) (*devfief.Fief, string) {
	app := exampletest.StartApp(t, func(client *fief.Client, _ string) (http.Handler, error) {
		return newApp(client, slog.New(slog.DiscardHandler))
	})
	return app.Fief, app.URL
}
