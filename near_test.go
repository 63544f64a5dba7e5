package hoard_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/hoardcache/hoard/internal/storefixture"
)

// TestNearCacheRoutes: with the Redis store's near cache on (standalone
// and Cluster), the route middleware keeps its guarantees across two
// Caches standing in for two instances of a service on one Redis: a hit is
// served, a write on one instance is read back at once there
// (read-your-writes), and on the other instance as soon as the write was
// answered.
func TestNearCacheRoutes(t *testing.T) {
	for _, name := range []string{storefixture.Redis, storefixture.RedisCluster} {
		t.Run(name, func(t *testing.T) {
			b := storefixture.Shared(t, name)
			cfg := b.Config(t)
			cfg.Redis.NearCache = true
			a, other := b.Open(t, cfg), b.Open(t, cfg) // one KeyPrefix: one namespace
			muxA, version := versionedWidgets(t, a)
			muxB, _ := versionedWidgetsOn(t, other, version)
			get := func(mux http.Handler, id string) testResponse {
				t.Helper()
				return serveLocal(t, mux, http.MethodGet, "/w/"+id)
			}
			want := func(id string) string { return strconv.FormatInt(version.get(id), 10) }

			get(muxA, "ok1")
			wantHit(t, "GET on A", get(muxA, "ok1"))
			for round := range 20 {
				// A write on A: read back at once on A.
				serveLocal(t, muxA, http.MethodPatch, "/w/ok1")
				if r := get(muxA, "ok1"); r.Body != want("ok1") {
					t.Fatalf("round %d: GET on A right after A's write: %v; want %s", round, r, want("ok1"))
				}
				// A write on B: A sees it as soon as B has answered.
				serveLocal(t, muxB, http.MethodPatch, "/w/ok1")
				if r := get(muxA, "ok1"); r.Body != want("ok1") {
					t.Fatalf("round %d: GET on A right after B's write: %v; want %s", round, r, want("ok1"))
				}
				wantHit(t, "GET on A again", get(muxA, "ok1"))
			}
		})
	}
}
