package redis_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/redis"
)

// TestNearCacheFrozenServer: a server that stops answering without
// breaking the connections (SIGSTOP) pushes no invalidation, so a read
// started NearMaxLag after it stopped is not served from a local copy
// (another instance's write, unable to invalidate, is acknowledged no
// sooner than Timeout); once the server answers again, copies serve again.
func TestNearCacheFrozenServer(t *testing.T) {
	srv := testserver.RedisT(t, testserver.RedisOptions{})
	const timeout, lag = 200 * time.Millisecond, 20 * time.Millisecond
	s := newStore(t, redis.Options{Addrs: []string{srv.Addr}, NearCache: true, Timeout: timeout, NearMaxLag: lag})
	ctx := context.Background()
	keys := nearKeys("near-frozen", 3)
	for _, k := range keys {
		if _, err := srv.Do("SET", k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	held := func() bool { // the keys are read without reaching the server
		before := getCalls(t, srv)
		if _, err := s.GetMulti(ctx, keys); err != nil {
			t.Fatal(err)
		}
		return getCalls(t, srv) == before
	}
	waitFor(t, 5*time.Second, "copies to serve", held)

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	time.Sleep(lag) // the server stopped before Pause returned
	if v, err := s.GetMulti(ctx, keys); err == nil {
		t.Fatalf("GetMulti NearMaxLag after the server froze = %q from local copies, want the server's timeout", v)
	}
	if v, ok, err := s.Get(ctx, keys[0]); err == nil {
		t.Fatalf("Get NearMaxLag after the server froze = %q, %v from a local copy, want the server's timeout", v, ok)
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	waitFor(t, 5*time.Second, "copies to serve after the server answered again", held)
}

// checkNearDeleteVisible: once Delete returns on one store with the near
// cache, a read on another one never returns its local copy of the key,
// round after round, while goroutines keep both processes' CPUs busy.
func checkNearDeleteVisible(t *testing.T, reader, writer *redis.Store, prefix string) {
	ctx := context.Background()
	keys := nearKeys(prefix, 4)
	stop := make(chan struct{})
	var busy sync.WaitGroup
	for range 4 { // compete with the connections' readers for the CPUs
		busy.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					if _, err := reader.GetMulti(ctx, keys[1:]); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	defer func() { close(stop); busy.Wait() }()
	const rounds = 200
	for round := range rounds {
		want := []byte("v" + fmt.Sprint(round))
		for _, k := range keys {
			if err := writer.Set(ctx, k, want, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		// Until the reader holds the new value (its copies of the old one
		// are dropped by pushes, the new one is then read and kept).
		deadline := time.Now().Add(5 * time.Second)
		for {
			v, _, err := reader.Get(ctx, keys[0])
			if err != nil {
				t.Fatal(err)
			}
			if string(v) == string(want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: reader still reads %q 5s after the write of %q", round, v, want)
			}
		}
		if err := writer.Delete(ctx, keys[0]); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := reader.Get(ctx, keys[0]); err != nil || ok {
			t.Fatalf("round %d: Get right after another store's Delete returned = %q, %v, %v; want not found", round, v, ok, err)
		}
	}
}

func TestNearCacheDeleteVisible(t *testing.T) {
	reader := NewStandaloneStore(t, redis.Options{NearCache: true})
	writer := NewStandaloneStore(t, redis.Options{NearCache: true})
	checkNearDeleteVisible(t, reader, writer, "near-delvis")
}

// TestNearCachePropagation measures what NearMaxLag hides: the time from a
// delete's reply to a writer without the near cache (so without the wait)
// to the first read on another store that no longer finds the key. It
// logs p50/p99/max and requires every delete to be seen within a second.
func TestNearCachePropagation(t *testing.T) {
	reader := NewStandaloneStore(t, redis.Options{NearCache: true})
	writer := NewStandaloneStore(t, redis.Options{})
	ctx := context.Background()
	key := nearKeys("near-propagation", 1)[0]
	var delays []time.Duration
	for round := range 200 {
		if err := writer.Set(ctx, key, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the reader to hold the key", func() bool {
			v, _, err := reader.Get(ctx, key)
			return err == nil && string(v) == "v" && reader.NearStats().Copies > 0
		})
		if err := writer.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		for {
			_, ok, err := reader.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if time.Since(acked) > time.Second {
				t.Fatalf("round %d: the reader still finds the key 1s after the delete", round)
			}
		}
		delays = append(delays, time.Since(acked))
	}
	slices.Sort(delays)
	t.Logf("delete acknowledged → first read without it, 200 rounds: p50 %v, p99 %v, max %v",
		delays[len(delays)/2], delays[len(delays)*99/100], delays[len(delays)-1])
}

func TestNearCacheClusterDeleteVisible(t *testing.T) {
	reader := NewClusterStore(t, redis.Options{NearCache: true})
	writer := NewClusterStore(t, redis.Options{NearCache: true})
	checkNearDeleteVisible(t, reader, writer, "near-cdelvis")
}

// TestNearCacheMemoryBound: however many keys are read, the copies stay
// within NearMaxBytes, and the heap (and the process's resident memory)
// they take stays within it plus a stated overhead: evicting (20,000 values
// of 1 KiB under a 4 MiB bound), and holding 100,000 values of 300 bytes
// under the default bound.
func TestNearCacheMemoryBound(t *testing.T) {
	t.Run("evicting", func(t *testing.T) { checkNearMemory(t, 20_000, 1024, 4<<20) })
	t.Run("holding-100k", func(t *testing.T) { checkNearMemory(t, 100_000, 300, redis.DefaultNearMaxBytes) })
}

// checkNearMemory reads n values of size bytes twice through a store whose
// near cache is bounded to maxBytes.
func checkNearMemory(t *testing.T, n, size int, maxBytes int64) {
	srv := testserver.RedisT(t, testserver.RedisOptions{})
	writer := newStore(t, redis.Options{Addrs: []string{srv.Addr}})
	ctx := context.Background()
	value := []byte(strings.Repeat("x", size))
	keys := make([]string, n)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				keys[i] = fmt.Sprintf("near-bound:%d", i)
				if err := writer.Set(ctx, keys[i], value, time.Minute); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	s := newStore(t, redis.Options{Addrs: []string{srv.Addr}, NearCache: true, NearMaxBytes: maxBytes})
	if _, err := s.GetMulti(ctx, keys[:100]); err != nil { // the connections' buffers
		t.Fatal(err)
	}
	heapBefore, rssBefore := heapInUse(), residentBytes(t)
	for round := range 2 {
		for i := 0; i < n; i += 100 {
			vals, err := s.GetMulti(ctx, keys[i:i+100])
			if err != nil {
				t.Fatal(err)
			}
			if len(vals[0]) != size {
				t.Fatalf("round %d: value of %s has %d bytes", round, keys[i], len(vals[0]))
			}
		}
	}
	st := s.NearStats()
	heap, rss := heapInUse()-heapBefore, residentBytes(t)-rssBefore
	t.Logf("%d copies, %d bytes counted (bound %d), %d evicted; heap grew %d bytes, resident memory %d",
		st.Copies, st.Bytes, maxBytes, st.Evicted, heap, rss)
	if st.Bytes > maxBytes {
		t.Fatalf("copies counted for %d bytes, over NearMaxBytes %d", st.Bytes, maxBytes)
	}
	// A read made while the process is not live (a long GC pause under
	// -race) is not kept: allow a few.
	if fits := int64(n)*int64(size+len(keys[n-1])+200) <= maxBytes; fits && st.Copies < n-n/100 {
		t.Fatalf("%d copies held of %d that fit in the bound", st.Copies, n)
	} else if !fits && (st.Evicted == 0 || int64(st.Copies) < maxBytes/int64(2*size)) {
		t.Fatalf("%d copies held, %d evicted: eviction did not keep the cache full", st.Copies, st.Evicted)
	}
	// Besides the copies the store allocates little (connections, pools):
	// the heap must not hold evicted copies, nor grow past what the copies
	// are counted for.
	if limit := maxBytes + 4<<20; heap > limit {
		t.Fatalf("heap grew %d bytes with the near cache bounded to %d (limit %d)", heap, maxBytes, limit)
	}
}

// residentBytes is the process's resident memory (VmRSS).
func residentBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// heapInUse returns the bytes of live heap objects after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// waitFor polls cond until it holds, failing t after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
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

// TestNearCacheClusterSlotMove: when a key's slot moves to another master
// (MIGRATE deletes it on the old one, which pushes the invalidation), the
// reader's copy is dropped; a later write on the new master is seen at
// once, as it would not be with a copy tracked only on the old master.
func TestNearCacheClusterSlotMove(t *testing.T) {
	c := testserver.RedisClusterT(t, 3, 0)
	opts := redis.Options{Addrs: c.Addrs[:1], Cluster: true, NearCache: true}
	reader, writer := newStore(t, opts), newStore(t, opts)
	ctx := context.Background()
	const key = "near-slotmove:{moving}"
	slot, err := c.Nodes[0].Do("CLUSTER", "KEYSLOT", key)
	if err != nil {
		t.Fatal(err)
	}
	var src, dst *testserver.Redis
	for _, m := range c.Masters() {
		if _, err := m.DoReply("EXISTS", key); err == nil {
			src = m
		} else if dst == nil {
			dst = m
		}
	}
	if src == nil || dst == nil {
		t.Fatalf("no owner (%v) or no other master (%v) for slot %s", src, dst, slot)
	}
	id := func(r *testserver.Redis) string {
		v, err := r.Do("CLUSTER", "MYID")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if err := writer.Set(ctx, key, []byte("v1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the reader to hold the key", func() bool {
		before := getCalls(t, c.Masters()...)
		if v, _, err := reader.Get(ctx, key); err != nil || string(v) != "v1" {
			t.Fatalf("Get = %q, %v", v, err)
		}
		return getCalls(t, c.Masters()...) == before
	})

	host, port, _ := strings.Cut(dst.Addr, ":")
	for _, cmd := range [][]string{
		{dst.Addr, "CLUSTER", "SETSLOT", slot, "IMPORTING", id(src)},
		{src.Addr, "CLUSTER", "SETSLOT", slot, "MIGRATING", id(dst)},
		{src.Addr, "MIGRATE", host, port, "", "0", "5000", "KEYS", key},
	} {
		node := src
		if cmd[0] == dst.Addr {
			node = dst
		}
		if _, err := node.Do(cmd[1:]...); err != nil {
			t.Fatalf("%v: %v", cmd[1:], err)
		}
	}
	for _, m := range c.Masters() {
		if _, err := m.Do("CLUSTER", "SETSLOT", slot, "NODE", id(dst)); err != nil {
			t.Fatal(err)
		}
	}

	waitFor(t, time.Second, "the old master's push to drop the reader's copy", func() bool {
		return reader.NearStats().Copies == 0
	})
	if err := writer.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := reader.Get(ctx, key); err != nil || ok {
		t.Fatalf("Get after the slot moved and the key was deleted on its new master = %q, %v, %v; want not found", v, ok, err)
	}
}

// TestNearCacheClusterReplicaDown: a replica that dies does not stop the
// near cache (the store reads masters only; the heartbeat pings masters).
func TestNearCacheClusterReplicaDown(t *testing.T) {
	c := testserver.RedisClusterT(t, 3, 1)
	const lag = 200 * time.Millisecond // wide: local hits are counted
	s := newStore(t, redis.Options{Addrs: c.Addrs[:1], Cluster: true, NearCache: true, NearMaxLag: lag})
	ctx := context.Background()
	keys := nearKeys("near-replica", 12)
	for _, k := range keys {
		if err := s.Set(ctx, k, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	held := func() bool {
		before := getCalls(t, c.Masters()...)
		if _, err := s.GetMulti(ctx, keys); err != nil {
			t.Fatal(err)
		}
		return getCalls(t, c.Masters()...) == before
	}
	waitFor(t, 5*time.Second, "copies to serve", held)
	if err := c.Replicas()[0].Kill(); err != nil {
		t.Fatal(err)
	}
	// Past the lag: a failed ping of the dead replica would have stopped
	// the copies by now.
	time.Sleep(2 * lag)
	for i := range 20 {
		if !held() {
			t.Fatalf("read %d after a replica died reached the masters: the near cache stopped", i)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
