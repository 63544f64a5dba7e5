package memcached_test

import (
	"sync"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/memcached"
	"github.com/hoardcache/hoard/storetest"
)

// contractTimeout is the per-call Timeout of the store under the contract
// suite: large enough that a loaded 2-core machine under -race does not
// time out ordinary calls, small enough that the outage checks (each call
// must fail within Timeout+storetest.Slack) stay quick.
const contractTimeout = 250 * time.Millisecond

// TestStoreContract runs the hoard.Store contract suite on a pool of three
// memcached servers, private to this test because the suite kills and
// freezes them.
func TestStoreContract(t *testing.T) {
	t.Run("memcached", func(t *testing.T) {
		pool := testserver.MemcachedPoolT(t, 3, testserver.MemcachedOptions{})
		each := func(t *testing.T, f func(*testserver.Memcached) error) {
			t.Helper()
			var wg sync.WaitGroup
			for _, m := range pool {
				wg.Go(func() {
					if err := f(m); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		}
		storetest.Run(t, storetest.Harness{
			New: func(t *testing.T) hoard.Store {
				// The servers run with -I 2m (testserver's default), so
				// that the suite's 1 MiB value fits: MaxValueBytes matches.
				return NewStore(t, pool, memcached.Options{Timeout: contractTimeout, MaxValueBytes: 2<<20 - 512})
			},
			Timeout:       contractTimeout,
			TTLResolution: time.Second,
			Kill:          func(t *testing.T) { each(t, (*testserver.Memcached).Kill) },
			Restart:       func(t *testing.T) { each(t, (*testserver.Memcached).Restart) },
			Pause:         func(t *testing.T) { each(t, (*testserver.Memcached).Pause) },
			Resume:        func(t *testing.T) { each(t, (*testserver.Memcached).Resume) },
			Nodes:         len(pool),
			Locate:        func(t *testing.T, key string) string { return Locate(t, pool, key) },
		})
	})
}
