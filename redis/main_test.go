package redis_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/redis"
)

// Shared fixtures, reusable by other tests of this package (e.g. the
// storetest contract suite): servers are started once per test binary, on
// first use, and stopped by TestMain.
//
//	StandaloneServer(t) — a plain private redis-server
//	ClusterServer(t)    — a private Redis Cluster: 3 masters with 1 replica each
//	NewStandaloneStore(t, opts) / NewClusterStore(t, opts) — a Store on them, closed by t.Cleanup
//
// Tests of this package use distinct key prefixes instead of flushing, and
// do not run in parallel.

// testTimeout is the per-call Timeout of test stores: generous, because the
// race detector and a shared 2-core host make calls slow; timing behaviour
// is tested with explicit, smaller timeouts.
const testTimeout = 5 * time.Second

var (
	standaloneOnce sync.Once
	standaloneSrv  *testserver.Redis
	standaloneErr  error

	clusterOnce sync.Once
	clusterSrv  *testserver.Cluster
	clusterErr  error
)

// StandaloneServer returns the package's shared standalone Redis server.
func StandaloneServer(t testing.TB) *testserver.Redis {
	t.Helper()
	standaloneOnce.Do(func() {
		standaloneSrv, standaloneErr = testserver.StartRedis(testserver.RedisOptions{})
	})
	if standaloneErr != nil {
		t.Fatalf("start redis-server: %v", standaloneErr)
	}
	return standaloneSrv
}

// NewStandaloneStore returns a Store on StandaloneServer with opts (Addrs
// and, if zero, Timeout filled in), closed when t ends.
func NewStandaloneStore(t testing.TB, opts redis.Options) *redis.Store {
	t.Helper()
	opts.Addrs = []string{StandaloneServer(t).Addr}
	return newStore(t, opts)
}

// ClusterServer returns the package's shared Redis Cluster (3 masters, each
// with a replica, so that walks must tell masters from replicas).
func ClusterServer(t testing.TB) *testserver.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		clusterSrv, clusterErr = testserver.StartRedisCluster(3, 1)
	})
	if clusterErr != nil {
		t.Fatalf("start redis cluster: %v", clusterErr)
	}
	return clusterSrv
}

// NewClusterStore returns a Cluster Store on ClusterServer with opts (Addrs,
// Cluster and, if zero, Timeout filled in), closed when t ends. It is given
// one seed only: the client must discover the other nodes.
func NewClusterStore(t testing.TB, opts redis.Options) *redis.Store {
	t.Helper()
	opts.Addrs = []string{ClusterServer(t).Addrs[0]}
	opts.Cluster = true
	return newStore(t, opts)
}

func newStore(t testing.TB, opts redis.Options) *redis.Store {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = testTimeout
	}
	s, err := redis.New(context.Background(), opts)
	if err != nil {
		t.Fatalf("redis.New(%+v): %v", opts, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopServers()
	os.Exit(code)
}

func stopServers() {
	if standaloneSrv != nil {
		if err := standaloneSrv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop redis-server:", err)
		}
	}
	if clusterSrv != nil {
		if err := clusterSrv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop redis cluster:", err)
		}
	}
}
