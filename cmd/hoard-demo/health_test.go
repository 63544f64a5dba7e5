package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
)

// TestReadyFollowsStore: /health/ready answers 503 naming the cache store
// while its server is down and 200 when it is back; the API keeps answering
// 200 meanwhile (fail-open), and writes made during the outage are not
// hidden by entries cached before it.
func TestReadyFollowsStore(t *testing.T) {
	b := storefixture.Dedicated(t, storefixture.Redis)
	e := newEnv(t, sqliteDB(t), b.NewCache(t, hoard.Config{}))
	if r := e.want(e.get("/health/ready"), http.StatusOK); !strings.Contains(string(r.Body), `"status":"ready"`) {
		t.Fatalf("%v", r)
	}
	e.want(e.get("/health"), http.StatusOK)
	e.prime("/api/v1/widgets/1", "/api/v1/widgets")

	b.Kill(t)
	r := waitStatus(t, e, "/health/ready", http.StatusServiceUnavailable, 5*time.Second)
	if d := decode[map[string]string](t, r)["detail"]; !strings.Contains(d, "cache store (redis) unreachable") {
		t.Fatalf("%v; want a detail naming the cache store", r)
	}
	e.want(e.get("/health"), http.StatusOK)
	for range 3 {
		e.want(e.get("/api/v1/widgets/1"), http.StatusOK)
		e.want(e.get("/api/v1/widgets"), http.StatusOK)
	}
	e.want(e.do(http.MethodPatch, "/api/v1/widgets/1", `{"name": "During outage"}`), http.StatusOK)
	if w := decode[widget](t, e.want(e.get("/api/v1/widgets/1"), http.StatusOK)); w.Name != "During outage" {
		t.Fatalf("during the outage: %+v", w)
	}

	b.Restart(t)
	waitStatus(t, e, "/health/ready", http.StatusOK, 15*time.Second)
	if w := decode[widget](t, e.want(e.get("/api/v1/widgets/1"), http.StatusOK)); w.Name != "During outage" {
		t.Fatalf("after the outage: %+v", w)
	}
	// The cache works again, once its quiet period after an outage has
	// passed (it serves no stored entry for about 2 s: see hoard's
	// recovery.go).
	waitHit(t, e, "/api/v1/widgets/1", 15*time.Second)

	// A frozen server (it keeps its data): a write during the freeze must
	// not leave the entry cached before it visible afterwards.
	e.prime("/api/v1/widgets/2", "/api/v1/widgets")
	b.Pause(t)
	waitStatus(t, e, "/health/ready", http.StatusServiceUnavailable, 5*time.Second)
	e.want(e.do(http.MethodPatch, "/api/v1/widgets/2", `{"name": "During freeze"}`), http.StatusOK)
	e.want(e.get("/api/v1/widgets/2"), http.StatusOK)
	b.Resume(t)
	waitStatus(t, e, "/health/ready", http.StatusOK, 15*time.Second)
	for _, path := range []string{"/api/v1/widgets/2", "/api/v1/widgets"} {
		r := e.want(e.get(path), http.StatusOK)
		if !strings.Contains(string(r.Body), "During freeze") {
			t.Fatalf("after the freeze: %v; want the write made during it", r)
		}
	}
}

// TestReadyNamesDatabase: a database that cannot be reached makes
// /health/ready 503, naming it.
func TestReadyNamesDatabase(t *testing.T) {
	db := sqliteDB(t)
	e := newEnv(t, db, storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{}))
	e.want(e.get("/health/ready"), http.StatusOK)
	db.Close()
	r := e.want(e.get("/health/ready"), http.StatusServiceUnavailable)
	body := decode[map[string]string](t, r)
	if !strings.Contains(body["detail"], "database unreachable") || body["cache"] != "ok" {
		t.Fatalf("%v; want a detail naming the database, and the cache ok", r)
	}
	// The API answers 503, not 500.
	e.want(e.get("/api/v1/widgets/1"), http.StatusServiceUnavailable)
}

// TestReadyCacheDisabled: with CACHE_ENABLED=false the store is not
// checked and routes pass through.
func TestReadyCacheDisabled(t *testing.T) {
	c, err := hoard.New(nil, hoard.Config{Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, sqliteDB(t), c)
	r := e.want(e.get("/health/ready"), http.StatusOK)
	if decode[map[string]string](t, r)["cache"] != "disabled" {
		t.Fatalf("%v", r)
	}
	for range 2 {
		if r := e.want(e.get("/api/v1/widgets/1"), http.StatusOK); r.CacheStatus() != "" {
			t.Fatalf("%v: disabled cache set Cache-Status", r)
		}
	}
}

// waitHit GETs path until the answer is a cache hit, failing t after
// timeout.
func waitHit(t *testing.T, e *testEnv, path string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := e.want(e.get(path), http.StatusOK)
		if r.hit() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v; still no cache hit %v after the outage", r, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
