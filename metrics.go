package hoard

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metrics, through the OpenTelemetry metric API (Config.MeterProvider, or
// the global provider, as instrumentation libraries do). Every attribute
// set a request can need is built once (per route pattern, per store
// operation), so that counting a hit allocates nothing.
//
//	hoard.route.requests        counter    route, result (hit, miss, stale, bypass, uncacheable, error)
//	hoard.provider.requests     counter    operation (get, fetch, set, delete, ...), result (hit, miss, ok, error)
//	hoard.store.duration        histogram  s; operation (get, get_multi, set, ...), outcome (ok, error)
//	hoard.invalidation.keys     counter    outcome (written, failed, replayed)
//	hoard.invalidation.pending  gauge      namespace; keys waiting to be replayed
//	hoard.breaker.open          gauge      namespace; 1 while the breaker skips the store
//	hoard.entry.size            histogram  By; every value stored
//
// The redis store adds the near cache's (hoard.near.*) when it has one.

// MeterName is the instrumentation scope of hoard's metrics.
const MeterName = "github.com/hoardcache/hoard"

// result is the outcome of a cached route's GET, the result attribute of
// hoard.route.requests.
type result uint8

const (
	resultHit         result = iota // answered from a fresh entry
	resultMiss                      // the handler ran (or another run's answer was shared) and its answer stored
	resultStale                     // answered from an entry past its TTL (StaleWhileRevalidate, StaleIfError)
	resultBypass                    // not cached by design: no key (no caller, key too long), a method override
	resultUncacheable               // the handler ran and its answer was not stored (status, headers, size)
	resultError                     // the store failed or was skipped (breaker open): served uncached
	numResults
)

var resultNames = [numResults]string{"hit", "miss", "stale", "bypass", "uncacheable", "error"}

// storeOp names a store call, the operation attribute of hoard.store.duration.
type storeOp uint8

const (
	opGet storeOp = iota
	opGetMulti
	opSet
	opAdd
	opTouch
	opDelete
	opDeletePattern
	opPing
	numStoreOps
)

var storeOpNames = [numStoreOps]string{"get", "get_multi", "set", "add", "touch", "delete", "delete_pattern", "ping"}

// Invalidation outcomes, the outcome attribute of hoard.invalidation.keys.
const (
	invWritten = iota
	invFailed
	invReplayed
	numInvOutcomes
)

var invOutcomeNames = [numInvOutcomes]string{"written", "failed", "replayed"}

// metrics are a Cache's instruments and the attribute sets it records with.
type metrics struct {
	requests, provider, invalidations metric.Int64Counter
	storeDuration                     metric.Float64Histogram
	entrySize                         metric.Int64Histogram
	gauges                            metric.Registration

	store   [numStoreOps][2][]metric.RecordOption // [op][failed]
	inv     [numInvOutcomes][]metric.AddOption
	provOps map[[2]string][]metric.AddOption // [operation, result]
}

// providerOps are the provider API's operations and the results each can
// have.
var providerOps = map[string][]string{
	"get":            {"hit", "miss", "error"},
	"fetch":          {"hit", "miss", "error"},
	"exists":         {"hit", "miss", "error"},
	"set":            {"ok", "error"},
	"delete":         {"ok", "error"},
	"delete_pattern": {"ok", "error"},
	"invalidate":     {"ok", "error"},
	"clear":          {"ok", "error"},
}

// routeResults are the attribute sets of one route's requests, one per
// result.
type routeResults [numResults][]metric.AddOption

// newMetrics creates the instruments on mp (nil: the global provider). A
// provider that fails to create one gives a no-op instrument (the API's
// rule), so that metrics never stop a Cache from working.
func newMetrics(mp metric.MeterProvider, c *Cache) *metrics {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(MeterName)
	m := &metrics{}
	m.requests, _ = meter.Int64Counter("hoard.route.requests",
		metric.WithDescription("GET and HEAD requests of cached routes, by route pattern and result."), metric.WithUnit("{request}"))
	m.provider, _ = meter.Int64Counter("hoard.provider.requests",
		metric.WithDescription("Calls of the provider API (Get, Fetch, Set, ...), by operation and result."), metric.WithUnit("{call}"))
	m.invalidations, _ = meter.Int64Counter("hoard.invalidation.keys",
		metric.WithDescription("Store keys of invalidations: written, failed (kept to be replayed) and replayed."), metric.WithUnit("{key}"))
	m.storeDuration, _ = meter.Float64Histogram("hoard.store.duration",
		metric.WithDescription("Duration of store calls, by operation and outcome."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
	m.entrySize, _ = meter.Int64Histogram("hoard.entry.size",
		metric.WithDescription("Size of the values stored (entries and provider values, with hoard's envelope)."), metric.WithUnit("By"),
		metric.WithExplicitBucketBoundaries(256, 1024, 4096, 16384, 65536, 262144, 1048576))
	pending, _ := meter.Int64ObservableGauge("hoard.invalidation.pending",
		metric.WithDescription("Invalidated keys waiting to be replayed; their namespaces are served uncached meanwhile."), metric.WithUnit("{key}"))
	open, _ := meter.Int64ObservableGauge("hoard.breaker.open",
		metric.WithDescription("1 while the circuit breaker skips the store after repeated failures, else 0."))
	// The gauges name the Cache's namespace, so that two Caches on one
	// provider report two series.
	ns := metric.WithAttributeSet(attribute.NewSet(attribute.String("namespace", c.cfg.KeyPrefix)))
	m.gauges, _ = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(pending, int64(c.pending.size()), ns)
		var v int64
		if !c.breaker.closed() {
			v = 1
		}
		o.ObserveInt64(open, v, ns)
		return nil
	}, pending, open)
	for op := range numStoreOps {
		for failed, outcome := range []string{"ok", "error"} {
			m.store[op][failed] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
				attribute.String("operation", storeOpNames[op]), attribute.String("outcome", outcome)))}
		}
	}
	m.provOps = map[[2]string][]metric.AddOption{}
	for op, results := range providerOps {
		for _, r := range results {
			m.provOps[[2]string{op, r}] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
				attribute.String("operation", op), attribute.String("result", r)))}
		}
	}
	for i, name := range invOutcomeNames {
		m.inv[i] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", name)))}
	}
	return m
}

// routeResults builds the attribute sets of the route named route.
func (m *metrics) routeResults(route string) *routeResults {
	var rr routeResults
	for i, name := range resultNames {
		rr[i] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
			attribute.String("route", route), attribute.String("result", name)))}
	}
	return &rr
}

// request counts one request of a route.
func (m *metrics) request(ctx context.Context, rr *routeResults, res result) {
	m.requests.Add(ctx, 1, rr[res]...)
}

// storeCall records the duration of one store call.
func (m *metrics) storeCall(ctx context.Context, op storeOp, start time.Time, err error) {
	if m == nil {
		return // a storePath built without metrics (tests)
	}
	failed := 0
	if err != nil {
		failed = 1
	}
	m.storeDuration.Record(ctx, time.Since(start).Seconds(), m.store[op][failed]...)
}

// invalidated counts n keys of an invalidation with the given outcome.
func (m *metrics) invalidated(ctx context.Context, outcome, n int) {
	if n > 0 {
		m.invalidations.Add(ctx, int64(n), m.inv[outcome]...)
	}
}

// providerCall counts a provider API call: op is a key of providerOps,
// result one of its results.
func (m *metrics) providerCall(ctx context.Context, op, result string) {
	m.provider.Add(ctx, 1, m.provOps[[2]string{op, result}]...)
}

// providerRead counts a provider read: hit, miss or error.
func (m *metrics) providerRead(ctx context.Context, op string, found bool, err error) {
	switch {
	case err != nil:
		m.providerCall(ctx, op, "error")
	case found:
		m.providerCall(ctx, op, "hit")
	default:
		m.providerCall(ctx, op, "miss")
	}
}

// providerDone counts a provider call that reads nothing: ok or error.
func (m *metrics) providerDone(ctx context.Context, op string, err error) {
	if err != nil {
		m.providerCall(ctx, op, "error")
		return
	}
	m.providerCall(ctx, op, "ok")
}

// close unregisters the gauges' callback.
func (m *metrics) close() {
	if m.gauges != nil {
		m.gauges.Unregister()
	}
}
