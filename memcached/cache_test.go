package memcached_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/memcached"
)

// cacheOnPool returns a hoard.Cache on a Store on pool holding n values
// (each key holds its own name), the keys, and the address of the server
// holding the cache's epoch key.
func cacheOnPool(t *testing.T, pool []*testserver.Memcached, n int) (c *hoard.Cache, ns string, keys []string, epochServer string) {
	t.Helper()
	ns = "c" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	// The tests kill servers, which refuse connects at once: the long test
	// Timeout only keeps a stalled host from failing the live servers' calls.
	s := NewStore(t, pool, memcached.Options{Timeout: testTimeout, Backoff: testBackoff})
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
	return c, ns, keys, Locate(t, pool, ns+"#epoch")
}

// TestCacheWithKilledServer runs a hoard.Cache on three servers and kills
// one that does not hold the cache's epoch: the values whose entry and
// generation live on the other two keep hitting, the others miss (never an
// error, never a stale or wrong value), writes to the dead server fail, and
// everything hits again after a restart.
func TestCacheWithKilledServer(t *testing.T) {
	pool := testserver.MemcachedPoolT(t, 3, testserver.MemcachedOptions{})
	c, ns, keys, epochServer := cacheOnPool(t, pool, 60)
	var dead *testserver.Memcached
	for _, m := range pool {
		if m.Addr != epochServer {
			dead = m
			break
		}
	}
	onDead := make(map[string]bool)      // the entry or the generation
	entryOnDead := make(map[string]bool) // the entry
	for _, k := range keys {
		entryOnDead[k] = Locate(t, pool, ns+k) == dead.Addr
		onDead[k] = entryOnDead[k] || Locate(t, pool, ns+"#g:"+k) == dead.Addr
	}
	if err := dead.Kill(); err != nil {
		t.Fatal(err)
	}
	hits, misses := 0, 0
	for round := range 3 { // the first round finds broken connections
		hits, misses = 0, 0
		for _, k := range keys {
			v, found, err := c.Get(bg, k)
			switch {
			case err != nil:
				t.Errorf("round %d: Get(%q) with one of three servers killed: %v; want a hit or a miss", round, k, err)
			case found && string(v) != k:
				t.Errorf("round %d: Get(%q) = %q", round, k, v)
			case found && onDead[k]:
				t.Errorf("round %d: Get(%q) hit, but its entry or generation was on the killed server", round, k)
			case !found && !onDead[k]:
				t.Errorf("round %d: Get(%q) missed, but its keys are on the live servers", round, k)
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
		if onDead[k] {
			continue
		}
		v, err := c.Fetch(bg, k, time.Minute, func(context.Context) ([]byte, error) { loaded = true; return []byte("loaded"), nil })
		if err != nil || string(v) != k || loaded {
			t.Fatalf("Fetch(%q) of a live value = %q, %v (loaded: %v); want the cached value", k, v, err, loaded)
		}
		break
	}
	for _, k := range keys {
		if entryOnDead[k] {
			if err := c.Set(bg, k, []byte("new"), time.Minute); err == nil {
				t.Errorf("Set(%q), whose entry lives on the killed server, succeeded", k)
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

// TestCacheWithEpochServerKilled documents the limit of the above: every
// value records the cache's one epoch key, so when its server is down no
// value can be proven current and every Get misses (or fails, when all the
// keys it reads live there). Nothing stale or wrong is ever served.
func TestCacheWithEpochServerKilled(t *testing.T) {
	pool := testserver.MemcachedPoolT(t, 3, testserver.MemcachedOptions{})
	c, _, keys, epochServer := cacheOnPool(t, pool, 30)
	if err := serverOf(t, pool, epochServer).Kill(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for _, k := range keys {
			if v, found, err := c.Get(bg, k); found {
				t.Errorf("Get(%q) = %q, %v with the epoch's server killed; want a miss or an error", k, v, err)
			}
		}
	}
}
