package hoard_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hoardcache/hoard"
)

// TestHitAllocations pins the allocations hoard adds to a warm memory hit
// over a handler that writes the same bytes (every allocation of
// the hit path that is not needed was removed; one that comes back fails
// here). What remains is the key string, the store's keys and values
// slices and the replayed header values (4 allocations more than the static
// handler at the time of writing; 6 before the hit's header values were
// cached as strings).
func TestHitAllocations(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	mux := http.NewServeMux()
	if err := c.HandleFunc(mux, benchPattern, widgetGetRoute, benchHandler); err != nil {
		t.Fatal(err)
	}
	static := http.NewServeMux()
	static.HandleFunc(benchPattern, benchHandler)

	serve := func(h http.Handler) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/widgets/42", nil))
		return w
	}
	serve(mux) // miss: stores the entry
	if w := serve(mux); w.Header().Get("Cache-Status") == "" || w.Body.String() != string(benchBody) {
		t.Fatalf("warm-up: %d %q %q", w.Code, w.Header().Get("Cache-Status"), w.Body)
	}
	if cs := serve(mux).Header().Get("Cache-Status"); len(cs) < 10 || cs[:10] != "hoard; hit" {
		t.Fatalf("Cache-Status %q; want a hit", cs)
	}
	hit := testing.AllocsPerRun(200, func() { serve(mux) })
	base := testing.AllocsPerRun(200, func() { serve(static) })
	const maxExtra = 4
	t.Logf("allocations per request: static handler %.0f, memory hit %.0f", base, hit)
	if hit-base > maxExtra {
		t.Errorf("a memory hit allocates %.0f times more than the static handler (%.0f vs %.0f); at most %d expected: look for a new allocation on the hit path (go test -bench RouteHit/memory/recorder -memprofile)",
			hit-base, hit, base, maxExtra)
	}
}
