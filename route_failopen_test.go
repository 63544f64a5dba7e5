package hoard_test

// Fail-open tests of the route middleware: a dead or frozen store
// costs neither errors nor timeouts per request, and invalidations issued
// during an outage still take effect when the store is back. Names defined
// in this file start with "fo"; the widget app is the fixture of
// widgets_test.go.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/faultstore"
	"github.com/hoardcache/hoard/internal/storefixture"
)

const (
	foWidgets = 20 // widgets 1..20 are cached before the outage
	foWritten = 10 // widgets 1..10 are written during it
)

// TestRouteFailOpen kills (SIGKILL), then freezes (SIGSTOP) the servers of
// each network store. During the outage 1,000 GETs all answer 200 with the
// current version, PUTs answer 200, and the GET latency is compared with the
// same route on a disabled cache; the p99 of the difference stays under the
// store deadline. When the servers are back, hits resume (bounded poll) and
// no widget written during the outage is served from an entry older than
// the write.
func TestRouteFailOpen(t *testing.T) {
	t.Parallel() // mostly waits for timeouts, restarts and the breaker
	for _, name := range []string{storefixture.Redis, storefixture.RedisCluster, storefixture.Memcached} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := storefixture.Dedicated(t, name)
			t.Run("kill", func(t *testing.T) { foOutage(t, b, "kill", b.Kill, b.Restart) })
			// Pause is the case that matters more: a frozen server keeps
			// its data, so the entries cached before the outage are still
			// there when it resumes.
			t.Run("pause", func(t *testing.T) { foOutage(t, b, "pause", b.Pause, b.Resume) })
		})
	}
}

func foOutage(t *testing.T, b storefixture.Backend, mode string, down, up func(testing.TB)) {
	label := b.Name + "/" + mode
	db := newWidgetDB(foWidgets)
	app := newWidgetApp(t, b.NewCache(t, hoard.Config{Logger: discardLogger()}), db)
	plain := newWidgetApp(t, b.NewCache(t, hoard.Config{Disabled: true}), db)

	for id := 1; id <= foWidgets; id++ {
		app.get(t, id)
		if r := app.get(t, id); !isHit(r) {
			t.Fatalf("before the outage, widget %d is not cached: %v", id, r)
		}
	}
	before := map[int]int64{}
	for id := 1; id <= foWidgets; id++ {
		before[id] = db.Version(id)
	}

	down(t)
	upped := false
	defer func() {
		if !upped {
			up(t) // so that the fixture can stop the servers
		}
	}()
	const n = 1000
	cached := make([]time.Duration, 0, n)
	disabled := make([]time.Duration, 0, n)
	diff := make([]time.Duration, 0, n)
	var putTime, maxPut time.Duration
	statuses := map[string]int{}
	start := time.Now()
	for i := range n {
		if i%50 == 0 {
			id := (i/50)%foWritten + 1
			t0 := time.Now()
			p := app.put(t, id) // fails the test unless 200
			d := time.Since(t0)
			putTime += d
			maxPut = max(maxPut, d)
			if p.version() != db.Version(id) {
				t.Fatalf("PUT %d during the outage answered %v, database has version %d", id, p, db.Version(id))
			}
		}
		id := i%foWidgets + 1
		t0 := time.Now()
		r := app.get(t, id)
		dc := time.Since(t0)
		t0 = time.Now()
		plain.get(t, id)
		dp := time.Since(t0)
		cached = append(cached, dc)
		disabled = append(disabled, dp)
		diff = append(diff, dc-dp)
		statuses[r.CacheStatus()]++
		if want := db.Version(id); r.version() != want {
			t.Fatalf("GET %d during the outage: %v, database has version %d", id, r, want)
		}
	}
	elapsed := time.Since(start)
	pc, pp := foPercentiles(cached), foPercentiles(disabled)
	pd := foPercentiles(diff)
	t.Logf("%s: %d GETs during the outage in %v (Cache-Status %v); PUTs: %d, total %v, max %v",
		label, n, elapsed.Round(time.Millisecond), statuses, n/50, putTime.Round(time.Millisecond), maxPut.Round(time.Millisecond))
	t.Logf("%s: GET latency cached:   %v", label, pc)
	t.Logf("%s: GET latency disabled: %v", label, pp)
	t.Logf("%s: added latency: p50 %v, p99 %v (difference of percentiles); per request pair: %v",
		label, pc.p50-pp.p50, pc.p99-pp.p99, pd)
	if added := pc.p99 - pp.p99; added >= storefixture.Timeout {
		t.Errorf("added latency at p99 is %v during the outage, want under the store deadline %v: the breaker does not skip the dead store",
			added, storefixture.Timeout)
	}

	up(t)
	upped = true
	upAt := time.Now()
	// Hits resume once the breaker lets a probe through and the pending
	// invalidations are replayed. An unwritten widget shows when: after a
	// pause its old entry is still current; after a restart the server is
	// empty and the first GET stores again.
	var last testResponse
	if !rcWaitFor(20*time.Second, func() bool {
		last = app.get(t, foWidgets)
		return isHit(last)
	}) {
		t.Fatalf("no hit within 20s after the store came back; last GET: %v", last)
	}
	t.Logf("%s: hits resumed %v after the store came back", label, time.Since(upAt).Round(time.Millisecond))
	// Each widget must answer its database version on every GET, and hit
	// again within a bounded time: on a pool, each server's calls resume
	// on their own (a server marked down is retried after its back-off),
	// so widgets do not all come back at the same moment.
	check := func(id int, r testResponse) bool {
		if want := db.Version(id); r.version() != want {
			wrote := "not written"
			if id <= foWritten {
				wrote = "written"
			}
			t.Errorf("after the outage: widget %d (%s during the outage, version %d before it): %v, want version %d",
				id, wrote, before[id], r, want)
			return false
		}
		return true
	}
	for id := 1; id <= foWidgets; id++ {
		if !rcWaitFor(20*time.Second, func() bool {
			last = app.get(t, id)
			return !check(id, last) || isHit(last) // a wrong version is reported once
		}) {
			t.Errorf("after the outage, widget %d is still not cached 20s later: %v", id, last)
		}
	}
	for id := 1; id <= foWidgets; id++ {
		r := app.get(t, id)
		check(id, r)
		if !isHit(r) {
			t.Errorf("after the outage, widget %d hit once and then missed: %v", id, r)
		}
	}
}

// foStats are latency percentiles.
type foStats struct{ p50, p99, max time.Duration }

func (s foStats) String() string {
	return fmt.Sprintf("p50 %v, p99 %v, max %v", s.p50, s.p99, s.max)
}

func foPercentiles(d []time.Duration) foStats {
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[int(q*float64(len(s)-1)+0.5)] }
	return foStats{p50: at(0.50), p99: at(0.99), max: s[len(s)-1]}
}

// --- unit level: a store that answers after its deadline ---------------------

// errFoDeadline is what the slow store calls return, like a network store
// whose per-call deadline passed.
var errFoDeadline = fmt.Errorf("slow test store: %w", context.DeadlineExceeded)

// TestRouteFailOpenSlowStore: a store call that runs past its deadline, on a
// read (GetMulti, generation Add or Get), on storing the response (Set) or
// on an invalidation (Set, Delete), still gets a 200 with the current data;
// after a few such calls the breaker stops calling the store; when the store
// is healthy again the route caches again and serves no stale entry.
func TestRouteFailOpenSlowStore(t *testing.T) {
	const timeout = 20 * time.Millisecond
	for _, tc := range []struct {
		name string
		slow []faultstore.Method
		// outage: every call is slow, so the breaker must open. (With only
		// some calls slow, the successful ones close it again: the breaker
		// counts consecutive failures.)
		outage bool
	}{
		{"read", []faultstore.Method{faultstore.GetMulti}, false},
		{"generation", []faultstore.Method{faultstore.Add, faultstore.Get}, false},
		{"store", []faultstore.Method{faultstore.Set}, false},
		{"invalidate", []faultstore.Method{faultstore.Set, faultstore.Delete}, false},
		{"everything", []faultstore.Method{faultstore.GetMulti, faultstore.Get, faultstore.Set, faultstore.Add, faultstore.Delete}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, s := newFaultCache(t, hoard.Config{KeyPrefix: storefixture.UniquePrefix(), Timeout: timeout, Logger: discardLogger()})
			app := &widgetApp{DB: newWidgetDB(3)}
			h, _ := localMux(t, c, app.routes()...)
			serveLocal(t, h, http.MethodGet, widgetPath(1))
			if r := serveLocal(t, h, http.MethodGet, widgetPath(1)); !isHit(r) {
				t.Fatalf("not cached before the store slowed down: %v", r)
			}
			serveLocal(t, h, http.MethodGet, widgetPath(3)) // widget 3 also cached, never written

			// Chosen calls sleep past the deadline and fail.
			s.Inject(faultstore.Fault{Methods: tc.slow, Delay: 2 * timeout, Err: errFoDeadline})
			callsBefore := s.Calls(tc.slow...)
			const requests = 40
			for i := range requests {
				id := i%2 + 1 // widget 2 is cold: misses exercise Add and Set
				if i%4 == 0 {
					if r := serveLocal(t, h, http.MethodPut, widgetPath(id)); r.Status != http.StatusOK || r.version() != app.DB.Version(id) {
						t.Fatalf("PUT %d with a slow store: %v", id, r)
					}
				}
				r := serveLocal(t, h, http.MethodGet, widgetPath(id))
				if r.Status != http.StatusOK || r.version() != app.DB.Version(id) {
					t.Fatalf("GET %d with a slow store: %v, want 200 with version %d", id, r, app.DB.Version(id))
				}
			}
			slowCalls := s.Calls(tc.slow...) - callsBefore
			t.Logf("%d slow calls for %d GETs and %d PUTs", slowCalls, requests, requests/4)
			// Each slow call is a failure; after a few the breaker skips
			// the store, so most requests never wait for it.
			if tc.outage && slowCalls >= requests/2 {
				t.Errorf("%d slow store calls for %d requests: the breaker did not stop calling the slow store", slowCalls, requests+requests/4)
			}

			// Healthy again: hits resume, and nothing written during the
			// slow period is served stale.
			s.Inject()
			var last testResponse
			if !rcWaitFor(5*time.Second, func() bool {
				last = serveLocal(t, h, http.MethodGet, widgetPath(3))
				return isHit(last)
			}) {
				t.Fatalf("no hit within 5s after the store recovered: %v", last)
			}
			for range 2 {
				for id := 1; id <= 3; id++ {
					if r := serveLocal(t, h, http.MethodGet, widgetPath(id)); r.version() != app.DB.Version(id) {
						t.Errorf("GET %d after recovery: %v, want version %d", id, r, app.DB.Version(id))
					}
				}
			}
		})
	}
}

// --- unit level: replaying a failed invalidation ------------------------------

var errFoDown = errors.New("test store: down")

// TestRouteFailOpenReplayBeforeHits: an invalidation that failed is replayed
// before the store serves hits again — also for requests that
// arrive while the replay is still being written. A PUT whose invalidation
// failed answers 200; then one GET starts the replay, which is held in the
// store; a second GET, after the PUT's 200, must not be served the entry
// from before the PUT.
func TestRouteFailOpenReplayBeforeHits(t *testing.T) {
	c, s := newFaultCache(t, hoard.Config{KeyPrefix: storefixture.UniquePrefix(), Timeout: time.Second, Logger: discardLogger()})
	app := &widgetApp{DB: newWidgetDB(1)}
	h, _ := localMux(t, c, app.routes()...)
	serveLocal(t, h, http.MethodGet, widgetPath(1))
	old := serveLocal(t, h, http.MethodGet, widgetPath(1))
	if !isHit(old) {
		t.Fatalf("not cached: %v", old)
	}

	// One failed invalidation (Set and Delete fail): below the breaker's
	// threshold, so the breaker stays closed and the invalidation is
	// pending.
	s.Inject(faultstore.Fault{Methods: []faultstore.Method{faultstore.Set, faultstore.Delete}, Err: errFoDown})
	p := serveLocal(t, h, http.MethodPut, widgetPath(1))
	if p.Status != http.StatusOK || p.version() != old.version()+1 {
		t.Fatalf("PUT with the store failing: %v", p)
	}

	// Set now waits for the gate; entered says that a Set reached it.
	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	s.Inject(faultstore.Fault{Methods: []faultstore.Method{faultstore.Set}, Gate: gate,
		Observe: func(faultstore.Method, []string) {
			select {
			case entered <- struct{}{}:
			default:
			}
		}})
	var openOnce sync.Once
	open := func() { openOnce.Do(func() { s.Inject(); close(gate) }) }
	defer open()

	replaying := make(chan testResponse, 1)
	go func() { replaying <- serveLocal(t, h, http.MethodGet, widgetPath(1)) }()
	select {
	case <-entered:
	case r := <-replaying:
		t.Fatalf("the GET after the failed invalidation did not replay it (no Set): %v", r)
	case <-time.After(5 * time.Second):
		t.Fatal("the GET after the failed invalidation did not replay it within 5s")
	}

	// The replay is being written. Another GET now (the PUT's 200 is long
	// gone) may run the handler or wait for the replay, but must not hit the
	// old entry.
	second := make(chan testResponse, 1)
	go func() { second <- serveLocal(t, h, http.MethodGet, widgetPath(1)) }()
	var r testResponse
	select {
	case r = <-second:
	case <-time.After(500 * time.Millisecond):
		open() // it waits for the replay: fine, as long as it answers fresh
		r = <-second
	}
	if r.version() != p.version() {
		t.Errorf("GET while a failed invalidation was being replayed: %v, want version %d (the PUT answered 200 before this GET began)", r, p.version())
	}
	open()
	if r := <-replaying; r.version() != p.version() {
		t.Errorf("the GET that replayed the invalidation: %v, want version %d", r, p.version())
	}
	if r := serveLocal(t, h, http.MethodGet, widgetPath(1)); r.version() != p.version() {
		t.Errorf("GET after the replay: %v, want version %d", r, p.version())
	}
}
