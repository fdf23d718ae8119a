package fiefotel

import (
	"context"
	"errors"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/fief-go/fief"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// ScopeName is the name of the meter the instruments are created from, its
// instrumentation scope: select them by it in an SDK view (to change the
// bucket boundaries of the histograms, say).
const ScopeName = "github.com/fief-go/fief/fiefotel"

// The attribute keys of the measurements; the key set's URL, on
// fief.keyset.age, is url.full.
const (
	keyOutcome     = attribute.Key("fief.outcome")
	keyTokenCached = attribute.Key("fief.token.cached")
	keyResource    = attribute.Key("fief.resource")
	keyCacheResult = attribute.Key("fief.cache.result")
)

// Option configures [NewHooks].
type Option func(*config) error

type config struct {
	mp metric.MeterProvider
}

// WithMeterProvider sets the meter provider the instruments are created
// with. The default is the global one, [otel.GetMeterProvider], at the
// time of [NewHooks]: hooks made before the first [otel.SetMeterProvider]
// record into the provider it sets.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) error {
		if mp == nil {
			return errors.New("fiefotel: WithMeterProvider: nil provider")
		}
		c.mp = mp
		return nil
	}
}

// NewHooks creates the instruments of the package documentation and returns
// the [fief.Hooks] that record them, for [fief.WithHooks]. Create them once
// and share them between the Clients of a process: the instruments are
// the same for all (a multi-tenant service's clients report into the same
// series), and each call registers one more callback for fief.keyset.age.
// The hooks are safe for concurrent use; those of the request path
// allocate nothing of their own.
func NewHooks(opts ...Option) (*fief.Hooks, error) {
	var cfg config
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("fiefotel: NewHooks: nil Option")
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.mp == nil {
		cfg.mp = otel.GetMeterProvider()
	}
	m := cfg.mp.Meter(ScopeName, metric.WithInstrumentationVersion(version()), metric.WithSchemaURL(semconv.SchemaURL))
	r, err := newRecorder(m)
	if err != nil {
		return nil, err
	}
	return &fief.Hooks{
		TokenChecked:      r.tokenChecked,
		Fetched:           r.fetched,
		UserInfoFetched:   r.userInfoFetched,
		UserInfoCacheRead: r.cacheRead,
		LoginDone:         r.loginDone,
	}, nil
}

// version is the version of this module in the program's build, or "" when
// unknown (a development build, a test).
var version = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range append([]*debug.Module{&bi.Main}, bi.Deps...) {
		if m.Path == ScopeName && m.Version != "(devel)" {
			return m.Version
		}
	}
	return ""
})

// The bucket boundaries of the histograms, in seconds. A token check
// takes well under a microsecond on a verified-token cache hit, a few
// hundred microseconds for the RSA signature of a token's first sight, and
// milliseconds to seconds when it waits for Fief (the first key-set fetch,
// userinfo); a fetch or a userinfo call takes from a fraction of a
// millisecond (Fief next door) to the client's timeout.
var (
	checkBuckets = []float64{
		0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
		0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
	}
	fetchBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
)

// The attribute values the recorder knows in advance.
var (
	checkOutcomes = []fief.Outcome{
		fief.OutcomeOK, fief.OutcomeNoToken, fief.OutcomeInvalid, fief.OutcomeExpired,
		fief.OutcomeInsufficient, fief.OutcomeUnavailable,
	}
	fetchResources = []string{"discovery", "jwks"}
	fetchOutcomes  = []fief.Outcome{fief.OutcomeOK, fief.OutcomeError}
	userOutcomes   = []fief.Outcome{fief.OutcomeOK, fief.OutcomeRefused, fief.OutcomeError}
	cacheResults   = []string{"hit", "miss", "error"}
	loginOutcomes  = []fief.Outcome{
		fief.OutcomeOK, fief.OutcomeDenied, fief.OutcomeInvalid, fief.OutcomeRefused,
		fief.OutcomeUnavailable, fief.OutcomeError,
	}
)

// The attribute values of the measurements of a token check and of a
// fetch.
type (
	checkKey struct {
		outcome fief.Outcome
		cached  bool
	}
	fetchKey struct {
		resource string
		outcome  fief.Outcome
	}
)

// options holds the options of a measurement, with its attribute set, for
// each combination of attribute values known in advance, built once as the
// slices the instruments' variadic methods take: recording with them
// allocates nothing here. Another combination (a value a later fief
// reports) is recorded too, at the price of options built for it.
type options[K comparable, O any] struct {
	keys  []K
	opts  [][]O
	build func(K) []O
}

func newOptions[K comparable, O any](keys []K, attrs func(K) attribute.Set, wrap func(metric.MeasurementOption) O) *options[K, O] {
	o := &options[K, O]{keys: keys}
	o.build = func(k K) []O { return []O{wrap(metric.WithAttributeSet(attrs(k)))} }
	for _, k := range keys {
		o.opts = append(o.opts, o.build(k))
	}
	return o
}

func (o *options[K, O]) of(k K) []O {
	if i := slices.Index(o.keys, k); i >= 0 {
		return o.opts[i]
	}
	return o.build(k)
}

func asRecord(o metric.MeasurementOption) metric.RecordOption { return o }
func asAdd(o metric.MeasurementOption) metric.AddOption       { return o }

// recorder records the events of the hooks into the instruments.
type recorder struct {
	checkDuration metric.Float64Histogram
	checkOpts     *options[checkKey, metric.RecordOption]
	fetchDuration metric.Float64Histogram
	fetchOpts     *options[fetchKey, metric.RecordOption]
	userDuration  metric.Float64Histogram
	userOpts      *options[fief.Outcome, metric.RecordOption]
	cacheReads    metric.Int64Counter
	cacheOpts     *options[string, metric.AddOption]
	logins        metric.Int64Counter
	loginOpts     *options[fief.Outcome, metric.AddOption]

	mu      sync.Mutex
	keySets map[string]*keySet // by JWKS URL
}

// keySet is what fief.keyset.age observes of one key set.
type keySet struct {
	fetched time.Time // the end of its last successful fetch
	opts    []metric.ObserveOption
}

func newRecorder(m metric.Meter) (*recorder, error) {
	r := &recorder{keySets: make(map[string]*keySet)}
	var err error
	r.checkDuration, err = m.Float64Histogram("fief.token.check.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of access-token checks (a request authenticated, a ValidateAccessToken call), by outcome and by whether the verified-token cache knew the token."),
		metric.WithExplicitBucketBoundaries(checkBuckets...))
	if err != nil {
		return nil, err
	}
	r.fetchDuration, err = m.Float64Histogram("fief.fetch.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of the fetches of Fief's OpenID configuration and key set, by resource and outcome."),
		metric.WithExplicitBucketBoundaries(fetchBuckets...))
	if err != nil {
		return nil, err
	}
	r.userDuration, err = m.Float64Histogram("fief.userinfo.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of the calls to Fief's userinfo endpoint, by outcome."),
		metric.WithExplicitBucketBoundaries(fetchBuckets...))
	if err != nil {
		return nil, err
	}
	r.cacheReads, err = m.Int64Counter("fief.userinfo.cache.reads",
		metric.WithUnit("{read}"),
		metric.WithDescription("Reads of the user-info cache of Authenticators, by result."))
	if err != nil {
		return nil, err
	}
	r.logins, err = m.Int64Counter("fief.logins",
		metric.WithUnit("{login}"),
		metric.WithDescription("Logins ended by a LoginFlow's callback, by outcome."))
	if err != nil {
		return nil, err
	}
	_, err = m.Float64ObservableGauge("fief.keyset.age",
		metric.WithUnit("s"),
		metric.WithDescription("Time since the last successful fetch of each key set (by JWKS URL)."),
		metric.WithFloat64Callback(r.observeKeySets))
	if err != nil {
		return nil, err
	}

	var checks []checkKey
	for _, o := range checkOutcomes {
		checks = append(checks, checkKey{o, false}, checkKey{o, true})
	}
	r.checkOpts = newOptions(checks, func(k checkKey) attribute.Set {
		return attribute.NewSet(keyOutcome.String(string(k.outcome)), keyTokenCached.Bool(k.cached))
	}, asRecord)
	var fetches []fetchKey
	for _, res := range fetchResources {
		for _, o := range fetchOutcomes {
			fetches = append(fetches, fetchKey{res, o})
		}
	}
	r.fetchOpts = newOptions(fetches, func(k fetchKey) attribute.Set {
		return attribute.NewSet(keyResource.String(k.resource), keyOutcome.String(string(k.outcome)))
	}, asRecord)
	r.userOpts = newOptions(userOutcomes, outcomeAttrs, asRecord)
	r.cacheOpts = newOptions(cacheResults, func(res string) attribute.Set {
		return attribute.NewSet(keyCacheResult.String(res))
	}, asAdd)
	r.loginOpts = newOptions(loginOutcomes, outcomeAttrs, asAdd)
	return r, nil
}

func outcomeAttrs(o fief.Outcome) attribute.Set {
	return attribute.NewSet(keyOutcome.String(string(o)))
}

func (r *recorder) tokenChecked(ctx context.Context, e fief.TokenCheck) {
	r.checkDuration.Record(ctx, e.Duration.Seconds(), r.checkOpts.of(checkKey{e.Outcome, e.Cached})...)
}

func (r *recorder) fetched(ctx context.Context, e fief.Fetch) {
	r.fetchDuration.Record(ctx, e.Duration.Seconds(), r.fetchOpts.of(fetchKey{e.Resource, e.Outcome})...)
	if e.Resource == "jwks" && e.Outcome == fief.OutcomeOK && e.URL != "" {
		r.keySetFetched(e.URL)
	}
}

// keySetFetched notes a successful fetch of the key set at url. Fetches
// are rare (a Client's first use, a rotation, once an hour), so a mutex
// will do.
func (r *recorder) keySetFetched(url string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if ks := r.keySets[url]; ks != nil {
		ks.fetched = now
		return
	}
	// The URL is a string, immutable: keeping it as the series' key keeps
	// nothing of the event that could change.
	opts := []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(semconv.URLFull(url)))}
	r.keySets[url] = &keySet{fetched: now, opts: opts}
}

// observeKeySets is the callback of fief.keyset.age.
func (r *recorder) observeKeySets(_ context.Context, o metric.Float64Observer) error {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ks := range r.keySets {
		o.Observe(now.Sub(ks.fetched).Seconds(), ks.opts...)
	}
	return nil
}

func (r *recorder) userInfoFetched(ctx context.Context, e fief.UserInfoFetch) {
	r.userDuration.Record(ctx, e.Duration.Seconds(), r.userOpts.of(e.Outcome)...)
}

func (r *recorder) cacheRead(ctx context.Context, e fief.CacheRead) {
	r.cacheReads.Add(ctx, 1, r.cacheOpts.of(e.Result)...)
}

func (r *recorder) loginDone(ctx context.Context, e fief.LoginResult) {
	r.logins.Add(ctx, 1, r.loginOpts.of(e.Outcome)...)
}
