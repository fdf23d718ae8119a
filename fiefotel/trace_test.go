package fiefotel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fief-go/fief"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// TestOutboundSpans: with otelhttp's transport given to WithHTTPClient,
// the calls to Fief are client spans (discovery, key set, userinfo), with
// their URL and status, userinfo's in the request's trace, and no span
// holds the access token.
func TestOutboundSpans(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	s := newServer(t)
	c := newClient(t, s, fief.WithHTTPClient(&http.Client{
		Timeout:   fief.DefaultTimeout,
		Transport: otelhttp.NewTransport(http.DefaultTransport, otelhttp.WithTracerProvider(tp)),
	}))
	a := newAuthenticator(t, c, fief.WithUserInfoCache(memCache(t)))
	tok := s.AccessToken(addUser(s).ID)

	// A request to a CurrentUser route, in a trace of its own.
	var seen bool
	h := a.CurrentUser()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { seen = true }))
	ctx, parent := tp.Tracer("test").Start(context.Background(), "GET /me")
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/me", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	parent.End()
	if w.Code != http.StatusOK || !seen {
		t.Fatalf("status %d", w.Code)
	}

	want := map[string]string{ // url.full by the path ending it
		"/.well-known/openid-configuration": s.URL + "/.well-known/openid-configuration",
		"/.well-known/jwks.json":            s.URL + "/.well-known/jwks.json",
		"/api/userinfo":                     s.URL + "/api/userinfo",
	}
	got := map[string]bool{}
	for _, span := range exp.GetSpans() {
		for _, kv := range span.Attributes {
			if v := kv.Value.String(); strings.Contains(v, tok) || strings.Contains(strings.ToLower(v), "bearer") {
				t.Errorf("span %q: attribute %s holds the token: %q", span.Name, kv.Key, v)
			}
		}
		for _, ev := range span.Events {
			for _, kv := range ev.Attributes {
				if strings.Contains(kv.Value.String(), tok) {
					t.Errorf("span %q, event %q: attribute %s holds the token", span.Name, ev.Name, kv.Key)
				}
			}
		}
		if strings.Contains(span.Status.Description, tok) {
			t.Errorf("span %q: status holds the token", span.Name)
		}
		if span.SpanKind != trace.SpanKindClient {
			continue
		}
		attrs := attribute.NewSet(span.Attributes...)
		u, _ := attrs.Value(semconv.URLFullKey)
		method, _ := attrs.Value(semconv.HTTPRequestMethodKey)
		status, _ := attrs.Value(semconv.HTTPResponseStatusCodeKey)
		for path, url := range want {
			if strings.HasSuffix(u.AsString(), path) {
				got[path] = true
				if u.AsString() != url || method.AsString() != http.MethodGet || status.AsInt64() != http.StatusOK {
					t.Errorf("span %q: url.full %q, method %q, status %d", span.Name, u.AsString(), method.AsString(), status.AsInt64())
				}
				// userinfo is called in the request's trace; the fetches,
				// shared by every request waiting for them, run on the
				// Client's background context, in traces of their own.
				inRequest := span.Parent.SpanID() == parent.SpanContext().SpanID()
				if root := !span.Parent.IsValid(); inRequest != (path == "/api/userinfo") || !inRequest && !root {
					t.Errorf("span %q (%s): parent %v, the request's span %v", span.Name, u.AsString(), span.Parent.SpanID(), parent.SpanContext().SpanID())
				}
			}
		}
	}
	for path := range want {
		if !got[path] {
			t.Errorf("no client span for %s among %d spans", path, len(exp.GetSpans()))
		}
	}
}
