package hoard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/hoardcache/hoard"
)

// TestHitAllocations pins the allocations hoard adds to a warm memory hit
// over a handler that writes the same bytes (every allocation of
// the hit path that is not needed was removed; one that comes back fails
// here). What remains is the key string, the store's keys and values
// slices and the replayed header values (4 allocations more than the static
// handler at the time of writing; 6 before the hit's header values were
// cached as strings). The Cache's metrics go to an OpenTelemetry SDK
// provider that a reader collects: counting a hit and timing its store
// call allocate nothing.
func TestHitAllocations(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	c := newMemoryCache(t, hoard.Config{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))}, nil)
	mux := http.NewServeMux()
	if err := c.HandleFunc(mux, benchPattern, widgetGetRoute, benchHandler); err != nil {
		t.Fatal(err)
	}
	static := http.NewServeMux()
	static.HandleFunc(benchPattern, benchHandler)

	serve := func(h http.Handler) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/widgets/42", nil))
		return w
	}
	serve(mux) // miss: stores the entry
	if w := serve(mux); w.Header().Get("Cache-Status") == "" || w.Body.String() != string(benchBody) {
		t.Fatalf("warm-up: %d %q %q", w.Code, w.Header().Get("Cache-Status"), w.Body)
	}
	if cs := serve(mux).Header().Get("Cache-Status"); len(cs) < 10 || cs[:10] != "hoard; hit" {
		t.Fatalf("Cache-Status %q; want a hit", cs)
	}
	hit := testing.AllocsPerRun(200, func() { serve(mux) })
	if n := routeRequests(t, reader)[benchPattern+" hit"]; n < 200 {
		t.Fatalf("hoard.route.requests{result=hit} = %d after 200 hits; the metrics are not recorded", n)
	}
	base := testing.AllocsPerRun(200, func() { serve(static) })
	const maxExtra = 4
	t.Logf("allocations per request: static handler %.0f, memory hit %.0f", base, hit)
	if hit-base > maxExtra {
		t.Errorf("a memory hit allocates %.0f times more than the static handler (%.0f vs %.0f); at most %d expected: look for a new allocation on the hit path (go test -bench RouteHit/memory/recorder -memprofile)",
			hit-base, hit, base, maxExtra)
	}
}

// routeRequests collects reader and returns hoard.route.requests by
// "route result".
func routeRequests(t *testing.T, reader sdkmetric.Reader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "hoard.route.requests" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				route, _ := dp.Attributes.Value("route")
				result, _ := dp.Attributes.Value("result")
				out[route.AsString()+" "+result.AsString()] += dp.Value
			}
		}
	}
	return out
}

// TestHitAllocationsAcrossPatterns: a Middleware mounted on two ServeMux
// patterns keeps what it learned of each, so hits that alternate between
// them allocate as hits of one pattern do (it used to rebuild a pattern's
// info, metric attribute sets included, at each alternation).
func TestHitAllocationsAcrossPatterns(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	mw, err := c.Middleware(widgetGetRoute)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /widgets/{id}", mw(http.HandlerFunc(benchHandler)))
	mux.Handle("GET /gadgets/{id}", mw(http.HandlerFunc(benchHandler)))
	serve := func(path string) {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if cs := w.Header().Get("Cache-Status"); len(cs) < 10 || cs[:10] != "hoard; hit" {
			t.Fatalf("GET %s: Cache-Status %q; want a hit", path, cs)
		}
	}
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/widgets/42", nil)) // stores
	serve("/gadgets/42")
	one := testing.AllocsPerRun(200, func() { serve("/widgets/42") })
	alternating := testing.AllocsPerRun(200, func() { serve("/widgets/42"); serve("/gadgets/42") }) / 2
	t.Logf("allocations per hit: one pattern %.1f, two alternating %.1f", one, alternating)
	// A rebuild costs about as much as the hit itself; the margin absorbs
	// the race detector's dropping of pooled buffers.
	if alternating > one+3 {
		t.Errorf("hits alternating between two patterns allocate %.1f times each, %.1f more than hits of one pattern: is a pattern's info rebuilt at each alternation?", alternating, alternating-one)
	}
}
