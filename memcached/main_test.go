package memcached_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/memcached"
)

// Shared fixtures, reusable by other tests of this package (e.g. the
// storetest contract suite):
//
//	SharedPool(t)           — the package's 3 memcached servers, started on first use, stopped by TestMain
//	NewPoolStore(t, opts)   — a Store on SharedPool (Servers and, if zero, Timeout filled in), closed by t.Cleanup
//	NewStore(t, pool, opts) — the same on any pool, e.g. a private one from testserver.MemcachedPoolT
//	Locate(t, pool, key)    — the address of the server of pool that holds key, "" if none
//
// Tests on the shared pool use distinct key prefixes instead of flushing.
// Tests that kill or freeze servers start a private pool.
//
// For the storetest contract: Harness.New is NewStore on a private pool
// (testserver.MemcachedPoolT(t, 3, ...)) with a small Timeout, Harness.Timeout
// that Timeout, TTLResolution time.Second, Nodes 3, Locate wraps Locate, and
// Kill/Restart/Pause/Resume loop over the pool's servers.

// testTimeout is the per-call Timeout of test stores: generous, because the
// race detector and a shared 2-core host make calls slow; timing behaviour
// is tested with explicit, smaller timeouts.
const testTimeout = 5 * time.Second

var (
	sharedOnce sync.Once
	sharedPool []*testserver.Memcached
	sharedErr  error
)

// SharedPool returns the package's shared pool of 3 memcached servers.
func SharedPool(t testing.TB) []*testserver.Memcached {
	t.Helper()
	sharedOnce.Do(func() {
		sharedPool, sharedErr = testserver.StartMemcachedPool(3, testserver.MemcachedOptions{})
	})
	if sharedErr != nil {
		t.Fatalf("start memcached pool: %v", sharedErr)
	}
	return sharedPool
}

// NewPoolStore returns a Store on SharedPool, closed when t ends.
func NewPoolStore(t testing.TB, opts memcached.Options) *memcached.Store {
	t.Helper()
	return NewStore(t, SharedPool(t), opts)
}

// NewStore returns a Store on pool with opts (Servers and, if zero, Timeout
// filled in), closed when t ends.
func NewStore(t testing.TB, pool []*testserver.Memcached, opts memcached.Options) *memcached.Store {
	t.Helper()
	opts.Servers = testserver.Addrs(pool)
	if opts.Timeout == 0 {
		opts.Timeout = testTimeout
	}
	s, err := memcached.New(opts)
	if err != nil {
		t.Fatalf("memcached.New(%+v): %v", opts, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Locate returns the address of the server of pool that holds key (a key
// as given to the Store), or "" when none does. It fails t if more than
// one server holds it. It asks each server directly, not through the ring.
func Locate(t testing.TB, pool []*testserver.Memcached, key string) string {
	t.Helper()
	skey := memcached.StoredKey(key)
	found := ""
	for _, m := range pool {
		c := memcache.New(m.Addr)
		c.Timeout = testTimeout
		_, err := c.Get(skey)
		c.Close()
		switch {
		case err == memcache.ErrCacheMiss:
		case err != nil:
			t.Fatalf("get %q from %s directly: %v", skey, m.Addr, err)
		case found != "":
			t.Fatalf("key %q is on both %s and %s", key, found, m.Addr)
		default:
			found = m.Addr
		}
	}
	return found
}

// serverOf returns the server of pool whose address is addr.
func serverOf(t testing.TB, pool []*testserver.Memcached, addr string) *testserver.Memcached {
	t.Helper()
	for _, m := range pool {
		if m.Addr == addr {
			return m
		}
	}
	t.Fatalf("no server of the pool has address %q", addr)
	return nil
}

var bg = context.Background()

// prefix returns a key prefix unique to t, so tests sharing servers do not
// see each other's keys.
func prefix(t testing.TB) string {
	return fmt.Sprintf("%s:%d:", t.Name(), time.Now().UnixNano())
}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := testserver.StopMemcachedPool(sharedPool); err != nil {
		fmt.Fprintln(os.Stderr, "stop memcached pool:", err)
	}
	os.Exit(code)
}
