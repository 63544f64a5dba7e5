package testserver

import "testing"

// RedisT starts a Redis for one test: it fails the test when the server
// cannot start and stops it in t.Cleanup.
func RedisT(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	r, err := StartRedis(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("stop redis %s: %v", r.Addr, err)
		}
	})
	return r
}

// RedisClusterT starts a Redis Cluster for one test (or one benchmark):
// it fails the test when the cluster cannot be created and stops it in
// t.Cleanup. Creation takes seconds; prefer one cluster per package in
// TestMain when several tests need one.
func RedisClusterT(t testing.TB, masters, replicas int) *Cluster {
	t.Helper()
	c, err := StartRedisCluster(masters, replicas)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop redis cluster: %v", err)
		}
	})
	return c
}

// MemcachedT starts a memcached for one test: it fails the test when the
// server cannot start and stops it in t.Cleanup.
func MemcachedT(t testing.TB, opts MemcachedOptions) *Memcached {
	t.Helper()
	m, err := StartMemcached(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Errorf("stop memcached %s: %v", m.Addr, err)
		}
	})
	return m
}

// MemcachedPoolT starts n memcached servers for one test: it fails the
// test when one cannot start and stops them all in t.Cleanup.
func MemcachedPoolT(t testing.TB, n int, opts MemcachedOptions) []*Memcached {
	t.Helper()
	pool, err := StartMemcachedPool(n, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := StopMemcachedPool(pool); err != nil {
			t.Errorf("stop memcached pool: %v", err)
		}
	})
	return pool
}
