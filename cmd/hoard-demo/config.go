package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/hoardcache/hoard/stores"
)

// Defaults of the demo's own variables.
const (
	defaultAddr       = "localhost:8000"
	defaultSQLiteFile = "hoard-demo.db"
)

// Database kinds.
const (
	kindSQLite   = "sqlite"
	kindPostgres = "postgres"
)

// config is the demo's configuration: hoard's (stores.FromEnv) plus
// HTTP_ADDR, DATABASE_URL, LOG_LEVEL and the test aid HOARD_DEMO_DEBUG_SLOW.
type config struct {
	// Addr is where the server listens (HTTP_ADDR), host:port.
	Addr string
	// DB says which database to open (DATABASE_URL).
	DB dbConfig
	// Hoard configures the cache and its store (CACHE_*, CLIENT_CACHE_*,
	// API_PREFIX, ...).
	Hoard stores.Config
	// LogLevel is the least level logged (LOG_LEVEL: debug, info, warn or
	// error; default info). At debug, hoard logs every cache decision
	// that is not a hit or a plain miss, with its reason.
	LogLevel slog.Level
	// Metrics serves GET /metrics (the Prometheus text format); nil: not
	// served. Set by run, not by a variable.
	Metrics http.Handler
	// MetricsReader reads hoard's metrics for GET /status, the front page's
	// figures; nil: the page shows zero counts and an unknown breaker. Set
	// by run, not by a variable.
	MetricsReader *sdkmetric.ManualReader
	// DebugSlow mounts GET /debug/slow?ms=N, a request that takes N ms, for
	// the graceful shutdown test (HOARD_DEMO_DEBUG_SLOW=1). Off by default.
	DebugSlow bool
}

// dbConfig is a parsed DATABASE_URL.
type dbConfig struct {
	Kind   string // kindSQLite or kindPostgres
	Driver string // database/sql driver name: "sqlite" or "pgx"
	DSN    string // what sql.Open gets
	Shown  string // for humans: the file, or the URL without its password
}

// loadConfig reads the configuration through lookup (os.LookupEnv). Every
// bad variable is reported, each by name with what it accepts.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	var errs []error
	cache, err := stores.FromLookup(lookup)
	if err != nil {
		errs = append(errs, err)
	}
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	cfg := config{Hoard: cache}

	cfg.Addr = get("HTTP_ADDR")
	if cfg.Addr == "" {
		cfg.Addr = defaultAddr
	}
	if want := checkAddr(cfg.Addr); want != "" {
		errs = append(errs, fmt.Errorf("HTTP_ADDR=%q: %s", cfg.Addr, want))
	}

	raw, _ := lookup("DATABASE_URL")
	db, err := parseDatabaseURL(strings.TrimSpace(raw))
	if err != nil {
		errs = append(errs, err)
	}
	cfg.DB = db

	switch strings.ToLower(get("LOG_LEVEL")) {
	case "debug":
		cfg.LogLevel = slog.LevelDebug
	case "", "info":
		cfg.LogLevel = slog.LevelInfo
	case "warn", "warning":
		cfg.LogLevel = slog.LevelWarn
	case "error":
		cfg.LogLevel = slog.LevelError
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL=%q: must be debug, info, warn or error", get("LOG_LEVEL")))
	}

	switch strings.ToLower(get("HOARD_DEMO_DEBUG_SLOW")) {
	case "", "0", "false", "no", "off":
	case "1", "true", "yes", "on":
		cfg.DebugSlow = true
	default:
		errs = append(errs, fmt.Errorf("HOARD_DEMO_DEBUG_SLOW=%q: must be true or false", get("HOARD_DEMO_DEBUG_SLOW")))
	}
	if len(errs) > 0 {
		return config{}, errors.Join(errs...)
	}
	return cfg, nil
}

// checkAddr returns "" for a listen address host:port (host may be empty,
// port 0 picks a free one), else what HTTP_ADDR must be.
func checkAddr(addr string) string {
	const want = "must be host:port or :port, e.g. localhost:8000 or 0.0.0.0:8000"
	host, port, err := net.SplitHostPort(addr)
	if err != nil || strings.ContainsAny(host, "/@?# ") {
		return want
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || port != strconv.Itoa(n) {
		return "the port " + want
	}
	return ""
}

// parseDatabaseURL reads DATABASE_URL: empty for the SQLite file
// hoard-demo.db, sqlite:PATH for another SQLite file, postgres://… or
// postgresql://… for PostgreSQL.
func parseDatabaseURL(raw string) (dbConfig, error) {
	const want = "must be empty (SQLite file " + defaultSQLiteFile + "), sqlite:PATH, or postgres://user:password@host:port/dbname"
	lower := strings.ToLower(raw)
	switch {
	case raw == "":
		return sqliteConfig(defaultSQLiteFile), nil
	case strings.HasPrefix(lower, "sqlite:"):
		path := raw[len("sqlite:"):]
		if strings.HasPrefix(path, "//") {
			path = path[2:] // sqlite:///abs/path.db
		}
		if path == "" || strings.ContainsAny(path, "?#") {
			return dbConfig{}, fmt.Errorf("DATABASE_URL=%q: %s (a file path without ? or #)", raw, want)
		}
		return sqliteConfig(path), nil
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		u, err := url.Parse(raw)
		if err != nil {
			return dbConfig{}, fmt.Errorf("DATABASE_URL: %s (it does not parse as a URL)", want)
		}
		shown := u.Redacted()
		if _, err := pgx.ParseConfig(raw); err != nil {
			return dbConfig{}, fmt.Errorf("DATABASE_URL=%q: %s: %v", shown, want, err)
		}
		return dbConfig{Kind: kindPostgres, Driver: "pgx", DSN: raw, Shown: shown}, nil
	}
	shown := raw
	if u, err := url.Parse(raw); err == nil {
		shown = u.Redacted()
	} else if i := strings.Index(raw, "://"); i >= 0 {
		shown = raw[:i] + "://…"
	}
	return dbConfig{}, fmt.Errorf("DATABASE_URL=%q: %s", shown, want)
}

// sqliteConfig opens path in WAL mode; a writer waits up to 5 s for another
// (busy_timeout), and transactions take the write lock when they begin
// (_txlock=immediate), so that two writers never deadlock on an upgrade.
func sqliteConfig(path string) dbConfig {
	return dbConfig{
		Kind:   kindSQLite,
		Driver: "sqlite",
		DSN:    path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate",
		Shown:  path,
	}
}

// describeCache says which store cfg uses, for the banner.
func describeCache(cfg stores.Config) string {
	cfg = cfg.WithDefaults()
	if cfg.Cache.Disabled {
		return "disabled (CACHE_ENABLED=false): every request reaches the database"
	}
	switch cfg.Backend {
	case stores.Redis:
		r := cfg.Redis
		s := "Redis " + strings.Join(r.Addrs, ",")
		if r.Cluster {
			s = "Redis Cluster, seeds " + strings.Join(r.Addrs, ",")
		}
		if r.DB != 0 {
			s += fmt.Sprintf(" db %d", r.DB)
		}
		if r.Username != "" {
			s += " as " + r.Username
		}
		if r.TLSConfig != nil {
			s += " over TLS"
		}
		return s
	case stores.Memcached:
		return "Memcached " + strings.Join(cfg.Memcached.Servers, ",")
	}
	return fmt.Sprintf("memory (in-process, %d MiB)", cfg.Memory.MaxBytes>>20)
}
