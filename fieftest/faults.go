package fieftest

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Endpoint names one of the Server's endpoints, for faults and request
// counters.
type Endpoint string

// The Server's endpoints.
const (
	EndpointDiscovery   Endpoint = "discovery"    // GET /.well-known/openid-configuration
	EndpointJWKS        Endpoint = "jwks"         // GET /.well-known/jwks.json
	EndpointAuthorize   Endpoint = "authorize"    // GET /authorize
	EndpointLogin       Endpoint = "login"        // GET and POST /login
	EndpointToken       Endpoint = "token"        // POST /api/token
	EndpointUserinfo    Endpoint = "userinfo"     // GET and POST /api/userinfo
	EndpointProfile     Endpoint = "profile"      // PATCH /api/profile
	EndpointPassword    Endpoint = "password"     // PATCH /api/password
	EndpointEmailChange Endpoint = "email_change" // PATCH /api/email/change
	EndpointEmailVerify Endpoint = "email_verify" // POST /api/email/verify
	EndpointLogout      Endpoint = "logout"       // GET /logout
)

// Fault describes how an endpoint misbehaves. The zero Fault does nothing.
// Latency applies first; then Down drops the connection, or a Status or
// Body replaces the answer; with neither, the endpoint answers normally
// after the latency.
type Fault struct {
	// Status is the status code to answer (200 when only Body is set), with
	// Body, or with {"detail":"<reason phrase>"} when Body is empty.
	Status int
	// Body is the raw response body (served as application/json, whatever
	// it holds), such as invalid JSON or a huge document.
	Body string
	// Latency delays the answer. The delay ends early, without an answer,
	// when the client gives up on the request or the Server closes.
	Latency time.Duration
	// Down closes the connection without answering: the client sees a
	// transport error. Note that net/http clients retry an idempotent
	// request once when a reused connection is closed that way, which the
	// request counters show.
	Down bool
	// Times limits the fault to the endpoint's next Times requests; 0 means
	// until it is cleared.
	Times int
}

// SetFault makes endpoint e misbehave as f, replacing any previous fault of
// e. It panics if f.Status is neither 0 nor a valid status (200-599) or if
// f.Times is negative.
func (s *Server) SetFault(e Endpoint, f Fault) {
	if f.Status != 0 && (f.Status < 200 || f.Status > 599) {
		panic(fmt.Sprintf("fieftest: SetFault(%s): invalid status %d", e, f.Status))
	}
	if f.Times < 0 {
		panic(fmt.Sprintf("fieftest: SetFault(%s): negative Times %d", e, f.Times))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[e] = &f
}

// ClearFault removes the fault of endpoint e.
func (s *Server) ClearFault(e Endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.faults, e)
}

// ClearFaults removes the faults of every endpoint. It does not undo
// SetDown.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// SetDown makes every request (to any path) behave as Fault{Down: true}
// while down is true, whatever the endpoints' faults.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Requests returns how many requests endpoint e has received since the
// Server started or ResetRequests was called, faulted ones included.
func (s *Server) Requests(e Endpoint) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[e]
}

// ResetRequests sets every request counter to zero.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.requests)
}

// applyFault counts a request to e and applies e's fault, if any. It
// reports whether the request should be served normally.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, e Endpoint) bool {
	s.mu.Lock()
	s.requests[e]++
	var f Fault
	if fp, ok := s.faults[e]; ok {
		f = *fp
		if fp.Times > 0 {
			if fp.Times--; fp.Times == 0 {
				delete(s.faults, e)
			}
		}
	}
	if s.down {
		f = Fault{Down: true}
	}
	s.mu.Unlock()

	if f.Latency > 0 && !s.sleep(r.Context(), f.Latency) {
		if r.Context().Err() == nil {
			// The Server is closing: no answer rather than an empty 200.
			dropConnection(w)
		}
		return false
	}
	switch {
	case f.Down:
		dropConnection(w)
	case f.Status != 0 || f.Body != "":
		status := f.Status
		if status == 0 {
			status = http.StatusOK
		}
		if f.Body == "" {
			writeDetail(w, status)
		} else {
			writeRawJSON(w, status, []byte(f.Body))
		}
	default:
		return true
	}
	return false
}

// sleep waits for d and reports whether it did: it returns false early when
// ctx ends (the client went away) or the Server closes.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closed:
		return false
	}
}

// dropConnection closes the client connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
		return
	}
	// Not hijackable (HTTP/2): abort the handler, which resets the stream.
	panic(http.ErrAbortHandler)
}
