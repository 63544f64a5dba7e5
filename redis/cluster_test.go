package redis_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/redis"
)

// countKeys returns how many keys match pattern on one node (KEYS is fine
// on a private test server).
func countKeys(t *testing.T, node *testserver.Redis, pattern string) int {
	t.Helper()
	v, err := node.DoReply("KEYS", pattern)
	if err != nil {
		t.Fatalf("KEYS on %s: %v", node.Addr, err)
	}
	keys, ok := v.([]any)
	if !ok {
		t.Fatalf("KEYS on %s answered %T", node.Addr, v)
	}
	return len(keys)
}

func TestClusterDeletePatternEveryMaster(t *testing.T) {
	cl := ClusterServer(t)
	s := NewClusterStore(t, redis.Options{})
	p := t.Name() + ":"
	var keys []string
	for i := range 12000 {
		keys = append(keys, fmt.Sprintf("%sitem:%d", p, i))
	}
	setMany(t, s, keys)
	setMany(t, s, []string{p + "other:1", p + "other:2", p + "other:3"})

	pattern := p + "item:*"
	scansBefore := replicaScans(t, cl)
	for _, m := range cl.Masters() {
		if n := countKeys(t, m, pattern); n < 1000 {
			t.Fatalf("master %s holds only %d of the keys; they should spread over every master", m.Addr, n)
		}
	}
	n, err := s.DeletePattern(ctx, pattern)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(keys) {
		t.Errorf("DeletePattern removed %d, want %d (each key counted once, replicas not walked)", n, len(keys))
	}
	if after := replicaScans(t, cl); after != scansBefore {
		t.Errorf("replicas served %d SCAN calls; DeletePattern must walk masters only", after-scansBefore)
	}
	for _, m := range cl.Masters() {
		if left := countKeys(t, m, pattern); left != 0 {
			t.Errorf("master %s still holds %d matching keys", m.Addr, left)
		}
	}
	if n := countKeys(t, cl.Masters()[0], p+"other:*") + countKeys(t, cl.Masters()[1], p+"other:*") +
		countKeys(t, cl.Masters()[2], p+"other:*"); n != 3 {
		t.Errorf("non-matching keys left: %d, want 3", n)
	}
}

// replicaScans is the number of SCAN calls the replicas have served.
func replicaScans(t *testing.T, cl *testserver.Cluster) int {
	t.Helper()
	total := 0
	for _, r := range cl.Replicas() {
		info, err := r.Info("commandstats")
		if err != nil {
			t.Fatal(err)
		}
		// cmdstat_scan:calls=N,usec=...
		if st, ok := info["cmdstat_scan"]; ok {
			var calls int
			if _, err := fmt.Sscanf(st, "calls=%d", &calls); err != nil {
				t.Fatalf("parse %q: %v", st, err)
			}
			total += calls
		}
	}
	return total
}

func TestClusterNew(t *testing.T) {
	cl := ClusterServer(t)
	dead := testserver.RedisT(t, testserver.RedisOptions{})
	deadAddr := dead.Addr
	dead.Stop()

	// A dead seed is skipped; a replica works as a seed too.
	s := newStore(t, redis.Options{Addrs: []string{deadAddr, cl.Replicas()[0].Addr}, Cluster: true})
	mustSet(t, s, t.Name(), "v")
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	// A standalone client on a cluster node is refused with the fix.
	_, err := redis.New(ctx, redis.Options{Addrs: []string{cl.Addrs[0]}, Timeout: testTimeout})
	t.Logf("standalone client on a cluster node: %v", err)
	if err == nil || !strings.Contains(err.Error(), "set Cluster") || !strings.Contains(err.Error(), cl.Addrs[0]) {
		t.Fatalf("standalone client on a cluster node: error %v; want one naming the address and saying to set Cluster", err)
	}

	// No seed answers: New succeeds (see TestNewWhileUnreachable), and the
	// store says why it cannot work yet.
	s = newStore(t, redis.Options{Addrs: []string{deadAddr}, Cluster: true})
	err = s.Ping(ctx)
	t.Logf("dead seeds: %v", err)
	if err == nil || !strings.Contains(err.Error(), deadAddr) || !strings.Contains(err.Error(), "check that Redis runs") {
		t.Fatalf("dead seeds: Ping error %v; want one naming the address and what to check", err)
	}
}

// ownerOf returns the index in masters of the node that owns key.
func ownerOf(t *testing.T, masters []*testserver.Redis, key string) int {
	t.Helper()
	for i, m := range masters {
		if _, err := m.DoReply("EXISTS", key); err == nil {
			return i
		}
	}
	t.Fatalf("no master owns %q", key)
	return -1
}

func TestClusterPausedMaster(t *testing.T) {
	cl := ClusterServer(t)
	masters := cl.Masters()
	const timeout = 200 * time.Millisecond
	s := NewClusterStore(t, redis.Options{Timeout: timeout})

	// One key on the master we freeze, one on another master.
	p := t.Name() + ":"
	var frozenKey, liveKey string
	for i := 0; frozenKey == "" || liveKey == ""; i++ {
		k := fmt.Sprintf("%s%d", p, i)
		if ownerOf(t, masters, k) == 0 {
			frozenKey = k
		} else {
			liveKey = k
		}
	}
	mustSet(t, s, frozenKey, "f")
	mustSet(t, s, liveKey, "l")

	// Keep the pause well below the cluster's node timeout (3s) so that no
	// failover changes the shared cluster.
	if err := masters[0].Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			masters[0].Resume()
		}
	}()
	failFast(t, "Get on the frozen master", timeout, func() error { _, _, err := s.Get(ctx, frozenKey); return err })
	failFast(t, "GetMulti touching the frozen master", timeout, func() error {
		_, err := s.GetMulti(ctx, []string{liveKey, frozenKey})
		return err
	})
	failFast(t, "Ping", timeout, func() error { return s.Ping(ctx) })
	// The walk cannot skip the frozen master; the others answer the master
	// lookup.
	failFast(t, "DeletePattern with a frozen master", timeout, func() error {
		_, err := s.DeletePattern(ctx, p+"nothing-matches*")
		if err != nil && !strings.Contains(err.Error(), masters[0].Addr) {
			t.Errorf("DeletePattern error %q does not name the frozen master %s", err, masters[0].Addr)
		}
		return err
	})
	// The other masters still serve their keys.
	if v, _, err := s.Get(ctx, liveKey); err != nil || string(v) != "l" {
		t.Errorf("Get on a live master = %q, %v", v, err)
	}
	if err := masters[0].Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	if err := cl.WaitHealthy(0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		v, _, err := s.Get(ctx, frozenKey)
		if err == nil && string(v) == "f" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after Resume: %q, %v", v, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after Resume: %v", err)
	}
}
