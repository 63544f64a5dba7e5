package main

import (
	"bytes"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/hoardcache/hoard/stores"
)

// scrape reads GET /metrics and parses it with Prometheus' own text
// parser.
func (e *testEnv) scrape() map[string]*dto.MetricFamily {
	e.t.Helper()
	r := e.do(http.MethodGet, "/metrics", "")
	if r.Status != http.StatusOK {
		e.t.Fatalf("GET /metrics: %v", r)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		e.t.Fatalf("GET /metrics does not parse: %v\n%s", err, r.Body)
	}
	return families
}

// promValue returns the value of the sample of family name whose labels
// include every name=value of labels (pairs), summed over the matches.
func promValue(families map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	var v float64
	f := families[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Histogram != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return v
}

// TestMetricsEndpoint: the demo's GET /metrics, parsed by Prometheus' text
// parser, counts each widget GET under its route pattern and result as it
// was actually served, on every store, and carries the store calls, the
// invalidated keys and the breaker.
func TestMetricsEndpoint(t *testing.T) {
	for _, name := range storefixture.Names {
		t.Run(name, func(t *testing.T) {
			m, err := newDemoMetrics()
			if err != nil {
				t.Fatal(err)
			}
			b := storefixture.Shared(t, name)
			cfg := b.Config(t)
			cfg.Cache.MeterProvider = m.provider
			c := b.Open(t, cfg)
			e := newEnvConfig(t, sqliteDB(t), c, config{Hoard: stores.Config{Cache: c.Config()}, Metrics: m.handler})

			const route = "GET /api/v1/widgets/{widget_id}"
			want := map[string]float64{}
			get := func(path, result string, header ...string) {
				t.Helper()
				h := http.Header{}
				for i := 0; i+1 < len(header); i += 2 {
					h.Set(header[i], header[i+1])
				}
				r := e.send(http.MethodGet, path, "", h)
				if r.Status != http.StatusOK && r.Status != http.StatusNotFound {
					t.Fatalf("%v", r)
				}
				want[result]++
			}
			get("/api/v1/widgets/1", "miss")
			for range 3 {
				get("/api/v1/widgets/1", "hit")
			}
			get("/api/v1/widgets/999", "uncacheable")
			get("/api/v1/widgets/1", "bypass", "X-Http-Method-Override", "PATCH")
			if r := e.do(http.MethodPatch, "/api/v1/widgets/1", `{"name": "Metered"}`); r.Status != http.StatusOK {
				t.Fatalf("PATCH: %v", r)
			}
			get("/api/v1/widgets/1", "miss")
			get("/api/v1/widgets/1", "hit")

			families := e.scrape()
			for result, n := range want {
				if got := promValue(families, "hoard_route_requests_total", "route", route, "result", result); got != n {
					t.Errorf("hoard_route_requests_total{route=%q,result=%q} = %v; want %v (the requests sent)", route, result, got, n)
				}
			}
			if got := promValue(families, "hoard_store_duration_seconds", "operation", "get_multi", "outcome", "ok"); got < 7 {
				t.Errorf("hoard_store_duration_seconds{operation=get_multi,outcome=ok} counted %v calls; want one per cached GET that read the store (7) at least", got)
			}
			if got := promValue(families, "hoard_invalidation_keys_total", "outcome", "written"); got < 2 {
				t.Errorf("hoard_invalidation_keys_total{outcome=written} = %v; want the PATCH's keys", got)
			}
			if _, ok := families["hoard_breaker_open"]; !ok {
				t.Error("GET /metrics has no hoard_breaker_open")
			}
		})
	}
}
