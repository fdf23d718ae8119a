package fiefotel_test

import (
	"context"
	"crypto/rsa"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fief-go/fief"
	"github.com/fief-go/fief/fiefotel"
	"github.com/fief-go/fief/fieftest"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// meter is a real SDK meter provider read by a manual reader, and the
// fiefotel hooks recording into it.
type meter struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	hooks  *fief.Hooks
}

func newMeter(t testing.TB) *meter {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	hooks, err := fiefotel.NewHooks(fiefotel.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	return &meter{reader: reader, mp: mp, hooks: hooks}
}

// collect reads every instrument of the fiefotel scope.
func (m *meter) collect(t testing.TB) collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := collected{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != fiefotel.ScopeName {
			t.Fatalf("instruments of scope %q", sm.Scope.Name)
		}
		for _, md := range sm.Metrics {
			out[md.Name] = md
		}
	}
	return out
}

// collected is the metrics of one collection, by name.
type collected map[string]metricdata.Metrics

// key names a data point by its attributes: "k=v,k=v" sorted by key.
func key(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// histograms returns the data points of histogram name by key; none when
// the instrument has not recorded anything yet.
func (c collected) histograms(t testing.TB, name string) map[string]metricdata.HistogramDataPoint[float64] {
	t.Helper()
	md, ok := c[name]
	if !ok {
		return nil
	}
	if md.Unit != "s" || md.Description == "" {
		t.Errorf("%s: unit %q, description %q", name, md.Unit, md.Description)
	}
	h, ok := md.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is a %T, want a float64 histogram", name, md.Data)
	}
	if h.Temporality != metricdata.CumulativeTemporality {
		t.Errorf("%s: temporality %v", name, h.Temporality)
	}
	out := make(map[string]metricdata.HistogramDataPoint[float64])
	for _, dp := range h.DataPoints {
		k := key(dp.Attributes)
		if _, dup := out[k]; dup {
			t.Fatalf("%s: two data points for %s", name, k)
		}
		out[k] = dp
	}
	return out
}

// counts returns the count of every data point of histogram name, by key.
func (c collected) counts(t testing.TB, name string) map[string]uint64 {
	t.Helper()
	out := make(map[string]uint64)
	for k, dp := range c.histograms(t, name) {
		out[k] = dp.Count
		if dp.Sum <= 0 {
			t.Errorf("%s{%s}: %d events lasting %v s in all", name, k, dp.Count, dp.Sum)
		}
		var inBuckets uint64
		for _, n := range dp.BucketCounts {
			inBuckets += n
		}
		if inBuckets != dp.Count || len(dp.Bounds) < 10 {
			t.Errorf("%s{%s}: %d in %d buckets, count %d", name, k, inBuckets, len(dp.Bounds)+1, dp.Count)
		}
	}
	return out
}

// sums returns the values of counter name by key.
func (c collected) sums(t testing.TB, name, unit string) map[string]int64 {
	t.Helper()
	md, ok := c[name]
	if !ok {
		return map[string]int64{}
	}
	if md.Unit != unit || md.Description == "" {
		t.Errorf("%s: unit %q, want %q; description %q", name, md.Unit, unit, md.Description)
	}
	s, ok := md.Data.(metricdata.Sum[int64])
	if !ok || !s.IsMonotonic || s.Temporality != metricdata.CumulativeTemporality {
		t.Fatalf("%s is %#v, want a cumulative int64 counter", name, md.Data)
	}
	out := make(map[string]int64)
	for _, dp := range s.DataPoints {
		out[key(dp.Attributes)] = dp.Value
	}
	return out
}

// gauge returns the values of gauge name by key.
func (c collected) gauge(t testing.TB, name string) map[string]float64 {
	t.Helper()
	md, ok := c[name]
	if !ok {
		return map[string]float64{}
	}
	if md.Unit != "s" || md.Description == "" {
		t.Errorf("%s: unit %q, description %q", name, md.Unit, md.Description)
	}
	g, ok := md.Data.(metricdata.Gauge[float64])
	if !ok {
		t.Fatalf("%s is a %T, want a float64 gauge", name, md.Data)
	}
	out := make(map[string]float64)
	for _, dp := range g.DataPoints {
		out[key(dp.Attributes)] = dp.Value
	}
	return out
}

// equal reports a difference between two maps, in sorted order.
func equal[V comparable](t testing.TB, what string, got, want map[string]V) {
	t.Helper()
	keys := make(map[string]bool)
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	var diffs []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	}) {
		g, gok := got[k]
		w, wok := want[k]
		if gok != wok || g != w {
			diffs = append(diffs, fmt.Sprintf("  {%s}: got %v (%v), want %v (%v)", k, g, gok, w, wok))
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%s:\n%s", what, strings.Join(diffs, "\n"))
	}
}

// testKey is one RSA key shared by the servers of the tests (generating
// keys is slow).
var testKey = sync.OnceValue(func() *rsa.PrivateKey { return fieftest.GenerateKey(2048) })

func newServer(t testing.TB) *fieftest.Server {
	t.Helper()
	return fieftest.NewTB(t, fieftest.WithSigningKey(testKey()))
}

func newClient(t testing.TB, s *fieftest.Server, opts ...fief.Option) *fief.Client {
	t.Helper()
	c, err := fief.New(s.URL, s.ClientID, s.ClientSecret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newAuthenticator(t testing.TB, c *fief.Client, opts ...fief.AuthOption) *fief.Authenticator {
	t.Helper()
	a, err := fief.NewAuthenticator(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func memCache(t testing.TB) *fief.MemoryCache {
	t.Helper()
	c, err := fief.NewMemoryCache(100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var userCount atomic.Int64 // for distinct e-mails

func addUser(s *fieftest.Server, perms ...string) fieftest.User {
	return s.AddUser(fieftest.User{
		Email:         fmt.Sprintf("user-%d@bretagne.duchy", userCount.Add(1)),
		Password:      "herminetruc",
		EmailVerified: true,
		Permissions:   perms,
	})
}
