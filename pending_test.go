package hoard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/faultstore"
)

var errServerDown = errors.New("test store: the server of this key is down")

// newDownCache returns a Cache over a memory store and setDown, which makes
// every key that contains one of the given substrings act as a pool does
// whose server holding those keys is dead: GetMulti answers them as misses,
// Set, Add and Delete fail. setDown() brings them back.
func newDownCache(t *testing.T) (*hoard.Cache, func(subs ...string)) {
	t.Helper()
	c, s := newFaultCache(t, hoard.Config{KeyPrefix: "p:"})
	return c, func(subs ...string) {
		down := func(k string) bool {
			return slices.ContainsFunc(subs, func(d string) bool { return strings.Contains(k, d) })
		}
		s.Inject(
			faultstore.Fault{Methods: []faultstore.Method{faultstore.GetMulti}, Keys: down, Miss: true},
			faultstore.Fault{Methods: []faultstore.Method{faultstore.Set, faultstore.Add, faultstore.Delete}, Keys: down, Err: errServerDown},
		)
	}
}

// TestPendingInvalidationBlocksOnlyItsNamespace (regression): an
// invalidation that fails because the server holding its generation is down
// (one memcached server of a pool) keeps that namespace uncached until it
// is replayed, while the other namespaces keep hitting; the replay's
// repeated failures do not open the breaker for them. Before, one pending
// invalidation stopped every hit of the Cache until all were replayed, so a
// single dead server of a pool stopped the whole cache.
func TestPendingInvalidationBlocksOnlyItsNamespace(t *testing.T) {
	ctx := context.Background()
	c, setDown := newDownCache(t)
	for _, k := range []string{"a", "b"} {
		if err := c.Set(ctx, k, []byte("old "+k), 0); err != nil {
			t.Fatal(err)
		}
	}
	setDown("#g:a")
	if err := c.Invalidate(ctx, "a"); err == nil {
		t.Fatal("Invalidate with the generation's server down: no error")
	}
	for i := range 20 { // well past the breaker's threshold
		if v, found, err := c.Get(ctx, "a"); found || !errors.Is(err, hoard.ErrUnavailable) {
			t.Fatalf("Get a #%d while its invalidation is pending: %q, found=%v, err=%v; want ErrUnavailable, never the old value", i, v, found, err)
		}
		if v, found, err := c.Get(ctx, "b"); !found || err != nil || string(v) != "old b" {
			t.Fatalf("Get b #%d while a's invalidation is pending: %q, found=%v, err=%v; want a hit", i, v, found, err)
		}
	}
	setDown()
	// The next read of a replays a's generation itself: a miss, not an error.
	if v, found, err := c.Get(ctx, "a"); found || err != nil {
		t.Fatalf("Get a after the server came back: %q, found=%v, err=%v; want a miss", v, found, err)
	}
	if err := c.Set(ctx, "a", []byte("new a"), 0); err != nil {
		t.Fatal(err)
	}
	if v, found, err := c.Get(ctx, "a"); !found || err != nil || string(v) != "new a" {
		t.Fatalf("Get a after the replay: %q, found=%v, err=%v; want the new value", v, found, err)
	}
}

// TestPendingInvalidationRouteOtherWidgetsHit (regression): the
// same through the route middleware: a PUT whose invalidation fails on one
// widget's generation answers 200; that widget is then answered fresh (never
// the entry from before the PUT), and another widget keeps hitting.
func TestPendingInvalidationRouteOtherWidgetsHit(t *testing.T) {
	c, setDown := newDownCache(t)
	var (
		mu    sync.Mutex
		names = map[string]string{"1": "one", "2": "two"}
	)
	mux := http.NewServeMux()
	get := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Write([]byte(names[r.PathValue("id")]))
	}
	put := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		names[r.PathValue("id")] += "+"
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}
	if err := c.HandleFunc(mux, "GET /w/{id}", hoard.Route{KeyPrefix: "w"}, get); err != nil {
		t.Fatal(err)
	}
	if err := c.HandleFunc(mux, "PUT /w/{id}", hoard.Route{KeyPrefix: "w"}, put); err != nil {
		t.Fatal(err)
	}
	do := func(method, path string) (string, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		return rec.Body.String(), rec.Header().Get("Cache-Status")
	}
	for _, p := range []string{"/w/1", "/w/2"} {
		do(http.MethodGet, p)
		if _, cs := do(http.MethodGet, p); !strings.HasPrefix(cs, "hoard; hit") {
			t.Fatalf("GET %s not cached: %s", p, cs)
		}
	}
	setDown("#g:w:1")
	do(http.MethodPut, "/w/1")
	for i := range 20 {
		if body, cs := do(http.MethodGet, "/w/1"); body != "one+" {
			t.Fatalf("GET /w/1 #%d after its PUT answered 200: %q [%s]; want \"one+\"", i, body, cs)
		}
		if body, cs := do(http.MethodGet, "/w/2"); body != "two" || !strings.HasPrefix(cs, "hoard; hit") {
			t.Fatalf("GET /w/2 #%d while /w/1's invalidation is pending: %q [%s]; want a hit", i, body, cs)
		}
	}
	setDown()
	do(http.MethodGet, "/w/1")
	if body, cs := do(http.MethodGet, "/w/1"); body != "one+" || !strings.HasPrefix(cs, "hoard; hit") {
		t.Fatalf("GET /w/1 after the server came back: %q [%s]; want a hit of \"one+\"", body, cs)
	}
}

// TestPendingFailedWriteStaysPending (regression): a write whose first
// invalidation failed (its keys pending) while a replay deleted them before
// the handler committed: a read in between stores what it read before the
// commit, so the keys must be invalidated again when the handler returns.
// Before, the second invalidation was skipped because the first had failed,
// and the pre-write answer stayed a hit.
func TestPendingFailedWriteStaysPending(t *testing.T) {
	c, s := newFaultCache(t, hoard.Config{Logger: discardLogger()})
	var version atomic.Int32
	version.Store(1)
	headerSent, commit := make(chan struct{}), make(chan struct{})
	mux, _ := localMux(t, c,
		miniRoute{pattern: "GET /w/{id}", rt: &hoard.Route{KeyPrefix: "w"}, h: func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "v%d", version.Load())
		}},
		miniRoute{pattern: "PUT /w/{id}", rt: &hoard.Route{KeyPrefix: "w"}, h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK) // the status first, the commit after
			close(headerSent)
			<-commit
			version.Store(2)
		}})
	serveLocal(t, mux, http.MethodGet, "/w/1")
	s.Inject(faultstore.Fault{Methods: []faultstore.Method{faultstore.Delete}, Err: errors.New("blip")})
	done := make(chan struct{})
	go func() { defer close(done); serveLocal(t, mux, http.MethodPut, "/w/1") }()
	<-headerSent
	s.Inject() // the store is back: the next read replays the pending keys itself
	if r := serveLocal(t, mux, http.MethodGet, "/w/1"); r.Body != "v1" {
		t.Fatalf("GET while the write runs: %v; want the committed v1", r)
	}
	close(commit)
	<-done
	if r := serveLocal(t, mux, http.MethodGet, "/w/1"); r.Body != "v2" {
		t.Errorf("GET after the write: %v; want v2, never the answer read before the commit", r)
	}
}
