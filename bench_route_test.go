package hoard_test

// Benchmarks of the route middleware: a warm hit on every store against a
// static handler that writes the same bytes, a miss and a disabled cache.
// Each has two flavours: "recorder" (ServeHTTP into an httptest recorder: the
// middleware's own cost) and "server" (a real httptest.Server and a keep-alive
// client, serial and RunParallel). Results are in docs/benchmarks.md.
//
//	go test -run '^$' -bench 'StaticHandler|RouteHit|RouteMiss|RouteDisabled' -benchtime 2000x .
//
// Names defined in this file start with "bench".

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
)

// benchBody is the JSON of one widget, about 200 bytes, as the route caches
// it.
var benchBody = func() []byte {
	b, err := json.Marshal(widget{
		ID: 42, Name: "widget 42", Price: 9.99,
		Description: "a widget served by the route middleware benchmarks",
		Version:     7, CreatedAt: "2026-01-01T00:00:00Z", UpdatedAt: "2026-01-02T00:00:00Z",
	})
	if err != nil {
		panic(err)
	}
	return b
}()

// benchHandler writes benchBody; every benchmark serves it, so that the only
// difference between them is the middleware.
func benchHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(benchBody)
}

const benchPattern = "GET /widgets/{id}"

// benchRouteMux registers benchHandler through c's route middleware.
func benchRouteMux(b *testing.B, c *hoard.Cache) *http.ServeMux {
	b.Helper()
	mux := http.NewServeMux()
	if err := c.HandleFunc(mux, benchPattern, widgetGetRoute, benchHandler); err != nil {
		b.Fatal(err)
	}
	return mux
}

// benchFlavours runs the recorder, server and server-parallel sub-benchmarks
// of h. path returns the request path of the i-th request; check, if not
// nil, is called on a response's Cache-Status before and after timing.
func benchFlavours(b *testing.B, h http.Handler, path func(i int64) string, check func(b *testing.B, cacheStatus string)) {
	var seq atomic.Int64
	next := func() string { return path(seq.Add(1)) }
	verify := func(b *testing.B, status int, body []byte, cs string) {
		b.Helper()
		if status != http.StatusOK || string(body) != string(benchBody) {
			b.Fatalf("response %d %q, want 200 with the widget", status, body)
		}
		if check != nil {
			check(b, cs)
		}
	}
	b.Run("recorder", func(b *testing.B) {
		serve := func() *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, next(), nil))
			return w
		}
		w := serve()
		verify(b, w.Code, w.Body.Bytes(), w.Header().Get("Cache-Status"))
		// One request per path for hits; the miss benchmark needs new paths.
		fixed := httptest.NewRequest(http.MethodGet, next(), nil)
		reuse := path(1) == path(2)
		b.ReportAllocs()
		for b.Loop() {
			w = httptest.NewRecorder()
			if reuse {
				h.ServeHTTP(w, fixed)
			} else {
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, next(), nil))
			}
		}
		b.StopTimer()
		verify(b, w.Code, w.Body.Bytes(), w.Header().Get("Cache-Status"))
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := keepAliveClient(b)
	get := func(b *testing.B) (int, []byte, string) {
		res, err := client.Get(srv.URL + next())
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		return res.StatusCode, body, res.Header.Get("Cache-Status")
	}
	getVerify := func(b *testing.B) {
		b.Helper()
		status, body, cs := get(b)
		verify(b, status, body, cs)
	}
	b.Run("server", func(b *testing.B) {
		getVerify(b)
		b.ReportAllocs()
		for b.Loop() {
			get(b)
		}
		b.StopTimer()
		getVerify(b)
	})
	b.Run("server-parallel", func(b *testing.B) {
		getVerify(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res, err := client.Get(srv.URL + next())
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
		b.StopTimer()
		getVerify(b)
	})
}

func benchFixedPath(int64) string { return "/widgets/42" }

func benchExpect(want string) func(b *testing.B, cs string) {
	return func(b *testing.B, cs string) {
		b.Helper()
		if !strings.HasPrefix(cs, want) {
			b.Fatalf("Cache-Status %q, want %q", cs, want)
		}
	}
}

// BenchmarkStaticHandler is the baseline: benchHandler on the same ServeMux
// pattern, without hoard.
func BenchmarkStaticHandler(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc(benchPattern, benchHandler)
	benchFlavours(b, mux, benchFixedPath, nil)
}

// BenchmarkRouteHit is a warm hit of the widget route on each store.
func BenchmarkRouteHit(b *testing.B) {
	for _, be := range storefixture.All(b) {
		b.Run(be.Name, func(b *testing.B) {
			mux := benchRouteMux(b, be.NewCache(b, hoard.Config{}))
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/widgets/42", nil))
			benchFlavours(b, mux, benchFixedPath, benchExpect("hoard; hit"))
		})
	}
}

// BenchmarkRouteHitMetrics is BenchmarkRouteHit/memory with the Cache's
// metrics recorded by the OpenTelemetry SDK: what counting a hit and
// timing its store call cost.
func BenchmarkRouteHitMetrics(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	mux := benchRouteMux(b, newMemoryCache(b, hoard.Config{MeterProvider: mp}, nil))
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/widgets/42", nil))
	benchFlavours(b, mux, benchFixedPath, benchExpect("hoard; hit"))
}

// BenchmarkRouteMiss requests a new widget each time on the memory store:
// the entry and the widget's generation are both cold, so a request reads
// the store, creates the generation (Add), runs the handler and stores.
func BenchmarkRouteMiss(b *testing.B) {
	b.Run(storefixture.Memory, func(b *testing.B) {
		mux := benchRouteMux(b, storefixture.Shared(b, storefixture.Memory).NewCache(b, hoard.Config{}))
		benchFlavours(b, mux, func(i int64) string { return "/widgets/" + strconv.FormatInt(i, 10) },
			benchExpect("hoard; fwd=miss; stored"))
	})
}

// BenchmarkRouteDisabled is the route on a disabled cache (CACHE_ENABLED=
// false): Handle registers the handler itself.
func BenchmarkRouteDisabled(b *testing.B) {
	c, err := hoard.New(nil, hoard.Config{Disabled: true})
	if err != nil {
		b.Fatal(err)
	}
	benchFlavours(b, benchRouteMux(b, c), benchFixedPath, func(b *testing.B, cs string) {
		if cs != "" {
			b.Fatalf("Cache-Status %q on a disabled cache, want none", cs)
		}
	})
}
