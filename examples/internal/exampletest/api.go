package exampletest

import (
	"net/http"
	"strings"
	"testing"
)

// Case is a request to an API and the answer it must get.
type Case struct {
	Name   string
	Method string // GET when empty
	Path   string
	// Authorization is the request's Authorization header, none when
	// empty: Bearer(token) for an access token.
	Authorization string

	Status int
	// WWWAuthenticate is the answer's WWW-Authenticate header, "" for
	// none.
	WWWAuthenticate string
	// Body is the answer's body, trimmed of white space; when BodyHas is
	// not empty, the body must contain BodyHas instead.
	Body    string
	BodyHas string
}

// RunCases sends each case's request to the API at appURL in a subtest,
// and checks the answer's status, WWW-Authenticate header and body, and
// that the answer does not repeat the request's credentials.
func RunCases(t *testing.T, appURL string, cases []Case) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			method := c.Method
			if method == "" {
				method = http.MethodGet
			}
			resp, body := Call(t, method, appURL+c.Path, c.Authorization)
			if resp.StatusCode != c.Status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, c.Status, body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != c.WWWAuthenticate {
				t.Errorf("WWW-Authenticate %q, want %q", got, c.WWWAuthenticate)
			}
			switch {
			case c.BodyHas != "" && !strings.Contains(body, c.BodyHas):
				t.Errorf("body %s, want %s in it", body, c.BodyHas)
			case c.BodyHas == "" && body != c.Body:
				t.Errorf("body %s, want %s", body, c.Body)
			}
			if _, credentials, _ := strings.Cut(c.Authorization, " "); credentials != "" && strings.Contains(body, credentials) {
				t.Error("the answer contains the request's credentials")
			}
		})
	}
}
