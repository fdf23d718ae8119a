// Package webpage writes the HTML pages of the examples' web applications,
// which have nothing to do with Fief: a public home page, and the page of
// a logged-in user.
package webpage

import (
	"html/template"
	"log/slog"
	"net/http"
)

var pages = template.Must(template.New("").Parse(`
{{define "home"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Fief web app</title></head>
<body><h1>Welcome</h1><p><a href="/protected">Protected page</a></p></body></html>
{{end}}
{{define "protected"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Protected page</title></head>
<body><h1>Hello {{.}}</h1><p>You are authenticated.</p>
<form method="post" action="/logout"><button type="submit">Log out</button></form></body></html>
{{end}}`))

// Home writes the public home page: a link to /protected.
func Home(w http.ResponseWriter, r *http.Request) { render(w, r, "home", nil) }

// Protected writes the page of a logged-in user: a greeting by email
// address, and a Log out button that posts to /logout.
func Protected(w http.ResponseWriter, r *http.Request, email string) {
	render(w, r, "protected", email)
}

func render(w http.ResponseWriter, r *http.Request, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, page, data); err != nil {
		slog.ErrorContext(r.Context(), "cannot render page", "page", page, "error", err)
	}
}
