package redis_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/redis"
)

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
