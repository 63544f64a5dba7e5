package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/hoardcache/hoard/stores"
)

func TestMain(m *testing.M) { storefixture.Main(m) }

// envOf is the CACHE_* environment that describes cfg's store and
// namespace, as an operator would set it for the CLI.
func envOf(t *testing.T, cfg stores.Config) map[string]string {
	t.Helper()
	env := map[string]string{"CACHE_BACKEND": string(cfg.Backend), "CACHE_KEY_PREFIX": cfg.Cache.KeyPrefix, "CACHE_TIMEOUT": "250ms"}
	switch {
	case cfg.Backend == stores.Redis && cfg.Redis.Cluster:
		host, port, err := net.SplitHostPort(cfg.Redis.Addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		env["CACHE_REDIS_CLUSTER"], env["CACHE_REDIS_HOST"], env["CACHE_REDIS_PORT"] = "true", host, port
	case cfg.Backend == stores.Redis:
		env["CACHE_REDIS_URL"] = "redis://" + cfg.Redis.Addrs[0] + "/0"
	case cfg.Backend == stores.Memcached:
		env["CACHE_MEMCACHED_SERVERS"] = strings.Join(cfg.Memcached.Servers, ",")
	}
	return env
}

// cli runs the CLI with env and args and returns its exit status and
// output.
func cli(env map[string]string, args ...string) (status int, stdout, stderr string) {
	var out, errb bytes.Buffer
	status = run(context.Background(), args, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &out, &errb)
	return status, out.String(), errb.String()
}

// cliJSON runs the CLI with -json and decodes its output into v.
func cliJSON(t *testing.T, env map[string]string, v any, args ...string) int {
	t.Helper()
	status, stdout, stderr := cli(env, append([]string{"-json"}, args...)...)
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatalf("hoard -json %v: output %q (stderr %q) is not JSON: %v", args, stdout, stderr, err)
	}
	return status
}

// TestCLI runs every command against real servers, with a Cache of the
// same namespace serving a route and the provider API beside it, as a
// service would.
func TestCLI(t *testing.T) {
	for _, name := range []string{storefixture.Redis, storefixture.RedisCluster, storefixture.Memcached} {
		t.Run(name, func(t *testing.T) {
			b := storefixture.Shared(t, name)
			cfg := b.Config(t)
			c := b.Open(t, cfg)
			env := envOf(t, cfg)
			mux := http.NewServeMux()
			if err := c.HandleFunc(mux, "GET /w/{id}", hoard.Route{KeyPrefix: "w", TTL: time.Minute}, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"id":%q}`, r.PathValue("id"))
			}); err != nil {
				t.Fatal(err)
			}
			serve := func(path string) string {
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
				return w.Header().Get("Cache-Status")
			}

			if status, out, errs := cli(env, "ping"); status != 0 || strings.TrimSpace(out) != "ok" {
				t.Fatalf("ping: %d %q %q", status, out, errs)
			}

			serve("/w/1")
			var e entryJSON
			if status := cliJSON(t, env, &e, "get", "w:1"); status != 0 || !e.Found || e.Kind != "route" || e.Status != 200 ||
				!e.Current || e.Body != `{"id":"1"}` || e.Header.Get("Content-Type") != "application/json" || e.TTLS != 60 || e.RemainingS <= 0 || e.RemainingS > 60 {
				t.Fatalf("get w:1 after a GET stored it: %d %+v", status, e)
			}
			if status, out, _ := cli(env, "get", "w:1"); status != 0 || !strings.Contains(out, "status 200") || !strings.Contains(out, "current    yes") {
				t.Errorf("get w:1 (text): %d\n%s", status, out)
			}

			if status, _, _ := cli(env, "invalidate", "w:1"); status != 0 {
				t.Fatalf("invalidate w:1: %d", status)
			}
			if cs := serve("/w/1"); !strings.Contains(cs, "fwd=miss") {
				t.Errorf("GET after hoard invalidate: %q; want a miss", cs)
			}

			ctx := context.Background()
			if err := c.Set(ctx, "session:9", []byte("alice"), time.Minute); err != nil {
				t.Fatal(err)
			}
			e = entryJSON{}
			if status := cliJSON(t, env, &e, "get", "session:9"); status != 0 || e.Kind != "value" || e.Body != "alice" || !e.Current {
				t.Errorf("get of a provider value: %d %+v", status, e)
			}
			if status := cliJSON(t, env, &e, "get", "absent:1"); status != exitFailed || e.Found {
				t.Errorf("get of an absent key: %d %+v; want status 1, found false", status, e)
			}

			serve("/w/2")
			if status, _, errs := cli(env, "invalidate-pattern", "w:2"); status != exitUsage || !strings.Contains(errs, "use invalidate") {
				t.Errorf("invalidate-pattern without a wildcard: %d %q", status, errs)
			}
			if status, _, _ := cli(env, "invalidate-pattern", "w:*"); status != 0 {
				t.Errorf("invalidate-pattern w:*: %d", status)
			}

			var deleted map[string]any
			status := cliJSON(t, env, &deleted, "delete-pattern", "session:*")
			if name == storefixture.Memcached {
				if status != exitFailed || !strings.Contains(fmt.Sprint(deleted["error"]), "invalidate-pattern or clear") {
					t.Errorf("delete-pattern on memcached: %d %v; want a failure that names what works", status, deleted)
				}
			} else if status != 0 || deleted["deleted"] != float64(1) {
				t.Errorf("delete-pattern session:*: %d %v; want 1 deleted", status, deleted)
			}

			var st statsJSON
			if status := cliJSON(t, env, &st, "stats"); status != 0 || len(st.Servers) == 0 || st.Namespace != cfg.Cache.KeyPrefix {
				t.Fatalf("stats: %d %+v", status, st)
			}
			if name == storefixture.Memcached {
				if st.Keys != -1 {
					t.Errorf("stats on memcached: keys %d; want -1 (unknown)", st.Keys)
				}
			} else if st.Keys < 2 || st.Bytes <= 0 {
				t.Errorf("stats: %d keys, %d bytes in the namespace; want the entries and generations written", st.Keys, st.Bytes)
			}

			serve("/w/3")
			if status, _, _ := cli(env, "clear"); status != 0 {
				t.Fatalf("clear: %d", status)
			}
			e = entryJSON{}
			if status := cliJSON(t, env, &e, "get", "w:3"); status == 0 && e.Current {
				t.Errorf("get w:3 after clear: %+v; want it gone or not current", e)
			}
			if cs := serve("/w/3"); !strings.Contains(cs, "fwd=miss") {
				t.Errorf("GET after hoard clear: %q; want a miss", cs)
			}
		})
	}
}

// TestCLIErrors: a bad command line or configuration exits 2 with a
// message that says what to do; a store that does not answer exits 1.
func TestCLIErrors(t *testing.T) {
	redisEnv := map[string]string{"CACHE_BACKEND": "redis", "CACHE_REDIS_URL": "redis://" + deadAddr(t) + "/0", "CACHE_TIMEOUT": "100ms"}
	for _, tc := range []struct {
		env    map[string]string
		args   []string
		status int
		want   string
	}{
		{redisEnv, nil, exitUsage, "no command"},
		{redisEnv, []string{"flush"}, exitUsage, `unknown command "flush"`},
		{redisEnv, []string{"get"}, exitUsage, "get: wants one KEY"},
		{redisEnv, []string{"ping", "extra"}, exitUsage, "ping: takes no operand"},
		{redisEnv, []string{"-bogus", "ping"}, exitUsage, "flag provided but not defined"},
		{map[string]string{}, []string{"ping"}, exitUsage, "CACHE_BACKEND is memory"},
		{map[string]string{"CACHE_BACKEND": "redis", "CACHE_TIMEOUT": "fast"}, []string{"ping"}, exitUsage, "CACHE_TIMEOUT"},
		{redisEnv, []string{"invalidate", "w:*"}, exitUsage, "use invalidate-pattern"},
		{redisEnv, []string{"ping"}, exitFailed, "hoard: "},
	} {
		status, _, stderr := cli(tc.env, tc.args...)
		if status != tc.status || !strings.Contains(stderr, tc.want) {
			t.Errorf("hoard %v: status %d, stderr %q; want %d and %q", tc.args, status, stderr, tc.status, tc.want)
		}
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestBinary builds the command and runs it as an operator would: the
// environment selects the store, the exit status and output tell.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "hoard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := storefixture.Shared(t, storefixture.Redis).Config(t)
	var env []string
	for k, v := range envOf(t, cfg) {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(bin, "--json", "ping") // the flag package takes -json and --json
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != `{"ok":true}` {
		t.Fatalf("hoard --json ping: %v, %q", err, out)
	}
	cmd = exec.Command(bin, "get", "nothing:here")
	cmd.Env = env
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != exitFailed {
		t.Errorf("hoard get of an absent key: %v; want exit status 1", err)
	}
}
