package main

import (
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/stores"
)

func lookupMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		// want, when the configuration is good
		addr, kind, driver, dsnPrefix, shown string
		slow                                 bool
		level                                slog.Level
		// else the error's parts
		errs []string
	}{
		{name: "defaults", env: nil,
			addr: "localhost:8000", kind: kindSQLite, driver: "sqlite", dsnPrefix: "hoard-demo.db?", shown: "hoard-demo.db"},
		{name: "sqlite path", env: map[string]string{"DATABASE_URL": "sqlite:data/app.db", "HTTP_ADDR": ":9000"},
			addr: ":9000", kind: kindSQLite, driver: "sqlite", dsnPrefix: "data/app.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)", shown: "data/app.db"},
		{name: "sqlite absolute", env: map[string]string{"DATABASE_URL": "sqlite:///var/lib/app.db"},
			addr: "localhost:8000", kind: kindSQLite, driver: "sqlite", dsnPrefix: "/var/lib/app.db?", shown: "/var/lib/app.db"},
		{name: "postgres", env: map[string]string{"DATABASE_URL": "postgres://app:s3cret@db.example:5433/app?sslmode=disable", "HOARD_DEMO_DEBUG_SLOW": "1", "LOG_LEVEL": "DEBUG"},
			addr: "localhost:8000", kind: kindPostgres, driver: "pgx", dsnPrefix: "postgres://app:s3cret@db.example:5433/app", shown: "postgres://app:xxxxx@db.example:5433/app?sslmode=disable", slow: true, level: slog.LevelDebug},
		{name: "postgresql scheme", env: map[string]string{"DATABASE_URL": "postgresql://localhost/app", "HTTP_ADDR": "[::1]:0"},
			addr: "[::1]:0", kind: kindPostgres, driver: "pgx", dsnPrefix: "postgresql://localhost/app", shown: "postgresql://localhost/app"},

		{name: "addr without port", env: map[string]string{"HTTP_ADDR": "localhost"}, errs: []string{`HTTP_ADDR="localhost": must be host:port`}},
		{name: "addr with scheme", env: map[string]string{"HTTP_ADDR": "http://localhost:8000"}, errs: []string{`HTTP_ADDR="http://localhost:8000"`}},
		{name: "addr port too big", env: map[string]string{"HTTP_ADDR": "localhost:70000"}, errs: []string{`HTTP_ADDR="localhost:70000": the port must be`}},
		{name: "addr port name", env: map[string]string{"HTTP_ADDR": "localhost:http"}, errs: []string{`HTTP_ADDR="localhost:http"`}},
		{name: "unknown scheme", env: map[string]string{"DATABASE_URL": "mysql://u:pw@h/db"},
			errs: []string{`DATABASE_URL="mysql://u:xxxxx@h/db": must be empty (SQLite file hoard-demo.db), sqlite:PATH, or postgres://`}},
		{name: "bare path", env: map[string]string{"DATABASE_URL": "app.db"}, errs: []string{`DATABASE_URL="app.db": must be empty`}},
		{name: "empty sqlite path", env: map[string]string{"DATABASE_URL": "sqlite:"}, errs: []string{`DATABASE_URL="sqlite:"`}},
		{name: "bad postgres", env: map[string]string{"DATABASE_URL": "postgres://u:pw@host:notaport/db"}, errs: []string{"DATABASE_URL"}},
		{name: "bad log level", env: map[string]string{"LOG_LEVEL": "verbose"}, errs: []string{`LOG_LEVEL="verbose": must be debug, info, warn or error`}},
		{name: "bad slow flag", env: map[string]string{"HOARD_DEMO_DEBUG_SLOW": "sometimes"}, errs: []string{`HOARD_DEMO_DEBUG_SLOW="sometimes"`}},
		{name: "all reported at once", env: map[string]string{"HTTP_ADDR": "x", "DATABASE_URL": "oracle:x", "CACHE_TIMEOUT": "5"},
			errs: []string{"HTTP_ADDR", "DATABASE_URL", "CACHE_TIMEOUT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig(lookupMap(tc.env))
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("no error; want one naming %v", tc.errs)
				}
				for _, want := range tc.errs {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
				for _, secret := range []string{"pw@", "s3cret"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q shows a password", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Addr != tc.addr || cfg.DB.Kind != tc.kind || cfg.DB.Driver != tc.driver ||
				!strings.HasPrefix(cfg.DB.DSN, tc.dsnPrefix) || cfg.DB.Shown != tc.shown || cfg.DebugSlow != tc.slow || cfg.LogLevel != tc.level {
				t.Fatalf("got addr %q, db %+v, slow %v, log level %v", cfg.Addr, cfg.DB, cfg.DebugSlow, cfg.LogLevel)
			}
			if cfg.Hoard.Backend != stores.Memory {
				t.Fatalf("cache backend %q; want memory by default", cfg.Hoard.Backend)
			}
		})
	}
}

func TestDescribeCache(t *testing.T) {
	redis := stores.Config{Backend: stores.Redis}
	redis.Redis.Addrs = []string{"10.0.0.1:6380"}
	redis.Redis.DB = 2
	redis.Redis.Password = "pw"
	redis.Redis.TLSConfig = &tls.Config{}
	cluster := stores.Config{Backend: stores.Redis}
	cluster.Redis.Cluster = true
	cluster.Redis.Addrs = []string{"10.0.0.1:7000"}
	mc := stores.Config{Backend: stores.Memcached}
	mc.Memcached.Servers = []string{"a:11211", "b:11211"}
	for _, tc := range []struct {
		cfg  stores.Config
		want string
	}{
		{stores.Config{}, "memory (in-process, 64 MiB)"},
		{stores.Config{Cache: hoard.Config{Disabled: true}}, "disabled (CACHE_ENABLED=false)"},
		{redis, "Redis 10.0.0.1:6380 db 2 over TLS"},
		{cluster, "Redis Cluster, seeds 10.0.0.1:7000"},
		{mc, "Memcached a:11211,b:11211"},
	} {
		if got := describeCache(tc.cfg); !strings.HasPrefix(got, tc.want) || strings.Contains(got, "pw@") {
			t.Errorf("describeCache(%v) = %q; want %q…", tc.cfg.Backend, got, tc.want)
		}
	}
}

func TestBaseURL(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8123}
	for addr, want := range map[string]string{
		"localhost:0":  "http://localhost:8123",
		":8000":        "http://localhost:8123",
		"0.0.0.0:8000": "http://localhost:8123",
		"[::1]:8000":   "http://[::1]:8123",
		"10.1.2.3:80":  "http://10.1.2.3:8123",
	} {
		if got := baseURL(addr, bound); got != want {
			t.Errorf("baseURL(%q) = %q; want %q", addr, got, want)
		}
	}
}
