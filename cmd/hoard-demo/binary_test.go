package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoardcache/hoard/internal/testlog"
)

// buildDemo builds the command into a temporary directory (with -race when
// the tests run with it, so that the build reuses the packages the test
// build compiled).
func buildDemo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hoard-demo")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command(goTool, append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinary runs the built command.
func TestBinary(t *testing.T) {
	bin := buildDemo(t)
	t.Run("GracefulShutdown", func(t *testing.T) { testGracefulShutdown(t, bin) })
	t.Run("BadConfigStopsStartUp", func(t *testing.T) { testBadConfig(t, bin) })
}

// cleanEnv is a minimal environment plus vars: nothing of the caller's
// CACHE_* or DATABASE_URL leaks in.
func cleanEnv(vars ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, vars...)
}

// testGracefulShutdown: the binary prints the banner, serves, and on SIGTERM
// finishes an in-flight slow request before exiting 0.
func testGracefulShutdown(t *testing.T, bin string) {
	dir := t.TempDir()
	p := startDemoProcess(t, bin, dir, "HOARD_DEMO_DEBUG_SLOW=1")
	cmd, stderr, exited, text, base := p.cmd, p.stderr, p.exited, p.banner, p.base
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("banner's URL %q; want one on 127.0.0.1", base)
	}
	for _, want := range []string{
		"cache store: memory (in-process, 64 MiB)",
		"database:    SQLite " + filepath.Join(dir, defaultSQLiteFile),
		"curl -i " + base + "/api/v1/widgets/1",
		"curl -i -X PATCH " + base + "/api/v1/widgets/1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("banner lacks %q:\n%s", want, text)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, defaultSQLiteFile)); err != nil {
		t.Errorf("no %s in the working directory: %v", defaultSQLiteFile, err)
	}

	// The seeded data answers, then a hit.
	e := &testEnv{t: t, URL: base}
	e.miss("/api/v1/widgets/1")
	e.hit("/api/v1/widgets/1")

	// A slow request in flight when SIGTERM arrives completes.
	type result struct {
		r   resp
		err error
	}
	slow := make(chan result, 1)
	sent := make(chan struct{})
	go func() {
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(sent) }}
		ctx := httptrace.WithClientTrace(context.Background(), trace)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/slow?ms=1500", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		slow <- result{r: resp{Status: res.StatusCode, Body: b, Header: res.Header}, err: err}
	}()
	<-sent
	time.Sleep(200 * time.Millisecond) // the server has read the request
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	res := <-slow
	if res.err != nil || res.r.Status != http.StatusOK || !strings.Contains(string(res.r.Body), `"slept_ms":"1500"`) {
		t.Fatalf("slow request during shutdown: %v, %v %s; want 200", res.err, res.r.Status, res.r.Body)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v; want status 0\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20 s after SIGTERM\n%s", stderr.String())
	}
	if time.Since(start) < time.Second {
		t.Errorf("exited %v after SIGTERM, before the 1.5 s request could finish", time.Since(start))
	}
	logs := stderr.String()
	for _, want := range []string{"msg=\"shutting down: finishing in-flight requests\"", "path=/debug/slow status=200", "msg=stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if i, j := strings.Index(logs, "shutting down"), strings.Index(logs, "path=/debug/slow"); i < 0 || j < i {
		t.Errorf("the slow request was not logged after the shutdown began:\n%s", logs)
	}
}

// testBadConfig: bad variables stop the binary before it opens anything,
// each named with what it accepts.
func testBadConfig(t *testing.T, bin string) {
	dir := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = cleanEnv("HTTP_ADDR=localhost", "DATABASE_URL=mysql://root:hunter2@db/app",
		"CACHE_BACKEND=mongodb", "HOARD_DEMO_DEBUG_SLOW=maybe")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit %v; want status 2\n%s", err, out)
	}
	for _, want := range []string{
		`HTTP_ADDR="localhost": must be host:port`,
		`DATABASE_URL="mysql://root:xxxxx@db/app": must be empty (SQLite file hoard-demo.db), sqlite:PATH, or postgres://`,
		`CACHE_BACKEND="mongodb": must be one of memory, redis, memcached`,
		`HOARD_DEMO_DEBUG_SLOW="maybe": must be true or false`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "hunter2") {
		t.Errorf("output shows the database password:\n%s", out)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("a failed start-up left files: %v", entries)
	}
}

// demoProcess is the built demo running as a process of its own.
type demoProcess struct {
	cmd    *exec.Cmd
	base   string          // its URL, from the banner's first line
	banner string          // the banner, up to its "Ctrl-C" line
	stderr *testlog.Buffer // its log
	exited chan error      // cmd.Wait's result, once it exits
}

// startDemoProcess runs the built demo in dir with env (plus HTTP_ADDR on a
// free port, and nothing of the caller's environment) and returns once its
// banner is out. It is killed when the test ends, if still running.
func startDemoProcess(t *testing.T, bin, dir string, env ...string) *demoProcess {
	t.Helper()
	p := &demoProcess{cmd: exec.Command(bin), stderr: &testlog.Buffer{}, exited: make(chan error, 1)}
	p.cmd.Dir = dir
	p.cmd.Env = cleanEnv(append(env, "HTTP_ADDR=127.0.0.1:0")...)
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	banner := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "Ctrl-C") {
				banner <- b.String()
				break
			}
		}
		io.Copy(io.Discard, stdout)
		p.exited <- p.cmd.Wait()
	}()
	t.Cleanup(func() { p.cmd.Process.Kill() })
	select {
	case p.banner = <-banner:
	case err := <-p.exited:
		t.Fatalf("exited before the banner: %v\n%s", err, p.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("no banner after 60 s; stderr:\n%s", p.stderr.String())
	}
	first := strings.SplitN(p.banner, "\n", 2)[0]
	if p.base = strings.TrimPrefix(first, "hoard-demo listening on "); p.base == first {
		t.Fatalf("banner's first line %q; want the URL", first)
	}
	return p
}

// kill stops the process with SIGKILL and waits until it is gone.
func (p *demoProcess) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}
