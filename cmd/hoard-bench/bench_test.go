package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the -memory child process, as the
// command is.
func TestMain(m *testing.M) {
	if limit, ok := os.LookupEnv(memoryChildEnv); ok {
		if err := memoryChildMain(limit); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestMemory checks the memory figure, scaled down (20,000 entries; the
// command stores 100,000): under a limit too small the store evicts and
// accounts for at most CACHE_MEMORY_MAX_BYTES; under a large one it holds
// every entry.
func TestMemory(t *testing.T) {
	const entries = 20000
	limits := []int64{8 << 20, 64 << 20}
	fig, err := measureMemory(context.Background(), entries, limits, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(fig.Runs) != len(limits) {
		t.Fatalf("%d runs, want %d", len(fig.Runs), len(limits))
	}
	for _, r := range fig.Runs {
		if !r.LimitRespects || r.Accounted > r.MaxBytes || r.Accounted <= 0 || r.Held <= 0 {
			t.Errorf("limit %d: %d entries held, %d bytes accounted", r.MaxBytes, r.Held, r.Accounted)
		}
		if r.RSSFull <= 0 || r.RSSEmpty <= 0 || r.RSSPeak < r.RSSFull {
			t.Errorf("limit %d: RSS empty %d, full %d, peak %d", r.MaxBytes, r.RSSEmpty, r.RSSFull, r.RSSPeak)
		}
	}
	if small := fig.Runs[0]; small.Held >= entries {
		t.Errorf("limit %d held all %d entries of %d bytes: nothing was evicted", small.MaxBytes, small.Held, memoryValueSize)
	}
	if big := fig.Runs[1]; big.Held != entries {
		t.Errorf("limit %d held %d entries, want all %d", big.MaxBytes, big.Held, entries)
	}
	var b bytes.Buffer
	writeMemory(&b, fig)
	if !strings.Contains(b.String(), " 8388608 (8.0 MiB) |") {
		t.Errorf("memory table:\n%s", b.String())
	}
}

// TestSmoke runs the harness with tiny settings over a few scenarios,
// including the Redis outage, and checks that every line is complete and
// that nothing failed. It measures nothing: the figures only have to exist.
func TestSmoke(t *testing.T) {
	want := []string{"ceiling", "raw/redis", "uncached", "uncached/postgres", "hit/memory", "hit/redis/zipf",
		"hit/redis/near", "hit/redis/near/zipf", "hit/rediscluster/near", "hit/rediscluster/near/zipf",
		"mixed/memory", "mixed/redis/near", "expiry/redis/stale", "json20k/memory/none", "json20k/memory/stored", "outage/redis", "nomiddleware", "disabled"}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svg := t.TempDir() + "/chart.svg"
	args := []string{"-c", "4", "-d", "300ms", "-warmup", "50ms", "-widgets", "200", "-json", "-svg", svg, "-scenarios", strings.Join(want, ",")}
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("-json output does not decode: %v\n%s", err, stdout.String())
	}
	if len(rep.Results) != len(want) {
		t.Fatalf("got %d results, want %d (%v)", len(rep.Results), len(want), want)
	}
	for i, r := range rep.Results {
		if r.Scenario != want[i] {
			t.Errorf("result %d is %q, want %q", i, r.Scenario, want[i])
		}
		if r.Requests == 0 || r.RPS <= 0 {
			t.Errorf("%s: %d requests, %.0f/s: nothing measured", r.Scenario, r.Requests, r.RPS)
		}
		if r.Errors != 0 {
			t.Errorf("%s: %d errors, first: %s", r.Scenario, r.Errors, r.FirstError)
		}
		if strings.HasPrefix(r.Scenario, "expiry/") != (r.HandlerRuns > 0) {
			t.Errorf("%s: %d handler runs reported; want them for the expiry scenarios only", r.Scenario, r.HandlerRuns)
		}
		if !(0 < r.P50 && r.P50 <= r.P99 && r.P99 <= r.P999) {
			t.Errorf("%s: percentiles p50 %v, p99 %v, p99.9 %v are not positive and ordered", r.Scenario, r.P50, r.P99, r.P999)
		}
		if r.VsCeiling == nil {
			t.Errorf("%s: no ratio to the ceiling", r.Scenario)
		}
		if strings.HasPrefix(r.Scenario, "json20k/") != (r.StoredBytes > 0) {
			t.Errorf("%s: %d stored bytes reported; want them for the json20k scenarios only", r.Scenario, r.StoredBytes)
		}
		hits := strings.HasPrefix(r.Scenario, "hit/") || strings.HasPrefix(r.Scenario, "mixed/") ||
			strings.HasPrefix(r.Scenario, "expiry/") || strings.HasPrefix(r.Scenario, "json20k/") || r.Scenario == "outage/redis"
		if hits != (r.HitRatio != nil) {
			t.Errorf("%s: hit ratio %v; want one exactly on hit, mixed, expiry and outage scenarios", r.Scenario, r.HitRatio)
		}
		if strings.HasPrefix(r.Scenario, "hit/") && r.HitRatio != nil && *r.HitRatio < 0.5 {
			// The cache was filled before the run: nearly every GET is a hit.
			t.Errorf("%s: hit ratio %.3f after the fill", r.Scenario, *r.HitRatio)
		}
		if strings.HasPrefix(r.Scenario, "mixed/") && r.Puts == 0 {
			t.Errorf("%s: no PUT was sent", r.Scenario)
		}
	}
	if none, stored := find(rep.Results, "json20k/memory/none"), find(rep.Results, "json20k/memory/stored"); none != nil && stored != nil &&
		stored.StoredBytes*3 > none.StoredBytes {
		t.Errorf("json20k: %d bytes stored compressed against %d uncompressed; want a third at most", stored.StoredBytes, none.StoredBytes)
	}
	for _, name := range []string{"hit/redis/zipf", "hit/redis/near", "hit/redis/near/zipf"} {
		if r := find(rep.Results, name); r != nil && (r.Floor != "raw/redis" || r.VsFloor == nil) {
			t.Errorf("%s: floor %q %v, want a ratio to raw/redis", name, r.Floor, r.VsFloor)
		}
	}
	// The near scenarios ran with the near cache on: the store logs a
	// line when the server refuses it.
	if strings.Contains(stderr.String(), "near cache off") {
		t.Errorf("the near cache was turned off:\n%s", stderr.String())
	}
	o := find(rep.Results, "outage/redis")
	if o == nil || o.Outage == nil {
		t.Fatal("outage/redis: no outage figures")
	}
	if o.Outage.RequestsStop == 0 || o.Outage.RequestsKill == 0 {
		t.Errorf("outage/redis: %d requests while stopped, %d after the kill: the outage phases did not happen",
			o.Outage.RequestsStop, o.Outage.RequestsKill)
	}
	if o.Outage.P99Outage <= 0 {
		t.Errorf("outage/redis: p99 during the outage %v", o.Outage.P99Outage)
	}
	// Targets whose scenarios ran are reported (their values are noise here).
	var names []string
	for _, tr := range rep.Targets {
		names = append(names, tr.Target)
	}
	for _, want := range []string{"disabled ≥ 0.97 × nomiddleware", "outage/redis: 0 errors", "outage/redis: p99 during the outage",
		"hit/redis/near ≥ 0.85 × ceiling (requests/s)", "hit/redis/near p99 within 1 ms of hit/memory's"} {
		if !strings.Contains(strings.Join(names, "\n"), want) {
			t.Errorf("targets %q lack %q", names, want)
		}
	}
	chart, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range want {
		if !bytes.Contains(chart, []byte(">"+name+"</text>")) {
			t.Errorf("chart lacks a row for %s", name)
		}
	}
	if !bytes.HasPrefix(chart, []byte("<svg ")) || !bytes.HasSuffix(chart, []byte("</svg>\n")) {
		t.Errorf("chart is not one <svg> element")
	}
	if rep.Machine.Cores == 0 || rep.Machine.GoVersion == "" {
		t.Errorf("machine not described: %+v", rep.Machine)
	}
}

// TestTable checks the printed table on a made-up report: one line per
// scenario with every column, ratios, the outage phases and the targets.
func TestTable(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	rs := []result{
		{Scenario: "ceiling", RPS: 20000, P50: 0.2, P99: 2, P999: 5},
		{Scenario: "raw/redis", RPS: 10000, P50: 0.4, P99: 3, P999: 6},
		{Scenario: "uncached", RPS: 5000, P50: 1, P99: 9, P999: 20},
		{Scenario: "hit/memory", RPS: 18000, P50: 0.2, P99: 2, P999: 5, HitRatio: f(1)},
		{Scenario: "hit/redis", RPS: 8000, P50: 0.5, P99: 4, P999: 8, HitRatio: f(0.999)},
		{Scenario: "hit/redis/near", RPS: 17500, P50: 0.2, P99: 2.5, P999: 6, HitRatio: f(0.999)},
		{Scenario: "outage/redis", RPS: 6000, P50: 0.8, P99: 12, P999: 40, HitRatio: f(0.4),
			Outage: &outage{P99Before: 3, P99Stopped: 60, P99Killed: 10, P99Outage: 15, RequestsStop: 100, RequestsKill: 200}},
	}
	computeRatios(rs)
	rep := &report{Results: rs, Targets: checkTargets(rs), Settings: settings{Connections: 64, DurationS: 10, WarmupS: 2, Widgets: 10000, MemcachedPool: 10}}
	var b bytes.Buffer
	writeTable(&b, rep)
	out := b.String()
	for _, want := range []string{
		"10000 widgets, memcached pool 10 per server;",
		"| `hit/memory`     | 18000 |   0.20 |   2.00 |     5.00 |      0 |     1.000 |      0.90 |                  |",
		"| `hit/redis`      |  8000 |   0.50 |   4.00 |     8.00 |      0 |     0.999 |      0.40 | 0.80 × raw/redis |",
		"| `hit/redis/near` | 17500 |   0.20 |   2.50 |     6.00 |      0 |     0.999 |      0.88 | 1.75 × raw/redis |",
		"SIGSTOPped p99 60.0 ms (100 requests)",
		"| hit/memory ≥ 0.85 × ceiling (requests/s)",
		"| hit/redis ≥ 0.85 × raw/redis (requests/s)                 | 0.80 ×                               | **no** |",
		"| hit/redis ≥ 3 × uncached (requests/s)",
		"| hit/redis/near p99 within 1 ms of hit/memory's            | 2.50 ms (limit 2.00 + 1 = 3.00 ms)   | yes    |",
		"| hit/redis/near ≥ 0.85 × ceiling (requests/s)              | 0.88 ×                               | yes    |",
		"**no**",
		"| outage/redis: p99 during the outage ≤ uncached p99 + 5 ms | 15.00 ms (limit 9.00 + 5 = 14.00 ms) | **no** |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestTableCPUColumn(t *testing.T) {
	rep := &report{Results: []result{{Scenario: "hit/memcached", RPS: 5000, CPUPerReqUS: 123.4}, {Scenario: "raw/memcached", RPS: 9000}}}
	var b bytes.Buffer
	writeTable(&b, rep)
	for _, want := range []string{"| CPU µs/req |", "|        123 |", "|            |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	medians := medianRound([]result{{RPS: 1, CPUPerReqUS: 300}, {RPS: 2, CPUPerReqUS: 100}, {RPS: 3, CPUPerReqUS: 200}})
	if medians.RPS != 2 || medians.CPUPerReqUS != 200 {
		t.Errorf("medianRound: %v req/s, %v µs/req; want the median of each, 2 and 200", medians.RPS, medians.CPUPerReqUS)
	}
}

func TestMedianRound(t *testing.T) {
	got := medianRound([]result{{Scenario: "x", RPS: 300, P99: 3}, {Scenario: "x", RPS: 100, P99: 1, Errors: 2, FirstError: "boom"}, {Scenario: "x", RPS: 200, P99: 2}})
	if got.RPS != 200 || got.P99 != 2 || got.Errors != 2 || got.FirstError != "boom" || fmt.Sprint(got.RoundsRPS) != "[300 100 200]" {
		t.Errorf("medianRound = %+v; want the 200 req/s round, all rounds' req/s in order, errors summed", got)
	}
}

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 1000; i++ {
		s = append(s, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0.0001, 1}} {
		if got := percentile(s, c.p); got != c.want {
			t.Errorf("percentile(1..1000, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 0.99); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

func TestFlagsAndScenarios(t *testing.T) {
	for _, c := range []struct {
		args    []string
		wantErr string // "" means success
		want    []string
	}{
		{args: nil, want: scenarioNames()},
		{args: []string{"-scenarios", "hit/memory,ceiling"}, want: []string{"ceiling", "hit/memory"}},
		{args: []string{"-scenarios", "hit/redis*"}, want: []string{"hit/redis", "hit/redis/zipf", "hit/redis/near", "hit/redis/near/zipf",
			"hit/rediscluster", "hit/rediscluster/zipf", "hit/rediscluster/near", "hit/rediscluster/near/zipf", "hit/redis/metrics"}},
		{args: []string{"-scenarios", "hit/memory,hit/memory/metrics"}, want: []string{"hit/memory", "hit/memory/metrics"}},
		{args: []string{"-scenarios", "hit/*"}, want: []string{"hit/memory", "hit/memory/zipf", "hit/redis", "hit/redis/zipf", "hit/redis/near", "hit/redis/near/zipf",
			"hit/rediscluster", "hit/rediscluster/zipf", "hit/rediscluster/near", "hit/rediscluster/near/zipf", "hit/memcached", "hit/memcached/zipf",
			"hit/memory/metrics", "hit/redis/metrics"}},
		{args: []string{"-scenarios", "hit/redis/near*"}, want: []string{"hit/redis/near", "hit/redis/near/zipf"}},
		{args: []string{"-scenarios", "mixed/*"}, want: []string{"mixed/memory", "mixed/redis", "mixed/redis/near", "mixed/rediscluster", "mixed/memcached"}},
		{args: []string{"-scenarios", "hit/rediscluster/near,mixed/redis/near,hit/redis/near/zipf"}, want: []string{"hit/redis/near/zipf", "hit/rediscluster/near", "mixed/redis/near"}},
		{args: []string{"-scenarios", "hit/mongodb"}, wantErr: `unknown scenario "hit/mongodb"; use all, or a comma-separated list of: ceiling,`},
		{args: []string{"-c", "0"}, wantErr: "-c 0: need at least 1 connection"},
		{args: []string{"-rounds", "0"}, wantErr: "-rounds 0: need at least 1"},
		{args: []string{"-d", "0s"}, wantErr: "-d 0s: need a positive duration"},
		{args: []string{"-memcached-pool", "0"}, wantErr: "-memcached-pool 0: need at least 1 connection per server"},
		{args: []string{"-scenarios", "raw/memcached*"}, want: []string{"raw/memcached", "raw/memcached/3keys"}},
		{args: []string{"-scenarios", "expiry/*"}, want: []string{"expiry/redis", "expiry/redis/stale"}},
		{args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	} {
		o, err := parseFlags(c.args, io.Discard)
		var sel []scenario
		if err == nil {
			sel, err = selectScenarios(o.scenarios)
		}
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: error %v, want one containing %q", c.args, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		var got []string
		for _, s := range sel {
			got = append(got, s.name)
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%q: scenarios %v, want %v", c.args, got, c.want)
		}
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}
