package redis

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/hoardcache/hoard"
)

// registerNearMetrics reports the near cache's figures (NearStats) on mp
// (nil: the global provider), read when the provider collects. A provider
// that cannot create them gives no metrics, never an error.
func (s *Store) registerNearMetrics(mp metric.MeterProvider) metric.Registration {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(hoard.MeterName)
	hits, _ := meter.Int64ObservableCounter("hoard.near.hits",
		metric.WithDescription("Redis reads answered from the near cache's copies."), metric.WithUnit("{read}"))
	drops, _ := meter.Int64ObservableCounter("hoard.near.drops",
		metric.WithDescription("Near cache copies removed: invalidated (the key changed, was written here, or its connection broke) or evicted (to stay within CACHE_NEAR_MAX_BYTES)."),
		metric.WithUnit("{copy}"))
	copies, _ := meter.Int64ObservableGauge("hoard.near.copies",
		metric.WithDescription("Copies the near cache holds."), metric.WithUnit("{copy}"))
	bytes, _ := meter.Int64ObservableGauge("hoard.near.bytes",
		metric.WithDescription("Bytes the near cache's copies count against CACHE_NEAR_MAX_BYTES."), metric.WithUnit("By"))
	invalidated := metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "invalidated")))
	evicted := metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "evicted")))
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := s.NearStats()
		o.ObserveInt64(hits, st.Hits)
		o.ObserveInt64(drops, st.Dropped, invalidated)
		o.ObserveInt64(drops, st.Evicted, evicted)
		o.ObserveInt64(copies, int64(st.Copies))
		o.ObserveInt64(bytes, st.Bytes)
		return nil
	}, hits, drops, copies, bytes)
	if err != nil {
		return nil
	}
	return reg
}
