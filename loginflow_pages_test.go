package fief_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fief-go/fief"
)

func TestLoginFlowFiefError(t *testing.T) {
	e := newLFEnv(t, lfOptions{})
	tests := []struct {
		name, errCode string
		status        int
		msg           string
	}{
		{"access denied", "access_denied", http.StatusBadRequest, lfMsgDenied},
		{"server error", "server_error", http.StatusBadGateway, lfMsgUnavailable},
		{"unknown code", "x_y", http.StatusBadRequest, lfMsgFiefError},
		{"attacker's markup", `"><script>alert(1)</script>`, http.StatusBadRequest, lfMsgFiefError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			authURL, flow := e.start(t, nil, "/protected")
			state := authURL.Query().Get("state")
			target := e.appURL + "/auth-callback?" + url.Values{
				"error":             {tt.errCode},
				"error_description": {`<img src=x onerror=alert(2)> Fief says no`},
				"state":             {state},
			}.Encode()
			resp := e.get(t, target)
			e.checkErrorPage(t, resp, tt.status, tt.msg)
			for _, s := range []string{"<script", "alert(", "onerror", "Fief says no", "x_y"} {
				if strings.Contains(resp.body, s) {
					t.Errorf("the page reflects %q: %s", s, resp.body)
				}
			}
			if c := lfFindCookie(resp, flow.Name); c == nil || c.MaxAge >= 0 {
				t.Error("the flow cookie is not deleted")
			}
			// The flow is over: its code, had there been one, is refused.
			e.checkErrorPage(t, e.get(t, e.appURL+"/auth-callback?code=x&state="+url.QueryEscape(state)), http.StatusBadRequest, lfMsgInvalidFlow)
		})
	}
	// Fief's real redirect with an error: Fief refuses prompt=none without
	// a session (login_required).
	authURL, _ := e.start(t, nil, "/protected")
	loc, err := e.srv.Authorize(lfWithQuery(authURL, "prompt", "none"), lfEmail, lfPassword)
	if err != nil || loc.Query().Get("error") != "login_required" {
		t.Fatalf("Fief's answer: %v %v", loc, err)
	}
	e.checkErrorPage(t, e.get(t, loc.String()), http.StatusBadRequest, "You need to log in to continue.")
}

// TestLoginFlowErrorPageEscapes: the error page's link home comes from
// DefaultReturnTo, whose query cleanReturnTo passes through raw; markup in
// it comes out escaped, without breaking out of the href attribute.
func TestLoginFlowErrorPageEscapes(t *testing.T) {
	const home = `/?"><b>x</b>`
	e := newLFEnv(t, lfOptions{config: func(c *fief.LoginFlowConfig) { c.DefaultReturnTo = home }})
	resp := e.get(t, e.appURL+"/auth-callback")
	e.checkErrorPage(t, resp, http.StatusBadRequest, lfMsgIncomplete)
	if strings.Contains(resp.body, "<b>") {
		t.Errorf("the page has the markup of DefaultReturnTo: %s", resp.body)
	}
	_, rest, ok := strings.Cut(resp.body, `<a href="`)
	href, after, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 || !strings.HasPrefix(after, ">Back to the application</a>") || strings.ContainsAny(href, `<>"`) {
		t.Errorf("the link home is broken: %s", resp.body)
	}
	if u, err := url.Parse(href); err != nil || u.Path != "/" || !u.Query().Has(`"><b>x</b>`) {
		t.Errorf("the link home %q does not lead to DefaultReturnTo (%v)", href, err)
	}
}
