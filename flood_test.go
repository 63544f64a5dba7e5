package hoard_test

// A flood of distinct query strings: every one is a new
// key, so a cache without a bound would grow with the attacker's request
// count. The memory store must stay within CACHE_MEMORY_MAX_BYTES and the
// process's memory bounded by it.
//
// CI runs a scaled-down flood (with -race, 1M requests would take minutes);
// the full figure is measured without -race:
//
//	go test -run '^TestFlood$' -count=1 -v -flood.requests=1000000 .

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/memory"
)

var (
	floodRequests = flag.Int("flood.requests", 40_000, "TestFlood: number of GETs, each with a distinct query string")
	floodMaxBytes = flag.Int64("flood.maxbytes", 4<<20, "TestFlood: CACHE_MEMORY_MAX_BYTES of the flooded cache")
)

// procStatus returns a field of /proc/self/status in bytes (VmRSS, VmHWM),
// or -1 where there is no /proc.
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// liveHeap collects garbage and returns the bytes of live heap objects.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// nullWriter is a ResponseWriter that keeps the status and drops the body,
// so that the flood measures the cache, not the recorder.
type nullWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *nullWriter) Header() http.Header { return w.h }
func (w *nullWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}
func (w *nullWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

func TestFlood(t *testing.T) {
	requests, limit := *floodRequests, *floodMaxBytes
	store, err := memory.New(memory.Options{MaxBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	c, err := hoard.New(store, hoard.Config{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	body := strings.Repeat("x", 256)
	var stored atomic.Int64
	h := func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"id":%q,"q":%q,"pad":%q}`, r.PathValue("id"), r.URL.RawQuery, body)
	}
	mux, runs := localMux(t, c, miniRoute{pattern: "GET /items/{id}", rt: &hoard.Route{KeyPrefix: "item"}, h: h})

	baseHeap, baseRSS := liveHeap(), procStatus("VmRSS")
	var maxHeap uint64
	var maxWeight int64
	workers := runtime.GOMAXPROCS(0)
	const checkpoints = 10
	var next atomic.Int64
	for cp := 1; cp <= checkpoints; cp++ {
		end := int64(requests * cp / checkpoints)
		var wg sync.WaitGroup
		var bad atomic.Int64
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodGet, "/items/1", nil)
				for {
					i := next.Add(1) - 1
					if i >= end {
						next.Add(-1)
						return
					}
					r := req.Clone(req.Context())
					r.URL.RawQuery = "q=" + strconv.FormatInt(i, 36) + "&flood=1"
					w := &nullWriter{h: http.Header{}}
					mux.ServeHTTP(w, r)
					if w.status != http.StatusOK {
						bad.Add(1)
					}
					if w.h.Get("Cache-Status") == csStored {
						stored.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if n := bad.Load(); n > 0 {
			t.Fatalf("checkpoint %d: %d non-200 answers", cp, n)
		}
		// Between batches no write is in flight: the accounted size is exact.
		if ws := store.WeightedSize(); ws > limit {
			t.Fatalf("after %d requests the store accounts %d bytes, over its limit of %d", end, ws, limit)
		} else {
			maxWeight = max(maxWeight, ws)
		}
		maxHeap = max(maxHeap, liveHeap())
	}
	rss, hwm := procStatus("VmRSS"), procStatus("VmHWM")
	if got := runs["GET /items/{id}"].Load(); got != int64(requests) || stored.Load() != int64(requests) {
		t.Fatalf("%d requests: handler ran %d times, %d answers stored; want every distinct query a stored miss", requests, got, stored.Load())
	}
	// The flood offered far more than the limit: eviction was exercised.
	if offered := int64(requests) * (int64(len(body)) + memory.EntryOverhead); offered < 2*limit {
		t.Fatalf("the flood offered %d bytes, less than twice the %d-byte limit: raise -flood.requests or lower -flood.maxbytes", offered, limit)
	}
	// Live heap: the store's bound plus its hash table's slack and the
	// generation keys; nothing grows with the request count.
	if grown := int64(maxHeap) - int64(baseHeap); grown > 3*limit+16<<20 {
		t.Errorf("live heap grew by %d bytes over %d requests; want at most 3 × the %d-byte limit + 16 MiB", grown, requests, limit)
	}
	if rss > 0 && !raceEnabled {
		if grown := rss - baseRSS; grown > 4*limit+64<<20 {
			t.Errorf("RSS grew by %d bytes over %d requests; want at most 4 × the %d-byte limit + 64 MiB", grown, requests, limit)
		}
	}
	t.Logf("flood: %d requests (distinct query strings), limit %d bytes (CACHE_MEMORY_MAX_BYTES), %d workers, race detector %v",
		requests, limit, workers, raceEnabled)
	t.Logf("flood: store accounted at most %d bytes (%.1f%% of the limit), %d entries at the end",
		maxWeight, 100*float64(maxWeight)/float64(limit), store.Len())
	t.Logf("flood: live heap %d MiB before, at most %d MiB after a checkpoint; VmRSS %d MiB before, %d MiB after; VmHWM %d MiB",
		baseHeap>>20, maxHeap>>20, baseRSS>>20, rss>>20, hwm>>20)
}
