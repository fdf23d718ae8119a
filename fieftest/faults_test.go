package fieftest_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fief-go/fief/fieftest"
)

func TestFaults(t *testing.T) {
	huge := strings.Repeat("x", 2<<20)
	tests := []struct {
		name       string
		fault      fieftest.Fault
		wantStatus int
		wantBody   string // "" = the endpoint's normal answer
	}{
		{"status", fieftest.Fault{Status: http.StatusServiceUnavailable}, 503, `{"detail":"Service Unavailable"}`},
		{"status and body", fieftest.Fault{Status: 500, Body: "<html>oops</html>"}, 500, "<html>oops</html>"},
		{"invalid JSON", fieftest.Fault{Body: `{"keys":`}, 200, `{"keys":`},
		{"huge body", fieftest.Fault{Body: huge}, 200, huge},
		{"rate limited", fieftest.Fault{Status: 429}, 429, `{"detail":"Too Many Requests"}`},
		{"latency only", fieftest.Fault{Latency: 50 * time.Millisecond}, 200, ""},
		{"latency and status", fieftest.Fault{Latency: 50 * time.Millisecond, Status: 504}, 504, `{"detail":"Gateway Timeout"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			s.SetFault(fieftest.EndpointJWKS, tc.fault)
			start := time.Now()
			r := get(t, s.URL+"/.well-known/jwks.json")
			if elapsed := time.Since(start); elapsed < tc.fault.Latency {
				t.Errorf("answered after %v, want at least %v", elapsed, tc.fault.Latency)
			}
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d", r.status, tc.wantStatus)
			}
			if tc.wantBody != "" && string(r.body) != tc.wantBody {
				t.Errorf("body = %.100s, want %.100s", r.body, tc.wantBody)
			}
			if tc.wantBody == "" && !strings.Contains(string(r.body), `"keys"`) {
				t.Errorf("body = %s, want the JWKS", r.body)
			}
			// Other endpoints are unaffected; the faulted one stays faulted.
			if r := get(t, s.URL+"/.well-known/openid-configuration"); r.status != http.StatusOK {
				t.Errorf("discovery: %d", r.status)
			}
			if r := get(t, s.URL+"/.well-known/jwks.json"); r.status != tc.wantStatus {
				t.Errorf("second request: %d, want %d", r.status, tc.wantStatus)
			}
			s.ClearFault(fieftest.EndpointJWKS)
			if r := get(t, s.URL+"/.well-known/jwks.json"); r.status != http.StatusOK {
				t.Errorf("after ClearFault: %d", r.status)
			}
		})
	}
}

func TestFaultTimes(t *testing.T) {
	s := newServer(t)
	s.SetFault(fieftest.EndpointToken, fieftest.Fault{Status: http.StatusBadGateway, Times: 2})
	var got []int
	for range 4 {
		got = append(got, do(t, http.MethodPost, s.URL+"/api/token", nil, nil).status)
	}
	want := []int{502, 502, 400, 400} // then the real endpoint: no grant_type
	if !equalJSON(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	if n := s.Requests(fieftest.EndpointToken); n != 4 {
		t.Errorf("Requests(token) = %d, want 4", n)
	}
}

func TestFaultLatencyCancelled(t *testing.T) {
	s := newServer(t)
	s.SetFault(fieftest.EndpointUserinfo, fieftest.Fault{Latency: time.Minute})

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/userinfo", nil)
	start := time.Now()
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the request succeeded despite the latency")
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("the client waited %v", elapsed)
	}

	// A request still waiting does not hold Close up: Close aborts it.
	go func() {
		if resp, err := http.Get(s.URL + "/api/userinfo"); err == nil {
			resp.Body.Close()
		}
	}()
	for s.Requests(fieftest.EndpointUserinfo) < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	start = time.Now()
	s.Close()
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Close took %v", elapsed)
	}
}

func TestFaultDown(t *testing.T) {
	s := newServer(t)
	// A client without keep-alive: net/http retries idempotent requests
	// once when a reused connection is closed without an answer.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	fails := func(path string) bool {
		resp, err := client.Get(s.URL + path)
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	}

	s.SetFault(fieftest.EndpointDiscovery, fieftest.Fault{Down: true, Times: 1})
	if !fails("/.well-known/openid-configuration") {
		t.Error("Down: the request succeeded")
	}
	if fails("/.well-known/openid-configuration") {
		t.Error("Down with Times 1: the second request failed")
	}

	s.SetDown(true)
	s.SetFault(fieftest.EndpointJWKS, fieftest.Fault{Status: 500})
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/jwks.json", "/api/userinfo", "/nowhere"} {
		if !fails(path) {
			t.Errorf("SetDown(true): %s answered", path)
		}
	}
	s.SetDown(false)
	if r := get(t, s.URL+"/.well-known/jwks.json"); r.status != 500 {
		t.Errorf("after SetDown(false) the JWKS fault is gone: %d", r.status)
	}
	s.ClearFaults()
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/jwks.json"} {
		if fails(path) {
			t.Errorf("after ClearFaults: %s failed", path)
		}
	}
	if n := s.Requests(fieftest.EndpointDiscovery); n != 4 {
		t.Errorf("Requests(discovery) = %d, want 4 (faulted requests count)", n)
	}
}

func TestSetFaultPanics(t *testing.T) {
	s := newServer(t)
	for _, f := range []fieftest.Fault{{Status: 99}, {Status: 600}, {Status: 101}, {Times: -1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SetFault(%+v) did not panic", f)
				}
			}()
			s.SetFault(fieftest.EndpointToken, f)
		}()
	}
}

func TestRequestCounters(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	token := s.AccessToken(alice.ID, fieftest.ACR("1"))
	calls := []struct {
		method, path string
		endpoint     fieftest.Endpoint
	}{
		{"GET", "/.well-known/openid-configuration", fieftest.EndpointDiscovery},
		{"GET", "/.well-known/jwks.json", fieftest.EndpointJWKS},
		{"GET", "/authorize", fieftest.EndpointAuthorize},
		{"POST", "/login", fieftest.EndpointLogin},
		{"POST", "/api/token", fieftest.EndpointToken},
		{"GET", "/api/userinfo", fieftest.EndpointUserinfo},
		{"POST", "/api/userinfo", fieftest.EndpointUserinfo},
		{"PATCH", "/api/profile", fieftest.EndpointProfile},
		{"PATCH", "/api/password", fieftest.EndpointPassword},
		{"PATCH", "/api/email/change", fieftest.EndpointEmailChange},
		{"POST", "/api/email/verify", fieftest.EndpointEmailVerify},
		{"GET", "/logout", fieftest.EndpointLogout},
		{"DELETE", "/logout", fieftest.EndpointLogout}, // 405, still counted
		{"GET", "/nowhere", ""},
	}
	want := map[fieftest.Endpoint]int{}
	for _, c := range calls {
		do(t, c.method, s.URL+c.path, strings.NewReader("{}"), bearer(token))
		if c.endpoint != "" {
			want[c.endpoint]++
		}
	}
	for e, n := range want {
		if got := s.Requests(e); got != n {
			t.Errorf("Requests(%s) = %d, want %d", e, got, n)
		}
	}
	s.ResetRequests()
	for e := range want {
		if got := s.Requests(e); got != 0 {
			t.Errorf("after ResetRequests, Requests(%s) = %d", e, got)
		}
	}
}

// TestConcurrentUse exercises every kind of state change while requests
// are served; run it with -race.
func TestConcurrentUse(t *testing.T) {
	s := newServer(t)
	alice := addAlice(s)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 5 {
				token := s.AccessToken(alice.ID, fieftest.ACR("1"))
				do(t, http.MethodGet, s.URL+"/api/userinfo", nil, bearer(token))
				do(t, http.MethodPatch, s.URL+"/api/profile", strings.NewReader(`{"fields":{"n":1}}`), bearer(token))
				code := s.IssueCode(fieftest.CodeRequest{UserID: alice.ID, RedirectURI: redirectURI})
				exchange(t, s, code, nil)
				get(t, s.URL+"/.well-known/jwks.json")
				s.SetPermissions(alice.ID, "p")
				s.SetFault(fieftest.EndpointLogout, fieftest.Fault{Status: 500, Times: 1})
				s.Requests(fieftest.EndpointJWKS)
				s.User(alice.ID)
				s.IDToken(alice.ID)
				s.AddUser(fieftest.User{Email: strings.Repeat("x", i+1) + "@" + strings.Repeat("y", j+1)})
			}
		})
	}
	wg.Go(func() { s.RotateKey() })
	wg.Wait()
}
