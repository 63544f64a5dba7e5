package redis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/redis"
)

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
