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
// registry of its own (no global state), served as GET /metrics. A
// second reader of the same provider, reader, lets GET /status (the front
// page's figures) read the same counts without parsing the text format.
type demoMetrics struct {
	provider *sdkmetric.MeterProvider
	handler  http.Handler
	reader   *sdkmetric.ManualReader
}

// newDemoMetrics builds the provider with its two readers: the Prometheus
// exporter and the manual reader of GET /status.
func newDemoMetrics() (*demoMetrics, error) {
	reg := promclient.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := prometheus.New(prometheus.WithRegisterer(reg), prometheus.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	reader := sdkmetric.NewManualReader()
	return &demoMetrics{
		provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithReader(reader)),
		handler:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		reader:   reader,
	}, nil
}
