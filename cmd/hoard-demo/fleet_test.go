//go:build consistency

package main

// The fleet check: three demo servers (in-process, each with its own Cache
// and its own database handle) on one SQLite file and one Redis, each with
// the near cache on (redis.Options.NearCache, CACHE_NEAR_CACHE=true) and
// the same key prefix. Each client owns fleetWidgets widgets and takes them
// in turn, each at most once per fleetSpacing; an iteration reads the
// widget twice on each of the two instances that will not write (so that
// they hold near copies), PUTs a new version (strictly increasing) on the
// third, and, as soon as the PUT's answer arrives, GETs it on the two
// others, both at once.
//
//   - Phase "immediate": the GETs start at once; none may be stale (the
//     writer's Delete returns NearMaxLag after Redis answered it, by when
//     every instance has read the invalidation or stopped using copies). A
//     stale one would be retried (back to back, bounded) until fresh, and
//     the time from the PUT's answer to the start of the first fresh GET
//     reported as the propagation delay.
//   - Phase "after bound": the GETs start bound after the PUT's answer,
//     bound = max(2 × the largest delay measured, fleetMinBound); none may
//     be stale.
//   - Phase "faults": as "immediate", while Redis is frozen (SIGSTOP) for
//     a second, thawed, and later killed and restarted empty: none may be
//     stale, every request must be answered 2xx.
//
//	go test -race -count=1 -tags consistency -run Fleet ./cmd/hoard-demo
//	go test -count=1 -tags consistency -run Fleet -v ./cmd/hoard-demo -fleet.duration=20s -fleet.conns=64 -fleet.reads=10000
//
// FLEET_NEAR=off runs it without the near cache, for comparison (the
// "Redis key lookups" line shows the reads the near copies saved).

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard/internal/consistency"
	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/hoardcache/hoard/internal/testlog"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/stores"
)

var (
	fleetDuration = flag.Duration("fleet.duration", 4*time.Second,
		"how long each phase of TestFleet runs (at least; longer until -fleet.reads immediate reads)")
	fleetConns = flag.Int("fleet.conns", 16, "TestFleet's concurrent clients")
	fleetReads = flag.Int64("fleet.reads", 1000,
		"TestFleet's phases run until they have checked this many reads (at most 5 min each)")
)

const (
	fleetInstances = 3
	fleetMinBound  = 100 * time.Millisecond // the least bound the after-bound phase uses: generous for a loaded CI machine
	fleetPollFor   = 2 * time.Second        // a stale instance must be fresh within this
	fleetWidgets   = 16                     // per client
	// fleetSpacing is the least time between the end of a widget's
	// iteration and its next one, so that each write finds the widget's
	// entry held as near copies on the other instances (read, stored and
	// kept since the last write).
	fleetSpacing = 1100 * time.Millisecond
)

// fleetEnv is three demo servers on one SQLite file and one Redis.
type fleetEnv struct {
	urls  []string // the widgets collection of each instance
	redis *testserver.Redis
}

func newFleet(t *testing.T) *fleetEnv {
	t.Helper()
	r := testserver.RedisT(t, testserver.RedisOptions{})
	cfg := redisConfig(r.Addr)
	cfg.Redis.NearCache = os.Getenv("FLEET_NEAR") != "off" // CACHE_NEAR_CACHE=true
	cfg.Cache.KeyPrefix = storefixture.UniquePrefix()
	cfg.Cache.Timeout = storefixture.Timeout
	path := filepath.Join(t.TempDir(), "demo.db")
	e := &fleetEnv{redis: r}
	logs := &testlog.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			s := logs.String()
			if len(s) > 8000 {
				s = "…" + s[len(s)-8000:]
			}
			t.Logf("servers' warnings and errors:\n%s", s)
		}
	})
	for i := range fleetInstances {
		logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})).With("instance", i)
		c := cfg
		c.Cache.Logger = logger
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cache, err := stores.Open(ctx, c)
		cancel()
		check(t, err)
		t.Cleanup(func() { cache.Close() })
		// One database: the first handle migrates and seeds it, the
		// others open the same file (as other processes would).
		dbh := openFleetDB(t, path, i == 0)
		h, err := newServer(config{Hoard: stores.Config{Cache: cache.Config()}}, dbh, cache, logger)
		check(t, err)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		e.urls = append(e.urls, srv.URL+"/api/v1/widgets")
	}
	return e
}

// openFleetDB opens the SQLite file at path: seeded (openTestDB) for the
// first instance, opened and migrated (a no-op) for the others.
func openFleetDB(t *testing.T, path string, first bool) *sql.DB {
	t.Helper()
	if first {
		return openTestDB(t, sqliteConfig(path))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := openDatabase(ctx, sqliteConfig(path))
	check(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// fleetClient is one client of the check: its own widget, its own
// versions (strictly increasing, one PUT at a time).
type fleetClient struct {
	f       *fleetCheck
	widgets []*fleetWidgetState
	next    int             // the widget of the next iteration
	delays  []time.Duration // propagation delays measured (immediate phase)
	lasts   []time.Duration // start of the last stale read, the delay's lower bound
	offsets []time.Duration // start of the after-bound reads, after the PUT's answer
}

// fleetWidgetState is a client's widget.
type fleetWidgetState struct {
	id      int64
	version int64     // the last version acknowledged
	iter    int       // its iterations so far: the writer rotates
	due     time.Time // not written again before (see fleetSpacing)
}

// fleetCheck runs the clients and counts.
type fleetCheck struct {
	t      *testing.T
	urls   []string
	client *http.Client

	puts, putsAcked            atomic.Int64
	warmReads, warmStale       atomic.Int64
	reads, stale, hits         atomic.Int64 // the reads of the current phase, right after (or bound after) the PUT
	polls, unresolved          atomic.Int64
	transport, non2xx, invalid atomic.Int64
	mu                         sync.Mutex
	examples                   []string
}

func (f *fleetCheck) fail(counter *atomic.Int64, format string, args ...any) {
	counter.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.examples) < 20 {
		f.examples = append(f.examples, time.Now().Format("15:04:05.000000 ")+fmt.Sprintf(format, args...))
	}
}

// do sends one request and reads the whole answer.
func (f *fleetCheck) do(method, url, body string) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := f.client.Do(req)
	if err != nil {
		return 0, http.Header{}, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b, err
}

type fleetWidget struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// get reads the client's widget on instance i and returns its version
// (0: the seeded one, -1: failure, counted) and whether it was a hit.
func (c *fleetWidgetState) get(f *fleetCheck, i int) (int64, bool) {
	url := f.urls[i] + "/" + strconv.FormatInt(c.id, 10)
	status, hdr, b, err := f.do(http.MethodGet, url, "")
	switch {
	case err != nil:
		f.fail(&f.transport, "GET %s on instance %d: %v", url, i, err)
		return -1, false
	case status != http.StatusOK:
		f.fail(&f.non2xx, "GET %s on instance %d: status %d %s", url, i, status, b)
		return -1, false
	}
	var w fleetWidget
	if err := json.Unmarshal(b, &w); err != nil || w.ID != c.id {
		f.fail(&f.invalid, "GET %s on instance %d: body %s", url, i, b)
		return -1, false
	}
	v, ok := consistency.Version(w.Name)
	if !ok {
		v = 0
	}
	if v > c.version {
		f.fail(&f.invalid, "GET %s on instance %d: version %d never acknowledged (last %d)", url, i, v, c.version)
		return -1, false
	}
	return v, strings.HasPrefix(hdr.Get("Cache-Status"), "hoard; hit")
}

// put writes the next version on instance i and returns when its answer
// arrived, or false.
func (c *fleetWidgetState) put(f *fleetCheck, i int) (time.Time, bool) {
	v := c.version + 1
	if v < fleetBase {
		v = fleetBase
	}
	url := f.urls[i] + "/" + strconv.FormatInt(c.id, 10)
	f.puts.Add(1)
	body := fmt.Sprintf(`{"name": %q, "price": %d, "description": "fleet check"}`, consistency.Name(v), v%1000000)
	status, _, b, err := f.do(http.MethodPut, url, body)
	acked := time.Now()
	switch {
	case err != nil:
		f.fail(&f.transport, "PUT %s on instance %d: %v", url, i, err)
		return acked, false
	case status != http.StatusOK:
		f.fail(&f.non2xx, "PUT %s on instance %d: status %d %s", url, i, status, b)
		return acked, false
	}
	var w fleetWidget
	if err := json.Unmarshal(b, &w); err != nil || w.ID != c.id || w.Name != consistency.Name(v) {
		f.fail(&f.invalid, "PUT %s on instance %d: body %s", url, i, b)
		return acked, false
	}
	f.putsAcked.Add(1)
	c.version = v
	return acked, true
}

// fleetBase: versions above any written before this test process.
var fleetBase = time.Now().UnixMicro()

// step is one iteration: warm reads on the two readers, a PUT on the
// writer, then the reads of the phase (bound 0: immediate, polled until
// fresh; else one read per reader started bound after the PUT's answer).
func (cl *fleetClient) step(bound time.Duration) {
	f := cl.f
	c := cl.widgets[cl.next]
	cl.next = (cl.next + 1) % len(cl.widgets)
	time.Sleep(time.Until(c.due))
	defer func() { c.due = time.Now().Add(fleetSpacing) }()
	w := c.iter % fleetInstances
	c.iter++
	readers := []int{(w + 1) % fleetInstances, (w + 2) % fleetInstances}
	// Warm: each reader reads the current version (twice: the first read
	// after a write is a miss that stores, the second is then cached).
	for _, r := range readers {
		for range 2 {
			f.warmReads.Add(1)
			if v, _ := c.get(f, r); v >= 0 && v < c.version {
				f.fail(&f.warmStale, "widget %d: warm read on instance %d got version %d, %d acknowledged before", c.id, r, v, c.version)
			}
		}
	}
	acked, ok := c.put(f, w)
	if !ok {
		return
	}
	want := c.version
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, r := range readers {
		wg.Go(func() {
			if bound > 0 {
				time.Sleep(time.Until(acked.Add(bound)))
			}
			started := time.Since(acked)
			v, hit := c.get(f, r)
			if v < 0 {
				return
			}
			f.reads.Add(1)
			if hit {
				f.hits.Add(1)
			}
			if v >= want {
				if bound > 0 {
					mu.Lock()
					cl.offsets = append(cl.offsets, started)
					mu.Unlock()
				}
				return
			}
			f.fail(&f.stale, "widget %d: read on instance %d started %v after the PUT of version %d on instance %d was answered: version %d",
				c.id, r, started, want, w, v)
			if bound > 0 {
				return
			}
			// Poll until fresh: the delay is the start of the first fresh
			// read (an upper bound; the last stale read's start is a lower
			// one).
			last := started
			for {
				at := time.Since(acked)
				if at > fleetPollFor {
					f.fail(&f.unresolved, "widget %d: instance %d still stale %v after the PUT", c.id, r, at)
					return
				}
				f.polls.Add(1)
				v, _ := c.get(f, r)
				if v < 0 {
					return
				}
				if v >= want {
					mu.Lock()
					cl.delays = append(cl.delays, at)
					cl.lasts = append(cl.lasts, last)
					mu.Unlock()
					return
				}
				last = at
			}
		})
	}
	wg.Wait()
}

// fleetReport are a phase's figures.
type fleetReport struct {
	elapsed                          time.Duration
	puts, acked, reads, stale, hits  int64
	polls, unresolved, warm, warmBad int64
	transport, non2xx, invalid       int64
	delays, lasts, offsets           []time.Duration
	examples                         []string
}

func (r fleetReport) String() string {
	return fmt.Sprintf("%v: %d PUTs (%d acknowledged), %d reads checked (%d hits), %d stale, %d polls, %d unresolved; warm reads %d (%d stale); %d transport errors, %d non-2xx, %d invalid",
		r.elapsed.Round(time.Millisecond), r.puts, r.acked, r.reads, r.hits, r.stale, r.polls, r.unresolved, r.warm, r.warmBad, r.transport, r.non2xx, r.invalid)
}

// quantile of sorted ds (0 without any).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// runPhase runs the clients until d has passed and minReads reads were
// checked (at most 5 min), then returns the phase's figures.
func (e *fleetEnv) runPhase(t *testing.T, clients []*fleetClient, bound, d time.Duration, minReads int64) fleetReport {
	t.Helper()
	f := clients[0].f
	for _, c := range clients {
		c.delays, c.lasts, c.offsets = nil, nil, nil
	}
	f.puts.Store(0)
	f.putsAcked.Store(0)
	f.reads.Store(0)
	f.stale.Store(0)
	f.hits.Store(0)
	f.polls.Store(0)
	f.unresolved.Store(0)
	f.warmReads.Store(0)
	f.warmStale.Store(0)
	f.mu.Lock()
	f.examples = nil
	f.mu.Unlock()
	start := time.Now()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for !stop.Load() {
				c.step(bound)
			}
		})
	}
	time.Sleep(d)
	for deadline := start.Add(5 * time.Minute); f.reads.Load() < minReads && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	r := fleetReport{
		elapsed: time.Since(start), puts: f.puts.Load(), acked: f.putsAcked.Load(),
		reads: f.reads.Load(), stale: f.stale.Load(), hits: f.hits.Load(),
		polls: f.polls.Load(), unresolved: f.unresolved.Load(),
		warm: f.warmReads.Load(), warmBad: f.warmStale.Load(),
		transport: f.transport.Load(), non2xx: f.non2xx.Load(), invalid: f.invalid.Load(),
	}
	for _, c := range clients {
		r.delays = append(r.delays, c.delays...)
		r.offsets = append(r.offsets, c.offsets...)
		r.lasts = append(r.lasts, c.lasts...)
	}
	f.mu.Lock()
	r.examples = f.examples
	f.mu.Unlock()
	slices.Sort(r.delays)
	slices.Sort(r.offsets)
	slices.Sort(r.lasts)
	return r
}

// redisLookups is Redis's count of key lookups by reads so far
// (keyspace_hits + keyspace_misses): a read served from a near copy makes
// none.
func (e *fleetEnv) redisLookups(t *testing.T) int64 {
	t.Helper()
	info, err := e.redis.Info("stats")
	check(t, err)
	h, _ := strconv.ParseInt(info["keyspace_hits"], 10, 64)
	m, _ := strconv.ParseInt(info["keyspace_misses"], 10, 64)
	return h + m
}

// TestFleet: writes on one instance, reads on the two others right after
// the write's answer, and reads started after a bound, then right after
// the write again while Redis is frozen and restarted empty; none may be
// stale, no request may fail.
func TestFleet(t *testing.T) {
	e := newFleet(t)
	conns := *fleetConns
	f := &fleetCheck{t: t, urls: e.urls, client: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        4 * conns * fleetInstances,
			MaxIdleConnsPerHost: 4 * conns,
			IdleConnTimeout:     time.Minute,
		},
	}}
	defer f.client.CloseIdleConnections()

	// fleetWidgets widgets per client, created through instance 0.
	clients := make([]*fleetClient, conns)
	var wg sync.WaitGroup
	for i := range clients {
		clients[i] = &fleetClient{f: f}
		wg.Go(func() {
			for j := range fleetWidgets {
				status, _, b, err := f.do(http.MethodPost, e.urls[0], fmt.Sprintf(`{"name": "fleet %d %d", "price": 1}`, i, j))
				if err != nil || status != http.StatusCreated {
					t.Errorf("create widget %d/%d: %d %s %v", i, j, status, b, err)
					return
				}
				var w fleetWidget
				if err := json.Unmarshal(b, &w); err != nil {
					t.Error(err)
					return
				}
				// Read on every instance, so that the first iteration's
				// warm reads find entries stored long enough ago.
				ws := &fleetWidgetState{id: w.ID}
				for k := range fleetInstances {
					ws.get(f, k)
				}
				ws.due = time.Now().Add(fleetSpacing)
				clients[i].widgets = append(clients[i].widgets, ws)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	g0 := e.redisLookups(t)
	imm := e.runPhase(t, clients, 0, *fleetDuration, *fleetReads)
	g1 := e.redisLookups(t)
	t.Logf("immediate:   %v", imm)
	httpGETs := imm.warm + imm.reads + imm.polls
	t.Logf("Redis key lookups %d for %d HTTP GETs (%.2f a GET)", g1-g0, httpGETs, float64(g1-g0)/float64(max(httpGETs, 1)))
	maxDelay := time.Duration(0)
	if n := len(imm.delays); n > 0 {
		maxDelay = imm.delays[n-1]
	}
	bound := max(2*maxDelay, fleetMinBound).Round(time.Millisecond)
	if bound < 2*maxDelay {
		bound += time.Millisecond
	}
	t.Logf("propagation delay (PUT answered → first fresh read started) of the %d stale reads: p50 %v, p99 %v, max %v; bound stated %v",
		len(imm.delays), quantile(imm.delays, 0.5), quantile(imm.delays, 0.99), maxDelay, bound)
	t.Logf("lower bound (PUT answered → last stale read started): p50 %v, p99 %v, max %v",
		quantile(imm.lasts, 0.5), quantile(imm.lasts, 0.99), quantile(imm.lasts, 1))
	if len(imm.examples) > 0 {
		t.Logf("immediate phase, stale reads (the residual window):\n  %s", strings.Join(imm.examples, "\n  "))
	}

	after := e.runPhase(t, clients, bound, *fleetDuration, *fleetReads)
	t.Logf("after bound: %v", after)
	t.Logf("after-bound reads started %v to %v after the PUT's answer (p50 %v)",
		quantile(after.offsets, 0), quantile(after.offsets, 1), quantile(after.offsets, 0.5))
	t.Logf("FIGURES fleet conns %d: immediate %d reads, %d stale (%.2f%%), delay p50 %v p99 %v max %v; bound %v: %d reads, %d stale; PUTs %d/%d acknowledged",
		conns, imm.reads, imm.stale, 100*float64(imm.stale)/float64(max(imm.reads, 1)),
		quantile(imm.delays, 0.5), quantile(imm.delays, 0.99), maxDelay, bound,
		after.reads, after.stale, imm.acked+after.acked, imm.puts+after.puts)

	// Phase "faults": the immediate phase again while Redis is frozen
	// (SIGSTOP) for a second, and later killed and restarted empty.
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		step := *fleetDuration / 4
		time.Sleep(step)
		if err := e.redis.Pause(); err != nil {
			t.Errorf("freeze Redis: %v", err)
			return
		}
		time.Sleep(time.Second)
		if err := e.redis.Resume(); err != nil {
			t.Errorf("thaw Redis: %v", err)
			return
		}
		time.Sleep(step)
		if err := e.redis.Restart(); err != nil {
			t.Errorf("restart Redis: %v", err)
		}
	}()
	faults := e.runPhase(t, clients, 0, *fleetDuration+2*time.Second, *fleetReads)
	<-faultsDone
	t.Logf("faults:      %v", faults)
	t.Logf("FIGURES fleet faults (Redis frozen 1s, then restarted empty): %d reads right after the write, %d stale; PUTs %d/%d acknowledged",
		faults.reads, faults.stale, faults.acked, faults.puts)
	if faults.stale != 0 {
		t.Errorf("faults: %d of %d reads started right after the PUT's answer were stale", faults.stale, faults.reads)
	}
	if len(faults.examples) > 0 {
		t.Logf("faults phase, failures:\n  %s", strings.Join(faults.examples, "\n  "))
	}

	for _, r := range []struct {
		name string
		r    fleetReport
	}{{"immediate", imm}, {"after bound", after}, {"faults", faults}} {
		if r.r.acked != r.r.puts {
			t.Errorf("%s: %d of %d PUTs acknowledged", r.name, r.r.acked, r.r.puts)
		}
		if n := r.r.transport + r.r.non2xx + r.r.invalid; n != 0 {
			t.Errorf("%s: %d transport errors, %d non-2xx, %d invalid answers", r.name, r.r.transport, r.r.non2xx, r.r.invalid)
		}
		if r.r.reads < *fleetReads {
			t.Errorf("%s: %d reads checked; want at least %d", r.name, r.r.reads, *fleetReads)
		}
		if r.r.warmBad != 0 {
			t.Errorf("%s: %d warm reads (started after the previous version was read fresh everywhere) were stale", r.name, r.r.warmBad)
		}
	}
	if imm.stale != 0 {
		t.Errorf("immediate: %d of %d reads started right after the PUT's answer were stale", imm.stale, imm.reads)
	}
	if imm.unresolved != 0 {
		t.Errorf("immediate: %d reads still stale %v after the PUT", imm.unresolved, fleetPollFor)
	}
	if after.stale != 0 {
		t.Errorf("after bound: %d of %d reads started %v or more after the PUT's answer were stale", after.stale, after.reads, bound)
	}
	if len(after.examples) > 0 {
		t.Logf("after-bound phase, failures:\n  %s", strings.Join(after.examples, "\n  "))
	}
}
