// Command hoard-demo is hoard's demo service: the widgets, users and posts
// API over net/http's ServeMux, every route cached or invalidated
// by hoard's route middleware, on SQLite by default and PostgreSQL when
// asked.
//
//	go run ./cmd/hoard-demo
//	curl -i http://localhost:8000/api/v1/widgets/1    # twice: Cache-Status goes from miss to hit
//
// Its front page, http://localhost:8000/, shows the health of the database
// and the cache store and hoard's figures per route, and has buttons that
// GET and PATCH a widget.
//
// Configuration is by environment variable: hoard's own (CACHE_BACKEND,
// CACHE_REDIS_URL, CACHE_MEMCACHED_SERVERS, … see the README), plus
//
//	HTTP_ADDR              listen address, default localhost:8000 (port 0: a free one)
//	DATABASE_URL           empty: the SQLite file hoard-demo.db in the working directory;
//	                       sqlite:PATH: another SQLite file;
//	                       postgres://user:password@host:port/dbname: PostgreSQL
//	HOARD_DEMO_DEBUG_SLOW  test aid: 1 mounts GET /debug/slow?ms=N, which answers after N ms
//
// A bad value stops start-up with a message naming the variable. The schema
// is created on start and an empty database is seeded with sample widgets,
// two users (alice, bob) and their posts. Logs (one line per request, with
// the cache status) go to stderr; the start-up banner goes to stdout.
// SIGINT or SIGTERM stops the server gracefully: in-flight requests finish
// (for up to 30 s), then the cache store and the database are closed.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hoardcache/hoard/stores"
)

// shutdownTimeout bounds how long a stopping server waits for in-flight
// requests.
const shutdownTimeout = 30 * time.Second

func main() {
	os.Exit(run(context.Background(), os.LookupEnv, os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit status: 0 after a graceful
// shutdown, 2 for a bad configuration, 1 for any other failure.
func run(ctx context.Context, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := loadConfig(lookup)
	if err != nil {
		fmt.Fprintf(stderr, "hoard-demo: bad configuration:\n%v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	cfg.Hoard.Cache.Logger = logger
	metrics, err := newDemoMetrics()
	if err != nil {
		fmt.Fprintf(stderr, "hoard-demo: %v\n", err)
		return 1
	}
	defer metrics.provider.Shutdown(context.Background())
	cfg.Hoard.Cache.MeterProvider = metrics.provider
	cfg.Metrics = metrics.handler
	cfg.MetricsReader = metrics.reader

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	db, err := openDatabase(ctx, cfg.DB)
	if err != nil {
		fmt.Fprintf(stderr, "hoard-demo: %v\n", err)
		return 1
	}
	defer db.Close()
	seeded, err := seed(ctx, db)
	if err != nil {
		fmt.Fprintf(stderr, "hoard-demo: seed %s: %v\n", cfg.DB.Shown, err)
		return 1
	}
	if seeded {
		logger.Info("seeded an empty database", slog.Int("widgets", len(seedWidgets)),
			slog.Int("users", len(seedUsers)), slog.Int("posts", len(seedPosts)))
	}

	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cache, err := stores.Open(octx, cfg.Hoard)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "hoard-demo: cache store: %v\n", err)
		return 1
	}
	defer cache.Close()

	handler, err := newServer(cfg, db, cache, logger)
	if err != nil {
		fmt.Fprintf(stderr, "hoard-demo: %v\n", err)
		return 1
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		fmt.Fprintf(stderr, "hoard-demo: HTTP_ADDR=%q: cannot listen: %v\n", cfg.Addr, err)
		return 1
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	base := baseURL(cfg.Addr, ln.Addr())
	printBanner(stdout, base, cfg)
	logger.Info("listening", slog.String("url", base), slog.String("cache", describeCache(cfg.Hoard)),
		slog.String("database", cfg.DB.Kind+" "+cfg.DB.Shown))

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		logger.Error("server failed", slog.Any("error", err))
		return 1
	case <-ctx.Done():
	}
	stop() // a second signal ends the process at once
	logger.Info("shutting down: finishing in-flight requests", slog.Duration("timeout", shutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	status := 0
	if err := srv.Shutdown(sctx); err != nil {
		logger.Error("in-flight requests did not finish in time", slog.Any("error", err))
		status = 1
	}
	if err := cache.Close(); err != nil {
		logger.Error("closing the cache store", slog.Any("error", err))
		status = 1
	}
	if err := db.Close(); err != nil {
		logger.Error("closing the database", slog.Any("error", err))
		status = 1
	}
	logger.Info("stopped")
	return status
}

// baseURL is the URL to show for the listen address: the configured host
// (localhost for an empty or wildcard one) and the port actually bound.
func baseURL(addr string, bound net.Addr) string {
	host, _, _ := net.SplitHostPort(addr)
	switch host {
	case "", "0.0.0.0", "::":
		host = "localhost"
	}
	port := "0"
	if ta, ok := bound.(*net.TCPAddr); ok {
		port = fmt.Sprint(ta.Port)
	}
	return "http://" + net.JoinHostPort(host, port)
}

func printBanner(w io.Writer, base string, cfg config) {
	db := cfg.DB.Shown
	switch cfg.DB.Kind {
	case kindSQLite:
		if abs, err := filepath.Abs(db); err == nil {
			db = abs
		}
		db = "SQLite " + db
	case kindPostgres:
		db = "PostgreSQL " + db
	}
	fmt.Fprintf(w, `hoard-demo listening on %[1]s
  front page:  %[1]s/
  cache store: %[2]s
  database:    %[3]s
try:
  curl -i %[1]s/api/v1/widgets/1        # run it twice: Cache-Status goes from miss to hit
  curl -i -X PATCH %[1]s/api/v1/widgets/1 -H 'Content-Type: application/json' -d '{"price": 12.5}'
Ctrl-C stops it gracefully.
`, base, describeCache(cfg.Hoard), db)
	if cfg.DebugSlow {
		fmt.Fprintf(w, "HOARD_DEMO_DEBUG_SLOW is on: GET %s/debug/slow?ms=N answers after N ms (a test aid)\n", base)
	}
}
