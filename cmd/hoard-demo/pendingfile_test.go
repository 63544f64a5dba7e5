package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hoardcache/hoard/internal/testserver"
)

// TestPendingFileSurvivesKill: with CACHE_PENDING_FILE, a write made while
// Redis is frozen, by a demo killed (SIGKILL) before Redis comes back, is
// not forgotten: the demo restarted from the same file while Redis is
// still frozen replays it once Redis answers, so that an instance started
// afterwards (which saw no outage) does not serve the answer from before
// the write, nor does the restarted one.
func TestPendingFileSurvivesKill(t *testing.T) {
	bin := buildDemo(t)
	r := testserver.RedisT(t, testserver.RedisOptions{})
	dir := t.TempDir()
	env := []string{"CACHE_BACKEND=redis", "CACHE_REDIS_URL=redis://" + r.Addr + "/0", "CACHE_TIMEOUT=100ms",
		"DATABASE_URL=sqlite:" + filepath.Join(dir, "demo.db")}
	file := filepath.Join(dir, "pending")
	procA := startDemoProcess(t, bin, dir, append(env, "CACHE_PENDING_FILE="+file)...)
	a := &testEnv{t: t, URL: procA.base}
	a.prime("/api/v1/widgets/1")

	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			r.Resume()
		}
	}()
	// A's breaker opens, so its write sends no DEL to the frozen server
	// (one sent would run when it thaws): the invalidation is only in A.
	for range 6 {
		a.want(a.get("/api/v1/widgets/2"), http.StatusOK)
	}
	a.want(a.do(http.MethodPatch, "/api/v1/widgets/1", `{"name": "Written during the freeze"}`), http.StatusOK)
	if fi, err := os.Stat(file); err != nil || fi.Size() == 0 {
		t.Fatalf("pending file after a write during the freeze: %v, %v; want the invalidation in it", fi, err)
	}
	procA.kill()

	restarted := startDemoProcess(t, bin, dir, append(env, "CACHE_PENDING_FILE="+file)...) // Redis still frozen
	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if fi, err := os.Stat(file); err == nil && fi.Size() == 0 {
			break // replayed
		}
		if time.Now().After(deadline) {
			t.Fatal("the restarted demo did not replay its pending file 15 s after Redis thawed")
		}
	}
	fresh := startDemoProcess(t, bin, dir, env...) // saw no outage
	for name, base := range map[string]string{"new": fresh.base, "restarted": restarted.base} {
		e := &testEnv{t: t, URL: base}
		if w := decode[widget](t, e.want(e.get("/api/v1/widgets/1"), http.StatusOK)); w.Name != "Written during the freeze" {
			t.Fatalf("%s instance after the thaw: %+v; want the write made during the freeze", name, w)
		}
	}
}
