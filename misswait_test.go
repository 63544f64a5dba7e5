package hoard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/faultstore"
	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/hoardcache/hoard/memory"
)

// twoInstances returns two Caches sharing one store and namespace, as two
// processes behind a load balancer would: on memory, two Caches over one
// store (through a fault store, which hides that the memory store is
// ProcessLocal); otherwise two connections to the backend's servers, with
// a generous call timeout (a loaded machine must not turn a poll into a
// store failure, which ends the wait).
func twoInstances(t *testing.T, name string, missWait time.Duration) (a, b *hoard.Cache) {
	t.Helper()
	if name == storefixture.Memory {
		mem, err := memory.New(memory.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cfg := hoard.Config{KeyPrefix: storefixture.UniquePrefix(), MissWait: missWait, Logger: discardLogger()}
		for _, c := range []**hoard.Cache{&a, &b} {
			if *c, err = hoard.New(faultstore.New(mem), cfg); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { (*c).Close() })
		}
		return a, b
	}
	bk := storefixture.Shared(t, name)
	cfg := bk.Config(t)
	cfg.Cache.MissWait = missWait
	cfg.Cache.Logger = discardLogger()
	cfg.Cache.Timeout = 2 * time.Second
	return bk.Open(t, cfg), bk.Open(t, cfg)
}

// serveAsync serves a GET of path through mux in a goroutine.
func serveAsync(t *testing.T, mux http.Handler, path string) <-chan testResponse {
	done := make(chan testResponse, 1)
	go func() { done <- serveLocal(t, mux, http.MethodGet, path) }()
	return done
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
	}
}

// answer waits for a response, failing the test after 10 s: longer than
// any wait the test expects, far shorter than the MissWait of 1 min that
// a wait which should have ended would last.
func answer(t *testing.T, what string, done <-chan testResponse) testResponse {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no answer after 10 s", what)
		return testResponse{}
	}
}

// missRace is two instances of a staleApp over one store, the first one's
// GET of /s/1 running its handler, held at gate.
type missRace struct {
	*staleApp
	other http.Handler  // the second instance
	cb    *hoard.Cache  // its Cache
	gate  chan struct{} // closing it lets the first run answer
	first <-chan testResponse
}

// startMissRace starts the first instance's run (answering fail, as
// staleApp.set) and waits until its handler is running; later runs are
// not held.
func startMissRace(t *testing.T, name string, missWait time.Duration, fail string) *missRace {
	t.Helper()
	ca, cb := twoInstances(t, name, missWait)
	a := newStaleApp(t, ca, 0, 0)
	m := &missRace{staleApp: a, other: a.mount(t, cb), cb: cb, gate: make(chan struct{})}
	a.set(fail, m.gate)
	m.first = serveAsync(t, a.mux, "/s/1")
	waitFor(t, "the first instance's handler has not started", func() bool { return a.runs.Load() == 1 })
	a.set(fail, nil)
	return m
}

// TestMissWaitsForOtherInstance: while one instance runs the handler for a
// missing entry, another instance's miss of it waits for that run's entry
// and answers from it: the handler runs once across the two, on every
// store.
func TestMissWaitsForOtherInstance(t *testing.T) {
	for _, name := range storefixture.Names {
		t.Run(name, func(t *testing.T) {
			m := startMissRace(t, name, time.Minute, "")
			second := serveAsync(t, m.other, "/s/1")
			waitFor(t, "the second instance does not wait for the first one's run", func() bool { return m.cb.Stats().MissWaits == 1 })
			close(m.gate)
			if r := answer(t, "first instance", m.first); r.Body != "v0" || r.CacheStatus() != csStored {
				t.Errorf("first instance: %v; want the stored v0", r)
			}
			if r := answer(t, "second instance", second); r.Body != "v0" || r.CacheStatus() != "hoard; fwd=miss; collapsed" || r.Header.Get("Etag") == "" {
				t.Errorf("second instance: %v; want v0 from the first one's entry, collapsed, with its ETag", r)
			}
			if n := m.runs.Load(); n != 1 {
				t.Errorf("the handler ran %d times for one miss on two instances; want once", n)
			}
			if s := m.cb.Stats(); s.MissWaitsServed != 1 {
				t.Errorf("second instance's Stats: %+v; want one wait served", s)
			}
		})
	}
}

// TestMissWaitEndsWhenNothingIsStored: when the leaseholder's answer is
// not stored (a 404 here), it gives the lease up and the waiting instance
// runs the handler at once, not after MissWait.
func TestMissWaitEndsWhenNothingIsStored(t *testing.T) {
	for _, name := range storefixture.Names {
		t.Run(name, func(t *testing.T) {
			m := startMissRace(t, name, time.Minute, "404")
			second := serveAsync(t, m.other, "/s/1")
			waitFor(t, "the second instance does not wait for the first one's run", func() bool { return m.cb.Stats().MissWaits == 1 })
			close(m.gate)
			if r := answer(t, "first instance", m.first); r.Status != http.StatusNotFound {
				t.Errorf("first instance: %v; want its 404", r)
			}
			if r := answer(t, "second instance (the lease was not given up)", second); r.Status != http.StatusNotFound || r.CacheStatus() != csMiss {
				t.Errorf("second instance: %v; want a 404 of its own run", r)
			}
			if n := m.runs.Load(); n != 2 {
				t.Errorf("the handler ran %d times; want twice (nothing stored to share)", n)
			}
		})
	}
}

// TestMissWaitBounded: a leaseholder that never answers (a stuck handler,
// a dead process) holds the other instances for MissWait at most; then
// they run the handler themselves (liveness before strictness).
func TestMissWaitBounded(t *testing.T) {
	for _, name := range []string{storefixture.Memory, storefixture.Redis} {
		t.Run(name, func(t *testing.T) {
			m := startMissRace(t, name, 200*time.Millisecond, "")
			defer close(m.gate)
			if r := answer(t, "second instance", serveAsync(t, m.other, "/s/1")); r.Body != "v0" || r.CacheStatus() != csStored {
				t.Errorf("second instance, the first one stuck: %v; want v0 from its own run, stored", r)
			}
			if s := m.cb.Stats(); s.MissWaits != 1 || s.MissWaitsServed != 0 {
				t.Errorf("second instance's Stats: %+v; want one wait, not served", s)
			}
		})
	}
}

// TestMissWaitNotAcrossWrite: a read after a write never waits for a run
// that started before the write (the lease is named after the
// generations, which the write changed), and is answered with the
// written data; the older run's answer is never served after the write.
func TestMissWaitNotAcrossWrite(t *testing.T) {
	for _, name := range storefixture.Names {
		t.Run(name, func(t *testing.T) {
			m := startMissRace(t, name, time.Minute, "")
			if r := serveLocal(t, m.other, http.MethodPatch, "/s/1"); r.Status != http.StatusOK {
				t.Fatalf("PATCH: %v", r)
			}
			if r := answer(t, "GET after the write (it waited for the older run)", serveAsync(t, m.other, "/s/1")); r.Body != "v1" {
				t.Errorf("GET after the write: %v; want v1", r)
			}
			if n := m.cb.Stats().MissWaits; n != 0 {
				t.Errorf("a read after the write waited %d times for the run from before it", n)
			}
			close(m.gate)
			if r := answer(t, "first instance", m.first); r.Body != "v0" {
				t.Errorf("first instance (read before the write): %v; want v0", r)
			}
			for _, mux := range []http.Handler{m.mux, m.other} {
				if r := serveLocal(t, mux, http.MethodGet, "/s/1"); r.Body != "v1" {
					t.Errorf("GET once both runs ended: %v; want v1", r)
				}
			}
		})
	}
}

// TestMissWaitOff: with MissWait negative (CACHE_MISS_WAIT=0) there is no
// lease: each instance runs the handler for its own miss, and nothing is
// left in the store but the entry and its generations.
func TestMissWaitOff(t *testing.T) {
	m := startMissRace(t, storefixture.Redis, -1, "")
	defer close(m.gate)
	if r := answer(t, "second instance", serveAsync(t, m.other, "/s/1")); r.Body != "v0" || !strings.Contains(r.CacheStatus(), "fwd=miss") {
		t.Errorf("second instance without a lease: %v; want its own run", r)
	}
	if s := m.cb.Stats(); s.MissWaits != 0 {
		t.Errorf("Stats with MissWait off: %+v; want no wait", s)
	}
}

// TestMissLeaseWonAfterRelease: an instance whose miss takes the lease
// just after another instance released it (that one's run over, its entry
// stored after this one read) answers from that entry rather than run the
// handler again.
func TestMissLeaseWonAfterRelease(t *testing.T) {
	mem, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := hoard.Config{KeyPrefix: storefixture.UniquePrefix(), MissWait: time.Minute, Logger: discardLogger()}
	// Two instances over one store, each through its own fault store.
	fa, fb := faultstore.New(mem), faultstore.New(mem)
	var instances []*hoard.Cache
	for _, s := range []hoard.Store{fa, fb} {
		c, err := hoard.New(s, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		instances = append(instances, c)
	}
	a := newStaleApp(t, instances[0], 0, 0)
	other := a.mount(t, instances[1])
	atLease, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fb.Inject(faultstore.Fault{Methods: []faultstore.Method{faultstore.Add}, Keys: func(k string) bool { return strings.Contains(k, "#m:") },
		Observe: func(faultstore.Method, []string) { once.Do(func() { close(atLease) }) }, Gate: gate})
	second := serveAsync(t, other, "/s/1") // misses, then waits at its lease
	select {
	case <-atLease:
	case <-time.After(10 * time.Second):
		t.Fatal("the second instance never asked for the lease")
	}
	if r := serveLocal(t, a.mux, http.MethodGet, "/s/1"); r.Body != "v0" || r.CacheStatus() != csStored {
		t.Fatalf("first instance: %v; want the stored v0", r)
	}
	close(gate)
	if r := answer(t, "second instance", second); r.Body != "v0" || r.CacheStatus() != "hoard; fwd=miss; collapsed" {
		t.Errorf("second instance, lease won after the first one's release: %v; want the first one's entry, collapsed", r)
	}
	if n := a.runs.Load(); n != 1 {
		t.Errorf("the handler ran %d times; want once", n)
	}
}

// TestMissLeaseQuietPeriod (regression): a miss that takes the lease reads
// the entry through the same rules as any read: during its quiet period
// after an outage, an instance does not answer from an entry that another
// instance's pending invalidation covers (here C's write, whose
// invalidation the store refused, made A's entry stale).
func TestMissLeaseQuietPeriod(t *testing.T) {
	mem, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := hoard.Config{KeyPrefix: storefixture.UniquePrefix(), Timeout: 20 * time.Millisecond, Logger: discardLogger()}
	fa, fb, fc := faultstore.New(mem), faultstore.New(mem), faultstore.New(mem)
	var instances []*hoard.Cache
	for _, s := range []hoard.Store{fa, fb, fc} {
		c, err := hoard.New(s, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		instances = append(instances, c)
	}
	// GET and PATCH /v/{id}, a minute's TTL: the version PATCH makes.
	var version atomic.Int64
	rt := &hoard.Route{KeyPrefix: "v", TTL: time.Minute}
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch {
			version.Add(1)
			return
		}
		fmt.Fprintf(w, "v%d", version.Load())
	}
	var muxes []http.Handler
	for _, inst := range instances {
		mux, _ := localMux(t, inst, miniRoute{pattern: "GET /v/{id}", rt: rt, h: h}, miniRoute{pattern: "PATCH /v/{id}", rt: rt, h: h})
		muxes = append(muxes, mux)
	}
	b, c := muxes[1], muxes[2]
	if r := serveLocal(t, muxes[0], http.MethodGet, "/v/1"); r.Body != "v0" {
		t.Fatalf("A's first GET: %v", r)
	}
	down := errors.New("test store: down")
	fc.Inject(faultstore.Fault{Methods: []faultstore.Method{faultstore.Delete}, Err: down})
	if r := serveLocal(t, c, http.MethodPatch, "/v/1"); r.Status != http.StatusOK || instances[2].Stats().PendingInvalidations == 0 {
		t.Fatalf("C's PATCH: %v, pending %d; want its invalidation pending", r, instances[2].Stats().PendingInvalidations)
	}
	fb.Inject(faultstore.Fault{Err: down})
	for range 10 {
		instances[1].Get(context.Background(), "x") // opens B's breaker
	}
	fb.Inject()
	time.Sleep(1100 * time.Millisecond) // B's breaker half-opens: its next call probes, closes it, and starts the quiet period
	if r := serveLocal(t, b, http.MethodGet, "/v/1"); r.Body != "v1" {
		t.Errorf("B's GET after the outage, C's invalidation pending: %v; want v1 (A's v0 is what C's write replaced)", r)
	}
}

// TestMissLeaseNotOnProcessLocalStore: over the memory store, which no
// other instance shares, a miss takes no lease (singleflight is enough
// within a process); over the same store behind a wrapper that does not
// say it is local, it does.
func TestMissLeaseNotOnProcessLocalStore(t *testing.T) {
	mem, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		store hoard.Store
		want  int
	}{{mem, 0}, {faultstore.New(mem), 1}} {
		c, err := hoard.New(tc.store, hoard.Config{KeyPrefix: storefixture.UniquePrefix(), Logger: discardLogger()})
		if err != nil {
			t.Fatal(err)
		}
		leases := -1
		mux, _ := localMux(t, c, miniRoute{pattern: "GET /l/{id}", rt: &hoard.Route{KeyPrefix: "l"}, h: func(w http.ResponseWriter, r *http.Request) {
			// While the handler runs, the lease (if any) is in the store.
			leases, _ = mem.DeletePattern(r.Context(), c.Config().KeyPrefix+"#m:*")
			w.Write([]byte("l"))
		}})
		serveLocal(t, mux, http.MethodGet, "/l/1")
		if leases != tc.want {
			t.Errorf("%T: %d leases in the store during a miss; want %d", tc.store, leases, tc.want)
		}
	}
}
