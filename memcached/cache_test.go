package memcached_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/memcached"
)

// cacheOnPool returns a hoard.Cache on a Store (with the given Timeout, 0
// for the test default) on pool holding n values (each key holds its own
// name), the store, the namespace and the keys.
func cacheOnPool(t *testing.T, pool []*testserver.Memcached, n int, timeout time.Duration) (c *hoard.Cache, s *memcached.Store, ns string, keys []string) {
	t.Helper()
	ns = "c" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	// The tests kill servers, which refuse connects at once: the long test
	// Timeout only keeps a stalled host from failing the live servers' calls.
	s = NewStore(t, pool, memcached.Options{Timeout: timeout, Backoff: testBackoff})
	c, err := hoard.New(s, hoard.Config{KeyPrefix: ns})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		k := "item:" + strconv.Itoa(i)
		if err := c.Set(bg, k, []byte(k), time.Minute); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return c, s, ns, keys
}

// homes returns the server of each key's entry, after checking the
// layout: the entry ns{key} and the generation ns#g:{key} of a key live
// on one server, and each server holds the epoch copy ShardKey gives for
// it.
func homes(t *testing.T, pool []*testserver.Memcached, s *memcached.Store, ns string, keys []string) map[string]string {
	t.Helper()
	home := make(map[string]string, len(keys))
	for _, k := range keys {
		entry := Locate(t, pool, ns+"{"+k+"}")
		gen := Locate(t, pool, ns+"#g:{"+k+"}")
		if entry == "" || entry != gen {
			t.Fatalf("key %q: entry on %q, generation on %q; want both on one server", k, entry, gen)
		}
		home[k] = entry
	}
	for i, m := range pool {
		if got := Locate(t, pool, s.ShardKey(ns+"#epoch", i)); got != m.Addr {
			t.Errorf("epoch copy %d on %q, want on %s", i, got, m.Addr)
		}
	}
	return home
}

// TestCacheLayoutOneServerPerHit: a Cache on three servers places an
// entry, its generation and the epoch copy it checks on one server, so
// that a hit (provider Get, and a route GET with and without a query
// variant) makes requests to exactly one server: the others' cmd_get
// counters do not move.
func TestCacheLayoutOneServerPerHit(t *testing.T) {
	pool := testserver.MemcachedPoolT(t, 3, testserver.MemcachedOptions{})
	c, s, ns, keys := cacheOnPool(t, pool, 30, 0)
	home := homes(t, pool, s, ns, keys)
	servers := map[string]bool{}
	for _, h := range home {
		servers[h] = true
	}
	if len(servers) != 3 {
		t.Fatalf("30 keys live on %d of 3 servers", len(servers))
	}
	gets := func() []int64 {
		out := make([]int64, len(pool))
		for i, m := range pool {
			st, err := m.Stats()
			if err != nil {
				t.Fatal(err)
			}
			out[i], _ = strconv.ParseInt(st["cmd_get"], 10, 64)
		}
		return out
	}
	// touched runs f and returns the servers whose cmd_get moved.
	touched := func(f func()) []string {
		before := gets()
		f()
		after := gets()
		var out []string
		for i := range pool {
			if after[i] != before[i] {
				out = append(out, pool[i].Addr)
			}
		}
		return out
	}
	for _, k := range keys {
		got := touched(func() {
			if v, found, err := c.Get(bg, k); err != nil || !found || string(v) != k {
				t.Fatalf("Get(%q) = %q, %v, %v; want a hit", k, v, found, err)
			}
		})
		if len(got) != 1 || got[0] != home[k] {
			t.Errorf("a hit of %q read servers %v; want only %s", k, got, home[k])
		}
	}

	mux := http.NewServeMux()
	if err := c.HandleFunc(mux, "GET /w/{id}", hoard.Route{KeyPrefix: "w", QueryKeys: []string{"x"}}, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "widget "+r.PathValue("id")+" x="+r.URL.Query().Get("x"))
	}); err != nil {
		t.Fatal(err)
	}
	get := func(path string) string {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		return rec.Header().Get("Cache-Status")
	}
	for i := range 12 {
		for _, path := range []string{"/w/" + strconv.Itoa(i), "/w/" + strconv.Itoa(i) + "?x=1"} {
			get(path)
			var cs string
			got := touched(func() { cs = get(path) })
			if !strings.HasPrefix(cs, "hoard; hit") {
				t.Fatalf("second GET %s: %s; want a hit", path, cs)
			}
			want := Locate(t, pool, ns+"#g:{w:"+strconv.Itoa(i)+"}")
			if len(got) != 1 || got[0] != want {
				t.Errorf("a route hit of %s read servers %v; want only %s (its generation's)", path, got, want)
			}
		}
	}

	// A route whose reads are covered by registered patterns: each pattern
	// generation has a copy per server, so a hit still reads one server.
	lists := hoard.Route{KeyPrefix: "posts:{owner}:page_{page}"}
	if err := c.HandleFunc(mux, "GET /u/{owner}/posts/{page}", lists, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.PathValue("owner")+" page "+r.PathValue("page"))
	}); err != nil {
		t.Fatal(err)
	}
	lists.InvalidatePatterns = []string{"posts:{owner}:*", "posts:*"}
	if err := c.HandleFunc(mux, "POST /u/{owner}/posts/{page}", lists, func(w http.ResponseWriter, r *http.Request) {}); err != nil {
		t.Fatal(err)
	}
	readers := map[string]bool{}
	for i := range 12 {
		path := "/u/o" + strconv.Itoa(i) + "/posts/1"
		get(path)
		got := touched(func() {
			if cs := get(path); !strings.HasPrefix(cs, "hoard; hit") {
				t.Fatalf("second GET %s: %s; want a hit", path, cs)
			}
		})
		if len(got) != 1 {
			t.Errorf("a hit of %s, covered by two patterns, read servers %v; want exactly one", path, got)
		}
		for _, a := range got {
			readers[a] = true
		}
	}
	if len(readers) < 2 {
		t.Errorf("12 pattern-covered resources were read from %d server(s); want them spread", len(readers))
	}
	// A write deletes every copy: the next read of another owner's list
	// (covered by posts:*) misses, wherever it lives.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/u/o0/posts/1", nil))
	for i := range 12 {
		if cs := get("/u/o" + strconv.Itoa(i) + "/posts/1"); strings.HasPrefix(cs, "hoard; hit") {
			t.Errorf("GET of owner o%d's list after a write covered by posts:*: %s; want a miss", i, cs)
		}
	}
}

// TestCacheWithKilledServer runs a hoard.Cache on three servers and kills
// the one that held the cache's single epoch key before epochs had a copy
// per server (every read then missed): now only the values that live on
// it miss (or fail: all their keys are on it), the others keep hitting,
// never a stale or wrong value; writes to the dead server fail, and
// everything hits again after a restart.
func TestCacheWithKilledServer(t *testing.T) {
	pool := testserver.MemcachedPoolT(t, 3, testserver.MemcachedOptions{})
	c, s, ns, keys := cacheOnPool(t, pool, 60, 0)
	home := homes(t, pool, s, ns, keys)
	dead := pool[s.ShardOf(ns+"#epoch")]
	if err := dead.Kill(); err != nil {
		t.Fatal(err)
	}
	hits, misses := 0, 0
	for round := range 3 { // the first round finds broken connections
		hits, misses = 0, 0
		for _, k := range keys {
			onDead := home[k] == dead.Addr
			v, found, err := c.Get(bg, k)
			switch {
			case found && string(v) != k:
				t.Errorf("round %d: Get(%q) = %q", round, k, v)
			case found && onDead:
				t.Errorf("round %d: Get(%q) hit, but it lives on the killed server", round, k)
			case !onDead && (err != nil || !found):
				t.Errorf("round %d: Get(%q) = found %v, %v, but it lives on a live server; want a hit", round, k, found, err)
			case found:
				hits++
			default:
				misses++
			}
		}
	}
	t.Logf("%d hits, %d misses with %s killed", hits, misses, dead.Addr)
	if hits == 0 || misses == 0 {
		t.Fatalf("%d hits and %d misses; the keys must be spread so that both happen", hits, misses)
	}
	loaded := false
	for _, k := range keys {
		if home[k] == dead.Addr {
			continue
		}
		v, err := c.Fetch(bg, k, time.Minute, func(context.Context) ([]byte, error) { loaded = true; return []byte("loaded"), nil })
		if err != nil || string(v) != k || loaded {
			t.Fatalf("Fetch(%q) of a live value = %q, %v (loaded: %v); want the cached value", k, v, err, loaded)
		}
		break
	}
	for _, k := range keys {
		if home[k] == dead.Addr {
			if err := c.Set(bg, k, []byte("new"), time.Minute); err == nil {
				t.Errorf("Set(%q), which lives on the killed server, succeeded", k)
			}
			break
		}
	}

	if err := dead.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, k := range keys {
		for {
			err := c.Set(bg, k, []byte(k), time.Minute)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Set(%q) still fails 5s after the restart: %v", k, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, k := range keys {
		if v, found, err := c.Get(bg, k); err != nil || !found || string(v) != k {
			t.Errorf("Get(%q) after the restart = %q, %v, %v; want a hit", k, v, found, err)
		}
	}
}

// partition is a TCP proxy in front of one memcached server that can cut
// it off: while cut, the connections it had are closed and new ones are
// accepted but nothing is forwarded or answered, so a call times out and
// a write is lost (unlike a frozen server, which applies the writes it
// received once it resumes). heal forwards again, to the server and the
// data it kept.
type partition struct {
	ln     net.Listener
	target string
	cut    atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newPartition(t *testing.T, target string) *partition {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &partition{ln: ln, target: target}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

func (p *partition) addr() string { return p.ln.Addr().String() }

func (p *partition) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		p.wg.Go(func() { p.handle(c) })
	}
}

func (p *partition) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *partition) handle(c net.Conn) {
	defer c.Close()
	if p.cut.Load() {
		io.Copy(io.Discard, c)
		return
	}
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.track(s)
	defer s.Close()
	p.wg.Go(func() { io.Copy(s, c); s.Close() })
	io.Copy(c, s)
}

func (p *partition) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Cut cuts the server off; Heal reconnects it.
func (p *partition) Cut()  { p.cut.Store(true); p.closeAll() }
func (p *partition) Heal() { p.cut.Store(false); p.closeAll() }

// TestCacheClearAndInvalidateWhileCutOff: one server of three is cut off
// (frozen with SIGSTOP, or behind a partition that drops what is sent to
// it) while Clear and an Invalidate of a value on it fail (they are kept
// pending), and a value on another server is written; then it comes back
// with its old data. None of its old values may be served (the pending
// epoch copy and generation are replayed before any read of that server
// is served); the other servers' values are cleared at once, and new
// values hit everywhere afterwards.
func TestCacheClearAndInvalidateWhileCutOff(t *testing.T) {
	for _, mode := range []string{"frozen", "partitioned"} {
		t.Run(mode, func(t *testing.T) { testCutOff(t, mode) })
	}
}

func testCutOff(t *testing.T, mode string) {
	const timeout = 300 * time.Millisecond
	pool := testserver.MemcachedPoolT(t, 3, testserver.MemcachedOptions{})
	cutOff, restore := pool[0].Pause, pool[0].Resume
	addrs := testserver.Addrs(pool)
	if mode == "partitioned" {
		p := newPartition(t, pool[0].Addr)
		addrs[0] = p.addr()
		cutOff = func() error { p.Cut(); return nil }
		restore = func() error { p.Heal(); return nil }
	}
	ns := "c" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	s, err := memcached.New(memcached.Options{Servers: addrs, Timeout: timeout, Backoff: testBackoff})
	if err != nil {
		t.Fatal(err)
	}
	c, err := hoard.New(s, hoard.Config{KeyPrefix: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var keys []string
	for i := range 30 {
		k := "item:" + strconv.Itoa(i)
		if err := c.Set(bg, k, []byte(k), time.Minute); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	home := homes(t, pool, s, ns, keys)
	var onCut, onLive []string
	for _, k := range keys {
		if home[k] == pool[0].Addr {
			onCut = append(onCut, k)
		} else {
			onLive = append(onLive, k)
		}
	}
	if len(onCut) < 2 || len(onLive) == 0 {
		t.Fatalf("%d keys on the cut-off server, %d on the others; want at least 2 and 1", len(onCut), len(onLive))
	}
	if err := cutOff(); err != nil {
		t.Fatal(err)
	}
	restored := false
	defer func() {
		if !restored {
			restore()
		}
	}()
	if err := c.Invalidate(bg, onCut[0]); err == nil {
		t.Fatal("Invalidate of a value on the cut-off server: no error")
	}
	if err := c.Clear(bg); err == nil {
		t.Fatal("Clear with a server cut off: no error")
	}
	for _, k := range onLive {
		if v, found, err := c.Get(bg, k); found {
			t.Fatalf("Get(%q) after Clear = %q, %v; want a miss", k, v, err)
		}
	}
	for _, k := range onLive {
		if err := c.Set(bg, k, []byte("new "+k), time.Minute); err != nil {
			t.Fatalf("Set(%q) on a live server: %v", k, err)
		}
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	restored = true
	// Until the pending writes are replayed, the server's values are
	// unavailable; after that they miss. Never an old value.
	deadline := time.Now().Add(10 * time.Second)
	for {
		unavailable := 0
		for _, k := range onCut {
			v, found, err := c.Get(bg, k)
			switch {
			case found:
				t.Fatalf("Get(%q) after Clear and the server's return = %q; want a miss (it was cleared while the server was cut off)", k, v)
			case err != nil:
				unavailable++
			}
		}
		if unavailable == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d values of the returned server still fail 10s after its return", unavailable, len(onCut))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, k := range onLive {
		if v, found, err := c.Get(bg, k); !found || err != nil || string(v) != "new "+k {
			t.Errorf("Get(%q) = %q, %v, %v; want the value set after Clear", k, v, found, err)
		}
	}
	for _, k := range onCut {
		if err := c.Set(bg, k, []byte("new "+k), time.Minute); err != nil {
			t.Fatalf("Set(%q) after the return: %v", k, err)
		}
		if v, found, err := c.Get(bg, k); !found || err != nil || string(v) != "new "+k {
			t.Errorf("Get(%q) = %q, %v, %v; want the value set after the return", k, v, found, err)
		}
	}
}
