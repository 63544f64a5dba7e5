package main

// Shared test helpers: a demo server in-process (httptest) over a real
// database and a real cache store.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/hoardcache/hoard/internal/testlog"
	"github.com/hoardcache/hoard/stores"
)

func TestMain(m *testing.M) { storefixture.Main(m) }

// testEnv is one demo server, in-process, with its database and cache.
type testEnv struct {
	t     testing.TB
	DB    *sql.DB
	Cache *hoard.Cache
	URL   string
	Logs  *testlog.Buffer // the server's log, JSON lines
}

// newEnv serves the demo over db and c on an httptest server.
func newEnv(t testing.TB, db *sql.DB, c *hoard.Cache) *testEnv {
	t.Helper()
	return newEnvConfig(t, db, c, config{Hoard: stores.Config{Cache: c.Config()}})
}

// newEnvConfig is newEnv with the demo's configuration cfg.
func newEnvConfig(t testing.TB, db *sql.DB, c *hoard.Cache, cfg config) *testEnv {
	t.Helper()
	logs := &testlog.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	h, err := newServer(cfg, db, c, logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &testEnv{t: t, DB: db, Cache: c, URL: srv.URL, Logs: logs}
}

// with returns e reporting to t (a subtest's).
func (e *testEnv) with(t testing.TB) *testEnv {
	c := *e
	c.t = t
	return &c
}

// sqliteDB opens, migrates and seeds a new SQLite file in a temporary
// directory.
func sqliteDB(t testing.TB) *sql.DB {
	t.Helper()
	return openTestDB(t, sqliteConfig(filepath.Join(t.TempDir(), "demo.db")))
}

// postgresDB opens, migrates and seeds the PostgreSQL database at url.
func postgresDB(t testing.TB, url string) *sql.DB {
	t.Helper()
	c, err := parseDatabaseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return openTestDB(t, c)
}

func openTestDB(t testing.TB, c dbConfig) *sql.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := openDatabase(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if seeded, err := seed(ctx, db); err != nil || !seeded {
		t.Fatalf("seed: seeded=%v, %v", seeded, err)
	}
	if seeded, err := seed(ctx, db); err != nil || seeded {
		t.Fatalf("second seed: seeded=%v, %v; want no-op", seeded, err)
	}
	return db
}

// resp is a response, read whole.
type resp struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
}

// CacheStatus is the Cache-Status header.
func (r resp) CacheStatus() string { return r.Header.Get("Cache-Status") }

func (r resp) hit() bool { return strings.HasPrefix(r.CacheStatus(), "hoard; hit") }

func (r resp) String() string {
	return fmt.Sprintf("%s %s -> %d [%s] %s", r.Method, r.Path, r.Status, r.CacheStatus(), bytes.TrimSpace(r.Body))
}

// do sends a request as a JSON client does; body "" sends none. A body, and
// every POST, PUT or PATCH, comes with Content-Type: application/json.
func (e *testEnv) do(method, path, body string) resp {
	e.t.Helper()
	var h http.Header
	if body != "" || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		h = http.Header{"Content-Type": {"application/json"}}
	}
	return e.send(method, path, body, h)
}

// send sends a request with the headers h (and those Go's client adds, no
// Content-Type); body "" sends none.
func (e *testEnv) send(method, path, body string, h http.Header) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	maps.Copy(req.Header, h)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp{Method: method, Path: path, Status: res.StatusCode, Header: res.Header, Body: b}
}

func (e *testEnv) get(path string) resp { e.t.Helper(); return e.do(http.MethodGet, path, "") }

// want checks the status of r.
func (e *testEnv) want(r resp, status int) resp {
	e.t.Helper()
	if r.Status != status {
		e.t.Fatalf("%v; want status %d", r, status)
	}
	return r
}

// hit GETs path and checks that it is answered 200 from the cache.
func (e *testEnv) hit(path string) resp {
	e.t.Helper()
	r := e.want(e.get(path), http.StatusOK)
	if !r.hit() {
		e.t.Fatalf("%v; want a cache hit", r)
	}
	return r
}

// miss GETs path and checks that the handler answered 200 and the answer was
// stored (a fresh read from the database).
func (e *testEnv) miss(path string) resp {
	e.t.Helper()
	r := e.want(e.get(path), http.StatusOK)
	if r.CacheStatus() != "hoard; fwd=miss; stored" {
		e.t.Fatalf("%v; want Cache-Status \"hoard; fwd=miss; stored\"", r)
	}
	return r
}

// prime GETs path until it is cached (a miss that stores, then a hit).
func (e *testEnv) prime(paths ...string) {
	e.t.Helper()
	for _, p := range paths {
		if r := e.want(e.get(p), http.StatusOK); !r.hit() {
			e.hit(p)
		}
	}
}

// exec runs SQL directly on the database, behind the cache's back.
func (e *testEnv) exec(query string, args ...any) {
	e.t.Helper()
	if _, err := e.DB.Exec(query, args...); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
}

func decode[T any](t testing.TB, r resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("%v: decode into %T: %v", r, v, err)
	}
	return v
}
