package redis_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hoardcache/hoard/internal/testserver"
)

// rawDo runs a command behind the store's back on the server that holds
// key: the standalone server, or the Cluster master that owns key's slot.
func rawDo(t *testing.T, cluster bool, key string, args ...string) string {
	t.Helper()
	nodes := []*testserver.Redis{StandaloneServer(t)}
	if cluster {
		nodes = ClusterServer(t).Masters()
	}
	for _, n := range nodes {
		v, err := n.Do(args...)
		if err != nil && strings.HasPrefix(err.Error(), "MOVED ") {
			continue // another master owns key's slot
		}
		if err != nil {
			t.Fatalf("%v on %s: %v", args, n.Addr, err)
		}
		return v
	}
	t.Fatalf("no node ran %v for %q", args, key)
	return ""
}

// TestWrongTypeIsMiss: a key that another client turned into a list reads
// as a miss (not a store failure), exists, is not replaced by Add, and is
// overwritten by Set.
func TestWrongTypeIsMiss(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			cluster := kind.name == "cluster"
			s := kind.open(t)
			p := t.Name() + ":"
			list, str, absent := p+"list", p+"string", p+"absent"
			rawDo(t, cluster, list, "DEL", list)
			rawDo(t, cluster, list, "RPUSH", list, "a", "b")
			mustSet(t, s, str, "v")

			if v, found, err := s.Get(ctx, list); err != nil || found || v != nil {
				t.Fatalf("Get(list) = %q, %v, %v; want a miss: nil, false, nil", v, found, err)
			}
			vals, err := s.GetMulti(ctx, []string{list, str, absent, list})
			if err != nil {
				t.Fatalf("GetMulti with a list key: %v; want a miss for it", err)
			}
			if vals[0] != nil || string(vals[1]) != "v" || vals[2] != nil || vals[3] != nil {
				t.Fatalf("GetMulti = %q; want [nil v nil nil]", vals)
			}
			if ok, err := s.Exists(ctx, list); err != nil || !ok {
				t.Fatalf("Exists(list) = %v, %v; want true: the key exists", ok, err)
			}
			if added, err := s.Add(ctx, list, []byte("new"), time.Minute); err != nil || added {
				t.Fatalf("Add(list) = %v, %v; want false, nil (present, not added)", added, err)
			}
			if typ := rawDo(t, cluster, list, "TYPE", list); typ != "list" {
				t.Fatalf("Add replaced the list: TYPE = %s", typ)
			}
			if err := s.Set(ctx, list, []byte("now a string"), time.Minute); err != nil {
				t.Fatalf("Set over a list: %v", err)
			}
			if v, found, err := s.Get(ctx, list); err != nil || !found || string(v) != "now a string" {
				t.Fatalf("Get after Set = %q, %v, %v", v, found, err)
			}
			if ttl := rawDo(t, cluster, list, "PTTL", list); ttl == "-1" {
				t.Fatal("Set over a list left the key without a TTL")
			}
		})
	}
}
