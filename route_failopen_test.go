package hoard_test

// Fail-open tests of the route middleware (spec 1.12): a dead or frozen store
// costs neither errors nor timeouts per request, and invalidations issued
// during an outage still take effect when the store is back. Names defined
// in this file start with "fo"; the widget app is rcApp
// (route_concurrency_test.go).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/hoardcache/hoard/memory"
)

// foQuiet keeps the expected outage warnings out of the test output.
var foQuiet = slog.New(slog.DiscardHandler)

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
	db := newRCDB(foWidgets)
	app := newRCApp(t, b.NewCache(t, hoard.Config{Logger: foQuiet}), db)
	plain := newRCApp(t, b.NewCache(t, hoard.Config{Disabled: true}), db)

	for id := 1; id <= foWidgets; id++ {
		app.get(t, id)
		if r := app.get(t, id); !r.hit() {
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
			if p.Version != db.Version(id) {
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
		statuses[r.CacheStatus]++
		if want := db.Version(id); r.Version != want {
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
	var last rcResp
	if !rcWaitFor(20*time.Second, func() bool {
		last = app.get(t, foWidgets)
		return last.hit()
	}) {
		t.Fatalf("no hit within 20s after the store came back; last GET: %v", last)
	}
	t.Logf("%s: hits resumed %v after the store came back", label, time.Since(upAt).Round(time.Millisecond))
	// Each widget must answer its database version on every GET, and hit
	// again within a bounded time: on a pool, each server's calls resume
	// on their own (a server marked down is retried after its back-off),
	// so widgets do not all come back at the same moment.
	check := func(id int, r rcResp) bool {
		if want := db.Version(id); r.Version != want {
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
			return !check(id, last) || last.hit() // a wrong version is reported once
		}) {
			t.Errorf("after the outage, widget %d is still not cached 20s later: %v", id, last)
		}
	}
	for id := 1; id <= foWidgets; id++ {
		r := app.get(t, id)
		check(id, r)
		if !r.hit() {
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

// errFoDeadline is what foSlowStore's slow calls return, like a network
// store whose per-call deadline passed.
var errFoDeadline = fmt.Errorf("slow test store: %w", context.DeadlineExceeded)

// foSlowStore makes chosen calls sleep past the deadline and fail.
type foSlowStore struct {
	hoard.Store
	delay                        time.Duration
	getMulti, set, add, del, get atomic.Bool
	slowCalls                    atomic.Int64
	deadlineSeen                 atomic.Int64 // slow calls whose context had a deadline
}

func (s *foSlowStore) slow(ctx context.Context, on *atomic.Bool) error {
	if !on.Load() {
		return nil
	}
	s.slowCalls.Add(1)
	if _, ok := ctx.Deadline(); ok {
		s.deadlineSeen.Add(1)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(s.delay):
		return errFoDeadline
	}
}

func (s *foSlowStore) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	if err := s.slow(ctx, &s.getMulti); err != nil {
		return nil, err
	}
	return s.Store.GetMulti(ctx, keys)
}

func (s *foSlowStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := s.slow(ctx, &s.get); err != nil {
		return nil, false, err
	}
	return s.Store.Get(ctx, key)
}

func (s *foSlowStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.slow(ctx, &s.set); err != nil {
		return err
	}
	return s.Store.Set(ctx, key, value, ttl)
}

func (s *foSlowStore) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := s.slow(ctx, &s.add); err != nil {
		return false, err
	}
	return s.Store.Add(ctx, key, value, ttl)
}

func (s *foSlowStore) Delete(ctx context.Context, keys ...string) error {
	if err := s.slow(ctx, &s.del); err != nil {
		return err
	}
	return s.Store.Delete(ctx, keys...)
}

// foMemoryCache returns a Cache over a fresh memory store wrapped by wrap.
func foMemoryCache(t *testing.T, timeout time.Duration, wrap func(hoard.Store) hoard.Store) *hoard.Cache {
	t.Helper()
	m, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	c, err := hoard.New(wrap(m), hoard.Config{KeyPrefix: storefixture.UniquePrefix(), Timeout: timeout, Logger: foQuiet})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// foServe runs one request through h into a recorder.
func foServe(t *testing.T, h http.Handler, method string, id int) rcResp {
	t.Helper()
	req := httptest.NewRequest(method, "/widgets/"+strconv.Itoa(id), nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	r := rcResp{Status: w.Code, Body: w.Body.String(), CacheStatus: w.Header().Get("Cache-Status")}
	if r.Status == http.StatusOK {
		var wd rcWidget
		if err := json.Unmarshal([]byte(r.Body), &wd); err != nil {
			t.Fatalf("%s %d: %v", method, id, err)
		}
		r.Version = wd.Version
	}
	return r
}

// TestRouteFailOpenSlowStore: a store call that runs past its deadline, on a
// read (GetMulti, generation Add or Get), on storing the response (Set) or
// on an invalidation (Set, Delete), still gets a 200 with the current data;
// after a few such calls the breaker stops calling the store; when the store
// is healthy again the route caches again and serves no stale entry.
func TestRouteFailOpenSlowStore(t *testing.T) {
	const timeout = 20 * time.Millisecond
	for _, tc := range []struct {
		name string
		slow func(s *foSlowStore)
		// outage: every call is slow, so the breaker must open. (With only
		// some calls slow, the successful ones close it again: the breaker
		// counts consecutive failures.)
		outage bool
	}{
		{"read", func(s *foSlowStore) { s.getMulti.Store(true) }, false},
		{"generation", func(s *foSlowStore) { s.add.Store(true); s.get.Store(true) }, false},
		{"store", func(s *foSlowStore) { s.set.Store(true) }, false},
		{"invalidate", func(s *foSlowStore) { s.set.Store(true); s.del.Store(true) }, false},
		{"everything", func(s *foSlowStore) {
			s.getMulti.Store(true)
			s.get.Store(true)
			s.set.Store(true)
			s.add.Store(true)
			s.del.Store(true)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var s *foSlowStore
			c := foMemoryCache(t, timeout, func(m hoard.Store) hoard.Store {
				s = &foSlowStore{Store: m, delay: 2 * timeout}
				return s
			})
			app := &rcApp{DB: newRCDB(3), Cache: c}
			h := app.Mux(t)
			foServe(t, h, http.MethodGet, 1)
			if r := foServe(t, h, http.MethodGet, 1); !r.hit() {
				t.Fatalf("not cached before the store slowed down: %v", r)
			}
			foServe(t, h, http.MethodGet, 3) // widget 3 also cached, never written

			tc.slow(s)
			const requests = 40
			for i := range requests {
				id := i%2 + 1 // widget 2 is cold: misses exercise Add and Set
				if i%4 == 0 {
					if r := foServe(t, h, http.MethodPut, id); r.Status != http.StatusOK || r.Version != app.DB.Version(id) {
						t.Fatalf("PUT %d with a slow store: %v", id, r)
					}
				}
				r := foServe(t, h, http.MethodGet, id)
				if r.Status != http.StatusOK || r.Version != app.DB.Version(id) {
					t.Fatalf("GET %d with a slow store: %v, want 200 with version %d", id, r, app.DB.Version(id))
				}
			}
			t.Logf("%d slow calls for %d GETs and %d PUTs (%d with a context deadline)",
				s.slowCalls.Load(), requests, requests/4, s.deadlineSeen.Load())
			// Each slow call is a failure; after a few the breaker skips
			// the store, so most requests never wait for it.
			if n := s.slowCalls.Load(); tc.outage && n >= requests/2 {
				t.Errorf("%d slow store calls for %d requests: the breaker did not stop calling the slow store", n, requests+requests/4)
			}

			// Healthy again: hits resume, and nothing written during the
			// slow period is served stale.
			for _, f := range []*atomic.Bool{&s.getMulti, &s.get, &s.set, &s.add, &s.del} {
				f.Store(false)
			}
			var last rcResp
			if !rcWaitFor(5*time.Second, func() bool {
				last = foServe(t, h, http.MethodGet, 3)
				return last.hit()
			}) {
				t.Fatalf("no hit within 5s after the store recovered: %v", last)
			}
			for range 2 {
				for id := 1; id <= 3; id++ {
					if r := foServe(t, h, http.MethodGet, id); r.Version != app.DB.Version(id) {
						t.Errorf("GET %d after recovery: %v, want version %d", id, r, app.DB.Version(id))
					}
				}
			}
		})
	}
}

// --- unit level: replaying a failed invalidation ------------------------------

// foGateStore fails Set and Delete on demand, or holds Set until released.
type foGateStore struct {
	hoard.Store
	fail    atomic.Bool
	gate    atomic.Pointer[chan struct{}] // Set waits for it to close
	entered chan struct{}                 // a Set reached the gate
}

var errFoDown = errors.New("test store: down")

func (s *foGateStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.fail.Load() {
		return errFoDown
	}
	if g := s.gate.Load(); g != nil {
		select {
		case s.entered <- struct{}{}:
		default:
		}
		<-*g
	}
	return s.Store.Set(ctx, key, value, ttl)
}

func (s *foGateStore) Delete(ctx context.Context, keys ...string) error {
	if s.fail.Load() {
		return errFoDown
	}
	return s.Store.Delete(ctx, keys...)
}

// TestRouteFailOpenReplayBeforeHits: an invalidation that failed is replayed
// before the store serves hits again (spec 1.12) — also for requests that
// arrive while the replay is still being written. A PUT whose invalidation
// failed answers 200; then one GET starts the replay, which is held in the
// store; a second GET, after the PUT's 200, must not be served the entry
// from before the PUT.
func TestRouteFailOpenReplayBeforeHits(t *testing.T) {
	var s *foGateStore
	c := foMemoryCache(t, time.Second, func(m hoard.Store) hoard.Store {
		s = &foGateStore{Store: m, entered: make(chan struct{}, 1)}
		return s
	})
	app := &rcApp{DB: newRCDB(1), Cache: c}
	h := app.Mux(t)
	foServe(t, h, http.MethodGet, 1)
	old := foServe(t, h, http.MethodGet, 1)
	if !old.hit() {
		t.Fatalf("not cached: %v", old)
	}

	// One failed invalidation: below the breaker's threshold, so the
	// breaker stays closed and the invalidation is pending.
	s.fail.Store(true)
	p := foServe(t, h, http.MethodPut, 1)
	if p.Status != http.StatusOK || p.Version != old.Version+1 {
		t.Fatalf("PUT with the store failing: %v", p)
	}
	s.fail.Store(false)

	gate := make(chan struct{})
	s.gate.Store(&gate)
	var openOnce sync.Once
	open := func() { openOnce.Do(func() { s.gate.Store(nil); close(gate) }) }
	defer open()

	replaying := make(chan rcResp, 1)
	go func() { replaying <- foServe(t, h, http.MethodGet, 1) }()
	select {
	case <-s.entered:
	case r := <-replaying:
		t.Fatalf("the GET after the failed invalidation did not replay it (no Set): %v", r)
	case <-time.After(5 * time.Second):
		t.Fatal("the GET after the failed invalidation did not replay it within 5s")
	}

	// The replay is being written. Another GET now (the PUT's 200 is long
	// gone) may run the handler or wait for the replay, but must not hit the
	// old entry.
	second := make(chan rcResp, 1)
	go func() { second <- foServe(t, h, http.MethodGet, 1) }()
	var r rcResp
	select {
	case r = <-second:
	case <-time.After(500 * time.Millisecond):
		open() // it waits for the replay: fine, as long as it answers fresh
		r = <-second
	}
	if r.Version != p.Version {
		t.Errorf("GET while a failed invalidation was being replayed: %v, want version %d (the PUT answered 200 before this GET began)", r, p.Version)
	}
	open()
	if r := <-replaying; r.Version != p.Version {
		t.Errorf("the GET that replayed the invalidation: %v, want version %d", r, p.Version)
	}
	if r := foServe(t, h, http.MethodGet, 1); r.Version != p.Version {
		t.Errorf("GET after the replay: %v, want version %d", r, p.Version)
	}
}
