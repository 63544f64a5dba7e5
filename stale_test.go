package hoard_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/hoardcache/hoard/memory"
)

// staleApp serves GET and PATCH /s/{id} through a route with the given
// windows and a 1 s TTL. Its handler answers the current version of the
// resource (PATCH adds one), unless fail says otherwise; a GET waits on
// gate (when set) after reading the version, so that a test can hold a
// background revalidation between its read and its answer.
type staleApp struct {
	mux      http.Handler
	swr, sie time.Duration
	version  atomic.Int64
	runs     atomic.Int64
	mu       sync.Mutex
	fail     string // "", "500", "404" or "panic"
	gate     chan struct{}
}

func newStaleApp(t *testing.T, c *hoard.Cache, swr, sie time.Duration) *staleApp {
	a := &staleApp{swr: swr, sie: sie}
	a.mux = a.mount(t, c)
	return a
}

// mount serves the app through c: another instance of it, when c shares
// the first one's store and key prefix.
func (a *staleApp) mount(t *testing.T, c *hoard.Cache) http.Handler {
	rt := &hoard.Route{KeyPrefix: "s", TTL: time.Second, StaleWhileRevalidate: a.swr, StaleIfError: a.sie}
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch {
			a.version.Add(1)
			fmt.Fprint(w, "patched")
			return
		}
		a.runs.Add(1)
		v := a.version.Load()
		a.mu.Lock()
		fail, gate := a.fail, a.gate
		a.mu.Unlock()
		if gate != nil {
			<-gate
		}
		switch fail {
		case "500":
			http.Error(w, "broken", http.StatusInternalServerError)
		case "404":
			http.Error(w, "gone", http.StatusNotFound)
		case "panic":
			panic("handler broke")
		default:
			fmt.Fprintf(w, "v%d", v)
		}
	}
	mux, _ := localMux(t, c,
		miniRoute{pattern: "GET /s/{id}", rt: rt, h: h},
		miniRoute{pattern: "PATCH /s/{id}", rt: rt, h: h})
	return mux
}

func (a *staleApp) set(fail string, gate chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fail, a.gate = fail, gate
}

func (a *staleApp) get(t *testing.T) testResponse {
	t.Helper()
	return serveLocal(t, a.mux, http.MethodGet, "/s/1")
}

// staleBackends are the stores the stale tests run on: in process and
// over the network (a TTL resolution of a second, as Memcached has, would
// make the 1 s TTL too coarse).
var staleBackends = []string{storefixture.Memory, storefixture.Redis}

// pastTTL waits until the entry stored at stored is past its 1 s TTL.
func pastTTL(stored time.Time) { time.Sleep(time.Until(stored.Add(1100 * time.Millisecond))) }

// TestStaleWhileRevalidate: past its TTL, an entry no write has touched is
// served at once, marked stale, while one background run (however many
// requests) refreshes it; then the fresh entry is a hit.
func TestStaleWhileRevalidate(t *testing.T) {
	for _, name := range staleBackends {
		t.Run(name, func(t *testing.T) {
			c := storefixture.Shared(t, name).NewCache(t, hoard.Config{Logger: discardLogger()})
			a := newStaleApp(t, c, 30*time.Second, 0)
			stored := time.Now()
			if r := a.get(t); r.Body != "v0" {
				t.Fatalf("first GET: %v", r)
			}
			pastTTL(stored)
			a.version.Store(1) // the data changed behind the cache's back
			gate := make(chan struct{})
			a.set("", gate)
			runs := a.runs.Load()
			var wg sync.WaitGroup
			for range 10 {
				wg.Go(func() {
					r := a.get(t)
					if r.Status != http.StatusOK || r.Body != "v0" ||
						!strings.Contains(r.CacheStatus(), "ttl=-") || !strings.Contains(r.CacheStatus(), "detail=stale-while-revalidate") {
						t.Errorf("GET past the TTL: %v; want the stale v0 at once", r)
					}
					if r.Header.Get("Age") == "" || r.Header.Get("Age") == "0" {
						t.Errorf("stale answer's Age = %q; want its age (1 s or more)", r.Header.Get("Age"))
					}
				})
			}
			wg.Wait()
			// The one background run has read the data and waits on gate.
			for deadline := time.Now().Add(5 * time.Second); a.runs.Load() == runs; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no background revalidation started")
				}
			}
			time.Sleep(50 * time.Millisecond)
			if n := a.runs.Load() - runs; n != 1 {
				t.Errorf("handler ran %d times for 10 stale GETs; want one background run", n)
			}
			close(gate)
			deadline := time.Now().Add(5 * time.Second)
			for {
				r := a.get(t)
				if r.Body == "v1" && strings.HasPrefix(r.CacheStatus(), "hoard; hit; ttl=") && !strings.Contains(r.CacheStatus(), "stale") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("5 s after the revalidation was released: %v; want a fresh hit of v1", r)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestStaleNeverAfterWrite: an entry a write invalidated is never served
// in any window, including when the handler fails afterwards; and a
// background revalidation that read the data before a write does not
// store its answer over the write.
func TestStaleNeverAfterWrite(t *testing.T) {
	for _, name := range staleBackends {
		t.Run(name, func(t *testing.T) {
			c := storefixture.Shared(t, name).NewCache(t, hoard.Config{Logger: discardLogger()})
			a := newStaleApp(t, c, 30*time.Second, 30*time.Second)
			stored := time.Now()
			a.get(t)
			serveLocal(t, a.mux, http.MethodPatch, "/s/1") // v1
			pastTTL(stored)
			if r := a.get(t); r.Body != "v1" || strings.Contains(r.CacheStatus(), "stale") {
				t.Fatalf("GET after a write, past the TTL: %v; want v1, never the stale v0", r)
			}

			// The handler fails after a write: the failure, not the old entry.
			stored = time.Now()
			a.get(t)                                       // stores v1
			serveLocal(t, a.mux, http.MethodPatch, "/s/1") // v2
			pastTTL(stored)
			a.set("500", nil)
			if r := a.get(t); r.Status != http.StatusInternalServerError {
				t.Fatalf("failing GET after a write: %v; want the 500, never the stale v1", r)
			}
			a.set("", nil)

			// A revalidation racing a write.
			stored = time.Now()
			if r := a.get(t); r.Body != "v2" {
				t.Fatalf("GET: %v; want v2", r)
			}
			pastTTL(stored)
			gate := make(chan struct{})
			a.set("", gate)
			runs := a.runs.Load()
			if r := a.get(t); r.Body != "v2" || !strings.Contains(r.CacheStatus(), "stale-while-revalidate") {
				t.Fatalf("GET past the TTL: %v; want the stale v2", r)
			}
			for deadline := time.Now().Add(5 * time.Second); a.runs.Load() == runs; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no background revalidation started")
				}
			} // it has read v2 and waits on gate
			serveLocal(t, a.mux, http.MethodPatch, "/s/1") // v3
			a.set("", nil)
			close(gate)
			time.Sleep(200 * time.Millisecond) // let the revalidation store its v2
			for range 5 {
				if r := a.get(t); r.Body != "v3" {
					t.Fatalf("GET after the write that raced a revalidation: %v; want v3", r)
				}
			}
		})
	}
}

// TestStaleIfError: past its TTL, within StaleIfError, a handler that
// answers 5xx or panics is replaced by the entry no write has touched; a
// 4xx is not; past the window the failure passes.
func TestStaleIfError(t *testing.T) {
	for _, name := range staleBackends {
		t.Run(name, func(t *testing.T) {
			c := storefixture.Shared(t, name).NewCache(t, hoard.Config{Logger: discardLogger()})
			a := newStaleApp(t, c, 0, 2*time.Second)
			stored := time.Now()
			a.get(t)
			pastTTL(stored)
			for _, fail := range []string{"500", "panic"} {
				a.set(fail, nil)
				r := a.get(t)
				if r.Status != http.StatusOK || r.Body != "v0" || !strings.Contains(r.CacheStatus(), "detail=stale-if-error") {
					t.Fatalf("handler %s past the TTL: %v; want the stale v0", fail, r)
				}
			}
			a.set("404", nil)
			if r := a.get(t); r.Status != http.StatusNotFound {
				t.Fatalf("handler 404 past the TTL: %v; want the 404 (a 4xx is never replaced)", r)
			}
			a.set("500", nil)
			time.Sleep(time.Until(stored.Add(3100 * time.Millisecond)))
			if r := a.get(t); r.Status != http.StatusInternalServerError {
				t.Fatalf("handler 500 past TTL + StaleIfError: %v; want the 500", r)
			}
		})
	}
}

// TestStaleRevalidationLease: two instances (Caches sharing one Redis and
// key prefix) both serving a stale entry revalidate it once between them:
// the lease in the store goes to one, the other keeps serving stale.
func TestStaleRevalidationLease(t *testing.T) {
	b := storefixture.Shared(t, storefixture.Redis)
	cfg := b.Config(t)
	cfg.Cache.Logger = discardLogger()
	a := newStaleApp(t, b.Open(t, cfg), 30*time.Second, 0)
	other := a.mount(t, b.Open(t, cfg))
	stored := time.Now()
	a.get(t)
	pastTTL(stored)
	a.version.Store(1)
	gate := make(chan struct{})
	a.set("", gate)
	runs := a.runs.Load()
	for _, mux := range []http.Handler{a.mux, other} {
		if r := serveLocal(t, mux, http.MethodGet, "/s/1"); r.Body != "v0" || !strings.Contains(r.CacheStatus(), "stale-while-revalidate") {
			t.Fatalf("GET past the TTL: %v; want the stale v0", r)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); a.runs.Load() == runs; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no background revalidation started")
		}
	}
	time.Sleep(200 * time.Millisecond) // the other instance's attempt, if any, has run by now
	if n := a.runs.Load() - runs; n != 1 {
		t.Errorf("two instances ran the handler %d times to revalidate one entry; want once", n)
	}
	close(gate)
	for _, mux := range []http.Handler{a.mux, other} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			r := serveLocal(t, mux, http.MethodGet, "/s/1")
			if r.Body == "v1" && !strings.Contains(r.CacheStatus(), "stale") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("5 s after the revalidation: %v; want the fresh v1 on every instance", r)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestStaleWindowDefaults: a route's window of 0 takes the Cache's default
// (Config.StaleIfError, CACHE_STALE_IF_ERROR); a negative one turns it off
// for that route.
func TestStaleWindowDefaults(t *testing.T) {
	mem, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := hoard.New(mem, hoard.Config{StaleIfError: time.Minute, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	byDefault := newStaleApp(t, c, 0, 0)
	var failing atomic.Bool
	// Another key prefix, so that the two routes do not share entries.
	offMux, _ := localMux(t, c, miniRoute{pattern: "GET /off/{id}", rt: &hoard.Route{KeyPrefix: "off", TTL: time.Second, StaleIfError: -1},
		h: func(w http.ResponseWriter, r *http.Request) {
			if failing.Load() {
				http.Error(w, "broken", http.StatusInternalServerError)
				return
			}
			fmt.Fprint(w, "v0")
		}})
	stored := time.Now()
	byDefault.get(t)
	serveLocal(t, offMux, http.MethodGet, "/off/1")
	pastTTL(stored)
	byDefault.set("500", nil)
	failing.Store(true)
	if r := byDefault.get(t); r.Status != http.StatusOK || !strings.Contains(r.CacheStatus(), "stale-if-error") {
		t.Errorf("route with StaleIfError 0 under a Cache default of 1m: %v; want the stale entry", r)
	}
	if r := serveLocal(t, offMux, http.MethodGet, "/off/1"); r.Status != http.StatusInternalServerError {
		t.Errorf("route with StaleIfError -1: %v; want the 500 (window off)", r)
	}
}
