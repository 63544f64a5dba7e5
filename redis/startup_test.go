package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/redis"
	"github.com/hoardcache/hoard/storetest"
)

// Tests of a Store created while its server is not there yet (an
// application restarted during a Redis outage): New succeeds, calls fail at
// once saying why, and the Store connects by itself once the server runs.

// comeBack bounds how long a Store may take to start working once its
// server answers: the background retries are at most about a second apart,
// and a loaded 2-core host under -race is slow.
const comeBack = 10 * time.Second

// reserveAddr returns a loopback address on which nothing listens, kept free
// for a server the test starts later.
func reserveAddr(t *testing.T, cluster bool) (int, string) {
	t.Helper()
	port, err := testserver.ReservePort(cluster)
	if err != nil {
		t.Fatal(err)
	}
	return port, "127.0.0.1:" + strconv.Itoa(port)
}

// startRedisOn starts a redis-server on port (from reserveAddr), stopped
// when the test ends.
func startRedisOn(t *testing.T, port int, opts testserver.RedisOptions) *testserver.Redis {
	t.Helper()
	opts.Port = port
	return testserver.RedisT(t, opts)
}

// newUnconnected creates a Store on addr, where nothing answers: New must
// succeed, and promptly (a refused dial costs nothing).
func newUnconnected(t *testing.T, opts redis.Options) *redis.Store {
	t.Helper()
	start := time.Now()
	s := newStore(t, opts)
	if took := time.Since(start); took > time.Second+storetest.Slack {
		t.Errorf("New took %v with nothing listening", took)
	}
	return s
}

// allOps are every call of the Store, for the checks made before it is
// connected.
func allOps(s *redis.Store) map[string]func() error {
	ops := downOps(s)
	ops["Touch"] = func() error { _, err := s.Touch(ctx, "k", time.Minute); return err }
	return ops
}

// notYet checks that every call fails at once (no dial, no wait for the
// Timeout) with an error that says Redis is not reachable yet, names addr
// and the dial error, and says what to check.
func notYet(t *testing.T, s *redis.Store, addr string) {
	t.Helper()
	for name, op := range allOps(s) {
		start := time.Now()
		err := op()
		took := time.Since(start)
		if err == nil {
			t.Fatalf("%s succeeded before the server ran", name)
		}
		if took > storetest.Slack {
			t.Errorf("%s took %v to fail; want at once (the Timeout is %v)", name, took, testTimeout)
		}
		for _, want := range []string{"not reachable yet", addr, "connection refused", "check that Redis runs"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s error %q does not contain %q", name, err, want)
			}
		}
	}
	t.Logf("Ping before the server runs: %v", s.Ping(ctx))
}

// TestNewWhileUnreachable: a standalone Store created while nothing listens
// at its address works once a server starts there.
func TestNewWhileUnreachable(t *testing.T) {
	port, addr := reserveAddr(t, false)
	s := newUnconnected(t, redis.Options{Addrs: []string{addr}})
	notYet(t, s, addr)
	// Still not there a few retries later.
	time.Sleep(300 * time.Millisecond)
	notYet(t, s, addr)

	srv := startRedisOn(t, port, testserver.RedisOptions{})
	connects(t, s)
	if v, err := srv.Do("GET", "after"); err != nil || v != "v" {
		t.Fatalf("the server holds after=%q, %v; want the value the store set", v, err)
	}

	// A reachable server that refuses the password still fails New.
	wrong := startRedisOn(t, mustReserve(t, false), testserver.RedisOptions{Password: "right"})
	s2, err := redis.New(ctx, redis.Options{Addrs: []string{wrong.Addr}, Password: "wrong", Timeout: testTimeout})
	if err == nil {
		s2.Close()
		t.Fatal("New with a wrong password on a reachable server succeeded")
	}
	if !strings.Contains(err.Error(), "Password") {
		t.Fatalf("New with a wrong password: %v; want an error about the Password", err)
	}
}

func mustReserve(t *testing.T, cluster bool) int {
	t.Helper()
	port, _ := reserveAddr(t, cluster)
	return port
}

// connects waits until the store works: Set and Get, Ping.
func connects(t *testing.T, s *redis.Store) {
	t.Helper()
	deadline := time.Now().Add(comeBack)
	for {
		err := s.Set(ctx, "after", []byte("v"), time.Minute)
		if err == nil {
			var v []byte
			if v, _, err = s.Get(ctx, "after"); err == nil && string(v) != "v" {
				err = fmt.Errorf("Get = %q, want v", v)
			}
		}
		if err == nil {
			err = s.Ping(ctx)
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not connect within %v of its server starting: %v", comeBack, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNewWhileUnreachableCluster: a Cluster Store whose seed does not
// answer at New works once the cluster is created on it.
func TestNewWhileUnreachableCluster(t *testing.T) {
	ports := make([]int, 3)
	for i := range ports {
		ports[i] = mustReserve(t, true)
	}
	seed := "127.0.0.1:" + strconv.Itoa(ports[0])
	s := newUnconnected(t, redis.Options{Addrs: []string{seed}, Cluster: true})
	notYet(t, s, seed)

	cl, err := testserver.StartRedisClusterWithOptions(testserver.ClusterOptions{Masters: 3, Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Stop() })
	connects(t, s)
	// Keys on every master.
	var keys []string
	for i := range 100 {
		keys = append(keys, fmt.Sprintf("%s:%d", t.Name(), i))
	}
	setMany(t, s, keys)
	vals, err := s.GetMulti(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if string(v) != keys[i] {
			t.Fatalf("GetMulti[%d] = %q, want %q", i, v, keys[i])
		}
	}
	for _, m := range cl.Masters() {
		if countKeys(t, m, t.Name()+":*") == 0 {
			t.Errorf("master %s holds none of the keys: the store does not know the whole cluster", m.Addr)
		}
	}
}

// TestNewWhileUnreachableChecks: the start-up checks run when the
// background connection succeeds; a server that fails them makes every call
// fail with their explanation, never work.
func TestNewWhileUnreachableChecks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    redis.Options
		cluster bool // the server is a cluster node
		server  testserver.RedisOptions
		want    string
	}{
		{"wrong password", redis.Options{Password: "wrong"}, false, testserver.RedisOptions{Password: "right"}, "check Username and Password"},
		{"Cluster on a standalone server", redis.Options{Cluster: true}, false, testserver.RedisOptions{}, "not a Redis Cluster node"},
		{"standalone on a cluster node", redis.Options{}, true, testserver.RedisOptions{Args: []string{"--cluster-enabled", "yes"}}, "set Cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, addr := reserveAddr(t, tc.cluster)
			opts := tc.opts
			opts.Addrs = []string{addr}
			s := newUnconnected(t, opts)
			notYet(t, s, addr)
			startRedisOn(t, port, tc.server)
			deadline := time.Now().Add(comeBack)
			for {
				err := s.Ping(ctx)
				if err == nil {
					t.Fatal("Ping succeeded on a server that fails the start-up checks")
				}
				if strings.Contains(err.Error(), tc.want) {
					t.Logf("Ping: %v", err)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Ping error %q; want one containing %q within %v of the server starting", err, tc.want, comeBack)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := s.Set(ctx, "k", []byte("v"), time.Minute); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Set = %v; want the check's explanation %q", err, tc.want)
			}
		})
	}
}

// TestCloseWhileConnecting: Close stops the background connection, also
// while it is completing (the race detector checks the hand-over), and a
// closed Store never keeps a connection to the server.
func TestCloseWhileConnecting(t *testing.T) {
	port, addr := reserveAddr(t, false)
	opts := redis.Options{Addrs: []string{addr}, Timeout: testTimeout}

	early, err := redis.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := early.Close(); err != nil {
		t.Fatal(err)
	}
	const n = 12
	stores := make([]*redis.Store, n)
	for i := range stores {
		if stores[i], err = redis.New(ctx, opts); err != nil {
			t.Fatal(err)
		}
	}
	// Close the stores at staggered times while the server comes up and
	// they connect to it.
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 100 * time.Millisecond)
			if err := s.Close(); err != nil {
				t.Error(err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
	srv := startRedisOn(t, port, testserver.RedisOptions{})
	wg.Wait()
	for i, s := range append(stores, early) {
		if err := s.Ping(ctx); !errors.Is(err, hoard.ErrClosed) {
			t.Errorf("store %d: Ping after Close = %v, want ErrClosed", i, err)
		}
	}
	// Once any attempt in flight at Close has ended (each is bounded by
	// the 1 s dial timeout), only this check's own connection is left.
	deadline := time.Now().Add(comeBack)
	for {
		list, err := srv.Do("CLIENT", "LIST")
		if err != nil {
			t.Fatal(err)
		}
		clients := strings.Count(strings.TrimSpace(list), "\n") + 1
		if clients == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections left %v after every store was closed:\n%s", clients-1, comeBack, list)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNewWhileFrozen: a server that accepts the connection but does not
// answer (frozen, SIGSTOP) at start-up is an outage like one that refuses
// it: New returns a store that connects in the background, and calls work
// once the server answers.
func TestNewWhileFrozen(t *testing.T) {
	srv := testserver.RedisT(t, testserver.RedisOptions{})
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	s, err := redis.New(context.Background(), redis.Options{Addrs: []string{srv.Addr}, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("New with the server frozen: %v; want a store that connects in the background", err)
	}
	defer s.Close()
	if _, _, err := s.Get(context.Background(), "k"); err == nil {
		t.Fatal("Get while the server is frozen: no error")
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err := s.Get(context.Background(), "k")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get 10 s after the server thawed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
