package redis_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/testlog"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/redis"
	"github.com/hoardcache/hoard/storetest"
)

// getCalls sums the GET and MGET calls the servers have counted
// (INFO commandstats).
func getCalls(t *testing.T, servers ...*testserver.Redis) int64 {
	t.Helper()
	var n int64
	for _, srv := range servers {
		info, err := srv.Info("commandstats")
		if err != nil {
			t.Fatalf("INFO commandstats on %s: %v", srv.Addr, err)
		}
		for _, name := range []string{"cmdstat_get", "cmdstat_mget"} {
			v := info[name]
			if v == "" {
				continue
			}
			calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
			c, err := strconv.ParseInt(calls, 10, 64)
			if err != nil {
				t.Fatalf("%s: %q", name, v)
			}
			n += c
		}
	}
	return n
}

// hitLag is the NearMaxLag of the tests that count local hits.
const hitLag = time.Second

func nearKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s:{k%d}", prefix, i)
	}
	return keys
}

// checkNearHits: after a first read, repeated reads of the same keys make
// no GET/MGET on the servers, and return the values. The stores it is given
// use hitLag: with the default 10 ms, a heartbeat delayed on a loaded
// machine would send a read to the server, which is correct but not what
// this checks.
func checkNearHits(t *testing.T, s *redis.Store, prefix string, servers []*testserver.Redis) {
	ctx := context.Background()
	keys := nearKeys(prefix, 20)
	for i, k := range keys {
		if err := s.Set(ctx, k, []byte("v"+strconv.Itoa(i)), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// The store's own writes are read uncached until their marks expire
	// (at most 1s): wait them out.
	time.Sleep(1100 * time.Millisecond)
	if _, err := s.GetMulti(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, keys[0]); err != nil {
		t.Fatal(err)
	}
	before := getCalls(t, servers...)
	for range 50 {
		vals, err := s.GetMulti(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if string(v) != "v"+strconv.Itoa(i) {
				t.Fatalf("GetMulti[%d] = %q, want v%d", i, v, i)
			}
		}
		v, ok, err := s.Get(ctx, keys[0])
		if err != nil || !ok || string(v) != "v0" {
			t.Fatalf("Get = %q, %v, %v", v, ok, err)
		}
	}
	if after := getCalls(t, servers...); after != before {
		t.Fatalf("near hits reached the server: GET+MGET calls %d -> %d", before, after)
	}
}

// checkNearCrossWrite: a write through another store is seen by the next
// reads within a bounded delay; it logs the delay observed.
func checkNearCrossWrite(t *testing.T, s, other *redis.Store, prefix string) {
	ctx := context.Background()
	keys := nearKeys(prefix, 5)
	for _, k := range keys {
		if err := other.Set(ctx, k, []byte("old"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	var worst time.Duration
	for round := range 20 {
		if _, err := s.GetMulti(ctx, keys); err != nil { // fill the local copies
			t.Fatal(err)
		}
		want := "new" + strconv.Itoa(round)
		if err := other.Set(ctx, keys[2], []byte(want), time.Minute); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		deadline := start.Add(2 * time.Second)
		for {
			vals, err := s.GetMulti(ctx, keys)
			if err != nil {
				t.Fatal(err)
			}
			if string(vals[2]) == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: still %q 2s after another store wrote %q", round, vals[2], want)
			}
			time.Sleep(20 * time.Microsecond)
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("another store's write seen after at most %v (20 rounds)", worst)
}

func TestNearCacheHits(t *testing.T) {
	s := NewStandaloneStore(t, redis.Options{NearCache: true, PoolSize: 4, NearMaxLag: hitLag})
	checkNearHits(t, s, "near-hits", []*testserver.Redis{StandaloneServer(t)})
}

func TestNearCacheOtherWriter(t *testing.T) {
	s := NewStandaloneStore(t, redis.Options{NearCache: true})
	other := NewStandaloneStore(t, redis.Options{})
	checkNearCrossWrite(t, s, other, "near-other")
}

func TestNearCacheClusterHits(t *testing.T) {
	s := NewClusterStore(t, redis.Options{NearCache: true, NearMaxLag: hitLag})
	checkNearHits(t, s, "near-chits", ClusterServer(t).Masters())
}

func TestNearCacheClusterOtherWriter(t *testing.T) {
	s := NewClusterStore(t, redis.Options{NearCache: true})
	other := NewClusterStore(t, redis.Options{})
	checkNearCrossWrite(t, s, other, "near-cother")
}

// TestNearCacheReadYourWrites: Delete (or Set) then an immediate read on
// the same store never returns the old value, while other goroutines keep
// reading the key through the near cache.
func TestNearCacheReadYourWrites(t *testing.T) {
	s := NewStandaloneStore(t, redis.Options{NearCache: true, PoolSize: 4})
	ctx := context.Background()
	keys := nearKeys("near-ryw", 3)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.GetMulti(ctx, keys); err != nil {
					t.Error(err)
					return
				}
				reads.Add(1)
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	for i := range 1000 {
		v := []byte("v" + strconv.Itoa(i))
		if err := s.Set(ctx, keys[1], v, time.Minute); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetMulti(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[1], v) {
			t.Fatalf("round %d: GetMulti after Set = %q, want %q", i, got[1], v)
		}
		if err := s.Delete(ctx, keys[1]); err != nil {
			t.Fatal(err)
		}
		got, err = s.GetMulti(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		if got[1] != nil {
			t.Fatalf("round %d: GetMulti after Delete = %q, want nil", i, got[1])
		}
		if b, ok, err := s.Get(ctx, keys[1]); err != nil || ok {
			t.Fatalf("round %d: Get after Delete = %q, %v, %v", i, b, ok, err)
		}
	}
	t.Logf("%d concurrent reads", reads.Load())
}

// TestNearCacheRefused: a user whose ACL denies CLIENT TRACKING gets a
// working store without the near cache, and one log line saying so.
func TestNearCacheRefused(t *testing.T) {
	srv := StandaloneServer(t)
	for _, deny := range []string{"-client|tracking", "-client"} {
		t.Run(deny, func(t *testing.T) {
			user := "near-" + strings.NewReplacer("|", "-", "-", "").Replace(deny)
			if _, err := srv.Do("ACL", "SETUSER", user, "reset", "on", ">pw", "~*", "&*", "+@all", deny); err != nil {
				t.Fatal(err)
			}
			var logs testlog.Buffer
			s := NewStandaloneStore(t, redis.Options{
				NearCache: true, Username: user, Password: "pw",
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			ctx := context.Background()
			key := "near-refused:" + user
			if err := s.Set(ctx, key, []byte("x"), time.Minute); err != nil {
				t.Fatal(err)
			}
			vals, err := s.GetMulti(ctx, []string{key, key + ":absent"})
			if err != nil || string(vals[0]) != "x" || vals[1] != nil {
				t.Fatalf("GetMulti = %q, %v", vals, err)
			}
			// Reads reach the server: no near cache.
			before := getCalls(t, srv)
			if _, _, err := s.Get(ctx, key); err != nil {
				t.Fatal(err)
			}
			if after := getCalls(t, srv); after == before {
				t.Fatal("Get did not reach the server: the near cache is on")
			}
			out := logs.String()
			if strings.Count(out, "near cache off") != 1 {
				t.Fatalf("log = %q, want one line saying the near cache is off", out)
			}
			t.Logf("log: %s", strings.TrimSpace(out))
		})
	}
}

func TestNearOptionsValidate(t *testing.T) {
	err := redis.Options{NearMaxBytes: -1, NearTTL: -time.Second}.Validate()
	if err == nil || !strings.Contains(err.Error(), "NearMaxBytes") || !strings.Contains(err.Error(), "NearTTL") {
		t.Fatalf("Validate = %v, want errors for NearMaxBytes and NearTTL", err)
	}
	o := redis.Options{}.WithDefaults()
	if o.NearMaxBytes != redis.DefaultNearMaxBytes || o.NearTTL != redis.DefaultNearTTL {
		t.Fatalf("WithDefaults: NearMaxBytes %d, NearTTL %v", o.NearMaxBytes, o.NearTTL)
	}
}

// TestStoreContractNear runs the hoard.Store contract suite on stores with
// the near cache on, standalone and on a 3-master Cluster (private servers:
// the suite kills and freezes them).
func TestStoreContractNear(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		srv := testserver.RedisT(t, testserver.RedisOptions{})
		storetest.Run(t, storetest.Harness{
			New: func(t *testing.T) hoard.Store {
				return contractStore(t, redis.Options{Addrs: []string{srv.Addr}, NearCache: true})
			},
			Timeout:       contractTimeout,
			Lag:           redis.DefaultNearMaxLag,
			TTLResolution: time.Millisecond,
			Kill:          func(t *testing.T) { must(t, srv.Kill()) },
			Restart:       func(t *testing.T) { must(t, srv.Restart()) },
			Pause:         func(t *testing.T) { must(t, srv.Pause()) },
			Resume:        func(t *testing.T) { must(t, srv.Resume()) },
		})
	})

	t.Run("rediscluster", func(t *testing.T) {
		c := testserver.RedisClusterT(t, 3, 0)
		each := func(t *testing.T, f func(*testserver.Redis) error) {
			t.Helper()
			var wg sync.WaitGroup
			for _, n := range c.Nodes {
				wg.Go(func() { must(t, f(n)) })
			}
			wg.Wait()
		}
		healthy := func(t *testing.T) {
			t.Helper()
			if err := c.WaitHealthy(0); err != nil {
				t.Fatal(err)
			}
		}
		storetest.Run(t, storetest.Harness{
			New: func(t *testing.T) hoard.Store {
				return contractStore(t, redis.Options{Addrs: c.Addrs[:1], Cluster: true, NearCache: true})
			},
			Timeout:       contractTimeout,
			Lag:           redis.DefaultNearMaxLag,
			TTLResolution: time.Millisecond,
			Kill:          func(t *testing.T) { each(t, (*testserver.Redis).Kill) },
			Restart:       func(t *testing.T) { each(t, (*testserver.Redis).Restart); healthy(t) },
			Pause:         func(t *testing.T) { each(t, (*testserver.Redis).Pause) },
			Resume:        func(t *testing.T) { each(t, (*testserver.Redis).Resume); healthy(t) },
			Nodes:         len(c.Masters()),
			Locate: func(t *testing.T, key string) string {
				for _, m := range c.Masters() {
					n, err := m.DoReply("EXISTS", key)
					if err != nil && strings.HasPrefix(err.Error(), "MOVED ") {
						continue
					}
					if err != nil {
						t.Fatalf("EXISTS on %s: %v", m.Addr, err)
					}
					if n == int64(1) {
						return m.Addr
					}
				}
				return ""
			},
		})
	})
}

// TestNearCacheDisconnectDropsCopies: when the store's connections are
// killed, their local copies go with them (rueidis flushes a connection's
// cache when it breaks): a value changed while no invalidation could be
// delivered is read anew, not served from memory.
func TestNearCacheDisconnectDropsCopies(t *testing.T) {
	srv := StandaloneServer(t)
	const user = "near-disconnect"
	if _, err := srv.Do("ACL", "SETUSER", user, "reset", "on", ">pw", "~*", "&*", "+@all"); err != nil {
		t.Fatal(err)
	}
	s := NewStandaloneStore(t, redis.Options{NearCache: true, Username: user, Password: "pw", NearMaxLag: hitLag})
	ctx := context.Background()
	keys := nearKeys("near-disconnect", 4)
	for _, k := range keys {
		if _, err := srv.Do("SET", k, "old"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.GetMulti(ctx, keys); err != nil { // fill the local copies
		t.Fatal(err)
	}
	before := getCalls(t, srv)
	if _, err := s.GetMulti(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if getCalls(t, srv) != before {
		t.Fatal("second read was not served from the near cache")
	}
	if _, err := srv.Do("CLIENT", "KILL", "USER", user); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, err := srv.Do("SET", k, "new"); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		vals, err := s.GetMulti(ctx, keys)
		if err == nil && string(vals[0]) == "new" && string(vals[3]) == "new" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the connections were killed: GetMulti = %q, %v; want the new values", vals, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestNearCacheRESP2Server: a server that does not speak RESP3 (HELLO
// unknown, as before Redis 6; here renamed away) gets a working store
// without the near cache, and one log line.
func TestNearCacheRESP2Server(t *testing.T) {
	srv := testserver.RedisT(t, testserver.RedisOptions{Args: []string{"--rename-command", "HELLO", ""}})
	var logs testlog.Buffer
	s := newStore(t, redis.Options{
		Addrs: []string{srv.Addr}, NearCache: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	ctx := context.Background()
	if err := s.Set(ctx, "resp2", []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if vals, err := s.GetMulti(ctx, []string{"resp2"}); err != nil || string(vals[0]) != "x" {
			t.Fatalf("GetMulti = %q, %v", vals, err)
		}
	}
	out := logs.String()
	if strings.Count(out, "near cache off") != 1 {
		t.Fatalf("log = %q, want one line saying the near cache is off", out)
	}
	t.Logf("log: %s", strings.TrimSpace(out))
}

// TestNearCacheClusterRefused: on Cluster too, a user denied CLIENT
// TRACKING gets a working store without the near cache.
func TestNearCacheClusterRefused(t *testing.T) {
	c := ClusterServer(t)
	const user = "near-cluster-denied"
	for _, n := range c.Nodes {
		if _, err := n.Do("ACL", "SETUSER", user, "reset", "on", ">pw", "~*", "&*", "+@all", "-client|tracking"); err != nil {
			t.Fatal(err)
		}
	}
	var logs testlog.Buffer
	s := NewClusterStore(t, redis.Options{
		NearCache: true, Username: user, Password: "pw",
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	ctx := context.Background()
	keys := nearKeys("near-cluster-refused", 6)
	for _, k := range keys {
		if err := s.Set(ctx, k, []byte("x"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // past the store's own write marks
	if _, err := s.GetMulti(ctx, keys); err != nil {
		t.Fatal(err)
	}
	before := getCalls(t, c.Masters()...)
	vals, err := s.GetMulti(ctx, keys)
	if err != nil || string(vals[5]) != "x" {
		t.Fatalf("GetMulti = %q, %v", vals, err)
	}
	if getCalls(t, c.Masters()...) == before {
		t.Fatal("GetMulti did not reach the servers: the near cache is on")
	}
	if out := logs.String(); strings.Count(out, "near cache off") != 1 {
		t.Fatalf("log = %q, want one line saying the near cache is off", out)
	}
}

// TestNearCacheConnectsInBackground: a store with the near cache created
// while its server is down connects by itself with the near cache on
// (hits make no GET), and falls back without it when the server, once up,
// refuses client-side caching.
func TestNearCacheConnectsInBackground(t *testing.T) {
	t.Run("on", func(t *testing.T) {
		port, addr := reserveAddr(t, false)
		s := newUnconnected(t, redis.Options{Addrs: []string{addr}, NearCache: true, NearMaxLag: hitLag})
		srv := startRedisOn(t, port, testserver.RedisOptions{})
		connects(t, s)
		checkNearHits(t, s, "near-bg", []*testserver.Redis{srv})
	})
	t.Run("refused", func(t *testing.T) {
		port, addr := reserveAddr(t, false)
		var logs testlog.Buffer
		s := newUnconnected(t, redis.Options{Addrs: []string{addr}, NearCache: true,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		startRedisOn(t, port, testserver.RedisOptions{Args: []string{"--rename-command", "HELLO", ""}})
		connects(t, s)
		if out := logs.String(); strings.Count(out, "near cache off") != 1 {
			t.Fatalf("log = %q, want one line saying the near cache is off", out)
		}
	})
}

// TestNearCacheProviderHits: the provider API (Get, Fetch, GetJSON) of a
// Cache on a store with the near cache gets its hits from local copies: no
// GET reaches the server once the values are held.
func TestNearCacheProviderHits(t *testing.T) {
	srv := StandaloneServer(t)
	writer := NewStandaloneStore(t, redis.Options{})
	s := NewStandaloneStore(t, redis.Options{NearCache: true, NearMaxLag: hitLag})
	cfg := hoard.Config{KeyPrefix: "near-provider"}
	ctx := context.Background()
	w, err := hoard.New(writer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c, err := hoard.New(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type point struct{ X, Y int }
	if err := w.Set(ctx, "raw", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := w.SetJSON(ctx, "json", point{1, 2}, time.Minute); err != nil {
		t.Fatal(err)
	}
	loads := 0
	load := func(context.Context) ([]byte, error) { loads++; return []byte("loaded"), nil }
	reads := func() {
		if v, ok, err := c.Get(ctx, "raw"); err != nil || !ok || string(v) != "v" {
			t.Fatalf("Get = %q, %v, %v", v, ok, err)
		}
		if p, ok, err := hoard.GetJSON[point](ctx, c, "json"); err != nil || !ok || p != (point{1, 2}) {
			t.Fatalf("GetJSON = %v, %v, %v", p, ok, err)
		}
		if v, err := c.Fetch(ctx, "fetched", time.Minute, load); err != nil || string(v) != "loaded" {
			t.Fatalf("Fetch = %q, %v", v, err)
		}
	}
	reads() // the first reads fetch and keep the copies (and Fetch stores)
	waitFor(t, 5*time.Second, "the provider reads to be served from copies", func() bool {
		before := getCalls(t, srv)
		reads()
		return getCalls(t, srv) == before
	})
	before := getCalls(t, srv)
	for range 20 {
		reads()
	}
	if after := getCalls(t, srv); after != before {
		t.Fatalf("provider hits reached the server: GET+MGET calls %d -> %d", before, after)
	}
	if loads != 1 {
		t.Fatalf("Fetch loaded %d times, want once", loads)
	}
}
