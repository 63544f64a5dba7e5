package hoard_test

// Concurrency tests of the route middleware (read-your-writes, no stale
// sets, stampede), over real HTTP with keep-alive clients,
// against every store.
//
// They use the widget fixture (widgets_test.go), whose versions tell which
// write an answer reflects. Names defined in this file start with "rc".

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/faultstore"
	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/hoardcache/hoard/stores"
)

// rcWrappedCache returns a Cache on backend b whose store is wrapped in a
// faultstore.Store, which counts the calls. Its store calls get a deadline
// of 5 s instead of the fixture's 250 ms: 200 concurrent requests under
// -race on a small machine can take longer than that on Redis Cluster, and
// a timed-out read rightly bypasses the cache (fail-open, tested in
// route_failopen_test.go), which is not what the stampede test is about.
func rcWrappedCache(t testing.TB, b storefixture.Backend) (*hoard.Cache, faultstore.Store) {
	t.Helper()
	cfg := b.Config(t)
	cfg.Cache.Timeout = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base, err := stores.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { base.Close() })
	s := faultstore.New(base.Store())
	c, err := hoard.New(s, base.Config())
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// rcWaitFor polls cond every few milliseconds until it holds or d passes.
func rcWaitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// --- 1.7 read-your-writes ----------------------------------------------------

// TestRouteReadYourWrites: a client that got the 200 of a PUT and then GETs
// sees the new version, for 1,000 write-then-read pairs while readers keep
// filling the cache with the versions they read. A reader also never sees a
// version older than the last one acknowledged before its request started.
func TestRouteReadYourWrites(t *testing.T) {
	t.Parallel() // overlaps with TestRouteFailOpen, which mostly waits
	const (
		pairs   = 1000
		readers = 2
	)
	for _, b := range storefixture.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel() // mostly waiting on round trips; halves the wall time
			app := newWidgetApp(t, b.NewCache(t, hoard.Config{}), nil)
			app.get(t, 1)

			var (
				acked       atomic.Int64 // last version whose PUT answered 200
				stop        atomic.Bool
				wg          sync.WaitGroup
				readerReads atomic.Int64
				readerHits  atomic.Int64
				readerStale atomic.Int64
			)
			acked.Store(app.DB.Version(1))
			for range readers {
				wg.Go(func() {
					for !stop.Load() {
						before := acked.Load()
						r, err := app.send(http.MethodGet, "/widgets/1")
						if err != nil || r.Status != http.StatusOK {
							t.Errorf("reader: %v %v", r, err)
							return
						}
						readerReads.Add(1)
						if isHit(r) {
							readerHits.Add(1)
						}
						if r.version() < before {
							if readerStale.Add(1) <= 5 {
								t.Errorf("reader: stale read: version %d was acknowledged before the GET, got %v", before, r)
							}
						}
					}
				})
			}
			start := time.Now()
			var stale, writerHits int
			for i := range pairs {
				p := app.put(t, 1)
				acked.Store(p.version())
				g := app.get(t, 1)
				if isHit(g) {
					writerHits++
				}
				if g.version() != p.version() {
					stale++
					if stale <= 5 {
						t.Errorf("pair %d: PUT answered version %d, the GET after it: %v", i, p.version(), g)
					}
				}
			}
			stop.Store(true)
			wg.Wait()
			t.Logf("%d pairs in %v; writer GETs: %d hits, %d stale; readers: %d reads, %d hits, %d stale",
				pairs, time.Since(start).Round(time.Millisecond), writerHits, stale,
				readerReads.Load(), readerHits.Load(), readerStale.Load())
			if stale > 0 || readerStale.Load() > 0 {
				t.Errorf("stale reads: %d after the writer's own PUT, %d in readers", stale, readerStale.Load())
			}
			// The test only means something if the cache served old
			// versions in between: readers must have had hits.
			if readerHits.Load() == 0 {
				t.Errorf("readers never had a hit in %d reads: the cache was not exercised", readerReads.Load())
			}
		})
	}
}

// --- 1.8 no stale sets, and the singleflight trap ---------------------------

// TestRouteNoStaleSet: a GET whose handler read the database before a PUT
// committed, and stores its answer after the PUT's response was sent, never
// makes that answer visible. A GET that starts after the PUT's 200 does not
// join the paused GET's flight (design.md, "two traps"): it answers at once,
// with the new version, while the old flight is still running.
func TestRouteNoStaleSet(t *testing.T) {
	for _, b := range storefixture.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, tc := range []struct {
				name string
				prep func(t *testing.T, app *widgetApp)
			}{
				// The entry is gone but the generations exist.
				{"generation present", func(t *testing.T, app *widgetApp) {
					app.get(t, 1)
					if r := app.get(t, 1); !isHit(r) {
						t.Fatalf("second GET is not a hit: %v", r)
					}
					app.put(t, 1)
				}},
				// A fresh cache: no entry and no generation key at all.
				{"generation missing", func(*testing.T, *widgetApp) {}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					app := newWidgetApp(t, b.NewCache(t, hoard.Config{}), nil)
					tc.prep(t, app)
					checkNoStaleSet(t, app)
				})
			}
		})
	}
}

func checkNoStaleSet(t *testing.T, app *widgetApp) {
	const id = 1
	old := app.DB.Version(id)
	paused := make(chan int64, 1)
	release := make(chan struct{})
	var first atomic.Bool
	hook := func(r *http.Request, w widget) {
		if first.CompareAndSwap(false, true) { // only the first GET pauses
			paused <- w.Version
			<-release
		}
	}
	app.afterRead.Store(&hook)
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock()

	slow := make(chan testResponse, 1)
	go func() {
		r, err := app.send(http.MethodGet, "/widgets/1")
		if err != nil {
			t.Error(err)
		}
		slow <- r
	}()
	select {
	case v := <-paused:
		if v != old {
			t.Fatalf("paused GET read version %d, want %d", v, old)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the GET handler never ran")
	}

	// The write commits and is acknowledged while the GET holds old data.
	p := app.put(t, id)
	if p.version() != old+1 {
		t.Fatalf("PUT answered %v, want version %d", p, old+1)
	}

	// The trap: a GET after the acknowledgement must not wait for the old
	// flight (which would hand it the old version).
	late := make(chan testResponse, 1)
	go func() {
		r, err := app.send(http.MethodGet, "/widgets/1")
		if err != nil {
			t.Error(err)
		}
		late <- r
	}()
	select {
	case r := <-late:
		if r.Status != http.StatusOK || r.version() != p.version() {
			t.Errorf("GET after the PUT's 200, during the old flight: %v, want version %d", r, p.version())
		}
	case <-time.After(5 * time.Second):
		unblock()
		r := <-late
		t.Fatalf("GET after the PUT's 200 waited for the flight that started before the write; it got %v", r)
	}

	// Let the slow GET store what it read; its own answer may be old (it
	// started before the write), but that answer must never be served again.
	unblock()
	if r := <-slow; r.Status != http.StatusOK || r.version() != old {
		t.Errorf("the paused GET answered %v, want its own read, version %d", r, old)
	}
	for i := range 5 {
		r := app.get(t, id)
		if r.version() != p.version() {
			t.Errorf("GET %d after the slow GET stored: %v, want version %d (stale set)", i, r, p.version())
		}
	}
	if r := app.get(t, id); !isHit(r) {
		t.Errorf("the route no longer caches after the race: %v", r)
	}
}

// --- 1.9 stampede --------------------------------------------------------------

// TestRouteSingleflight: 200 concurrent GETs of one cold key run the handler
// exactly once and all receive the same body. The handler is held until
// every request has read the store (counted in a Store wrapper) and the
// store is quiet, so every request has reached the flight by then.
func TestRouteSingleflight(t *testing.T) {
	const n = 200
	for _, b := range storefixture.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, tc := range []struct {
				name string
				warm bool // generations exist; only the entry is cold
			}{{"cold entry", true}, {"fresh cache", false}} {
				t.Run(tc.name, func(t *testing.T) {
					c, s := rcWrappedCache(t, b)
					app := newWidgetApp(t, c, nil)
					if tc.warm {
						app.get(t, 2) // creates the epoch
						app.put(t, 1) // creates widget:1's generation, no entry
					}
					startReads := s.Calls(faultstore.GetMulti)
					var (
						first    atomic.Bool
						timedOut atomic.Bool
					)
					hook := func(r *http.Request, w widget) {
						if !first.CompareAndSwap(false, true) {
							return // a second run: counted, never held
						}
						ok := rcWaitFor(20*time.Second, func() bool {
							return s.Calls(faultstore.GetMulti)-startReads >= n && s.InFlight() == 0
						})
						if !ok {
							timedOut.Store(true)
						}
						// The last requests are a few instructions from the
						// flight; give them time to join it.
						time.Sleep(50 * time.Millisecond)
					}
					app.afterRead.Store(&hook)
					runsBefore := app.Runs(widgetGet)

					var wg sync.WaitGroup
					res := make([]testResponse, n)
					for i := range n {
						wg.Go(func() {
							r, err := app.send(http.MethodGet, "/widgets/1")
							if err != nil {
								t.Error(err)
							}
							res[i] = r
						})
					}
					wg.Wait()
					if timedOut.Load() {
						t.Fatalf("only %d of %d requests read the store within 20s", s.Calls(faultstore.GetMulti)-startReads, n)
					}
					if runs := app.Runs(widgetGet) - runsBefore; runs != 1 {
						t.Errorf("handler ran %d times for %d concurrent GETs of one cold key, want 1", runs, n)
					}
					statuses := map[string]int{}
					for i, r := range res {
						statuses[r.CacheStatus()]++
						if r.Status != http.StatusOK || r.Body != res[0].Body {
							t.Errorf("response %d: %v; response 0: %v", i, r, res[0])
						}
					}
					t.Logf("Cache-Status: %v", statuses)
					if statuses["hoard; fwd=miss; stored"] != 1 || statuses["hoard; fwd=miss; collapsed"] != n-1 {
						t.Errorf("Cache-Status counts %v, want 1 stored and %d collapsed", statuses, n-1)
					}
					if r := app.get(t, 1); !isHit(r) || r.Body != res[0].Body {
						t.Errorf("GET after the stampede: %v, want a hit with the same body", r)
					}
				})
			}
		})
	}
}
