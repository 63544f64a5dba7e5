package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/rueidis"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/cmd/internal/pgtest"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/memcached"
	"github.com/hoardcache/hoard/redis"
	"github.com/hoardcache/hoard/stores"
)

// Store names.
const (
	stMemory       = "memory"
	stRedis        = "redis"
	stRedisCluster = "rediscluster"
	stMemcached    = "memcached"
)

// scenario is one line of the table.
type scenario struct {
	name    string
	desc    string
	zipf    bool
	putFrac float64
	fill    bool // GET every widget once before the warm-up
	hits    bool // report the hit ratio
	outage  bool // SIGSTOP, then SIGKILL, the Redis server mid-run
	runs    bool // report how many times the handler ran (env.runs)
	gzip    bool // clients send Accept-Encoding: gzip
	ids     int  // the working set, when not -widgets
	// storedBytes: report the bytes the store holds for the entries
	// (Cache.Inspect of each, after the fill).
	storedBytes bool
	// build returns the handler under test and what to release after the run.
	build func(e *env) (http.Handler, func(), error)
}

// scenarios lists every scenario in the order of the table.
func scenarios() []scenario {
	ss := []scenario{
		{name: "ceiling", desc: "the same JSON bytes as a cached widget, no middleware, no database",
			build: func(e *env) (http.Handler, func(), error) {
				return e.mux(http.HandlerFunc(e.db.ceiling), nil), nil, nil
			}},
		{name: "raw/redis", desc: "one bare rueidis GET per request, bytes written as they come",
			build: (*env).rawRedis},
		{name: "raw/memcached", desc: "one bare gomemcache GET per request (pool of 3), bytes written as they come",
			build: func(e *env) (http.Handler, func(), error) { return e.rawMemcached(false) }},
		{name: "raw/memcached/3keys", desc: "one bare gomemcache GetMulti per request of three keys spread as hoard laid them out before hash tags (the widget's bytes, one epoch key, the widget's generation key: about 2.1 of 3 servers per request), the bytes written as they come",
			build: func(e *env) (http.Handler, func(), error) { return e.rawMemcached(true) }},
		{name: "uncached", desc: "the widget GET straight from SQLite, no cache",
			build: func(e *env) (http.Handler, func(), error) {
				return e.mux(http.HandlerFunc(e.db.getWidget), nil), nil, nil
			}},
		{name: "uncached/postgres", desc: "the widget GET straight from a private PostgreSQL on loopback (internal/pgtest), no cache",
			build: func(e *env) (http.Handler, func(), error) {
				pg, err := e.startPostgres()
				if err != nil {
					return nil, nil, err
				}
				return e.mux(http.HandlerFunc(pg.getWidget), nil), nil, nil
			}},
	}
	for _, st := range []string{stMemory, stRedis, stRedisCluster, stMemcached} {
		for _, near := range nearVariants(st) {
			for _, zipf := range []bool{false, true} {
				name, dist := "hit/"+st, "uniform"
				if near {
					name += "/near"
				}
				if zipf {
					name, dist = name+"/zipf", "Zipf"
				}
				ss = append(ss, scenario{name: name, zipf: zipf, fill: true, hits: true,
					desc:  "the widget GET served from the " + st + " store" + nearDesc(near) + ", " + dist + " ids over the working set",
					build: storeBuild(st, near, false)})
			}
		}
	}
	for _, st := range []string{stMemory, stRedis} {
		ss = append(ss, scenario{name: "hit/" + st + "/metrics", fill: true, hits: true,
			desc: "hit/" + st + " with hoard's metrics recorded by the OpenTelemetry SDK (Config.MeterProvider; a manual reader, as a Prometheus exporter's, collects only when scraped)",
			build: func(e *env) (http.Handler, func(), error) {
				cfg, err := e.storeConfig(st)
				if err != nil {
					return nil, nil, err
				}
				mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
				cfg.Cache.MeterProvider = mp
				h, stop, err := e.cached(cfg, false)
				return h, func() {
					if stop != nil {
						stop()
					}
					mp.Shutdown(context.Background())
				}, err
			}})
	}
	for _, st := range []string{stMemory, stRedis, stRedisCluster, stMemcached} {
		for _, near := range nearVariants(st) {
			if near && st != stRedis {
				continue // mixed/redis/near shows the cost of writes and misses
			}
			name := "mixed/" + st
			if near {
				name += "/near"
			}
			ss = append(ss, scenario{name: name, putFrac: 0.05, fill: true, hits: true,
				desc:  "95% GET, 5% PUT (which invalidates the widget) on the " + st + " store" + nearDesc(near) + ", uniform ids",
				build: storeBuild(st, near, true)})
		}
	}
	for _, stale := range []bool{false, true} {
		name, what := "expiry/redis", "entries expire and are fetched again"
		if stale {
			name, what = name+"/stale", "with StaleWhileRevalidate 10s, expired entries are served while one background run refreshes each"
		}
		ss = append(ss, scenario{name: name, zipf: true, fill: true, hits: true, runs: true,
			desc:  fmt.Sprintf("hot keys with a short TTL: the widget GET on the redis store with a %v TTL and a handler that takes %v more (a slow backend), Zipf ids; %s", expiryTTL, expiryDelay, what),
			build: func(e *env) (http.Handler, func(), error) { return e.expiring(stale) }})
	}
	ss = append(ss, json20kScenarios()...)
	ss = append(ss, scenario{name: "outage/redis", fill: true, hits: true, outage: true,
		desc:  "hit/redis on a Redis of its own, SIGSTOPped at 1/3 of the run and SIGKILLed at 2/3",
		build: (*env).outageRedis})
	ss = append(ss, []scenario{
		{name: "nomiddleware", desc: "the widget route from SQLite registered on the mux without hoard",
			build: func(e *env) (http.Handler, func(), error) {
				return e.mux(http.HandlerFunc(e.db.getWidget), nil), nil, nil
			}},
		{name: "disabled", desc: "the same route through Cache.Handle with CACHE_ENABLED=false",
			build: func(e *env) (http.Handler, func(), error) {
				return e.cached(stores.Config{Cache: hoard.Config{Disabled: true}}, false)
			}},
	}...)
	return ss
}

// storeBuild is the build of a scenario that serves the widget routes
// (the PUT route too when put) through st's store, with or without the
// near cache.
func storeBuild(st string, near, put bool) func(*env) (http.Handler, func(), error) {
	return func(e *env) (http.Handler, func(), error) {
		cfg, err := e.storeConfig(st)
		if err != nil {
			return nil, nil, err
		}
		cfg.Redis.NearCache = near
		return e.cached(cfg, put)
	}
}

// nearVariants is [false] for a store without a near cache, and [false,
// true] for the Redis stores, whose near cache (redis.Options.NearCache)
// has scenarios of its own ("hit/redis/near" and so on).
func nearVariants(st string) []bool {
	if st == stRedis || st == stRedisCluster {
		return []bool{false, true}
	}
	return []bool{false}
}

func nearDesc(near bool) string {
	if near {
		return " with the near cache on (CACHE_NEAR_CACHE: hits from process memory, kept coherent by Redis's invalidations)"
	}
	return ""
}

// env holds what the scenarios share: the database and the store servers,
// started on first use.
type env struct {
	ctx     context.Context
	db      *widgetDB
	widgets int
	mcPool  int // idle connections per memcached server
	pgsrv   *pgtest.Server
	pg      *widgetDB // the same widgets in PostgreSQL
	logf    func(format string, args ...any)
	logger  *slog.Logger // hoard's logs at warn (fail-open warnings; no debug decisions) go to stderr
	redis   *testserver.Redis
	cluster *testserver.Cluster
	mc      []*testserver.Memcached
	// outage is the dedicated Redis of the current outage scenario.
	outage *testserver.Redis
	// runs counts the handler runs of the scenarios that report them.
	runs atomic.Int64
	// cache is the Cache cachedRoute opened last: the current scenario's.
	cache *hoard.Cache
}

func (e *env) Close() {
	if e.pg != nil {
		e.pg.Close()
	}
	if e.pgsrv != nil {
		e.pgsrv.Stop()
	}
	if e.redis != nil {
		e.redis.Stop()
	}
	if e.cluster != nil {
		e.cluster.Stop()
	}
	testserver.StopMemcachedPool(e.mc)
	if e.outage != nil {
		e.outage.Stop()
	}
}

// mux serves h on the widget GET pattern, and put (if not nil) on the PUT.
func (e *env) mux(h, put http.Handler) http.Handler {
	m := http.NewServeMux()
	m.Handle(getPattern, h)
	if put != nil {
		m.Handle(putPattern, put)
	}
	return m
}

func uniquePrefix() string {
	var b [4]byte
	rand.Read(b[:])
	return "b" + hex.EncodeToString(b[:]) + ":"
}

// storeConfig points a stores.Config at the named store, starting its
// servers on first use. Timeout and the rest are the defaults.
func (e *env) storeConfig(st string) (stores.Config, error) {
	cfg := stores.Config{Cache: hoard.Config{KeyPrefix: uniquePrefix()}}
	switch st {
	case stMemory:
		cfg.Backend = stores.Memory
	case stRedis:
		r, err := e.startRedis()
		if err != nil {
			return cfg, err
		}
		cfg.Backend = stores.Redis
		cfg.Redis.Addrs = []string{r.Addr}
	case stRedisCluster:
		if e.cluster == nil {
			e.logf("starting a 3-master Redis Cluster")
			c, err := testserver.StartRedisCluster(3, 0)
			if err != nil {
				return cfg, err
			}
			e.cluster = c
		}
		cfg.Backend = stores.Redis
		cfg.Redis.Addrs = []string{e.cluster.Addrs[0]}
		cfg.Redis.Cluster = true
	case stMemcached:
		pool, err := e.startMemcached()
		if err != nil {
			return cfg, err
		}
		cfg.Backend = stores.Memcached
		cfg.Memcached.Servers = testserver.Addrs(pool)
		cfg.Memcached.PoolSize = e.mcPool
	default:
		return cfg, fmt.Errorf("unknown store %q", st)
	}
	return cfg, nil
}

// startPostgres starts a private PostgreSQL and fills it with the working
// set, on first use.
func (e *env) startPostgres() (*widgetDB, error) {
	if e.pg != nil {
		return e.pg, nil
	}
	if e.pgsrv == nil {
		e.logf("starting PostgreSQL")
		s, err := pgtest.Start()
		if err != nil {
			return nil, err
		}
		e.pgsrv = s
	}
	ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
	defer cancel()
	url, err := e.pgsrv.CreateDatabase(ctx, "bench")
	if err != nil {
		return nil, err
	}
	pg, err := openPostgres(ctx, url, e.widgets)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	e.pg = pg
	return pg, nil
}

func (e *env) startRedis() (*testserver.Redis, error) {
	if e.redis == nil {
		e.logf("starting redis-server")
		r, err := testserver.StartRedis(testserver.RedisOptions{})
		if err != nil {
			return nil, err
		}
		e.redis = r
	}
	return e.redis, nil
}

func (e *env) startMemcached() ([]*testserver.Memcached, error) {
	if e.mc == nil {
		e.logf("starting 3 memcached")
		pool, err := testserver.StartMemcachedPool(3, testserver.MemcachedOptions{})
		if err != nil {
			return nil, err
		}
		e.mc = pool
	}
	return e.mc, nil
}

// cached opens a Cache on cfg and serves the widget GET through Cache.Handle
// with the demo's route options (and the PUT when put is set).
func (e *env) cached(cfg stores.Config, put bool) (http.Handler, func(), error) {
	return e.cachedRoute(cfg, widgetRoute, http.HandlerFunc(e.db.getWidget), put)
}

// cachedRoute serves the widget GET through get and its Route rt, and the
// PUT route too when put, on a Cache opened from cfg.
func (e *env) cachedRoute(cfg stores.Config, rt hoard.Route, get http.Handler, put bool) (http.Handler, func(), error) {
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	cfg.Cache.Logger = e.logger
	c, err := stores.Open(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	m := http.NewServeMux()
	if err := c.Handle(m, getPattern, rt, get); err != nil {
		c.Close()
		return nil, nil, err
	}
	if put {
		if err := c.Handle(m, putPattern, putRoute, http.HandlerFunc(e.db.putWidget)); err != nil {
			c.Close()
			return nil, nil, err
		}
	}
	e.cache = c
	return m, func() { c.Close() }, nil
}

// The expiry scenarios' route: a TTL short enough that hot keys expire
// many times a run, and a handler slow enough that a miss shows in p99.
const (
	expiryTTL   = time.Second
	expiryDelay = 20 * time.Millisecond
)

// expiring serves the widget GET from the redis store with expiryTTL and a
// handler delayed by expiryDelay (counted in e.runs), with or without
// StaleWhileRevalidate.
func (e *env) expiring(stale bool) (http.Handler, func(), error) {
	cfg, err := e.storeConfig(stRedis)
	if err != nil {
		return nil, nil, err
	}
	rt := widgetRoute
	rt.TTL = expiryTTL
	if stale {
		rt.StaleWhileRevalidate = 10 * time.Second
	}
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.runs.Add(1)
		time.Sleep(expiryDelay)
		e.db.getWidget(w, r)
	})
	return e.cachedRoute(cfg, rt, slow, false)
}

// rawRedis fills Redis with every widget's bytes and serves them with one
// bare GET per request, with the client options of the redis store
// (auto-pipelining, no client-side cache, pool of 10).
func (e *env) rawRedis() (http.Handler, func(), error) {
	r, err := e.startRedis()
	if err != nil {
		return nil, nil, err
	}
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{r.Addr},
		DisableCache:      true,
		ForceSingleClient: true,
		BlockingPoolSize:  redis.DefaultPoolSize,
		PipelineMultiplex: 2, // what the redis store uses for a pool of 10
		AlwaysPipelining:  true,
		ConnWriteTimeout:  time.Second,
	})
	if err != nil {
		return nil, nil, err
	}
	prefix := uniquePrefix() + "raw:widget:"
	cmds := make(rueidis.Commands, 0, len(e.db.bodies))
	for i, b := range e.db.bodies {
		cmds = append(cmds, c.B().Set().Key(prefix+strconv.Itoa(i+1)).Value(rueidis.BinaryString(b)).Px(10*time.Minute).Build())
	}
	for _, res := range c.DoMulti(e.ctx, cmds...) {
		if err := res.Error(); err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("raw/redis: fill: %w", err)
		}
	}
	get := func(ctx context.Context, id int) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, redis.DefaultTimeout)
		defer cancel()
		return c.Do(ctx, c.B().Get().Key(prefix+strconv.Itoa(id)).Build()).AsBytes()
	}
	return e.mux(e.db.rawGet(get), nil), c.Close, nil
}

// rawMemcached fills the memcached pool with every widget's bytes and serves
// them with one bare gomemcache GET per request (-memcached-pool idle
// connections per server, 10 by default, and a 50 ms timeout, as the
// memcached store). With threeKeys, each request instead reads, with one
// GetMulti, three keys laid out as a hit of the memcached store read them
// before hoard used hash tags: the entry, the cache's single epoch and the
// widget's generation, which the pool's hashing spreads over up to three
// servers. It was the floor of a hit with that layout; a hit now reads its
// three keys from one server (hoard.Sharded), so raw/memcached is its
// floor.
func (e *env) rawMemcached(threeKeys bool) (http.Handler, func(), error) {
	pool, err := e.startMemcached()
	if err != nil {
		return nil, nil, err
	}
	c := memcache.New(testserver.Addrs(pool)...)
	c.MaxIdleConns = e.mcPool
	c.Timeout = memcached.DefaultTimeout
	prefix := uniquePrefix() + "raw:widget:"
	for i, b := range e.db.bodies {
		var err error
		for try := 0; try < 3; try++ { // a 50 ms timeout on a busy machine
			if err = c.Set(&memcache.Item{Key: prefix + strconv.Itoa(i+1), Value: b, Expiration: 600}); err == nil {
				break
			}
		}
		if err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("raw/memcached: fill: %w", err)
		}
	}
	get := func(_ context.Context, id int) ([]byte, error) {
		it, err := c.Get(prefix + strconv.Itoa(id))
		if err != nil {
			return nil, err
		}
		return it.Value, nil
	}
	if threeKeys {
		gen := strings.TrimSuffix(prefix, "raw:widget:") + "#g:widget:"
		epoch := strings.TrimSuffix(prefix, "raw:widget:") + "#epoch"
		fill := func(key string) error {
			var err error
			for try := 0; try < 3; try++ {
				if err = c.Set(&memcache.Item{Key: key, Value: []byte("12345678"), Expiration: 600}); err == nil {
					break
				}
			}
			return err
		}
		if err := fill(epoch); err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("raw/memcached/3keys: fill: %w", err)
		}
		for i := range e.db.bodies {
			if err := fill(gen + strconv.Itoa(i+1)); err != nil {
				c.Close()
				return nil, nil, fmt.Errorf("raw/memcached/3keys: fill: %w", err)
			}
		}
		get = func(_ context.Context, id int) ([]byte, error) {
			key := prefix + strconv.Itoa(id)
			items, err := c.GetMulti([]string{key, epoch, gen + strconv.Itoa(id)})
			if err != nil {
				return nil, err
			}
			it := items[key]
			if it == nil {
				return nil, memcache.ErrCacheMiss
			}
			return it.Value, nil
		}
	}
	return e.mux(e.db.rawGet(get), nil), func() { c.Close() }, nil
}

// outageRedis is hit/redis on a Redis server of its own, which the run
// stops and kills.
func (e *env) outageRedis() (http.Handler, func(), error) {
	e.logf("starting a redis-server for the outage")
	r, err := testserver.StartRedis(testserver.RedisOptions{})
	if err != nil {
		return nil, nil, err
	}
	e.outage = r
	cfg := stores.Config{Cache: hoard.Config{KeyPrefix: uniquePrefix()}, Backend: stores.Redis}
	cfg.Redis.Addrs = []string{r.Addr}
	h, closeCache, err := e.cached(cfg, false)
	if err != nil {
		r.Stop()
		e.outage = nil
		return nil, nil, err
	}
	return h, func() {
		closeCache()
		r.Stop()
		e.outage = nil
	}, nil
}

// Outage phases (loadResult.Lat indexes).
const (
	phaseBefore  = 0
	phaseStopped = 1
	phaseKilled  = 2
)

// runOutage stops the outage Redis (SIGSTOP) at d/3 and kills it (SIGKILL)
// at 2d/3 of the timed run, switching phase just before each signal.
func (e *env) runOutage(ctx context.Context, d time.Duration, phase *atomic.Int32) (stop func() error) {
	r := e.outage
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		var firstErr error
		wait := func(t time.Duration) bool {
			select {
			case <-time.After(t):
				return true
			case <-done:
				return false
			case <-ctx.Done():
				return false
			}
		}
		if wait(d / 3) {
			phase.Store(phaseStopped)
			if err := r.Pause(); err != nil {
				firstErr = fmt.Errorf("SIGSTOP redis: %w", err)
			}
			if wait(d/3) && firstErr == nil {
				phase.Store(phaseKilled)
				if err := r.Kill(); err != nil {
					firstErr = fmt.Errorf("SIGKILL redis: %w", err)
				}
			}
		}
		errc <- firstErr
	}()
	return func() error {
		close(done)
		return <-errc
	}
}

// selectScenarios resolves the -scenarios flag: "all", or a comma-separated
// list of names; a trailing "*" matches any rest of a name ("hit/*" is
// every hit scenario, "hit/redis*" also selects hit/rediscluster).
func selectScenarios(spec string) ([]scenario, error) {
	all := scenarios()
	if spec == "" || spec == "all" {
		return all, nil
	}
	seen := map[string]bool{}
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for _, s := range all {
			match := s.name == name
			if prefix, ok := strings.CutSuffix(name, "*"); ok {
				match = strings.HasPrefix(s.name, prefix)
			}
			if match {
				found = true
				seen[s.name] = true
			}
		}
		if !found {
			names := make([]string, len(all))
			for i, s := range all {
				names[i] = s.name
			}
			return nil, fmt.Errorf("-scenarios: unknown scenario %q; use all, or a comma-separated list of: %s (or a family such as hit/*)", name, strings.Join(names, ", "))
		}
	}
	// Keep the table's order.
	var ordered []scenario
	for _, s := range all {
		if seen[s.name] {
			ordered = append(ordered, s)
		}
	}
	return ordered, nil
}
