package hoard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/faultstore"
	"github.com/hoardcache/hoard/internal/storefixture"
)

// collected is what a ManualReader collected, by metric name.
type collected map[string]metricdata.Aggregation

func collect(t *testing.T, reader sdkmetric.Reader) collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := collected{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != hoard.MeterName {
			t.Errorf("scope %q; want %q", sm.Scope.Name, hoard.MeterName)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// sum returns the value of counter name at the data point whose
// attributes include every key=value of attrs.
func (c collected) sum(name string, attrs ...attribute.KeyValue) int64 {
	s, _ := c[name].(metricdata.Sum[int64])
	var n int64
	for _, dp := range s.DataPoints {
		if hasAttrs(dp.Attributes, attrs) {
			n += dp.Value
		}
	}
	return n
}

// gauge returns the value of gauge name for the Cache of namespace ns
// (the gauges name it), or -1.
func (c collected) gauge(name, ns string) int64 {
	g, _ := c[name].(metricdata.Gauge[int64])
	for _, dp := range g.DataPoints {
		if v, ok := dp.Attributes.Value("namespace"); ok && v.AsString() == ns {
			return dp.Value
		}
	}
	return -1
}

// count returns how many values histogram name recorded with attrs.
func (c collected) count(name string, attrs ...attribute.KeyValue) uint64 {
	var n uint64
	switch h := c[name].(type) {
	case metricdata.Histogram[float64]:
		for _, dp := range h.DataPoints {
			if hasAttrs(dp.Attributes, attrs) {
				n += dp.Count
			}
		}
	case metricdata.Histogram[int64]:
		for _, dp := range h.DataPoints {
			if hasAttrs(dp.Attributes, attrs) {
				n += dp.Count
			}
		}
	}
	return n
}

func hasAttrs(set attribute.Set, attrs []attribute.KeyValue) bool {
	for _, kv := range attrs {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

func route(pattern string) attribute.KeyValue { return attribute.String("route", pattern) }
func res(r string) attribute.KeyValue         { return attribute.String("result", r) }

// TestMetricsRouteRequests: hoard.route.requests counts each GET of a
// cached route under its pattern by result, as it was served, on every
// store; store calls, stored sizes and invalidated keys are recorded.
func TestMetricsRouteRequests(t *testing.T) {
	for _, name := range storefixture.Names {
		t.Run(name, func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			b := storefixture.Shared(t, name)
			cfg := b.Config(t)
			cfg.Cache.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			c := b.Open(t, cfg)
			const pattern = "GET /m/{id}"
			mux, _ := localMux(t, c,
				miniRoute{pattern: pattern, rt: &hoard.Route{KeyPrefix: "m"}, h: func(w http.ResponseWriter, r *http.Request) {
					if r.PathValue("id") == "missing" {
						http.NotFound(w, r)
						return
					}
					fmt.Fprint(w, "m", r.PathValue("id"))
				}},
				miniRoute{pattern: "PATCH /m/{id}", rt: &hoard.Route{KeyPrefix: "m"}, h: func(w http.ResponseWriter, r *http.Request) {}})
			want := map[string]int64{"hit": 0, "miss": 0, "bypass": 0, "uncacheable": 0}
			get := func(path, result string, header ...string) {
				t.Helper()
				serveLocal(t, mux, http.MethodGet, path, header...)
				want[result]++
			}
			get("/m/1", "miss")
			for range 3 {
				get("/m/1", "hit")
			}
			get("/m/2", "miss")
			get("/m/missing", "uncacheable")
			get("/m/missing", "uncacheable")
			get("/m/1", "bypass", "X-Http-Method-Override", "PATCH")
			serveLocal(t, mux, http.MethodPatch, "/m/1")
			get("/m/1", "miss")
			got := collect(t, reader)
			for result, n := range want {
				if g := got.sum("hoard.route.requests", route(pattern), res(result)); g != n {
					t.Errorf("hoard.route.requests{route=%q,result=%q} = %d; want %d", pattern, result, g, n)
				}
			}
			if n := got.sum("hoard.route.requests"); n != 9 {
				t.Errorf("hoard.route.requests in all = %d; want the 9 GETs", n)
			}
			if n := got.count("hoard.store.duration", attribute.String("operation", "get_multi"), attribute.String("outcome", "ok")); n < 8 {
				t.Errorf("hoard.store.duration{operation=get_multi,outcome=ok} counted %d calls; want one per GET that read the store (8) at least", n)
			}
			if n := got.count("hoard.entry.size"); n != 3 {
				t.Errorf("hoard.entry.size counted %d values; want the 3 entries stored", n)
			}
			if n := got.sum("hoard.invalidation.keys", attribute.String("outcome", "written")); n < 2 {
				t.Errorf("hoard.invalidation.keys{outcome=written} = %d; want the PATCH's generation and entry", n)
			}
			if g := got.gauge("hoard.breaker.open", cfg.Cache.KeyPrefix); g != 0 {
				t.Errorf("hoard.breaker.open = %d; want 0", g)
			}
		})
	}
}

// TestMetricsFailures: a store that fails shows as result=error, failed
// store calls, failed and then replayed invalidation keys, the pending
// gauge and the breaker gauge; the provider API is counted by operation
// and result.
func TestMetricsFailures(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	c, s := newFaultCache(t, hoard.Config{Logger: discardLogger(), MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	const pattern = "GET /f/{id}"
	mux, _ := localMux(t, c,
		miniRoute{pattern: pattern, rt: &hoard.Route{KeyPrefix: "f"}, h: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "f") }},
		miniRoute{pattern: "PATCH /f/{id}", rt: &hoard.Route{KeyPrefix: "f"}, h: func(w http.ResponseWriter, r *http.Request) {}})
	ctx := context.Background()
	c.Set(ctx, "p", []byte("v"), 0)
	c.Get(ctx, "p")
	c.Get(ctx, "absent")
	serveLocal(t, mux, http.MethodGet, "/f/1")
	down := errors.New("test store: down")
	s.Inject(faultstore.Fault{Err: down})
	serveLocal(t, mux, http.MethodPatch, "/f/1") // its invalidation fails: pending
	for range 6 {
		serveLocal(t, mux, http.MethodGet, "/f/2") // fails, then opens the breaker
	}
	c.Get(ctx, "p")
	got := collect(t, reader)
	if n := got.sum("hoard.route.requests", route(pattern), res("error")); n != 6 {
		t.Errorf("hoard.route.requests{result=error} = %d; want the 6 GETs while the store failed", n)
	}
	if n := got.count("hoard.store.duration", attribute.String("outcome", "error")); n == 0 {
		t.Error("hoard.store.duration recorded no failed call")
	}
	if n := got.sum("hoard.invalidation.keys", attribute.String("outcome", "failed")); n < 2 {
		t.Errorf("hoard.invalidation.keys{outcome=failed} = %d; want the PATCH's keys", n)
	}
	if g := got.gauge("hoard.invalidation.pending", c.Config().KeyPrefix); g < 2 {
		t.Errorf("hoard.invalidation.pending = %d; want the PATCH's keys", g)
	}
	if g := got.gauge("hoard.breaker.open", c.Config().KeyPrefix); g != 1 {
		t.Errorf("hoard.breaker.open = %d; want 1 after repeated failures", g)
	}
	for _, p := range []struct {
		op, result string
		want       int64
	}{{"set", "ok", 1}, {"get", "hit", 1}, {"get", "miss", 1}, {"get", "error", 1}} {
		if n := got.sum("hoard.provider.requests", attribute.String("operation", p.op), res(p.result)); n != p.want {
			t.Errorf("hoard.provider.requests{operation=%s,result=%s} = %d; want %d", p.op, p.result, n, p.want)
		}
	}

	s.Inject()
	waitFor(t, "the pending invalidation was not replayed", func() bool { return c.Stats().PendingInvalidations == 0 })
	got = collect(t, reader)
	if n := got.sum("hoard.invalidation.keys", attribute.String("outcome", "replayed")); n < 2 {
		t.Errorf("hoard.invalidation.keys{outcome=replayed} = %d after the replay; want the PATCH's keys", n)
	}
	if g := got.gauge("hoard.invalidation.pending", c.Config().KeyPrefix); g != 0 {
		t.Errorf("hoard.invalidation.pending = %d after the replay; want 0", g)
	}
}
