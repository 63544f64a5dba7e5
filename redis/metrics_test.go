package redis_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/hoardcache/hoard/redis"
)

// TestNearCacheMetrics: with the near cache on, the store reports its hits,
// the copies another process's write dropped, and what it holds, through
// the MeterProvider of its Options; each figure moves with the reads and
// writes made.
func TestNearCacheMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	s := NewStandaloneStore(t, redis.Options{NearCache: true, NearMaxLag: hitLag,
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	other := NewStandaloneStore(t, redis.Options{})
	ctx := context.Background()
	const key = "near-metrics"
	if err := other.Set(ctx, key, []byte("v1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	s.Get(ctx, key) // fills the copy
	for range 10 {
		if v, _, err := s.Get(ctx, key); err != nil || string(v) != "v1" {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	figures := func() map[string]int64 {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				var dps []metricdata.DataPoint[int64]
				switch d := m.Data.(type) {
				case metricdata.Sum[int64]:
					dps = d.DataPoints
				case metricdata.Gauge[int64]:
					dps = d.DataPoints
				}
				for _, dp := range dps {
					name := m.Name
					if r, ok := dp.Attributes.Value(attribute.Key("reason")); ok {
						name += "{" + r.AsString() + "}"
					}
					out[name] = dp.Value
				}
			}
		}
		return out
	}
	got := figures()
	if got["hoard.near.hits"] < 10 || got["hoard.near.copies"] != 1 || got["hoard.near.bytes"] <= 0 {
		t.Errorf("after 10 reads of one copy: %v; want at least 10 hits, 1 copy and its bytes", got)
	}
	if err := other.Set(ctx, key, []byte("v2"), time.Minute); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for got = figures(); got["hoard.near.drops{invalidated}"] < 1; got = figures() {
		if time.Now().After(deadline) {
			t.Fatalf("5 s after another process wrote the key: %v; want the copy dropped (invalidated)", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got["hoard.near.copies"] != 0 || got["hoard.near.drops{evicted}"] != 0 {
		t.Errorf("after the invalidation: %v; want no copy, none evicted", got)
	}
}
