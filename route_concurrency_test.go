package hoard_test

// Concurrency tests of the route middleware (spec 1.7 read-your-writes, 1.8
// no stale sets, 1.9 stampede), over real HTTP with keep-alive clients,
// against every store.
//
// They use their own small versioned widget database and handlers (rcDB,
// rcApp), defined here and shared with route_failopen_test.go and
// bench_route_test.go. Names defined in this file start with "rc".

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
)

// --- a versioned widget database and its routes -----------------------------

// rcWidget is one row; Version grows by one on every committed write, so a
// response tells exactly which write it reflects.
type rcWidget struct {
	ID          int     `json:"id"`
	Name        string  `json:"name"`
	Price       float64 `json:"price"`
	Description string  `json:"description"`
	Version     int64   `json:"version"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
}

// rcDB is the "database": safe for concurrent use; a write is committed
// when Bump returns.
type rcDB struct {
	mu sync.Mutex
	w  map[int]rcWidget
}

func newRCDB(n int) *rcDB {
	db := &rcDB{w: map[int]rcWidget{}}
	for id := 1; id <= n; id++ {
		db.w[id] = rcWidget{
			ID:          id,
			Name:        "widget " + strconv.Itoa(id),
			Price:       9.99,
			Description: "a widget used by the route concurrency tests",
			Version:     1,
			CreatedAt:   "2026-01-01T00:00:00Z",
			UpdatedAt:   "2026-01-01T00:00:00Z",
		}
	}
	return db
}

func (db *rcDB) Get(id int) (rcWidget, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	w, ok := db.w[id]
	return w, ok
}

// Version returns the committed version of widget id.
func (db *rcDB) Version(id int) int64 {
	w, _ := db.Get(id)
	return w.Version
}

// Bump commits a new version of widget id and returns it.
func (db *rcDB) Bump(id int) (rcWidget, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	w, ok := db.w[id]
	if !ok {
		return w, false
	}
	w.Version++
	w.UpdatedAt = time.Unix(1767225600+w.Version, 0).UTC().Format(time.RFC3339)
	db.w[id] = w
	return w, true
}

// rcApp serves the widget routes through a Cache on a real HTTP server:
//
//	GET /widgets/{id}  prefix "widget", id id, TTL 1 min
//	PUT /widgets/{id}  prefix "widget", id id; invalidates "widgets:*"
type rcApp struct {
	DB     *rcDB
	Cache  *hoard.Cache
	Server *httptest.Server
	Client *http.Client

	getRuns atomic.Int64 // GET handler calls
	// afterRead, when set, runs in the GET handler after it read the
	// database and before it writes the response (to pause it).
	afterRead atomic.Pointer[func(r *http.Request, w rcWidget)]
}

var (
	rcGetRoute = hoard.Route{KeyPrefix: "widget", TTL: time.Minute}
	rcPutRoute = hoard.Route{KeyPrefix: "widget", InvalidatePatterns: []string{"widgets:*"}}
)

// newRCApp serves db (a new one with 20 widgets when nil) through c.
func newRCApp(t testing.TB, c *hoard.Cache, db *rcDB) *rcApp {
	t.Helper()
	if db == nil {
		db = newRCDB(20)
	}
	a := &rcApp{DB: db, Cache: c}
	a.Server = httptest.NewServer(a.Mux(t))
	t.Cleanup(a.Server.Close)
	a.Client = rcClient(t)
	return a
}

// Mux returns the app's routes, for benchmarks that bypass the network.
func (a *rcApp) Mux(t testing.TB) *http.ServeMux {
	t.Helper()
	mux := http.NewServeMux()
	if err := a.Cache.HandleFunc(mux, "GET /widgets/{id}", rcGetRoute, a.getWidget); err != nil {
		t.Fatal(err)
	}
	if err := a.Cache.HandleFunc(mux, "PUT /widgets/{id}", rcPutRoute, a.putWidget); err != nil {
		t.Fatal(err)
	}
	return mux
}

// rcClient returns a keep-alive client with room for many idle connections.
func rcClient(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func (a *rcApp) getWidget(w http.ResponseWriter, r *http.Request) {
	a.getRuns.Add(1)
	id, _ := strconv.Atoi(r.PathValue("id"))
	wd, ok := a.DB.Get(id)
	if !ok {
		http.Error(w, `{"detail":"widget not found"}`, http.StatusNotFound)
		return
	}
	if h := a.afterRead.Load(); h != nil {
		(*h)(r, wd)
	}
	b, _ := json.Marshal(wd)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// putWidget commits before it writes anything (the handler's side of
// read-your-writes).
func (a *rcApp) putWidget(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	wd, ok := a.DB.Bump(id)
	if !ok {
		http.Error(w, `{"detail":"widget not found"}`, http.StatusNotFound)
		return
	}
	b, _ := json.Marshal(wd)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// rcResp is one response, decoded.
type rcResp struct {
	Status      int
	Body        string
	Version     int64
	CacheStatus string
}

func (r rcResp) hit() bool { return strings.Contains(r.CacheStatus, "; hit") }

func (r rcResp) String() string {
	return fmt.Sprintf("%d v%d [%s] %.80s", r.Status, r.Version, r.CacheStatus, r.Body)
}

// do sends one request; it is safe to call from any goroutine.
func (a *rcApp) do(method, path string) (rcResp, error) {
	return rcDo(a.Client, method, a.Server.URL+path)
}

func rcDo(c *http.Client, method, url string) (rcResp, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return rcResp{}, err
	}
	res, err := c.Do(req)
	if err != nil {
		return rcResp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return rcResp{}, err
	}
	out := rcResp{Status: res.StatusCode, Body: string(b), CacheStatus: res.Header.Get("Cache-Status")}
	if res.StatusCode == http.StatusOK {
		var w rcWidget
		if err := json.Unmarshal(b, &w); err != nil {
			return out, fmt.Errorf("%s %s: body %q: %w", method, url, b, err)
		}
		out.Version = w.Version
	}
	return out, nil
}

// get and put fail the test on a transport error or a non-200 answer; call
// them from the test goroutine only.
func (a *rcApp) get(t testing.TB, id int) rcResp {
	t.Helper()
	return a.must(t, http.MethodGet, id)
}

func (a *rcApp) put(t testing.TB, id int) rcResp {
	t.Helper()
	return a.must(t, http.MethodPut, id)
}

func (a *rcApp) must(t testing.TB, method string, id int) rcResp {
	t.Helper()
	r, err := a.do(method, "/widgets/"+strconv.Itoa(id))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != http.StatusOK {
		t.Fatalf("%s /widgets/%d: %v", method, id, r)
	}
	return r
}

// rcStore wraps a Store and counts calls: GetMulti calls that returned, and
// calls in progress.
type rcStore struct {
	hoard.Store
	getMultiDone atomic.Int64
	inflight     atomic.Int64
}

func (s *rcStore) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	defer s.getMultiDone.Add(1)
	return s.Store.GetMulti(ctx, keys)
}

func (s *rcStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	return s.Store.Get(ctx, key)
}

func (s *rcStore) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	return s.Store.Add(ctx, key, value, ttl)
}

func (s *rcStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	return s.Store.Set(ctx, key, value, ttl)
}

// rcWrappedCache returns a Cache on backend b whose store is wrapped in an
// rcStore. Its store calls get a deadline of 5 s instead of the fixture's
// 250 ms: 200 concurrent requests under -race on a small machine can take
// longer than that on Redis Cluster, and a timed-out read rightly bypasses
// the cache (fail-open, tested in route_failopen_test.go), which is not what
// the stampede test is about.
func rcWrappedCache(t testing.TB, b storefixture.Backend) (*hoard.Cache, *rcStore) {
	t.Helper()
	cfg := b.Config(t)
	cfg.Timeout = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base, err := hoard.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { base.Close() })
	s := &rcStore{Store: base.Store()}
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
			app := newRCApp(t, b.NewCache(t, hoard.Config{}), nil)
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
						r, err := app.do(http.MethodGet, "/widgets/1")
						if err != nil || r.Status != http.StatusOK {
							t.Errorf("reader: %v %v", r, err)
							return
						}
						readerReads.Add(1)
						if r.hit() {
							readerHits.Add(1)
						}
						if r.Version < before {
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
				acked.Store(p.Version)
				g := app.get(t, 1)
				if g.hit() {
					writerHits++
				}
				if g.Version != p.Version {
					stale++
					if stale <= 5 {
						t.Errorf("pair %d: PUT answered version %d, the GET after it: %v", i, p.Version, g)
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
				prep func(t *testing.T, app *rcApp)
			}{
				// The entry is gone but the generations exist.
				{"generation present", func(t *testing.T, app *rcApp) {
					app.get(t, 1)
					if r := app.get(t, 1); !r.hit() {
						t.Fatalf("second GET is not a hit: %v", r)
					}
					app.put(t, 1)
				}},
				// A fresh cache: no entry and no generation key at all.
				{"generation missing", func(*testing.T, *rcApp) {}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					app := newRCApp(t, b.NewCache(t, hoard.Config{}), nil)
					tc.prep(t, app)
					checkNoStaleSet(t, app)
				})
			}
		})
	}
}

func checkNoStaleSet(t *testing.T, app *rcApp) {
	const id = 1
	old := app.DB.Version(id)
	paused := make(chan int64, 1)
	release := make(chan struct{})
	var first atomic.Bool
	hook := func(r *http.Request, w rcWidget) {
		if first.CompareAndSwap(false, true) { // only the first GET pauses
			paused <- w.Version
			<-release
		}
	}
	app.afterRead.Store(&hook)
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock()

	slow := make(chan rcResp, 1)
	go func() {
		r, err := app.do(http.MethodGet, "/widgets/1")
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
	if p.Version != old+1 {
		t.Fatalf("PUT answered %v, want version %d", p, old+1)
	}

	// The trap: a GET after the acknowledgement must not wait for the old
	// flight (which would hand it the old version).
	late := make(chan rcResp, 1)
	go func() {
		r, err := app.do(http.MethodGet, "/widgets/1")
		if err != nil {
			t.Error(err)
		}
		late <- r
	}()
	select {
	case r := <-late:
		if r.Status != http.StatusOK || r.Version != p.Version {
			t.Errorf("GET after the PUT's 200, during the old flight: %v, want version %d", r, p.Version)
		}
	case <-time.After(5 * time.Second):
		unblock()
		r := <-late
		t.Fatalf("GET after the PUT's 200 waited for the flight that started before the write; it got %v", r)
	}

	// Let the slow GET store what it read; its own answer may be old (it
	// started before the write), but that answer must never be served again.
	unblock()
	if r := <-slow; r.Status != http.StatusOK || r.Version != old {
		t.Errorf("the paused GET answered %v, want its own read, version %d", r, old)
	}
	for i := range 5 {
		r := app.get(t, id)
		if r.Version != p.Version {
			t.Errorf("GET %d after the slow GET stored: %v, want version %d (stale set)", i, r, p.Version)
		}
	}
	if r := app.get(t, id); !r.hit() {
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
					app := newRCApp(t, c, nil)
					if tc.warm {
						app.get(t, 2) // creates the epoch
						app.put(t, 1) // creates widget:1's generation, no entry
					}
					startReads := s.getMultiDone.Load()
					var (
						first    atomic.Bool
						timedOut atomic.Bool
					)
					hook := func(r *http.Request, w rcWidget) {
						if !first.CompareAndSwap(false, true) {
							return // a second run: counted, never held
						}
						ok := rcWaitFor(20*time.Second, func() bool {
							return s.getMultiDone.Load()-startReads >= n && s.inflight.Load() == 0
						})
						if !ok {
							timedOut.Store(true)
						}
						// The last requests are a few instructions from the
						// flight; give them time to join it.
						time.Sleep(50 * time.Millisecond)
					}
					app.afterRead.Store(&hook)
					runsBefore := app.getRuns.Load()

					var wg sync.WaitGroup
					res := make([]rcResp, n)
					for i := range n {
						wg.Go(func() {
							r, err := app.do(http.MethodGet, "/widgets/1")
							if err != nil {
								t.Error(err)
							}
							res[i] = r
						})
					}
					wg.Wait()
					if timedOut.Load() {
						t.Fatalf("only %d of %d requests read the store within 20s", s.getMultiDone.Load()-startReads, n)
					}
					if runs := app.getRuns.Load() - runsBefore; runs != 1 {
						t.Errorf("handler ran %d times for %d concurrent GETs of one cold key, want 1", runs, n)
					}
					statuses := map[string]int{}
					for i, r := range res {
						statuses[r.CacheStatus]++
						if r.Status != http.StatusOK || r.Body != res[0].Body {
							t.Errorf("response %d: %v; response 0: %v", i, r, res[0])
						}
					}
					t.Logf("Cache-Status: %v", statuses)
					if statuses["hoard; fwd=miss; stored"] != 1 || statuses["hoard; fwd=miss; collapsed"] != n-1 {
						t.Errorf("Cache-Status counts %v, want 1 stored and %d collapsed", statuses, n-1)
					}
					if r := app.get(t, 1); !r.hit() || r.Body != res[0].Body {
						t.Errorf("GET after the stampede: %v, want a hit with the same body", r)
					}
				})
			}
		})
	}
}
