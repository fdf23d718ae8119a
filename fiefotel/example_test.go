package fiefotel_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefotel"
	"github.com/fief-go/fief/fieftest"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// A service's setup: the hooks for the metrics, otelhttp's transport for
// the spans of the calls to Fief.
func Example() {
	ctx := context.Background()
	// An in-process Fief for the example; a service names its Fief.
	srv := fieftest.New()
	defer srv.Close()
	user := srv.AddUser(fieftest.User{Email: "anne@bretagne.duchy", Password: "herminetruc"})

	// The providers of the service, usually set up once with their
	// exporters (OTLP, Prometheus) and made global; a manual reader here,
	// to print what an exporter would receive.
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(ctx)

	hooks, err := fiefotel.NewHooks(fiefotel.WithMeterProvider(mp))
	if err != nil {
		log.Fatal(err)
	}
	client, err := fief.New(srv.URL, srv.ClientID, srv.ClientSecret,
		fief.WithHooks(hooks),
		fief.WithHTTPClient(&http.Client{
			Timeout:   fief.DefaultTimeout,
			Transport: otelhttp.NewTransport(http.DefaultTransport, otelhttp.WithTracerProvider(tp)),
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	auth, err := fief.NewAuthenticator(client)
	if err != nil {
		log.Fatal(err)
	}
	h := auth.Authenticated()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	// Three requests: a token, the same token again, no token.
	tok := srv.AccessToken(user.ID)
	for _, authz := range []string{"Bearer " + tok, "Bearer " + tok, ""} {
		r := httptest.NewRequest(http.MethodGet, "/castles", nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					lines = append(lines, fmt.Sprintf("%s{%s}: %d", m.Name, dp.Attributes.Encoded(attribute.DefaultEncoder()), dp.Count))
				}
			case metricdata.Gauge[float64]:
				lines = append(lines, fmt.Sprintf("%s: %d key set", m.Name, len(d.DataPoints)))
			}
		}
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// fief.fetch.duration{fief.outcome=ok,fief.resource=discovery}: 1
	// fief.fetch.duration{fief.outcome=ok,fief.resource=jwks}: 1
	// fief.keyset.age: 1 key set
	// fief.token.check.duration{fief.outcome=no_token,fief.token.cached=false}: 1
	// fief.token.check.duration{fief.outcome=ok,fief.token.cached=false}: 1
	// fief.token.check.duration{fief.outcome=ok,fief.token.cached=true}: 1
}
