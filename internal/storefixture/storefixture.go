// Package storefixture gives tests every store hoard supports, on real
// servers: the in-process memory store, a private redis-server, a private
// 3-master Redis Cluster and a pool of 3 memcached processes, all started by
// internal/testserver on free loopback ports.
//
// Shared servers are started once per test binary, on first use, and
// stopped by Main; tests keep apart by giving every Cache its own random
// KeyPrefix. A test that kills or freezes a server asks for a Dedicated
// backend, whose servers are its own.
//
//	func TestMain(m *testing.M) { storefixture.Main(m) }
//
//	for _, b := range storefixture.All(t) {
//		t.Run(b.Name, func(t *testing.T) { c := b.NewCache(t, hoard.Config{}) ... })
//	}
package storefixture

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/stores"
)

// Names of the backends, in the order All returns them.
const (
	Memory       = "memory"
	Redis        = "redis"
	RedisCluster = "rediscluster"
	Memcached    = "memcached"
)

// Names lists every backend name.
var Names = []string{Memory, Redis, RedisCluster, Memcached}

// Timeout is the per-call store timeout the fixtures configure
// (Cache.Timeout, CACHE_TIMEOUT, which the stores take).
// Generous enough for a loaded 2-core CI machine running -race.
const Timeout = 250 * time.Millisecond

// Backend is one store under test.
type Backend struct {
	Name string

	// Config points stores.Open at this backend's servers (Backend, Redis,
	// Memcached and Cache.Timeout set; Cache.KeyPrefix unique per call).
	Config func(t testing.TB) stores.Config

	// Outage controls; nil on memory. They act on every server of the
	// backend (all three memcached processes, every Cluster node) except
	// KillOne, which stops one server of a pool or one Cluster master.
	Kill, Restart, Pause, Resume func(t testing.TB)
}

// NewStore opens the backend's store; it is closed when the test ends.
func (b Backend) NewStore(t testing.TB) hoard.Store {
	t.Helper()
	c := b.NewCache(t, hoard.Config{})
	return c.Store()
}

// NewCache returns a Cache over a new connection to the backend, with the
// given cache-wide configuration on top of the backend's (a random
// KeyPrefix unless cfg sets one). It is closed when the test ends.
func (b Backend) NewCache(t testing.TB, cfg hoard.Config) *hoard.Cache {
	t.Helper()
	base := b.Config(t)
	base.Cache.Disabled = cfg.Disabled
	if cfg.KeyPrefix != "" {
		base.Cache.KeyPrefix = cfg.KeyPrefix
	}
	if cfg.DefaultTTL != 0 {
		base.Cache.DefaultTTL = cfg.DefaultTTL
	}
	if cfg.Logger != nil {
		base.Cache.Logger = cfg.Logger
	}
	return b.Open(t, base)
}

// Open returns a Cache built by stores.Open from cfg (usually the
// backend's Config, changed). It is closed when the test ends.
func (b Backend) Open(t testing.TB, cfg stores.Config) *hoard.Cache {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := stores.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("storefixture: open %s: %v", b.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// cacheConfig is the cache-wide part of every backend's Config.
func cacheConfig() hoard.Config {
	return hoard.Config{KeyPrefix: UniquePrefix(), Timeout: Timeout}
}

// UniquePrefix returns a random key namespace such as "t3f9a0c1e:".
func UniquePrefix() string {
	var b [4]byte
	rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + ":"
}

type servers struct {
	redis     *testserver.Redis
	cluster   *testserver.Cluster
	memcached []*testserver.Memcached
}

func (s *servers) stop() {
	if s.redis != nil {
		s.redis.Stop()
	}
	if s.cluster != nil {
		s.cluster.Stop()
	}
	testserver.StopMemcachedPool(s.memcached)
}

var (
	sharedMu sync.Mutex
	shared   servers
)

// Main runs the tests and stops the shared servers afterwards.
func Main(m *testing.M) {
	code := m.Run()
	sharedMu.Lock()
	shared.stop()
	sharedMu.Unlock()
	os.Exit(code)
}

// All returns every backend on the shared servers, starting them on first
// use. Outage controls are nil: use Dedicated for those.
func All(t testing.TB) []Backend {
	t.Helper()
	out := make([]Backend, 0, len(Names))
	for _, n := range Names {
		out = append(out, Shared(t, n))
	}
	return out
}

// Shared returns the named backend on the shared servers.
func Shared(t testing.TB, name string) Backend {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	b, err := start(&shared, name)
	if err != nil {
		t.Fatalf("storefixture: %v", err)
	}
	b.Kill, b.Restart, b.Pause, b.Resume = nil, nil, nil, nil
	return b
}

// Dedicated returns the named backend on servers of its own, stopped when
// the test ends, with outage controls.
func Dedicated(t testing.TB, name string) Backend {
	t.Helper()
	s := &servers{}
	t.Cleanup(s.stop)
	b, err := start(s, name)
	if err != nil {
		t.Fatalf("storefixture: %v", err)
	}
	return b
}

func start(s *servers, name string) (Backend, error) {
	b := Backend{Name: name}
	switch name {
	case Memory:
		b.Config = func(testing.TB) stores.Config {
			return stores.Config{Backend: stores.Memory, Cache: cacheConfig()}
		}
	case Redis:
		if s.redis == nil {
			r, err := testserver.StartRedis(testserver.RedisOptions{})
			if err != nil {
				return b, err
			}
			s.redis = r
		}
		r := s.redis
		b.Config = func(testing.TB) stores.Config {
			cfg := stores.Config{Backend: stores.Redis, Cache: cacheConfig()}
			cfg.Redis.Addrs = []string{r.Addr}
			return cfg
		}
		b.Kill = func(t testing.TB) { check(t, r.Kill()) }
		b.Restart = func(t testing.TB) { check(t, r.Restart()) }
		b.Pause = func(t testing.TB) { check(t, r.Pause()) }
		b.Resume = func(t testing.TB) { check(t, r.Resume()) }
	case RedisCluster:
		if s.cluster == nil {
			c, err := testserver.StartRedisCluster(3, 0)
			if err != nil {
				return b, err
			}
			s.cluster = c
		}
		c := s.cluster
		b.Config = func(testing.TB) stores.Config {
			cfg := stores.Config{Backend: stores.Redis, Cache: cacheConfig()}
			cfg.Redis.Addrs = []string{c.Addrs[0]}
			cfg.Redis.Cluster = true
			return cfg
		}
		each := func(t testing.TB, f func(*testserver.Redis) error) {
			for _, n := range c.Nodes {
				check(t, f(n))
			}
		}
		b.Kill = func(t testing.TB) { each(t, (*testserver.Redis).Kill) }
		b.Restart = func(t testing.TB) {
			each(t, (*testserver.Redis).Restart)
			check(t, c.WaitHealthy(testserver.ClusterTimeout))
		}
		b.Pause = func(t testing.TB) { each(t, (*testserver.Redis).Pause) }
		b.Resume = func(t testing.TB) { each(t, (*testserver.Redis).Resume) }
	case Memcached:
		if s.memcached == nil {
			pool, err := testserver.StartMemcachedPool(3, testserver.MemcachedOptions{})
			if err != nil {
				return b, err
			}
			s.memcached = pool
		}
		pool := s.memcached
		b.Config = func(testing.TB) stores.Config {
			cfg := stores.Config{Backend: stores.Memcached, Cache: cacheConfig()}
			cfg.Memcached.Servers = testserver.Addrs(pool)
			return cfg
		}
		each := func(t testing.TB, f func(*testserver.Memcached) error) {
			for _, m := range pool {
				check(t, f(m))
			}
		}
		b.Kill = func(t testing.TB) { each(t, (*testserver.Memcached).Kill) }
		b.Restart = func(t testing.TB) { each(t, (*testserver.Memcached).Restart) }
		b.Pause = func(t testing.TB) { each(t, (*testserver.Memcached).Pause) }
		b.Resume = func(t testing.TB) { each(t, (*testserver.Memcached).Resume) }
	default:
		return b, &unknownError{name}
	}
	return b, nil
}

type unknownError struct{ name string }

func (e *unknownError) Error() string {
	return "unknown backend " + e.name + "; use one of " + strings.Join(Names, ", ")
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("storefixture: %v", err)
	}
}
