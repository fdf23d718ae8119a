package e2e_test

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fieftest"
)

const (
	email    = "anne@bretagne.duchy"
	password = "herminetruc"

	// testTimeout bounds the whole test, browser included.
	testTimeout = 60 * time.Second
	// stepTimeout bounds each browser step.
	stepTimeout = 15 * time.Second

	sessionCookie = "__Host-fief_app_session" // LoginFlow's default over HTTPS
)

// chromiumPath returns the browser to drive, or skips the test (fails it
// when FIEF_REQUIRE_CHROMIUM is set) when there is none.
func chromiumPath(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("CHROMIUM_PATH"), "/usr/bin/chromium"}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			candidates = append(candidates, p)
		}
	}
	for _, p := range candidates {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := "no Chromium found at $CHROMIUM_PATH, /usr/bin/chromium or on $PATH; install it (Debian: apt-get install chromium) to run the browser tests"
	if os.Getenv("FIEF_REQUIRE_CHROMIUM") != "" {
		t.Fatal(msg + " (FIEF_REQUIRE_CHROMIUM is set)")
	}
	t.Skip(msg)
	return ""
}

// app is a web application that logs its users in with a fief.LoginFlow,
// served over HTTPS (so the flow's cookies are Secure, as by default in
// production), and the Fief it talks to.
type app struct {
	fief   *fieftest.Server
	client *fief.Client
	server *httptest.Server
	url    string

	mu        sync.Mutex
	callbacks []callback // the requests the callback received
}

// callback is a request to the callback, as the browser sent it.
type callback struct {
	url                    string
	flowCookie, bindCookie *http.Cookie
}

var pages = template.Must(template.New("").Parse(`
{{define "home"}}<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Home</title></head>
<body><h1 id="home">Home</h1><p><a id="protected" href="/protected">Protected page</a></p></body></html>{{end}}
{{define "protected"}}<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Protected</title></head>
<body><h1>Hello</h1><p id="user">{{.Email}}</p><p id="path">{{.Path}}</p>
<form method="post" action="/logout"><button id="logout">Log out</button></form></body></html>{{end}}
{{define "strong"}}<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Strong</title></head>
<body><h1>Sensitive</h1><p id="acr">{{.}}</p></body></html>{{end}}`))

// appOptions changes the application of startApp.
type appOptions struct {
	fief   []fieftest.Option           // of the Fief server
	config func(*fief.LoginFlowConfig) // changes the flow's configuration
}

// startApp starts the application: GET / (home), /login, /auth-callback,
// POST /logout, GET /protected (the user's email address and the path),
// and GET /strong (requires ACR 1, answered with the token's ACR; step-up
// login otherwise), behind flow.Session().
func startApp(t *testing.T, o appOptions) *app {
	t.Helper()
	a := &app{fief: fieftest.NewTB(t, o.fief...)}
	a.fief.AddUser(fieftest.User{Email: email, Password: password, EmailVerified: true})
	var err error
	a.client, err = fief.New(a.fief.URL, a.fief.ClientID, a.fief.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.server = httptest.NewUnstartedServer(mux)
	a.server.StartTLS()
	t.Cleanup(a.server.Close)
	a.url = a.server.URL

	cache, err := fief.NewMemoryCache(100, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fief.LoginFlowConfig{
		RedirectURI:   a.url + "/auth-callback",
		UserInfoCache: cache,
	}
	if o.config != nil {
		o.config(&cfg)
	}
	flow, err := fief.NewLoginFlow(a.client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := fief.NewAuthenticator(a.client,
		fief.WithExtractor(flow.Extractor()),
		fief.WithUserInfoCache(cache),
		fief.WithUnauthorizedHandler(flow.RedirectToLogin()),
		fief.WithForbiddenHandler(flow.RedirectToStepUp()))
	if err != nil {
		t.Fatal(err)
	}
	a.server.Config.Handler = flow.Session()(mux)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		_ = pages.ExecuteTemplate(w, "home", nil)
	})
	mux.Handle("GET /login", flow.Login())
	mux.Handle("GET /auth-callback", a.recordCallback(flow.Callback()))
	mux.Handle("POST /logout", flow.Logout())
	mux.Handle("GET /protected", auth.CurrentUser()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := fief.UserInfoFromContext(r.Context())
		w.Header().Set("Cache-Control", "no-store")
		_ = pages.ExecuteTemplate(w, "protected", struct{ Email, Path string }{user.Email(), r.URL.RequestURI()})
	})))
	mux.Handle("GET /strong", auth.Authenticated(fief.RequireACR(fief.ACRLevelOne))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := fief.AccessTokenInfoFromContext(r.Context())
		w.Header().Set("Cache-Control", "no-store")
		_ = pages.ExecuteTemplate(w, "strong", "ACR "+info.ACR().String())
	})))
	return a
}

// recordCallback records the requests to the callback, to replay them.
func (a *app) recordCallback(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cb := callback{url: a.url + r.URL.RequestURI()}
		for _, c := range r.Cookies() {
			if strings.Contains(c.Name, "fief_flow_") {
				cb.flowCookie = c
			}
			if strings.Contains(c.Name, "fief_bind_") {
				cb.bindCookie = c
			}
		}
		a.mu.Lock()
		a.callbacks = append(a.callbacks, cb)
		a.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (a *app) lastCallback(t *testing.T) callback {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.callbacks) == 0 {
		t.Fatal("the callback was never called")
	}
	return a.callbacks[len(a.callbacks)-1]
}

// startBrowser starts headless Chromium and returns the context of its
// first tab. The browser is killed when the test ends.
func startBrowser(t *testing.T, ctx context.Context, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// The application's certificate is httptest's, self-signed.
		chromedp.IgnoreCertErrors,
		chromedp.UserDataDir(profileDir(t)),
		chromedp.WindowSize(1024, 768),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		// Close the browser gracefully if it still runs; the cancellations
		// then kill its process and wait for it.
		closeCtx, cancel := context.WithTimeout(browserCtx, 5*time.Second)
		defer cancel()
		_ = chromedp.Cancel(closeCtx)
		cancelBrowser()
		cancelAlloc()
	})
	// Start the browser without a step timeout: the first run's context
	// lives as long as the browser.
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return browserCtx
}

// profileDir returns a new directory for the browser's profile, removed
// when the test ends. The browser's helper processes may write to it for a
// moment after it stops, so the removal is retried.
func profileDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fief-e2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if err := os.RemoveAll(dir); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("cannot remove the browser profile %s", dir)
	})
	return dir
}

// step runs fn with a context bounded by stepTimeout, failing the test on
// error.
func step[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// cookies returns the browser's cookies for the URL.
func cookies(u string) chromedp.Action[[]*network.Cookie] {
	return func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{u}})
		return res.Cookies, err
	}
}

func findCookie(cs []*network.Cookie, name string) *network.Cookie {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// logIn types the credentials on Fief's login page, which the tab shows,
// and returns the response of the page the browser lands on.
func logIn(t *testing.T, ctx context.Context, fiefURL string) *network.Response {
	t.Helper()
	step(t, ctx, "Fief's login form", chromedp.WaitVisible(chromedp.ID("email")))
	if loc := step(t, ctx, "location", chromedp.Location()); !strings.HasPrefix(loc, fiefURL+"/authorize?") {
		t.Fatalf("the login form is at %s, want Fief's /authorize", loc)
	}
	step(t, ctx, "typing the credentials", chromedp.Steps(
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password),
	))
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("login")))
	if err != nil {
		t.Fatalf("submitting the login form: %v", err)
	}
	return resp
}

// checkErrorPage checks that the tab shows the flow's error page.
func checkErrorPage(t *testing.T, ctx context.Context, resp *network.Response, want string) {
	t.Helper()
	if resp.Status != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.Status)
	}
	if msg := step(t, ctx, "error message", chromedp.Text(chromedp.ID("fief-login-error"))); !strings.Contains(msg, want) {
		t.Errorf("error page says %q, want %q", msg, want)
	}
}

func TestBrowserLogin(t *testing.T) {
	chromium := chromiumPath(t)
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	// Not t.Context(): it ends before the cleanups, which close the browser.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	a := startApp(t, appOptions{})
	tab := startBrowser(t, ctx, chromium)

	// A visitor opens a protected page: the application sends the browser
	// to Fief's login form, and back to the page after login.
	step(t, tab, "opening /protected", chromedp.Navigate(a.url+"/protected?tab=castles"))
	resp := logIn(t, tab, a.fief.URL)
	if resp.Status != http.StatusOK || resp.URL != a.url+"/protected?tab=castles" {
		t.Fatalf("after login: %d at %s, want 200 at /protected?tab=castles", resp.Status, resp.URL)
	}
	if user := step(t, tab, "user", chromedp.Text(chromedp.ID("user"))); user != email {
		t.Errorf("the page shows %q, want %q", user, email)
	}
	if n := a.fief.Requests(fieftest.EndpointUserinfo); n != 0 {
		t.Errorf("%d userinfo calls, want 0: the login filled the cache", n)
	}

	// The browser keeps the session as the flow set it, and no cookie of
	// the flow.
	jar := step(t, tab, "cookies", cookies(a.url+"/auth-callback"))
	session := findCookie(jar, sessionCookie)
	if session == nil {
		t.Fatalf("no %s cookie in the browser", sessionCookie)
	}
	if !session.HTTPOnly || !session.Secure || session.SameSite != network.CookieSameSiteLax || session.Path != "/" || session.Session {
		t.Errorf("session cookie: HttpOnly=%v Secure=%v SameSite=%q Path=%q Session=%v, want HttpOnly, Secure, Lax, /, persistent",
			session.HTTPOnly, session.Secure, session.SameSite, session.Path, session.Session)
	}
	for _, c := range jar {
		if strings.Contains(c.Name, "fief_flow_") || strings.Contains(c.Name, "fief_bind_") {
			t.Errorf("flow cookie %s left in the browser", c.Name)
		}
	}
	// Script on the page cannot read it.
	if js := step(t, tab, "document.cookie", chromedp.Evaluate[string](`document.cookie`)); strings.Contains(js, "fief_") {
		t.Errorf("document.cookie shows %q", js)
	}

	// Replaying the callback fails: the browser has no flow cookie any more,
	// and even with the flow's cookies put back, the flow was consumed.
	cb := a.lastCallback(t)
	if cb.flowCookie == nil || cb.bindCookie == nil || !strings.Contains(cb.url, "code=") {
		t.Fatalf("recorded callback %+v", cb)
	}
	resp = step(t, tab, "replaying the callback", chromedp.NavigateResponse(cb.url))
	checkErrorPage(t, tab, resp, "invalid, has expired or was already completed")
	secure, httpOnly := true, true
	step(t, tab, "putting the flow's cookies back", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, c := range []struct {
			cookie *http.Cookie
			path   string
		}{{cb.flowCookie, "/auth-callback"}, {cb.bindCookie, "/"}} {
			_, err := cdp.Call(ctx, tg, network.SetCookie, network.SetCookieParams{
				Name: c.cookie.Name, Value: c.cookie.Value, URL: a.url + c.path,
				Path: c.path, Secure: &secure, HTTPOnly: &httpOnly, SameSite: network.CookieSameSiteLax,
			})
			if err != nil {
				return err
			}
		}
		return nil
	}))
	tokenCalls := a.fief.Requests(fieftest.EndpointToken)
	resp = step(t, tab, "replaying the callback with its cookies", chromedp.NavigateResponse(cb.url))
	checkErrorPage(t, tab, resp, "invalid, has expired or was already completed")
	if n := a.fief.Requests(fieftest.EndpointToken) - tokenCalls; n != 0 {
		t.Errorf("the replay reached Fief's token endpoint %d times", n)
	}

	// A forged state is refused, and the page does not reflect it.
	forged := a.url + "/auth-callback?" + url.Values{"code": {"x"}, "state": {"<b id=forged>forged</b>"}}.Encode()
	resp = step(t, tab, "forged state", chromedp.NavigateResponse(forged))
	checkErrorPage(t, tab, resp, "invalid, has expired or was already completed")
	if html := step(t, tab, "page", chromedp.OuterHTML(chromedp.CSS("body"))); strings.Contains(html, "forged") {
		t.Errorf("the error page reflects the state: %s", html)
	}
	// An error from Fief gets a clear page.
	resp = step(t, tab, "Fief's error", chromedp.NavigateResponse(a.url+"/auth-callback?error=access_denied&state=x"))
	checkErrorPage(t, tab, resp, "cancelled or access was denied")

	// The session still works; logging out ends it and returns home through
	// Fief's logout page.
	step(t, tab, "back to /protected", chromedp.Navigate(a.url+"/protected"))
	step(t, tab, "protected page", chromedp.WaitVisible(chromedp.ID("logout")))
	ctxLogout, cancelLogout := context.WithTimeout(tab, stepTimeout)
	resp, err := chromedp.RunResponse(ctxLogout, chromedp.Click(chromedp.ID("logout")))
	cancelLogout()
	if err != nil {
		t.Fatalf("logging out: %v", err)
	}
	if resp.URL != a.url+"/" || resp.Status != http.StatusOK {
		t.Errorf("after logout: %d at %s, want the home page", resp.Status, resp.URL)
	}
	step(t, tab, "home page", chromedp.WaitVisible(chromedp.ID("home")))
	if c := findCookie(step(t, tab, "cookies", cookies(a.url+"/")), sessionCookie); c != nil {
		t.Errorf("the session cookie survived the logout")
	}
	step(t, tab, "opening /protected", chromedp.Navigate(a.url+"/protected"))
	step(t, tab, "Fief's login form again", chromedp.WaitVisible(chromedp.ID("email")))

	// Two tabs of the browser log in at the same time, each to its page.
	tabs := make([]context.Context, 2)
	for i := range tabs {
		var cancelTab context.CancelFunc
		tabs[i], cancelTab = chromedp.NewContext(tab)
		defer cancelTab()
		// The tab lives as long as the context of its first run: no
		// step timeout here.
		if err := chromedp.Do(tabs[i]); err != nil {
			t.Fatalf("opening a tab: %v", err)
		}
		step(t, tabs[i], "starting a login", chromedp.Navigate(fmt.Sprintf("%s/login?return_to=/protected?tab=%d", a.url, i)))
		step(t, tabs[i], "login form", chromedp.WaitVisible(chromedp.ID("email")))
	}
	for _, i := range []int{1, 0} {
		resp := logIn(t, tabs[i], a.fief.URL)
		want := fmt.Sprintf("%s/protected?tab=%d", a.url, i)
		if resp.Status != http.StatusOK || resp.URL != want {
			t.Errorf("tab %d after login: %d at %s, want 200 at %s", i, resp.Status, resp.URL, want)
		}
	}
}
