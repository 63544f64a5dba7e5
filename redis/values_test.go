package redis_test

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/redis"
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

// TestMaxValueBytes: a value over MaxValueBytes is refused as a value (an
// error wrapping ErrValueTooLarge and so ErrRefused) without anything sent.
func TestMaxValueBytes(t *testing.T) {
	srv := testserver.RedisT(t, testserver.RedisOptions{})
	s := newStore(t, redis.Options{Addrs: []string{srv.Addr}, MaxValueBytes: 10})
	p := t.Name() + ":"
	if err := s.Set(ctx, p+"fits", bytes.Repeat([]byte("x"), 10), time.Minute); err != nil {
		t.Fatalf("Set of MaxValueBytes bytes: %v", err)
	}
	before := setCalls(t, srv)
	big := bytes.Repeat([]byte("x"), 11)
	err := s.Set(ctx, p+"big", big, time.Minute)
	t.Logf("Set: %v", err)
	if !errors.Is(err, hoard.ErrValueTooLarge) || !errors.Is(err, hoard.ErrRefused) {
		t.Fatalf("Set over MaxValueBytes = %v; want ErrValueTooLarge (an ErrRefused)", err)
	}
	if !strings.Contains(err.Error(), "MaxValueBytes") {
		t.Errorf("Set error %q does not name MaxValueBytes", err)
	}
	added, err := s.Add(ctx, p+"big", big, time.Minute)
	if added || !errors.Is(err, hoard.ErrValueTooLarge) {
		t.Fatalf("Add over MaxValueBytes = %v, %v; want false, ErrValueTooLarge", added, err)
	}
	if after := setCalls(t, srv); after != before {
		t.Fatalf("the server ran %d SET commands for refused values; nothing should be sent", after-before)
	}
	if ok, err := s.Exists(ctx, p+"big"); err != nil || ok {
		t.Fatalf("Exists(refused key) = %v, %v", ok, err)
	}
}

// setCalls is the number of SET commands the server has run.
func setCalls(t *testing.T, srv *testserver.Redis) int {
	t.Helper()
	info, err := srv.Info("commandstats")
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	if st, ok := info["cmdstat_set"]; ok {
		if _, err := fmt.Sscanf(st, "calls=%d", &calls); err != nil {
			t.Fatalf("parse %q: %v", st, err)
		}
	}
	return calls
}

// TestOutOfMemoryRefused: a server full under maxmemory with noeviction
// refuses writes with OOM; the store reports each as a refusal of that
// value (ErrRefused, saying how to fix the server), not a failure, and the
// server keeps serving reads.
func TestOutOfMemoryRefused(t *testing.T) {
	srv := testserver.RedisT(t, testserver.RedisOptions{})
	s := newStore(t, redis.Options{Addrs: []string{srv.Addr}})
	p := t.Name() + ":"
	mustSet(t, s, p+"kept", "v")

	mem, err := srv.Info("memory")
	if err != nil {
		t.Fatal(err)
	}
	used, err := strconv.Atoi(mem["used_memory"])
	if err != nil {
		t.Fatalf("used_memory %q: %v", mem["used_memory"], err)
	}
	for _, kv := range [][2]string{{"maxmemory-policy", "noeviction"}, {"maxmemory", strconv.Itoa(used + 1<<20)}} {
		if _, err := srv.Do("CONFIG", "SET", kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}

	// Fill it: 64 KiB values, until the server refuses one (well within
	// 64 of them for the 1 MiB left).
	value := bytes.Repeat([]byte("x"), 64<<10)
	var setErr error
	for i := 0; i < 64 && setErr == nil; i++ {
		setErr = s.Set(ctx, fmt.Sprintf("%sfill:%d", p, i), value, time.Minute)
	}
	t.Logf("Set on a full server: %v", setErr)
	if !errors.Is(setErr, hoard.ErrRefused) || errors.Is(setErr, hoard.ErrValueTooLarge) {
		t.Fatalf("Set on a full server = %v; want an error wrapping ErrRefused (not ErrValueTooLarge)", setErr)
	}
	for _, want := range []string{"maxmemory", "allkeys-lru"} {
		if !strings.Contains(setErr.Error(), want) {
			t.Errorf("Set error %q does not contain %q", setErr, want)
		}
	}
	added, err := s.Add(ctx, p+"new", value, time.Minute)
	if added || !errors.Is(err, hoard.ErrRefused) {
		t.Fatalf("Add on a full server = %v, %v; want false, ErrRefused", added, err)
	}

	// The server is healthy: reads work.
	if v, found, err := s.Get(ctx, p+"kept"); err != nil || !found || string(v) != "v" {
		t.Fatalf("Get on a full server = %q, %v, %v; want the value", v, found, err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping on a full server: %v", err)
	}
}
