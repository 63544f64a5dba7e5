package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/memcached"
	"github.com/hoardcache/hoard/memory"
	"github.com/hoardcache/hoard/redis"
	"github.com/hoardcache/hoard/stores"
)

// The demo's routes and their cache options. Every write route
// invalidates what it changes: the resource (prefix:id, with all its query
// and caller variants) and the listings that show it (a pattern).
var pages = map[string]string{"page": "1", "items_per_page": "10"}

// listQuery is the allow-list of the list routes' query parameters: any other
// bypasses the cache (and the handler rejects it), so that no client can fill
// the cache with variants.
var listQuery = []string{"page", "items_per_page"}

type routeSpec struct {
	pattern string
	cache   *hoard.Route // nil: not cached
	handler func(s *server, w http.ResponseWriter, r *http.Request) error
}

var routes = []routeSpec{
	{"POST /api/v1/widgets", &hoard.Route{InvalidatePatterns: []string{"widgets:*"}}, (*server).createWidget},
	{"GET /api/v1/widgets/{widget_id}", &hoard.Route{KeyPrefix: "widget", ResourceID: "widget_id", TTL: 600 * time.Second,
		StaleWhileRevalidate: 30 * time.Second, StaleIfError: 300 * time.Second}, (*server).getWidget},
	{"PUT /api/v1/widgets/{widget_id}", &hoard.Route{KeyPrefix: "widget", ResourceID: "widget_id", InvalidatePatterns: []string{"widgets:*"}}, (*server).putWidget},
	{"PATCH /api/v1/widgets/{widget_id}", &hoard.Route{KeyPrefix: "widget", ResourceID: "widget_id", InvalidatePatterns: []string{"widgets:*"}}, (*server).patchWidget},
	{"DELETE /api/v1/widgets/{widget_id}", &hoard.Route{KeyPrefix: "widget", ResourceID: "widget_id", InvalidatePatterns: []string{"widgets:*"}}, (*server).deleteWidget},
	{"GET /api/v1/widgets", &hoard.Route{KeyPrefix: "widgets:page_{page}:items_per_page:{items_per_page}",
		Defaults: pages, QueryKeys: listQuery, TTL: 60 * time.Second,
		StaleWhileRevalidate: 10 * time.Second, StaleIfError: 300 * time.Second}, (*server).listWidgets},

	{"POST /api/v1/users", nil, (*server).createUser},
	{"GET /api/v1/users/{username}", &hoard.Route{KeyPrefix: "user", ResourceID: "username"}, (*server).getUser},

	{"POST /api/v1/users/{username}/posts", &hoard.Route{InvalidatePatterns: []string{"{username}_posts:*"}}, (*server).createPost},
	{"GET /api/v1/users/{username}/posts", &hoard.Route{KeyPrefix: "{username}_posts:page_{page}:items_per_page:{items_per_page}",
		ResourceID: "username", Defaults: pages, QueryKeys: listQuery, TTL: 60 * time.Second}, (*server).listPosts},
	{"GET /api/v1/users/{username}/posts/{id}", &hoard.Route{KeyPrefix: "{username}_post_cache", ResourceID: "id"}, (*server).getPost},
	{"PATCH /api/v1/users/{username}/posts/{id}", &hoard.Route{KeyPrefix: "{username}_post_cache", ResourceID: "id",
		InvalidatePatterns: []string{"{username}_posts:*"}}, (*server).patchPost},
	{"DELETE /api/v1/users/{username}/posts/{id}", &hoard.Route{KeyPrefix: "{username}_post_cache", ResourceID: "id",
		InvalidatePatterns: []string{"{username}_posts:*"}}, (*server).deletePost},
}

// Timeouts of the readiness checks and of one request's database work.
const (
	readyTimeout = time.Second
	queryTimeout = 10 * time.Second
)

// server holds what the handlers share.
type server struct {
	db    *sql.DB
	cache *hoard.Cache
	log   *slog.Logger
	// metrics reads hoard's metrics for /status; nil: zero counts.
	metrics *sdkmetric.ManualReader
}

// storeKind names the kind of store for the readiness check (CACHE_BACKEND).
func storeKind(s hoard.Store) string {
	switch s.(type) {
	case *memory.Store:
		return string(stores.Memory)
	case *redis.Store:
		return string(stores.Redis)
	case *memcached.Store:
		return string(stores.Memcached)
	}
	return fmt.Sprintf("%T", s)
}

// newServer builds the demo's HTTP handler: its routes with their
// cache options, /health and /health/ready, the front page (/) and its
// figures (/status), JSON errors for unknown routes,
// the client cache middleware and, outermost, one log line per request and
// panic recovery. The database must be open and migrated; the handler does
// not own db or c.
func newServer(cfg config, db *sql.DB, c *hoard.Cache, log *slog.Logger) (http.Handler, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &server{db: db, cache: c, log: log, metrics: cfg.MetricsReader}
	mux := http.NewServeMux()
	for _, rt := range routes {
		h := s.wrap(rt.handler)
		if rt.cache == nil {
			mux.Handle(rt.pattern, h)
			continue
		}
		if err := c.Handle(mux, rt.pattern, *rt.cache, h); err != nil {
			return nil, err
		}
	}
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("GET /health/ready", s.ready)
	mux.HandleFunc("GET /{$}", s.frontPage) // "/" only: other paths stay JSON 404s
	mux.HandleFunc("GET /status", s.status)
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	if cfg.DebugSlow {
		mux.HandleFunc("GET /debug/slow", s.slow)
	}
	var h http.Handler = jsonNotFound(mux)
	h = hoard.ClientCache(cfg.Hoard.Cache.Client)(h)
	h = logRequests(log, h)
	return h, nil
}

// wrap turns a handler that returns an error into an http.Handler: an
// *apiError becomes its status and {"detail": …}; a database that cannot be
// reached becomes 503; anything else is a bug, logged, and 500.
func (s *server) wrap(h func(*server, http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		err := h(s, w, r)
		if err == nil {
			return
		}
		var ae *apiError
		switch {
		case errors.As(err, &ae):
			writeError(w, ae.status, ae.detail)
		case r.Context().Err() != nil:
			// The client went away, or the database took longer than
			// queryTimeout.
			s.log.Warn("request abandoned", slog.String("path", clip(r.URL.Path)), slog.Any("error", err))
			writeError(w, http.StatusServiceUnavailable, "the database did not answer in time; try again")
		case isUnavailable(err):
			s.log.Error("database unavailable", slog.String("path", clip(r.URL.Path)), slog.Any("error", err))
			writeError(w, http.StatusServiceUnavailable, "the database is unavailable; try again")
		default:
			s.log.Error("request failed", slog.String("method", clip(r.Method)), slog.String("path", clip(r.URL.Path)), slog.Any("error", err))
			writeError(w, http.StatusInternalServerError, "internal error")
		}
	})
}

// health answers whether the process serves HTTP (liveness).
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// ready answers whether the database and the cache store answer, each
// within readyTimeout; 503 names the one that does not. (A store outage does
// not stop the API, which then serves uncached, but the instance is
// degraded.)
func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readiness(r.Context())
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// readiness checks the database and the cache store in parallel, each
// within readyTimeout, for /health/ready and the front page's /status: the
// body {"status", "database", "cache"} (and "detail" naming what is
// unreachable), and whether both answered.
func (s *server) readiness(ctx context.Context) (map[string]string, bool) {
	type result struct{ name, err string }
	check := func(name string, ping func(context.Context) error) chan result {
		ch := make(chan result, 1)
		go func() {
			ctx, cancel := context.WithTimeout(ctx, readyTimeout)
			defer cancel()
			res := result{name: name}
			if err := ping(ctx); err != nil {
				res.err = err.Error()
			}
			ch <- res
		}()
		return ch
	}
	store := "cache store"
	if s.cache.Enabled() {
		store += " (" + storeKind(s.cache.Store()) + ")"
	}
	checks := []chan result{check("database", s.db.PingContext), check(store, s.cache.Ping)}
	body := map[string]string{"status": "ready", "database": "ok", "cache": "ok"}
	if !s.cache.Enabled() {
		body["cache"] = "disabled"
	}
	var detail string
	for i, ch := range checks {
		res := <-ch
		if res.err == "" {
			continue
		}
		body[[]string{"database", "cache"}[i]] = "unreachable: " + res.err
		if detail != "" {
			detail += "; "
		}
		detail += res.name + " unreachable: " + res.err
	}
	if detail != "" {
		body["status"] = "not ready"
		body["detail"] = detail
		return body, false
	}
	return body, true
}

// slow is GET /debug/slow?ms=N (HOARD_DEMO_DEBUG_SLOW=1 only): it answers
// after N milliseconds (0 to 60000), for the graceful shutdown test. It does
// not touch the database.
func (s *server) slow(w http.ResponseWriter, r *http.Request) {
	q, err := queryParams(r, "ms")
	ms := 0
	if err == nil {
		ms, err = intParam("ms", q, 0, 0, 60000)
	}
	if ae, ok := errors.AsType[*apiError](err); ok {
		writeError(w, ae.status, ae.detail)
		return
	}
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
		writeJSON(w, http.StatusOK, map[string]string{"slept_ms": strconv.Itoa(ms)})
	case <-r.Context().Done(): // the client went away
	}
}

// jsonNotFound answers unknown paths and methods with {"detail": …} instead
// of ServeMux's plain text, keeping the status and the Allow header.
func jsonNotFound(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(&errorRewriter{ResponseWriter: w, method: r.Method, path: r.URL.Path}, r)
	})
}

// errorRewriter replaces the plain-text body of ServeMux's own 4xx answers
// (404, 405) with a JSON detail (the method and path clipped); redirects
// pass through.
type errorRewriter struct {
	http.ResponseWriter
	method, path string
	swallow      bool
}

func (e *errorRewriter) WriteHeader(code int) {
	if code < 400 {
		e.ResponseWriter.WriteHeader(code)
		return
	}
	e.swallow = true
	method, path := clip(e.method), clip(e.path)
	detail := fmt.Sprintf("no route %s %s", method, path)
	if code == http.StatusMethodNotAllowed {
		detail = fmt.Sprintf("method %s not allowed on %s; allowed: %s", method, path, e.Header().Get("Allow"))
	}
	e.Header().Del("X-Content-Type-Options")
	writeError(e.ResponseWriter, code, detail)
}

func (e *errorRewriter) Write(b []byte) (int, error) {
	if e.swallow {
		return len(b), nil
	}
	return e.ResponseWriter.Write(b)
}

func (e *errorRewriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }
