package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoardcache/hoard/internal/testserver"
)

// startDemoProcess runs the built demo in dir with env (and HTTP_ADDR on a free
// port) and returns its base URL once its banner is out; kill stops it
// with SIGKILL.
func startDemoProcess(t *testing.T, bin, dir string, env ...string) (base string, kill func()) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = cleanEnv(append(env, "HTTP_ADDR=127.0.0.1:0")...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill = func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	t.Cleanup(kill)
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-first:
		base = strings.TrimPrefix(line, "hoard-demo listening on ")
		if !ok || base == line {
			t.Fatalf("no banner; stderr:\n%s", stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no banner after 60 s; stderr:\n%s", stderr.String())
	}
	return base, kill
}

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
	baseA, killA := startDemoProcess(t, bin, dir, append(env, "CACHE_PENDING_FILE="+file)...)
	a := &testEnv{t: t, URL: baseA}
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
	killA()

	baseA2, _ := startDemoProcess(t, bin, dir, append(env, "CACHE_PENDING_FILE="+file)...) // Redis still frozen
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
	baseC, _ := startDemoProcess(t, bin, dir, env...) // saw no outage
	for name, base := range map[string]string{"new": baseC, "restarted": baseA2} {
		e := &testEnv{t: t, URL: base}
		if w := decode[widget](t, e.want(e.get("/api/v1/widgets/1"), http.StatusOK)); w.Name != "Written during the freeze" {
			t.Fatalf("%s instance after the thaw: %+v; want the write made during the freeze", name, w)
		}
	}
}
