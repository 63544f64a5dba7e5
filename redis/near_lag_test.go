package redis_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/redis"
)

// TestNearCacheFrozenServer: a server that stops answering without
// breaking the connections (SIGSTOP) pushes no invalidation, so a read
// started NearMaxLag after it stopped is not served from a local copy
// (another instance's write, unable to invalidate, is acknowledged no
// sooner than Timeout); once the server answers again, copies serve again.
func TestNearCacheFrozenServer(t *testing.T) {
	srv := testserver.RedisT(t, testserver.RedisOptions{})
	const timeout, lag = 200 * time.Millisecond, 20 * time.Millisecond
	s := newStore(t, redis.Options{Addrs: []string{srv.Addr}, NearCache: true, Timeout: timeout, NearMaxLag: lag})
	ctx := context.Background()
	keys := nearKeys("near-frozen", 3)
	for _, k := range keys {
		if _, err := srv.Do("SET", k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	held := func() bool { // the keys are read without reaching the server
		before := getCalls(t, srv)
		if _, err := s.GetMulti(ctx, keys); err != nil {
			t.Fatal(err)
		}
		return getCalls(t, srv) == before
	}
	waitFor(t, 5*time.Second, "copies to serve", held)

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	time.Sleep(lag) // the server stopped before Pause returned
	if v, err := s.GetMulti(ctx, keys); err == nil {
		t.Fatalf("GetMulti NearMaxLag after the server froze = %q from local copies, want the server's timeout", v)
	}
	if v, ok, err := s.Get(ctx, keys[0]); err == nil {
		t.Fatalf("Get NearMaxLag after the server froze = %q, %v from a local copy, want the server's timeout", v, ok)
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	waitFor(t, 5*time.Second, "copies to serve after the server answered again", held)
}

// checkNearDeleteVisible: once Delete returns on one store with the near
// cache, a read on another one never returns its local copy of the key,
// round after round, while goroutines keep both processes' CPUs busy.
func checkNearDeleteVisible(t *testing.T, reader, writer *redis.Store, prefix string) {
	ctx := context.Background()
	keys := nearKeys(prefix, 4)
	stop := make(chan struct{})
	var busy sync.WaitGroup
	for range 4 { // compete with the connections' readers for the CPUs
		busy.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					if _, err := reader.GetMulti(ctx, keys[1:]); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	defer func() { close(stop); busy.Wait() }()
	const rounds = 200
	for round := range rounds {
		want := []byte("v" + fmt.Sprint(round))
		for _, k := range keys {
			if err := writer.Set(ctx, k, want, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		// Until the reader holds the new value (its copies of the old one
		// are dropped by pushes, the new one is then read and kept).
		deadline := time.Now().Add(5 * time.Second)
		for {
			v, _, err := reader.Get(ctx, keys[0])
			if err != nil {
				t.Fatal(err)
			}
			if string(v) == string(want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: reader still reads %q 5s after the write of %q", round, v, want)
			}
		}
		if err := writer.Delete(ctx, keys[0]); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := reader.Get(ctx, keys[0]); err != nil || ok {
			t.Fatalf("round %d: Get right after another store's Delete returned = %q, %v, %v; want not found", round, v, ok, err)
		}
	}
}

func TestNearCacheDeleteVisible(t *testing.T) {
	reader := NewStandaloneStore(t, redis.Options{NearCache: true})
	writer := NewStandaloneStore(t, redis.Options{NearCache: true})
	checkNearDeleteVisible(t, reader, writer, "near-delvis")
}

// TestNearCachePropagation measures what NearMaxLag hides: the time from a
// delete's reply to a writer without the near cache (so without the wait)
// to the first read on another store that no longer finds the key. It
// logs p50/p99/max and requires every delete to be seen within a second.
func TestNearCachePropagation(t *testing.T) {
	reader := NewStandaloneStore(t, redis.Options{NearCache: true})
	writer := NewStandaloneStore(t, redis.Options{})
	ctx := context.Background()
	key := nearKeys("near-propagation", 1)[0]
	var delays []time.Duration
	for round := range 200 {
		if err := writer.Set(ctx, key, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the reader to hold the key", func() bool {
			v, _, err := reader.Get(ctx, key)
			return err == nil && string(v) == "v" && reader.NearStats().Copies > 0
		})
		if err := writer.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		for {
			_, ok, err := reader.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if time.Since(acked) > time.Second {
				t.Fatalf("round %d: the reader still finds the key 1s after the delete", round)
			}
		}
		delays = append(delays, time.Since(acked))
	}
	slices.Sort(delays)
	t.Logf("delete acknowledged → first read without it, 200 rounds: p50 %v, p99 %v, max %v",
		delays[len(delays)/2], delays[len(delays)*99/100], delays[len(delays)-1])
}

func TestNearCacheClusterDeleteVisible(t *testing.T) {
	reader := NewClusterStore(t, redis.Options{NearCache: true})
	writer := NewClusterStore(t, redis.Options{NearCache: true})
	checkNearDeleteVisible(t, reader, writer, "near-cdelvis")
}

// waitFor polls cond until it holds, failing t after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
