package main

// The front page: GET / serves page.html, which polls GET /status for the
// health and hoard's figures and has buttons that GET and PATCH a widget.

import (
	_ "embed"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/hoardcache/hoard"
)

// pageHTML is the front page, one file with its style and script inline, so
// that the demo needs no build step, CDN or static directory.
//
//go:embed page.html
var pageHTML []byte

// frontPage serves GET / (exactly "/").
func (s *server) frontPage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(pageHTML)))
	// Inline script and style only: nothing is loaded from elsewhere.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(pageHTML)
}

// statusBody is GET /status, the front page's figures; an example:
//
//	{"health": {"status": "ready", "database": "ok", "cache": "ok"},
//	 "metrics": true, "pending_invalidations": 0, "breaker_open": false,
//	 "routes": [{"route": "GET /api/v1/widgets/{widget_id}", "requests": 3,
//	   "hit": 1, "miss": 2, "stale": 0, "bypass": 0, "uncacheable": 0,
//	   "error": 0, "hit_ratio": 0.333}, …]}
//
// The counts are hoard.route.requests since the process started.
type statusBody struct {
	// Health is /health/ready's body: status ("ready" or "not ready"),
	// database and cache ("ok", "disabled" or "unreachable: …"), detail.
	Health map[string]string `json:"health"`
	// Metrics is false when the demo runs without a metrics reader (some
	// tests): every count is then 0 and BreakerOpen null.
	Metrics bool `json:"metrics"`
	// PendingInvalidations counts the invalidated keys waiting to be
	// replayed (hoard.Cache.Stats); their routes are served uncached.
	PendingInvalidations int `json:"pending_invalidations"`
	// BreakerOpen is hoard.breaker.open: true while the cache skips its
	// store after repeated failures; null when unknown.
	BreakerOpen *bool `json:"breaker_open"`
	// Routes are the cached GET routes, in the order the demo declares them.
	Routes []routeStatus `json:"routes"`
}

// routeStatus is one route's hoard.route.requests, by result.
type routeStatus struct {
	Route       string `json:"route"` // the route pattern, e.g. "GET /api/v1/widgets/{widget_id}"
	Requests    int64  `json:"requests"`
	Hit         int64  `json:"hit"`
	Miss        int64  `json:"miss"`
	Stale       int64  `json:"stale"`
	Bypass      int64  `json:"bypass"`
	Uncacheable int64  `json:"uncacheable"`
	Error       int64  `json:"error"`
	// HitRatio is Hit/Requests; null before the first request.
	HitRatio *float64 `json:"hit_ratio"`
}

// add counts n requests of result.
func (rs *routeStatus) add(result string, n int64) {
	rs.Requests += n
	switch result {
	case "hit":
		rs.Hit += n
	case "miss":
		rs.Miss += n
	case "stale":
		rs.Stale += n
	case "bypass":
		rs.Bypass += n
	case "uncacheable":
		rs.Uncacheable += n
	case "error":
		rs.Error += n
	}
}

// status serves GET /status. It always answers 200 (the page shows what
// is down); a metrics reader that fails only leaves the counts at zero.
func (s *server) status(w http.ResponseWriter, r *http.Request) {
	health, _ := s.readiness(r.Context())
	body := statusBody{Health: health, PendingInvalidations: s.cache.Stats().PendingInvalidations}
	byRoute := map[string]*routeStatus{}
	for _, rt := range routes {
		if rt.cache != nil && strings.HasPrefix(rt.pattern, http.MethodGet+" ") {
			body.Routes = append(body.Routes, routeStatus{Route: rt.pattern})
		}
	}
	for i := range body.Routes {
		byRoute[body.Routes[i].Route] = &body.Routes[i]
	}
	if s.metrics != nil {
		var rm metricdata.ResourceMetrics
		if err := s.metrics.Collect(r.Context(), &rm); err != nil {
			s.log.Warn("status: collecting metrics", "error", err)
		} else {
			body.Metrics = true
			body.BreakerOpen = readHoardMetrics(&rm, byRoute)
		}
	}
	for i := range body.Routes {
		if rs := &body.Routes[i]; rs.Requests > 0 {
			ratio := float64(rs.Hit) / float64(rs.Requests)
			rs.HitRatio = &ratio
		}
	}
	writeJSON(w, http.StatusOK, body)
}

// readHoardMetrics adds hoard.route.requests to the routes of byRoute (a
// route it does not list is left out) and returns hoard.breaker.open (nil
// when not collected).
func readHoardMetrics(rm *metricdata.ResourceMetrics, byRoute map[string]*routeStatus) *bool {
	var breaker *bool
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != hoard.MeterName {
			continue
		}
		for _, m := range sm.Metrics {
			switch m.Name {
			case "hoard.route.requests":
				sum, _ := m.Data.(metricdata.Sum[int64])
				for _, dp := range sum.DataPoints {
					route, _ := dp.Attributes.Value(attribute.Key("route"))
					result, _ := dp.Attributes.Value(attribute.Key("result"))
					if rs := byRoute[route.AsString()]; rs != nil {
						rs.add(result.AsString(), dp.Value)
					}
				}
			case "hoard.breaker.open":
				g, _ := m.Data.(metricdata.Gauge[int64])
				if len(g.DataPoints) > 0 {
					open := slices.ContainsFunc(g.DataPoints, func(dp metricdata.DataPoint[int64]) bool { return dp.Value != 0 })
					breaker = &open
				}
			}
		}
	}
	return breaker
}
