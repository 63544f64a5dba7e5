//go:build consistency

package main

// The stale-read checker (internal/consistency) through the real demo HTTP
// stack on SQLite, on every store, and under store faults. CPU-heavy, so behind the consistency build tag and run on its own:
//
//	go test -race -count=1 -tags consistency -run 'Consistency' ./cmd/hoard-demo
//
// Longer runs (the per-store runs; the fault scenarios keep their fixed
// timeline), flags after the package:
//
//	go test -count=1 -timeout 60m -tags consistency -run 'TestConsistency$' ./cmd/hoard-demo \
//		-consistency.duration=60s -consistency.gets=100000 -consistency.puts=5000

import (
	"context"
	"flag"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/consistency"
	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/hoardcache/hoard/internal/testlog"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/stores"
)

var (
	consistencyDuration = flag.Duration("consistency.duration", 20*time.Second,
		"how long TestConsistency runs the stale-read checker on each store (at least)")
	consistencyGETs = flag.Int64("consistency.gets", 0,
		"TestConsistency runs on each store until it has sent this many GETs (and -consistency.puts PUTs), at most 20 min")
	consistencyPUTs = flag.Int64("consistency.puts", 0,
		"see -consistency.gets")
)

// Checker load: a moderate client count for a 2-core machine, and the
// least throughput a run must reach to count: well below the 90 to 500
// GETs/s measured with -race on a shared 2-core machine, so that a slow box
// passes while a run that stalls does not.
const (
	ccClients      = 16
	ccMinGETsPerS  = 40
	ccMinPUTsPerS  = 3
	ccWriteShare   = 0.1
	ccPostFaultMin = 5 * time.Second

	ccWarm   = 3 * time.Second // before a fault
	ccOutage = 5 * time.Second // a fault's length
)

// ccEnv is one demo server on a fresh SQLite database and a Cache on the
// given configuration, with the checker pointed at it.
type ccEnv struct {
	t     *testing.T
	cache *hoard.Cache
	url   string
	logs  *testlog.Buffer // warnings and errors of the server and of hoard
}

func newCCEnv(t *testing.T, cfg stores.Config) *ccEnv {
	t.Helper()
	logs := &testlog.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.Cache.Logger = logger
	if cfg.Cache.KeyPrefix == "" {
		cfg.Cache.KeyPrefix = storefixture.UniquePrefix()
	}
	if cfg.Cache.Timeout == 0 {
		cfg.Cache.Timeout = storefixture.Timeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := stores.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open the cache: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	h, err := newServer(config{Hoard: stores.Config{Cache: c.Config()}}, sqliteDB(t), c, logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			s := logs.String()
			if len(s) > 8000 {
				s = "…" + s[len(s)-8000:]
			}
			t.Logf("server warnings and errors:\n%s", s)
		}
	})
	return &ccEnv{t: t, cache: c, url: srv.URL, logs: logs}
}

// ccRun is a checker running in the background.
type ccRun struct {
	c      *consistency.Checker
	cancel context.CancelFunc
	done   chan consistency.Report
	once   sync.Once
	report consistency.Report
}

func (e *ccEnv) start(ids []int64) *ccRun {
	e.t.Helper()
	c, err := consistency.New(consistency.Config{
		BaseURL:       e.url + "/api/v1/widgets",
		IDs:           ids,
		Clients:       ccClients,
		WriteFraction: ccWriteShare,
		MaxExamples:   20,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &ccRun{c: c, cancel: cancel, done: make(chan consistency.Report, 1)}
	go func() { r.done <- c.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(); c.Close() })
	return r
}

// stop ends the run and returns the whole report.
func (r *ccRun) stop() consistency.Report {
	r.once.Do(func() {
		r.cancel()
		r.report = <-r.done
	})
	return r.report
}

// ccIDs are the widgets the checker uses: 12 of the 15 seeded ones.
func ccIDs() []int64 {
	ids := make([]int64, 12)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	return ids
}

// checkRun asserts what every run must show: no failure of any kind, and
// traffic proportional to its length.
func checkRun(t *testing.T, label string, r consistency.Report) {
	t.Helper()
	t.Logf("%s: %v", label, r)
	if err := r.Err(); err != nil {
		t.Errorf("%s: %v", label, err)
	}
	secs := r.Elapsed.Seconds()
	if min := int64(ccMinGETsPerS * secs); r.GETs < min {
		t.Errorf("%s: %d GETs in %v; want at least %d (%d/s)", label, r.GETs, r.Elapsed, min, ccMinGETsPerS)
	}
	if min := int64(ccMinPUTsPerS * secs); r.PUTs < min {
		t.Errorf("%s: %d PUTs in %v; want at least %d (%d/s)", label, r.PUTs, r.Elapsed, min, ccMinPUTsPerS)
	}
	if r.Hits == 0 {
		t.Errorf("%s: no cache hit at all; the run proves nothing about stale hits", label)
	}
}

// figures prints one line per run that the reliability notes quote.
func figures(t *testing.T, label string, r consistency.Report) {
	t.Helper()
	t.Logf("FIGURES %-28s GETs %7d  PUTs %6d  hits %5.1f%%  stale %d  invalid %d  non-2xx %d  transport %d  (%v)",
		label, r.GETs, r.PUTs, 100*r.HitRatio(), r.Stale, r.Invalid, r.Non2xx, r.TransportErrors, r.Elapsed.Round(time.Second))
}

// TestConsistency runs the checker on each store for -consistency.duration
// (20 s by default), and longer if needed to reach -consistency.gets GETs
// and -consistency.puts PUTs.
func TestConsistency(t *testing.T) {
	for _, name := range storefixture.Names {
		t.Run(name, func(t *testing.T) {
			runConsistency(t, name, storefixture.Shared(t, name).Config(t))
		})
	}
	// And with the Redis store's near cache (hits from process memory).
	for _, name := range []string{storefixture.Redis, storefixture.RedisCluster} {
		t.Run(name+"-near", func(t *testing.T) {
			cfg := storefixture.Shared(t, name).Config(t)
			cfg.Redis.NearCache = true
			runConsistency(t, name+"-near", cfg)
		})
	}
}

// runConsistency runs the checker on the store cfg opens.
func runConsistency(t *testing.T, name string, cfg stores.Config) {
	e := newCCEnv(t, cfg)
	run := e.start(ccIDs())
	time.Sleep(*consistencyDuration)
	for deadline := time.Now().Add(20 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if s := run.c.Snapshot(); s.GETs >= *consistencyGETs && s.PUTs >= *consistencyPUTs {
			break
		}
	}
	r := run.stop()
	if r.GETs < *consistencyGETs || r.PUTs < *consistencyPUTs {
		t.Errorf("%s: %d GETs and %d PUTs in %v; -consistency.gets and -consistency.puts ask for %d and %d",
			name, r.GETs, r.PUTs, r.Elapsed, *consistencyGETs, *consistencyPUTs)
	}
	figures(t, name, r)
	checkRun(t, name, r)
}

// phase is one step of a fault scenario: act runs at its start (nil: none),
// then the checker runs on for d.
type phase struct {
	name string
	d    time.Duration
	act  func(t *testing.T)
}

// runPhases runs the checker through phases and returns the report of each
// phase (its window) and of the whole run. Every scenario fails on any
// stale read, non-2xx answer, invalid answer or transport error.
func runPhases(t *testing.T, e *ccEnv, ids []int64, phases []phase) ([]consistency.Report, consistency.Report) {
	t.Helper()
	run := e.start(ids)
	var windows []consistency.Report
	prev := run.c.Snapshot()
	for _, p := range phases {
		if p.act != nil {
			p.act(t)
		}
		time.Sleep(p.d)
		now := run.c.Snapshot()
		w := now.Sub(prev)
		t.Logf("%-10s %v", p.name+":", w)
		windows = append(windows, w)
		prev = now
	}
	total := run.stop()
	figures(t, t.Name()[strings.LastIndex(t.Name(), "/")+1:], total)
	checkRun(t, "whole run", total)
	return windows, total
}

// checkFault asserts the common shape of a fault scenario: phases are
// warm-up, fault, (anything), and a final post-fault window. Hits before
// the fault; PUTs acknowledged during it (writes during the outage that a
// later GET must see); hits again at the end, so that the post-fault window
// did test stale hits.
func checkFault(t *testing.T, w []consistency.Report) {
	t.Helper()
	if w[0].Hits == 0 {
		t.Errorf("no hit before the fault: %v", w[0])
	}
	if acked := w[1].PUTs; acked == 0 {
		t.Errorf("no PUT during the fault: %v", w[1])
	}
	last := w[len(w)-1]
	if last.Hits == 0 {
		t.Errorf("no hit after the store came back (last %v): the post-fault window proves nothing", last.Elapsed)
	}
}

func redisConfig(addr string) stores.Config {
	cfg := stores.Config{Backend: stores.Redis}
	cfg.Redis.Addrs = []string{addr}
	return cfg
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestConsistencyFaults: store faults while the checker runs. Each scenario
// has its own servers.
func TestConsistencyFaults(t *testing.T) {
	// SIGKILL, 5 s down, restarted with its data (append-only file, fsync
	// always): the entries and generations from before the outage come
	// back, so the PUTs acknowledged during the outage (their
	// invalidations pending) must be replayed before any hit.
	for _, near := range []bool{false, true} {
		suffix := ""
		if near {
			suffix = "Near" // with the near cache: copies held through the outage
		}
		redisConfig := func(addr string) stores.Config {
			cfg := redisConfig(addr)
			cfg.Redis.NearCache = near
			return cfg
		}
		t.Run("RedisKilled"+suffix, func(t *testing.T) {
			r := testserver.RedisT(t, testserver.RedisOptions{Args: []string{"--appendonly", "yes", "--appendfsync", "always"}})
			e := newCCEnv(t, redisConfig(r.Addr))
			w, _ := runPhases(t, e, ccIDs(), []phase{
				{"warm-up", ccWarm, nil},
				{"killed", ccOutage, func(t *testing.T) { check(t, r.Kill()) }},
				{"restarted", ccPostFaultMin, func(t *testing.T) { check(t, r.Restart()) }},
			})
			checkFault(t, w)
			if n, err := r.Do("DBSIZE"); err != nil || n == "0" {
				t.Errorf("DBSIZE after the restart = %q, %v; want the data back from the append-only file", n, err)
			}
		})

		// SIGSTOP for 5 s, then SIGCONT: commands sent meanwhile time out on
		// the client and run late on the server.
		t.Run("RedisFrozen"+suffix, func(t *testing.T) {
			r := testserver.RedisT(t, testserver.RedisOptions{})
			e := newCCEnv(t, redisConfig(r.Addr))
			w, _ := runPhases(t, e, ccIDs(), []phase{
				{"warm-up", ccWarm, nil},
				{"frozen", ccOutage, func(t *testing.T) { check(t, r.Pause()) }},
				{"resumed", ccPostFaultMin, func(t *testing.T) { check(t, r.Resume()) }},
			})
			checkFault(t, w)
		})
	}

	// Generation keys lost: a restart without persistence (a short outage,
	// and an empty server), then FLUSHALL (no error at all: the client only
	// finds the generations gone).
	t.Run("RedisEmptied", func(t *testing.T) {
		r := testserver.RedisT(t, testserver.RedisOptions{})
		e := newCCEnv(t, redisConfig(r.Addr))
		w, _ := runPhases(t, e, ccIDs(), []phase{
			{"warm-up", ccWarm, nil},
			{"restarted", 4 * time.Second, func(t *testing.T) { check(t, r.Restart()) }},
			{"flushed", ccPostFaultMin, func(t *testing.T) {
				if _, err := r.Do("FLUSHALL"); err != nil {
					t.Fatal(err)
				}
			}},
		})
		// The restart is short; the PUT check of checkFault is about the
		// restart window, which does see PUTs.
		checkFault(t, w)
	})

	t.Run("RedisEvicting", testRedisEvicting)
	t.Run("MemcachedOneKilled", testMemcachedOneKilled)
	t.Run("ClusterMasterKilled", testClusterMasterKilled)
}

// testRedisEvicting: a Redis with a small maxmemory and allkeys-lru, and a
// filler that keeps writing other keys, so that entries and generation
// keys are evicted while the checker runs. Evicted keys are watched with
// keyspace notifications: the test requires generation keys among them.
func testRedisEvicting(t *testing.T) {
	r := testserver.RedisT(t, testserver.RedisOptions{Args: []string{
		"--maxmemory-policy", "allkeys-lru", "--notify-keyspace-events", "Ee"}})
	e := newCCEnv(t, redisConfig(r.Addr))
	ns := e.cache.Config().KeyPrefix

	// Watch evictions.
	sub, err := r.Dial()
	check(t, err)
	check(t, sub.SetDeadline(time.Time{})) // Dial's 5 s deadline: this one listens for the whole run
	check(t, sub.Send("SUBSCRIBE", "__keyevent@0__:evicted"))
	if _, err := sub.Receive(); err != nil {
		t.Fatal(err)
	}
	var evictedGens, evictedEntries atomic.Int64
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			m, err := sub.Receive()
			if err != nil {
				return
			}
			if a, ok := m.([]any); ok && len(a) == 3 {
				k, _ := a[2].(string)
				switch {
				case strings.HasPrefix(k, ns+"#g:"):
					evictedGens.Add(1)
				case strings.HasPrefix(k, ns+"widget:"):
					evictedEntries.Add(1)
				}
			}
		}
	})
	defer watch.Wait()
	defer sub.Close()

	// The filler: 4 KiB values under other keys, about 400 a second.
	fill, err := r.Dial()
	check(t, err)
	check(t, fill.SetDeadline(time.Time{}))
	defer fill.Close()
	stopFill := make(chan struct{})
	var filler sync.WaitGroup
	defer filler.Wait()
	defer close(stopFill)
	startFill := func(t *testing.T) {
		info, err := r.Info("memory")
		check(t, err)
		used, _ := strconv.ParseInt(info["used_memory"], 10, 64)
		// Room for the working set (12 entries and generations, a few KiB)
		// and a little filler: the filler forces evictions of everything.
		limit := used + 96<<10
		if _, err := r.Do("CONFIG", "SET", "maxmemory", strconv.FormatInt(limit, 10)); err != nil {
			t.Fatal(err)
		}
		t.Logf("used_memory %d, maxmemory %d", used, limit)
		val := strings.Repeat("x", 4096)
		filler.Go(func() {
			tick := time.NewTicker(2500 * time.Microsecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stopFill:
					return
				case <-tick.C:
				}
				if _, err := fill.Do("SET", "filler:"+strconv.Itoa(i), val); err != nil {
					t.Errorf("filler SET: %v", err)
					return
				}
			}
		})
	}
	w, _ := runPhases(t, e, ccIDs(), []phase{
		{"warm-up", ccWarm, nil},
		{"evicting", 10 * time.Second, startFill},
	})
	info, err := r.Info("stats")
	check(t, err)
	evicted, _ := strconv.ParseInt(info["evicted_keys"], 10, 64)
	t.Logf("evicted_keys %d: %d generation keys, %d widget entries of this cache", evicted, evictedGens.Load(), evictedEntries.Load())
	if evicted == 0 || evictedGens.Load() == 0 {
		t.Errorf("evicted_keys %d, generation keys evicted %d; want both > 0 (the scenario did not evict generations)", evicted, evictedGens.Load())
	}
	if w[1].Hits == 0 {
		t.Errorf("no hit while evicting: %v; the scenario proves nothing about stale hits", w[1])
	}
}

// testMemcachedOneKilled: one of three memcached servers is killed for 5 s
// and restarted empty. On memcached a widget's entry, its generation and
// the epoch copy its reads check live on one server (hoard.Sharded), so the
// widgets of the killed server miss meanwhile and the others keep hitting;
// afterwards all hit again. The killed server is the one that held the
// namespace's single epoch key before epochs had a copy per server (killing
// it then made every read miss), if it holds some widgets but not all.
func testMemcachedOneKilled(t *testing.T) {
	pool := testserver.MemcachedPoolT(t, 3, testserver.MemcachedOptions{})
	cfg := stores.Config{Backend: stores.Memcached}
	cfg.Memcached.Servers = testserver.Addrs(pool)
	e := newCCEnv(t, cfg)
	ns := e.cache.Config().KeyPrefix
	ids := ccIDs()
	sh, ok := e.cache.Store().(hoard.Sharded)
	if !ok {
		t.Fatalf("the memcached store (%T) does not implement hoard.Sharded", e.cache.Store())
	}

	// where returns the index of the server holding key, or -1.
	where := func(key string) int {
		for i, m := range pool {
			if v, err := m.Do("get " + key); err == nil && strings.Contains(v, "VALUE ") {
				return i
			}
		}
		return -1
	}
	var (
		victim   = -1
		affected = map[int64]bool{}
	)
	locate := func(t *testing.T) {
		entry := map[int64]int{}
		deadline := time.Now().Add(3 * time.Second)
		for len(entry) < len(ids) {
			if time.Now().After(deadline) {
				t.Fatalf("could not locate every widget's entry within 3 s: %v", entry)
			}
			for _, id := range ids {
				s := strconv.FormatInt(id, 10)
				if _, ok := entry[id]; !ok {
					if i := where(ns + "{widget:" + s + "}"); i >= 0 {
						entry[id] = i
					}
				}
			}
		}
		// A write deletes the generation, and the next read creates it
		// again: wait for it to exist, then it must share the entry's server.
		deadline = time.Now().Add(3 * time.Second)
		for _, id := range ids {
			for g := -1; g != entry[id]; time.Sleep(time.Millisecond) {
				if g = where(ns + "#g:{widget:" + strconv.FormatInt(id, 10) + "}"); g >= 0 && g != entry[id] {
					t.Fatalf("widget %d: entry on server %d, generation on %d; want one server", id, entry[id], g)
				}
				if g < 0 && time.Now().After(deadline) {
					t.Fatalf("widget %d: no generation on any server within 3 s", id)
				}
			}
		}
		// A server's epoch copy exists once a read of one of its entries
		// needed it, so only servers holding widgets are checked (keys
		// are placed at random: a server may hold none of the 12).
		for _, i := range entry {
			if got := where(sh.ShardKey(ns+"#epoch", i)); got != i {
				t.Fatalf("the epoch copy of server %d is on server %d after the warm-up", i, got)
			}
		}
		old := sh.ShardOf(ns + "#epoch")
		for _, v := range append([]int{old}, 0, 1, 2) {
			aff := map[int64]bool{}
			for _, id := range ids {
				if entry[id] == v {
					aff[id] = true
				}
			}
			if len(aff) > 0 && len(aff) < len(ids) {
				victim, affected = v, aff
				break
			}
		}
		if victim < 0 {
			t.Fatalf("no server to kill that holds some widgets but not all (entries %v)", entry)
		}
		t.Logf("the single epoch key was on server %d; killing server %d, which holds widgets %v", old, victim, affected)
		check(t, pool[victim].Kill())
	}
	w, _ := runPhases(t, e, ids, []phase{
		{"warm-up", ccWarm, nil},
		{"settling", 500 * time.Millisecond, locate},
		{"killed", 4500 * time.Millisecond, nil},
		{"restarted", ccPostFaultMin, func(t *testing.T) { check(t, pool[victim].Restart()) }},
	})
	checkFault(t, append(w[:1:1], w[2:]...))
	down, after := w[2], w[3]
	var hitsOthers int64
	for _, wr := range down.Widgets {
		if affected[wr.ID] {
			if wr.Hits != 0 {
				t.Errorf("widget %d has a key on the killed server but had %d hits while it was down", wr.ID, wr.Hits)
			}
		} else {
			hitsOthers += wr.Hits
		}
	}
	if hitsOthers == 0 {
		t.Errorf("no hit on the widgets whose keys are all on live servers while one server was down: %v", down)
	}
	var hitsAffected int64
	for _, wr := range after.Widgets {
		if affected[wr.ID] {
			hitsAffected += wr.Hits
		}
	}
	if hitsAffected == 0 {
		t.Errorf("the killed server's widgets do not hit again after its restart: %v", after.Widgets)
	}
}

// testClusterMasterKilled: one master of a 3-master Cluster (no replicas)
// is killed for 5 s, then restarted; the cluster must be healthy again and
// hits must resume. A 1 s cluster-node-timeout: the other nodes mark the
// master failed within the outage, and clear that soon after it is back.
func testClusterMasterKilled(t *testing.T) {
	cl, err := testserver.StartRedisClusterWithOptions(testserver.ClusterOptions{Masters: 3, NodeTimeout: time.Second})
	check(t, err)
	t.Cleanup(func() { cl.Stop() })
	cfg := stores.Config{Backend: stores.Redis}
	cfg.Redis.Addrs = []string{cl.Addrs[0]}
	cfg.Redis.Cluster = true
	e := newCCEnv(t, cfg)
	m := cl.Masters()[1]
	w, _ := runPhases(t, e, ccIDs(), []phase{
		{"warm-up", ccWarm, nil},
		{"killed", 5 * time.Second, func(t *testing.T) { check(t, m.Kill()) }},
		{"restarted", 7 * time.Second, func(t *testing.T) {
			check(t, m.Restart())
			check(t, cl.WaitHealthy(testserver.ClusterTimeout))
		}},
	})
	checkFault(t, w)
}
