package fieftest

import (
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// browserTimeout bounds each request Authorize makes.
const browserTimeout = 30 * time.Second

var (
	formActionRE  = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	hiddenInputRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	errorTextRE   = regexp.MustCompile(`<p class="error"[^>]*>([^<]*)</p>`)
)

// Authorize stands in for a browser: it opens authURL (an authorization URL
// on this Server, as a Fief client builds it), fills the login form with
// email and password, submits it and returns the redirect's Location
// without following it. The Location carries code and state on success;
// when /authorize redirects with an error, Location carries error,
// error_description and state, and the error is nil.
//
// Authorize returns an error when the URL is not on this Server, when
// /authorize answers with an error page (unknown client, bad redirect URI)
// or when the credentials are refused.
func (s *Server) Authorize(authURL, email, password string) (*url.URL, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return nil, fmt.Errorf("fieftest: Authorize: %w", err)
	}
	base, _ := url.Parse(s.ts.URL)
	if u.Host != "" && u.Host != base.Host {
		return nil, fmt.Errorf("fieftest: Authorize: %s is not on this server (%s)", authURL, base.Host)
	}
	u = base.ResolveReference(u)

	hc := &http.Client{
		Transport:     s.ts.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       browserTimeout,
	}
	resp, err := hc.Get(u.String())
	if err != nil {
		return nil, fmt.Errorf("fieftest: Authorize: %w", err)
	}
	page, err := readPage(resp)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusFound {
		return resp.Location()
	}
	if resp.StatusCode != http.StatusOK {
		return nil, pageError("authorization request refused", resp, page)
	}

	action := formActionRE.FindStringSubmatch(page)
	if action == nil {
		return nil, errors.New("fieftest: Authorize: no login form on the authorization page")
	}
	target, err := u.Parse(html.UnescapeString(action[1]))
	if err != nil {
		return nil, fmt.Errorf("fieftest: Authorize: login form action: %w", err)
	}
	form := url.Values{}
	for _, m := range hiddenInputRE.FindAllStringSubmatch(page, -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	form.Set("email", email)
	form.Set("password", password)

	resp, err = hc.PostForm(target.String(), form)
	if err != nil {
		return nil, fmt.Errorf("fieftest: Authorize: %w", err)
	}
	page, err = readPage(resp)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusFound {
		return nil, pageError("login refused", resp, page)
	}
	return resp.Location()
}

// readPage reads and closes a response body.
func readPage(resp *http.Response) (string, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return "", fmt.Errorf("fieftest: Authorize: %w", err)
	}
	return string(b), nil
}

// pageError describes an HTML error answer: its status, X-Fief-Error code
// and error message.
func pageError(what string, resp *http.Response, page string) error {
	msg := resp.Status
	if code := resp.Header.Get("X-Fief-Error"); code != "" {
		msg += " " + code
	}
	if m := errorTextRE.FindStringSubmatch(page); m != nil {
		msg += ": " + strings.TrimSpace(html.UnescapeString(m[1]))
	}
	return fmt.Errorf("fieftest: Authorize: %s: %s", what, msg)
}
