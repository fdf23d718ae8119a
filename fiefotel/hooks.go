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
// with (default: the global one, [otel.GetMeterProvider], at the time of
// [NewHooks]; the global provider delegates to the one set later with
// [otel.SetMeterProvider]).
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
	r, err := newRecorder(m, time.Now)
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

// The attribute values the recorder knows in advance, in the order of its
// precomputed options. An event with another value (one a later version
// of fief reports) is recorded too, at the price of an attribute set built
// for it.
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

// recorder records the events of the hooks into the instruments. The
// options of every known combination of attribute values are built once,
// so that a measurement on the request path allocates nothing here.
type recorder struct {
	checkDuration metric.Float64Histogram
	checkOpts     [][2][]metric.RecordOption // by checkOutcomes index, then cached
	fetchDuration metric.Float64Histogram
	fetchOpts     [][][]metric.RecordOption // by fetchResources index, then fetchOutcomes index
	userDuration  metric.Float64Histogram
	userOpts      [][]metric.RecordOption // by userOutcomes index
	cacheReads    metric.Int64Counter
	cacheOpts     [][]metric.AddOption // by cacheResults index
	logins        metric.Int64Counter
	loginOpts     [][]metric.AddOption // by loginOutcomes index

	now     func() time.Time
	mu      sync.Mutex
	keySets map[string]*keySet // by JWKS URL
}

// keySet is what fief.keyset.age observes of one key set.
type keySet struct {
	fetched time.Time // the end of its last successful fetch
	opts    []metric.ObserveOption
}

func newRecorder(m metric.Meter, now func() time.Time) (*recorder, error) {
	r := &recorder{now: now, keySets: make(map[string]*keySet)}
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

	r.checkOpts = make([][2][]metric.RecordOption, len(checkOutcomes))
	for i, o := range checkOutcomes {
		for c, cached := range []bool{false, true} {
			r.checkOpts[i][c] = recordOpts(checkAttrs(o, cached))
		}
	}
	r.fetchOpts = make([][][]metric.RecordOption, len(fetchResources))
	for i, res := range fetchResources {
		r.fetchOpts[i] = make([][]metric.RecordOption, len(fetchOutcomes))
		for j, o := range fetchOutcomes {
			r.fetchOpts[i][j] = recordOpts(fetchAttrs(res, o))
		}
	}
	r.userOpts = make([][]metric.RecordOption, len(userOutcomes))
	for i, o := range userOutcomes {
		r.userOpts[i] = recordOpts(outcomeAttrs(o))
	}
	r.cacheOpts = make([][]metric.AddOption, len(cacheResults))
	for i, res := range cacheResults {
		r.cacheOpts[i] = addOpts(cacheAttrs(res))
	}
	r.loginOpts = make([][]metric.AddOption, len(loginOutcomes))
	for i, o := range loginOutcomes {
		r.loginOpts[i] = addOpts(outcomeAttrs(o))
	}
	return r, nil
}

func checkAttrs(o fief.Outcome, cached bool) attribute.Set {
	return attribute.NewSet(keyOutcome.String(string(o)), keyTokenCached.Bool(cached))
}

func fetchAttrs(resource string, o fief.Outcome) attribute.Set {
	return attribute.NewSet(keyResource.String(resource), keyOutcome.String(string(o)))
}

func outcomeAttrs(o fief.Outcome) attribute.Set {
	return attribute.NewSet(keyOutcome.String(string(o)))
}

func cacheAttrs(result string) attribute.Set { return attribute.NewSet(keyCacheResult.String(result)) }

// recordOpts and addOpts return the options of a measurement with the
// attributes s, as the slices the instruments' variadic methods take, so
// that passing them does not build one.
func recordOpts(s attribute.Set) []metric.RecordOption {
	return []metric.RecordOption{metric.WithAttributeSet(s)}
}

func addOpts(s attribute.Set) []metric.AddOption {
	return []metric.AddOption{metric.WithAttributeSet(s)}
}

func (r *recorder) tokenChecked(ctx context.Context, e fief.TokenCheck) {
	var opts []metric.RecordOption
	if i := slices.Index(checkOutcomes, e.Outcome); i >= 0 {
		c := 0
		if e.Cached {
			c = 1
		}
		opts = r.checkOpts[i][c]
	} else {
		opts = recordOpts(checkAttrs(e.Outcome, e.Cached))
	}
	r.checkDuration.Record(ctx, e.Duration.Seconds(), opts...)
}

func (r *recorder) fetched(ctx context.Context, e fief.Fetch) {
	var opts []metric.RecordOption
	i, j := slices.Index(fetchResources, e.Resource), slices.Index(fetchOutcomes, e.Outcome)
	if i >= 0 && j >= 0 {
		opts = r.fetchOpts[i][j]
	} else {
		opts = recordOpts(fetchAttrs(e.Resource, e.Outcome))
	}
	r.fetchDuration.Record(ctx, e.Duration.Seconds(), opts...)
	if e.Resource == "jwks" && e.Outcome == fief.OutcomeOK && e.URL != "" {
		r.keySetFetched(e.URL)
	}
}

// keySetFetched notes a successful fetch of the key set at url. Fetches
// are rare (a Client's first use, a rotation, once an hour), so a mutex
// will do.
func (r *recorder) keySetFetched(url string) {
	now := r.now()
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
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ks := range r.keySets {
		o.Observe(now.Sub(ks.fetched).Seconds(), ks.opts...)
	}
	return nil
}

func (r *recorder) userInfoFetched(ctx context.Context, e fief.UserInfoFetch) {
	var opts []metric.RecordOption
	if i := slices.Index(userOutcomes, e.Outcome); i >= 0 {
		opts = r.userOpts[i]
	} else {
		opts = recordOpts(outcomeAttrs(e.Outcome))
	}
	r.userDuration.Record(ctx, e.Duration.Seconds(), opts...)
}

func (r *recorder) cacheRead(ctx context.Context, e fief.CacheRead) {
	var opts []metric.AddOption
	if i := slices.Index(cacheResults, e.Result); i >= 0 {
		opts = r.cacheOpts[i]
	} else {
		opts = addOpts(cacheAttrs(e.Result))
	}
	r.cacheReads.Add(ctx, 1, opts...)
}

func (r *recorder) loginDone(ctx context.Context, e fief.Login) {
	var opts []metric.AddOption
	if i := slices.Index(loginOutcomes, e.Outcome); i >= 0 {
		opts = r.loginOpts[i]
	} else {
		opts = addOpts(outcomeAttrs(e.Outcome))
	}
	r.logins.Add(ctx, 1, opts...)
}
