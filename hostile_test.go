package hoard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/memory"
	"github.com/hoardcache/hoard/redis"
	"github.com/hoardcache/hoard/stores"
)

// The regression tests of a hostile-traffic review: requests that store
// nothing must leave nothing lasting in the store, and no client can make
// the cache hold more than it caches or switch caching off for others.

// hostileRedis starts a private redis-server and returns a Cache on it,
// with KeyPrefix "h:", and the server for inspection.
func hostileRedis(t *testing.T, cfg hoard.Config) (*hoard.Cache, *testserver.Redis) {
	t.Helper()
	r, err := testserver.StartRedis(testserver.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop() })
	cfg.KeyPrefix = "h:"
	cfg.Timeout = storefixture.Timeout
	c, err := stores.Open(context.Background(), stores.Config{Cache: cfg, Backend: stores.Redis, Redis: redis.Options{Addrs: []string{r.Addr}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, r
}

// widgetsOnlyOK serves GET and PATCH /w/{id}: ids starting with "ok"
// exist (200), every other id answers 404.
func widgetsOnlyOK(t testing.TB, c *hoard.Cache) http.Handler {
	h := func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.PathValue("id"), "ok") {
			http.Error(w, `{"detail":"not found"}`, http.StatusNotFound)
			return
		}
		fmt.Fprintf(w, `{"id":%q}`, r.PathValue("id"))
	}
	rt := &hoard.Route{KeyPrefix: "w", TTL: time.Minute}
	mux, _ := localMux(t, c,
		miniRoute{pattern: "GET /w/{id}", rt: rt, h: h},
		miniRoute{pattern: "PATCH /w/{id}", rt: rt, h: h})
	return mux
}

func redisInt(t *testing.T, r *testserver.Redis, args ...string) int64 {
	t.Helper()
	s, err := r.Do(args...)
	if err != nil {
		t.Fatalf("redis %v: %v", args, err)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("redis %v = %q: %v", args, s, err)
	}
	return n
}

// TestHostileNothingLasting (regression): a GET whose answer is not stored
// (404 on a new id) leaves nothing (the generation it created for the read
// is deleted once the answer is known; it lived 10 s at most); a write
// answered 4xx leaves nothing; a write to an id never read leaves nothing;
// a generation an entry depends on lives about twice the longest route
// TTL, not 30 days. Before, every such request wrote a generation key with
// a 30-day TTL, so a flood of 404s grew Redis without bound.
func TestHostileNothingLasting(t *testing.T) {
	c, r := hostileRedis(t, hoard.Config{DefaultTTL: time.Minute})
	mux := widgetsOnlyOK(t, c)
	const provisional = 10 * time.Second // the lifetime of a read's new generation until its answer is known

	if res := serveLocal(t, mux, http.MethodGet, "/w/missing"); res.Status != http.StatusNotFound {
		t.Fatalf("GET missing: %v", res)
	}
	if n := redisInt(t, r, "DBSIZE"); n != 1 {
		t.Errorf("after a 404 GET the store holds %d keys; want only the namespace epoch", n)
	}
	if ttl := redisInt(t, r, "PTTL", "h:#epoch"); ttl < (24 * time.Hour).Milliseconds() {
		t.Errorf("epoch PTTL %d ms; want at least a day (its expiry would make every entry miss at once)", ttl)
	}

	before := redisInt(t, r, "DBSIZE")
	for _, path := range []string{"/w/missing2", "/w/ok-never-read"} {
		serveLocal(t, mux, http.MethodPatch, path)
	}
	if after := redisInt(t, r, "DBSIZE"); after != before {
		t.Errorf("PATCH of a missing id (404) and of an id never read changed the key count %d -> %d; want nothing written", before, after)
	}

	if res := serveLocal(t, mux, http.MethodGet, "/w/ok1"); res.CacheStatus() != csStored {
		t.Fatalf("GET ok1: %v", res)
	}
	ttl := redisInt(t, r, "PTTL", "h:#g:w:ok1")
	if ttl <= provisional.Milliseconds() || ttl > (2*time.Minute).Milliseconds() {
		t.Errorf("generation of a stored entry has PTTL %d ms; want (10 s, 2 min]: twice the longest route TTL", ttl)
	}
	wantHit(t, "GET ok1 again", serveLocal(t, mux, http.MethodGet, "/w/ok1"))

	// A write invalidates by deleting: the generation is gone, nothing new.
	serveLocal(t, mux, http.MethodPatch, "/w/ok1")
	if n := redisInt(t, r, "EXISTS", "h:#g:w:ok1", "h:w:ok1"); n != 0 {
		t.Errorf("after a PATCH, %d of the resource's generation and entry remain", n)
	}
	if res := serveLocal(t, mux, http.MethodGet, "/w/ok1"); res.CacheStatus() != csStored {
		t.Errorf("GET after the PATCH: %v; want a stored miss", res)
	}

	// A flood of 404 GETs on new ids leaves nothing.
	before = redisInt(t, r, "DBSIZE")
	const flood = 500
	for i := range flood {
		serveLocal(t, mux, http.MethodGet, "/w/nope"+strconv.Itoa(i))
	}
	if after := redisInt(t, r, "DBSIZE"); after != before {
		t.Errorf("%d 404 GETs changed the key count %d -> %d; want no change", flood, before, after)
	}
}

// TestHostileProvisionalGeneration: while the handler of a GET that
// created its resource's generation runs, the generation is provisional
// (it expires within 10 s if the process dies before the answer is known).
func TestHostileProvisionalGeneration(t *testing.T) {
	c, r := hostileRedis(t, hoard.Config{})
	running, release := make(chan struct{}), make(chan struct{})
	mux, _ := localMux(t, c, miniRoute{pattern: "GET /s/{id}", rt: &hoard.Route{KeyPrefix: "s"},
		h: func(w http.ResponseWriter, r *http.Request) { close(running); <-release; w.Write([]byte("ok")) }})
	done := make(chan testResponse)
	go func() { done <- serveLocal(t, mux, http.MethodGet, "/s/1") }()
	<-running
	ttl := redisInt(t, r, "PTTL", "h:#g:s:1")
	close(release)
	if res := <-done; res.CacheStatus() != csStored {
		t.Fatalf("GET: %v", res)
	}
	if ttl <= 0 || ttl > 10_000 {
		t.Errorf("generation PTTL while the handler runs: %d ms; want (0, 10000]", ttl)
	}
	if after := redisInt(t, r, "PTTL", "h:#g:s:1"); after <= 10_000 {
		t.Errorf("generation PTTL once the entry is stored: %d ms; want its full lifetime", after)
	}
}

// TestHostileLongKeys (regression): requests whose key is longer than
// Config.MaxKeyBytes bypass the cache and write nothing (100 GETs of a
// 500 KB user name grew Redis by 50 MB before), are counted, and are
// logged with the key clipped.
func TestHostileLongKeys(t *testing.T) {
	var logs bytes.Buffer
	c, r := hostileRedis(t, hoard.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	mux := widgetsOnlyOK(t, c)
	long := "ok" + strings.Repeat("x", 500<<10)
	serveLocal(t, mux, http.MethodGet, "/w/ok-short") // epoch and a first entry
	before := redisInt(t, r, "DBSIZE")
	for i := range 20 {
		res := serveLocal(t, mux, http.MethodGet, "/w/"+long+strconv.Itoa(i))
		if res.Status != http.StatusOK || res.CacheStatus() != "hoard; fwd=bypass" {
			t.Fatalf("GET with a 500 KB id: %d %q; want 200 bypass", res.Status, res.CacheStatus())
		}
		serveLocal(t, mux, http.MethodPatch, "/w/"+long+strconv.Itoa(i))
	}
	if after := redisInt(t, r, "DBSIZE"); after != before {
		t.Errorf("requests with 500 KB ids changed the key count %d -> %d", before, after)
	}
	if got := c.Stats().KeysTooLong; got != 20 {
		t.Errorf("Stats().KeysTooLong = %d, want 20", got)
	}
	if logs.Len() == 0 || logs.Len() > 4096 {
		t.Errorf("log after 20 oversized keys: %d bytes; want one clipped line", logs.Len())
	}

	// A key at the limit is still cached.
	atLimit := "ok" + strings.Repeat("y", hoard.DefaultMaxKeyBytes-len("w:ok"))
	if res := serveLocal(t, mux, http.MethodGet, "/w/"+atLimit); res.CacheStatus() != csStored {
		t.Errorf("GET with a key of exactly MaxKeyBytes: %q; want stored", res.CacheStatus())
	}
	// The provider API refuses such keys with an error that says so.
	if err := c.Set(context.Background(), long, []byte("v"), 0); !errors.Is(err, hoard.ErrKeyTooLong) || len(err.Error()) > 1024 {
		t.Errorf("Set with a 500 KB key: %.200v; want a short ErrKeyTooLong", err)
	}
}

// TestHostileQueryValuesOutsideTheKey (regression): a query parameter that
// a placeholder consumes takes one value in the key, so "?page=2&page=1"
// was answered from "?page=2"'s entry, and a query parameter named like a
// path parameter ("/widgets/2?widget_id=7") from "/widgets/2"'s, though
// the handler may read them. Such requests bypass.
func TestHostileQueryValuesOutsideTheKey(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		var seq atomic.Int64
		h := func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "seq=%d path=%s query=%s", seq.Add(1), r.PathValue("id"), r.URL.RawQuery)
		}
		mux, _ := localMux(t, c,
			miniRoute{pattern: "GET /list", rt: &hoard.Route{KeyPrefix: "list:page_{page}", Defaults: map[string]string{"page": "1"}}, h: h},
			miniRoute{pattern: "GET /w/{id}", rt: &hoard.Route{KeyPrefix: "w"}, h: h},
			miniRoute{pattern: "GET /u/{user}/posts/{id}", rt: &hoard.Route{KeyPrefix: "{user}_post"}, h: h},
		)
		for _, first := range []string{"/list?page=2", "/w/2", "/u/alice/posts/1"} {
			if res := serveLocal(t, mux, http.MethodGet, first); res.CacheStatus() != csStored {
				t.Fatalf("GET %s: %v", first, res)
			}
			wantHit(t, "GET "+first+" again", serveLocal(t, mux, http.MethodGet, first))
		}
		for _, path := range []string{
			"/list?page=2&page=1", "/list?page=1&page=2",
			"/w/2?id=7", "/w/2?x=1&id=2",
			"/u/alice/posts/1?user=bob", "/u/alice/posts/1?id=2&user=bob",
		} {
			res := serveLocal(t, mux, http.MethodGet, path)
			if res.CacheStatus() != "hoard; fwd=bypass" || !strings.Contains(res.Body, "query="+strings.SplitN(path, "?", 2)[1]) {
				t.Errorf("GET %s: %v; want the handler's own answer, bypassing the cache", path, res)
			}
		}
		// Repeated values of a parameter the key holds whole stay cached.
		if res := serveLocal(t, mux, http.MethodGet, "/w/2?tag=a&tag=b"); res.CacheStatus() != csStored {
			t.Errorf("GET /w/2?tag=a&tag=b: %v; want stored under its own key", res)
		}
	})
}

// TestHostileIfNoneMatchLines (regression): an If-None-Match list split
// over two header lines is read whole.
func TestHostileIfNoneMatchLines(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	mux, _ := localMux(t, c, miniRoute{pattern: "GET /d/{id}", rt: &hoard.Route{KeyPrefix: "d"}, h: echo("id")})
	etag := serveLocal(t, mux, http.MethodGet, "/d/1").Header.Get("Etag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	res := serveLocal(t, mux, http.MethodGet, "/d/1", "If-None-Match", `"other"`, "If-None-Match", etag)
	if res.Status != http.StatusNotModified {
		t.Errorf("If-None-Match over two lines, the ETag on the second: %d; want 304", res.Status)
	}
}

// versionDB is an in-memory database of widget versions: a PATCH of an id
// starting with "ok" bumps its version (200), any other id answers 404 and
// changes nothing. Several caches (instances) may serve one.
type versionDB struct {
	mu sync.Mutex
	v  map[string]int64
}

func (d *versionDB) get(id string) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.v[id]
}

func (d *versionDB) serve(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !strings.HasPrefix(id, "ok") {
		http.Error(w, `{"detail":"not found"}`, http.StatusNotFound)
		return
	}
	d.mu.Lock()
	if d.v == nil {
		d.v = map[string]int64{}
	}
	if r.Method == http.MethodPatch {
		d.v[id]++
	}
	v := d.v[id]
	d.mu.Unlock()
	fmt.Fprintf(w, "%d", v)
}

// versionedWidgets serves GET and PATCH /w/{id} over a new versionDB.
func versionedWidgets(t testing.TB, c *hoard.Cache) (http.Handler, *versionDB) {
	return versionedWidgetsOn(t, c, &versionDB{})
}

// versionedWidgetsOn serves GET and PATCH /w/{id} over db through c.
func versionedWidgetsOn(t testing.TB, c *hoard.Cache, db *versionDB) (http.Handler, *versionDB) {
	rt := &hoard.Route{KeyPrefix: "w", TTL: time.Minute}
	mux, _ := localMux(t, c,
		miniRoute{pattern: "GET /w/{id}", rt: rt, h: db.serve},
		miniRoute{pattern: "PATCH /w/{id}", rt: rt, h: db.serve})
	return mux, db
}

// TestHostilePendingBounded (regression): during an outage, failed
// invalidations are bounded (past 4096 keys one namespace-wide invalidation
// replaces them: 150 PATCHes with 500 KB ids took the demo from 31 to 275
// MB before), writes answered 4xx add nothing, the first read after the
// outage does not pay for the replay (it took 2.36 s and wrote 53,397 keys
// before), and no read is ever stale.
func TestHostilePendingBounded(t *testing.T) {
	c, r := hostileRedis(t, hoard.Config{})
	mux, version := versionedWidgets(t, c)
	get := func(id string) testResponse {
		t.Helper()
		res := serveLocal(t, mux, http.MethodGet, "/w/"+id)
		if want := strconv.FormatInt(version.get(id), 10); res.Body != want {
			t.Fatalf("GET %s: %q (%s); the current version is %s: stale", id, res.Body, res.CacheStatus(), want)
		}
		return res
	}
	get("ok1")
	wantHit(t, "GET ok1 again", get("ok1"))

	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			r.Resume()
		}
	}()
	serveLocal(t, mux, http.MethodPatch, "/w/ok1")
	pending := c.Stats().PendingInvalidations
	if pending == 0 {
		t.Fatal("a PATCH while Redis is frozen left no pending invalidation")
	}
	for i := range 200 {
		serveLocal(t, mux, http.MethodPatch, "/w/missing"+strconv.Itoa(i))
	}
	if got := c.Stats().PendingInvalidations; got != pending {
		t.Errorf("200 PATCHes answered 404 changed the pending invalidations %d -> %d; want no change", pending, got)
	}
	for i := range 3000 { // 2 keys each: past the bound
		serveLocal(t, mux, http.MethodPatch, "/w/ok-other"+strconv.Itoa(i))
	}
	if got := c.Stats().PendingInvalidations; got > 4096 || got == 0 {
		t.Errorf("pending invalidations after 3,000 failed writes: %d; want 1 to 4096", got)
	}
	get("ok1") // served uncached meanwhile, never stale

	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	// The first read does not wait for the replay (at most one store
	// timeout, for its own keys; generous bound for a loaded machine).
	start := time.Now()
	get("ok1")
	if took := time.Since(start); took > 4*storefixture.Timeout {
		t.Errorf("first GET after the outage took %v; want about one store timeout at most", took)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !isHit(get("ok1")) {
		if time.Now().After(deadline) {
			t.Fatalf("no hit 15 s after the outage; pending %d", c.Stats().PendingInvalidations)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := c.Stats().PendingInvalidations; got != 0 {
		t.Errorf("pending invalidations after the replay: %d", got)
	}
	for _, id := range []string{"ok1", "ok-other7", "ok-other2999"} {
		get(id)
	}
}

// TestHostileRefusedValues (regression): a value the store refuses
// (larger than it takes) is served uncached, never reported as stored,
// and does not count against the breaker: other keys keep hitting while a
// client keeps asking for the oversized one. On memcached the refusal came
// from the server ("SERVER_ERROR object too large for cache"), and 9 of 20
// unrelated hits became bypasses; on the memory store with
// CACHE_MEMORY_MAX_BYTES=300 every GET said "stored" while nothing was.
func TestHostileRefusedValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(t *testing.T) stores.Config
		big  int
	}{
		{"memory", func(t *testing.T) stores.Config {
			return stores.Config{Memory: memory.Options{MaxBytes: 64 << 10}, Cache: hoard.Config{KeyPrefix: storefixture.UniquePrefix()}}
		}, 128 << 10},
		// Refused by hoard's own limit, before any call.
		{"memcached/MaxValueBytes", func(t *testing.T) stores.Config {
			cfg := storefixture.Shared(t, storefixture.Memcached).Config(t)
			cfg.Memcached.MaxValueBytes = 64 << 10
			return cfg
		}, 100 << 10},
		// Refused by the servers (the fixture's item size is 2 MiB) under
		// a larger limit.
		{"memcached/server", func(t *testing.T) stores.Config {
			cfg := storefixture.Shared(t, storefixture.Memcached).Config(t)
			cfg.Memcached.MaxValueBytes = 4 << 20
			return cfg
		}, 3 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := stores.Open(context.Background(), tc.cfg(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			size := map[string]int{"big": tc.big, "small": 100}
			// Compression off: the test's bodies compress to nothing.
			mux, _ := localMux(t, c, miniRoute{pattern: "GET /b/{id}", rt: &hoard.Route{KeyPrefix: "b", MaxBodyBytes: 4 << 20, CompressMinBytes: -1},
				h: func(w http.ResponseWriter, r *http.Request) {
					w.Write(bytes.Repeat([]byte("x"), size[strings.TrimRight(r.PathValue("id"), "0123456789")]))
				}})
			for i := range 10 {
				serveLocal(t, mux, http.MethodGet, "/b/small"+strconv.Itoa(i))
			}
			for round := range 20 {
				if res := serveLocal(t, mux, http.MethodGet, "/b/big"); res.CacheStatus() != csMiss || len(res.Body) != tc.big {
					t.Fatalf("GET of a value the store refuses, round %d: %q, %d bytes; want a plain miss with the whole body", round, res.CacheStatus(), len(res.Body))
				}
				for i := range 10 {
					wantHit(t, "GET small"+strconv.Itoa(i)+" while big is refused", serveLocal(t, mux, http.MethodGet, "/b/small"+strconv.Itoa(i)))
				}
			}
			if got := c.Stats().ValuesRefused; got < 20 {
				t.Errorf("Stats().ValuesRefused = %d; want at least 20", got)
			}
		})
	}
}

// TestHostileWrongTypeValues (regression): a value of another Redis type
// under one of hoard's keys (RPUSH '#epoch' x) is a miss and is
// overwritten. Before, it turned every GET into a bypass, for good, with
// no log line.
func TestHostileWrongTypeValues(t *testing.T) {
	c, r := hostileRedis(t, hoard.Config{})
	mux := widgetsOnlyOK(t, c)
	for _, key := range []string{"h:#epoch", "h:#g:w:ok1", "h:w:ok1"} {
		if res := serveLocal(t, mux, http.MethodGet, "/w/ok1"); res.CacheStatus() != csStored && !isHit(res) {
			t.Fatalf("GET before the list under %s: %v", key, res)
		}
		for _, cmd := range [][]string{{"DEL", key}, {"RPUSH", key, "x"}} {
			if _, err := r.Do(cmd...); err != nil {
				t.Fatalf("%v: %v", cmd, err)
			}
		}
		if res := serveLocal(t, mux, http.MethodGet, "/w/ok1"); res.CacheStatus() != csStored {
			t.Errorf("GET with a list under %s: %q; want a miss that stores over it", key, res.CacheStatus())
		}
		wantHit(t, "GET after the list under "+key+" was overwritten", serveLocal(t, mux, http.MethodGet, "/w/ok1"))
		if typ, err := r.Do("TYPE", key); err != nil || typ != "string" {
			t.Errorf("TYPE %s = %q, %v; want the list overwritten by a string", key, typ, err)
		}
	}
}

// TestHostilePatternNameOverKeyLimit (regression): a '*' can match
// nothing, so the pattern name a read records can be longer than its key;
// a key just under MaxKeyBytes stored an entry depending on a pattern name
// over it, which a write skips, so the write left the listing stale. Such
// reads now bypass.
func TestHostilePatternNameOverKeyLimit(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{MaxKeyBytes: 20}, nil)
	var version atomic.Int32
	version.Store(1)
	mux, _ := localMux(t, c,
		miniRoute{pattern: "GET /posts", rt: &hoard.Route{KeyPrefix: "{username}_posts", QueryKeys: []string{"username"}},
			h: func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "v%d", version.Load()) }},
		miniRoute{pattern: "PUT /users/{username}", rt: &hoard.Route{KeyPrefix: "user", ResourceID: "username", InvalidatePatterns: []string{"{username}_posts*"}},
			h: func(w http.ResponseWriter, r *http.Request) { version.Add(1); w.WriteHeader(http.StatusNoContent) }})
	const user = "abcdefghijklmn" // key "abcdefghijklmn_posts": 20 bytes; pattern name 21
	serveLocal(t, mux, http.MethodGet, "/posts?username="+user)
	serveLocal(t, mux, http.MethodPut, "/users/"+user)
	if r := serveLocal(t, mux, http.MethodGet, "/posts?username="+user); r.Body != "v2" {
		t.Errorf("GET after the write: %v; want v2", r)
	}
}

// TestHostileEmptyWildcardFromQuery (regression): an empty wildcard
// ("GET /files/{path...}" on /files/) was filled from the query, so
// /files/?path=secret stored the root listing under file:secret, and a
// later /files/secret was a hit with it. A query parameter named like a
// wildcard now bypasses, and an empty wildcard is never filled from it.
func TestHostileEmptyWildcardFromQuery(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	mux, _ := localMux(t, c, miniRoute{pattern: "GET /files/{path...}", rt: &hoard.Route{KeyPrefix: "file", ResourceID: "path"},
		h: func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "content of %q", r.PathValue("path")) }})
	if r := serveLocal(t, mux, http.MethodGet, "/files/?path=secret"); r.CacheStatus() != csBypass {
		t.Errorf("GET /files/?path=secret: %v; want a bypass", r)
	}
	if r := serveLocal(t, mux, http.MethodGet, "/files/secret"); r.Body != `content of "secret"` {
		t.Errorf("GET /files/secret: %v; want its own content", r)
	}
}
