package main

import (
	"fmt"
	"net/http"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// demoMetrics is the demo's OpenTelemetry SDK, exported in the Prometheus
// text format: hoard's metrics (hoard.route.requests becomes
// hoard_route_requests_total{route=…,result=…}) and the Go runtime's, on a
// registry of its own (no global state), served as GET /metrics.
type demoMetrics struct {
	provider *sdkmetric.MeterProvider
	handler  http.Handler
}

func newDemoMetrics() (*demoMetrics, error) {
	reg := promclient.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := prometheus.New(prometheus.WithRegisterer(reg), prometheus.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &demoMetrics{
		provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)),
		handler:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}, nil
}
