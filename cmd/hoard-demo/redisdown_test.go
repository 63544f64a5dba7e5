package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/hoardcache/hoard/internal/testlog"
	"github.com/hoardcache/hoard/internal/testserver"
)

// TestStartsWhileRedisDown: the demo, restarted during a Redis outage
// (CACHE_BACKEND=redis, nothing listening at the address), starts and
// serves the API uncached, /health/ready says the cache store is
// unreachable; once Redis runs there, without a restart, it is ready and
// answers from the cache.
func TestStartsWhileRedisDown(t *testing.T) {
	port, err := testserver.ReservePort(false)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	e := startDemo(t, map[string]string{
		"HTTP_ADDR":       "127.0.0.1:0",
		"DATABASE_URL":    "sqlite:" + filepath.Join(t.TempDir(), "demo.db"),
		"CACHE_BACKEND":   "redis",
		"CACHE_REDIS_URL": "redis://" + addr,
		"CACHE_TIMEOUT":   storefixture.Timeout.String(),
	})

	for range 2 {
		r := e.want(e.get("/api/v1/widgets/1"), http.StatusOK)
		if cs := r.CacheStatus(); !strings.Contains(cs, "bypass") && !strings.Contains(cs, "miss") {
			t.Fatalf("%v; want Cache-Status bypass or miss while Redis is down", r)
		}
		if r.hit() {
			t.Fatalf("%v: a hit with no Redis", r)
		}
		t.Logf("while Redis is down: %v", r)
	}
	r := e.want(e.get("/health/ready"), http.StatusServiceUnavailable)
	t.Logf("while Redis is down: %v", r)
	if d := decode[map[string]string](t, r)["detail"]; !strings.Contains(d, "cache store (redis) unreachable") || !strings.Contains(d, addr) {
		t.Fatalf("%v; want a detail naming the cache store and its address", r)
	}

	srv, err := testserver.StartRedis(testserver.RedisOptions{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	waitStatus(t, e, "/health/ready", http.StatusOK, 15*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := e.want(e.get("/api/v1/widgets/1"), http.StatusOK)
		if r.hit() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v; still no hit 15 s after Redis started", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, err := srv.Do("DBSIZE"); err != nil || n == "0" {
		t.Fatalf("Redis holds %s keys (%v); want the cached answer", n, err)
	}
}

// startDemo runs the whole program (run, as main does) in-process with env
// as its environment, waits for its banner and returns a testEnv on the
// URL it prints. When the test ends the program is stopped as by SIGTERM
// and must exit 0.
func startDemo(t *testing.T, env map[string]string) *testEnv {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	ctx, stop := context.WithCancel(context.Background())
	stdout, stdoutW := io.Pipe()
	var stderr testlog.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, lookup, stdoutW, &stderr)
		stdoutW.Close()
	}()
	banner := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if base, ok := strings.CutPrefix(sc.Text(), "hoard-demo listening on "); ok {
				banner <- base
			}
		}
		io.Copy(io.Discard, stdout)
	}()

	var base string
	select {
	case base = <-banner:
	case code := <-exited:
		stop()
		t.Fatalf("hoard-demo exited with status %d instead of starting:\n%s", code, stderr.String())
	case <-time.After(30 * time.Second):
		stop()
		t.Fatalf("no banner after 30 s:\n%s", stderr.String())
	}
	t.Cleanup(func() {
		stop()
		select {
		case code := <-exited:
			if code != 0 {
				t.Errorf("hoard-demo exited with status %d:\n%s", code, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("hoard-demo still running 30 s after the stop:\n%s", stderr.String())
		}
		if t.Failed() {
			t.Logf("hoard-demo log:\n%s", stderr.String())
		}
	})
	return &testEnv{t: t, URL: base}
}
