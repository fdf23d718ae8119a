package fieftest

import (
	"bytes"
	"html/template"
	"net/http"
)

// The HTML pages of the browser-facing endpoints: small, self-contained,
// with stable ids for browser tests.
var pages = template.Must(template.New("").Parse(`
{{define "head"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · fieftest</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f4f5;margin:0}
main{max-width:22rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:.5rem;box-shadow:0 1px 3px #0002}
h1{font-size:1.4rem;margin-top:0}
label{display:block;margin:1rem 0 .25rem}
input{box-sizing:border-box;width:100%;padding:.5rem}
button{margin-top:1.5rem;width:100%;padding:.6rem;background:#f43f5e;color:#fff;border:0;border-radius:.25rem}
.error{color:#b91c1c}
</style>
</head>
<body>
<main>
{{end}}
{{define "foot"}}</main>
</body>
</html>
{{end}}
{{define "login"}}{{template "head" "Sign in"}}<h1>Sign in</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>
{{end}}<form method="post" action="{{.Action}}">
<input type="hidden" name="login_session" value="{{.Session}}">
<label for="email">Email address</label>
<input type="email" name="email" id="email" value="{{.Email}}" autocomplete="email" required>
<label for="password">Password</label>
<input type="password" name="password" id="password" autocomplete="current-password" required>
<button type="submit" id="login">Sign in</button>
</form>
{{template "foot"}}{{end}}
{{define "error"}}{{template "head" "Error"}}<h1>Something went wrong</h1>
<p class="error" role="alert" data-error="{{.Code}}">{{.Message}}</p>
{{template "foot"}}{{end}}
`))

// loginPage is the data of the login form.
type loginPage struct {
	Action  string // the form's target, <tenant path>/login
	Session string // the login session ID
	Email   string // prefilled email (login_hint, or the last attempt)
	Error   string // why the last attempt failed
}

// writeLoginPage renders the login form.
func writeLoginPage(w http.ResponseWriter, status int, p loginPage) {
	writePage(w, status, "login", p)
}

// writeErrorPage answers a browser-facing error like Fief: an HTML page
// with the OAuth error code in the X-Fief-Error header.
func writeErrorPage(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("X-Fief-Error", code)
	writePage(w, status, "error", struct{ Code, Message string }{code, message})
}

func writePage(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "fieftest: rendering "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
