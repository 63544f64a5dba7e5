package redis_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/redis"
	"github.com/hoardcache/hoard/storetest"
)

// contractTimeout is the per-call Timeout of the stores under the contract
// suite: large enough that a loaded 2-core machine under -race does not
// time out ordinary calls, small enough that the outage checks (each call
// must fail within Timeout+storetest.Slack) stay quick.
const contractTimeout = 250 * time.Millisecond

// TestStoreContract runs the hoard.Store contract suite on a standalone
// server and on a 3-master Cluster. Both are private to this test rather
// than the package's shared fixtures, because the suite kills and freezes
// them: a shared Cluster with replicas would fail over while frozen and
// leave other tests a changed topology.
func TestStoreContract(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		srv := testserver.RedisT(t, testserver.RedisOptions{})
		storetest.Run(t, storetest.Harness{
			New: func(t *testing.T) hoard.Store {
				return contractStore(t, redis.Options{Addrs: []string{srv.Addr}})
			},
			Timeout:       contractTimeout,
			TTLResolution: time.Millisecond,
			Kill:          func(t *testing.T) { must(t, srv.Kill()) },
			Restart:       func(t *testing.T) { must(t, srv.Restart()) },
			Pause:         func(t *testing.T) { must(t, srv.Pause()) },
			Resume:        func(t *testing.T) { must(t, srv.Resume()) },
		})
	})

	t.Run("rediscluster", func(t *testing.T) {
		c := testserver.RedisClusterT(t, 3, 0) // no replicas: nothing fails over while frozen
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
				// One seed: the client must discover the other masters.
				return contractStore(t, redis.Options{Addrs: c.Addrs[:1], Cluster: true})
			},
			Timeout:       contractTimeout,
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
						continue // another master owns the key's slot
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

func contractStore(t *testing.T, opts redis.Options) *redis.Store {
	t.Helper()
	opts.Timeout = contractTimeout
	s, err := redis.New(context.Background(), opts)
	if err != nil {
		t.Fatalf("redis.New: %v", err)
	}
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
