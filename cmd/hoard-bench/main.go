// Command hoard-bench is hoard's load benchmark: it starts the server under
// test and the stores it needs on loopback, drives HTTP load with keep-alive
// connections at a fixed concurrency for a fixed duration, and prints one
// table of requests/s, latency percentiles, errors, hit ratios and ratios to
// the ceiling, with the targets checked against them.
//
//	go run ./cmd/hoard-bench                       # every scenario, 64 connections, 10 s each
//	go run ./cmd/hoard-bench -scenarios ceiling,hit/memory -d 5s
//	go run ./cmd/hoard-bench -json > bench.json
//
// The server under test runs in this process (its own goroutines, its own
// listener on 127.0.0.1:0), so the load generator and the server share the
// machine's cores: quote ratios between scenarios of one run, not absolute
// figures. The stores are private redis-server, Redis Cluster and memcached
// processes started by internal/testserver, as in the tests; they are
// killed when the command exits.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hoardcache/hoard/memcached"
)

func main() {
	if limit, ok := os.LookupEnv(memoryChildEnv); ok {
		if err := memoryChildMain(limit); err != nil {
			fmt.Fprintln(os.Stderr, "hoard-bench: memory child:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hoard-bench:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// options are the command's flags.
type options struct {
	conns      int
	duration   time.Duration
	warmup     time.Duration
	scenarios  string
	json       bool
	widgets    int
	cpuprofile string
	svg        string
	memory     bool
	from       string
	rounds     int
	mcPool     int
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("hoard-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.conns, "c", 64, "concurrent keep-alive connections (one request in flight on each)")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "measured duration of each scenario")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each scenario's measured run")
	fs.StringVar(&o.scenarios, "scenarios", "all", "all, or a comma-separated list of scenarios (a family such as hit/* selects all of it)")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON instead of the table")
	fs.IntVar(&o.rounds, "rounds", 1, "run the scenario list this many times (alternately forward and backward) and report, per scenario, the round with the median requests/s")
	fs.IntVar(&o.widgets, "widgets", 10000, "size of the working set (widget ids 1..N)")
	fs.IntVar(&o.mcPool, "memcached-pool", memcached.DefaultPoolSize, "idle connections kept per memcached server, by raw/memcached and by the memcached store (CACHE_MEMCACHED_POOL_SIZE)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of each scenario's measured run to this file (with the scenario's name added when there are several); it covers the load generator too")
	fs.StringVar(&o.svg, "svg", "", "also write a chart of requests/s and p99 per scenario to this SVG file")
	fs.BoolVar(&o.memory, "memory", false, "also measure the memory figure: RSS after 100,000 entries of 1 KiB in the memory store")
	fs.StringVar(&o.from, "from", "", "measure nothing: print the table (or -json) and write -svg from a report saved with -json")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: hoard-bench [flags]\n\nScenarios: %s\n\nFlags:\n", strings.Join(scenarioNames(), ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, usageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return o, usageError{fmt.Errorf("unexpected argument %q; every setting is a flag (see -h)", fs.Arg(0))}
	case o.conns < 1:
		return o, usageError{fmt.Errorf("-c %d: need at least 1 connection", o.conns)}
	case o.duration <= 0:
		return o, usageError{fmt.Errorf("-d %v: need a positive duration such as 10s", o.duration)}
	case o.warmup < 0:
		return o, usageError{fmt.Errorf("-warmup %v: need 0 or a positive duration", o.warmup)}
	case o.rounds < 1:
		return o, usageError{fmt.Errorf("-rounds %d: need at least 1", o.rounds)}
	case o.widgets < 1:
		return o, usageError{fmt.Errorf("-widgets %d: need at least 1", o.widgets)}
	case o.mcPool < 1:
		return o, usageError{fmt.Errorf("-memcached-pool %d: need at least 1 connection per server", o.mcPool)}
	}
	return o, nil
}

func scenarioNames() []string {
	var names []string
	for _, s := range scenarios() {
		names = append(names, s.name)
	}
	return names
}

// report is the whole output, also the -json document.
type report struct {
	Machine   machine        `json:"machine"`
	Settings  settings       `json:"settings"`
	Results   []result       `json:"results"`
	Targets   []targetResult `json:"targets"`
	Memory    *memoryFigure  `json:"memory,omitempty"`
	StartedAt time.Time      `json:"started_at"`
}

type machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Note       string `json:"note"`
}

type settings struct {
	Connections int     `json:"connections"`
	DurationS   float64 `json:"duration_s"`
	WarmupS     float64 `json:"warmup_s"`
	Rounds      int     `json:"rounds"`
	Widgets     int     `json:"widgets"`
	ZipfS       float64 `json:"zipf_s"`
	// MemcachedPool is the idle connections kept per memcached server by
	// raw/memcached and the memcached store (0 in reports written before
	// the -memcached-pool flag: it was 10).
	MemcachedPool int `json:"memcached_pool_size,omitempty"`
}

// result is one scenario's line. Latencies are in milliseconds.
type result struct {
	Scenario    string    `json:"scenario"`
	Description string    `json:"description"`
	Requests    int64     `json:"requests"`
	RPS         float64   `json:"requests_per_s"`
	RoundsRPS   []float64 `json:"rounds_requests_per_s,omitempty"` // every round's, in round order (with -rounds)
	P50         float64   `json:"p50_ms"`
	P99         float64   `json:"p99_ms"`
	P999        float64   `json:"p999_ms"`
	Errors      int64     `json:"errors"`
	// CPUPerReqUS is the CPU time (user + system) of this whole process
	// (server under test and load generator, not the store servers) per
	// request of the measured run, in microseconds; with -rounds, the
	// median of the rounds'. Less sensitive than requests/s to other
	// processes competing for the cores.
	CPUPerReqUS float64  `json:"cpu_us_per_request,omitempty"`
	FirstError  string   `json:"first_error,omitempty"`
	HitRatio    *float64 `json:"hit_ratio,omitempty"`
	Puts        int64    `json:"puts,omitempty"`
	VsCeiling   *float64 `json:"vs_ceiling,omitempty"`
	Floor       string   `json:"floor,omitempty"`
	VsFloor     *float64 `json:"vs_floor,omitempty"`
	Outage      *outage  `json:"outage,omitempty"`
	// HandlerRuns is how many times the route's handler ran during the
	// measured run (scenarios that report it: expiry/*).
	HandlerRuns int64 `json:"handler_runs,omitempty"`
	// StoredBytes is what the store holds for the working set's entries
	// after the fill (scenarios that report it: json20k/*).
	StoredBytes int64 `json:"stored_bytes,omitempty"`
}

// outage splits the outage scenario's latencies by phase.
type outage struct {
	P99Before     float64 `json:"p99_before_ms"`
	P99Stopped    float64 `json:"p99_stopped_ms"`
	P99Killed     float64 `json:"p99_killed_ms"`
	P99Outage     float64 `json:"p99_outage_ms"` // stopped and killed together
	P999Outage    float64 `json:"p999_outage_ms"`
	MaxOutage     float64 `json:"max_outage_ms"`
	RequestsBoth  int     `json:"requests_outage"`
	RequestsStop  int     `json:"requests_stopped"`
	RequestsKill  int     `json:"requests_killed"`
	RPSDuring     float64 `json:"requests_per_s_outage"`
	WindowSeconds float64 `json:"window_s"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	sel, err := selectScenarios(o.scenarios)
	if err != nil {
		return usageError{err}
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "hoard-bench: "+format+"\n", args...) }
	if o.from != "" {
		b, err := os.ReadFile(o.from)
		if err != nil {
			return usageError{fmt.Errorf("-from: %w", err)}
		}
		var rep report
		if err := json.Unmarshal(b, &rep); err != nil {
			return usageError{fmt.Errorf("-from %s: not a report written by -json: %w", o.from, err)}
		}
		return output(&rep, o, stdout, logf)
	}

	rep := &report{
		Machine:   describeMachine(),
		Settings:  settings{Connections: o.conns, DurationS: o.duration.Seconds(), WarmupS: o.warmup.Seconds(), Rounds: o.rounds, Widgets: o.widgets, ZipfS: zipfS, MemcachedPool: o.mcPool},
		StartedAt: time.Now().UTC(),
	}
	dir, err := os.MkdirTemp("", "hoard-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logf("creating %d widgets in SQLite", o.widgets)
	db, err := openSQLite(ctx, dir, o.widgets)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer db.Close()
	e := &env{ctx: ctx, db: db, widgets: o.widgets, mcPool: o.mcPool, logf: logf, logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	defer e.Close()

	rounds := map[string][]result{}
	for round := range o.rounds {
		order := slices.Clone(sel)
		if round%2 == 1 {
			slices.Reverse(order) // no scenario always runs first or last
		}
		for _, sc := range order {
			if err := ctx.Err(); err != nil {
				return err
			}
			res, err := runScenario(ctx, e, sc, o, len(sel) > 1 || o.rounds > 1, round, logf)
			if err != nil {
				return fmt.Errorf("%s: %w", sc.name, err)
			}
			rounds[sc.name] = append(rounds[sc.name], *res)
			logf("%-22s %8.0f req/s  p50 %.2f ms  p99 %.2f ms  errors %d", sc.name, res.RPS, res.P50, res.P99, res.Errors)
		}
	}
	for _, sc := range sel {
		rep.Results = append(rep.Results, medianRound(rounds[sc.name]))
	}
	computeRatios(rep.Results)
	rep.Targets = checkTargets(rep.Results)
	if o.memory {
		m, err := measureMemory(ctx, memoryEntries, memoryLimits, logf)
		if err != nil {
			return fmt.Errorf("memory: %w", err)
		}
		rep.Memory = m
	}
	return output(rep, o, stdout, logf)
}

// output writes the chart (-svg) and prints the report.
func output(rep *report, o options, stdout io.Writer, logf func(string, ...any)) error {
	if o.svg != "" {
		if err := os.WriteFile(o.svg, chartSVG(rep), 0o644); err != nil {
			return fmt.Errorf("-svg: %w", err)
		}
		logf("wrote %s", o.svg)
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	writeTable(stdout, rep)
	return nil
}

// runScenario starts the scenario's server, fills the cache when the
// scenario needs it, warms up, and measures.
func runScenario(ctx context.Context, e *env, sc scenario, o options, several bool, round int, logf func(string, ...any)) (*result, error) {
	logf("%s: %s", sc.name, sc.desc)
	h, release, err := sc.build(e)
	if err != nil {
		return nil, err
	}
	if release != nil {
		defer release()
	}
	srv, err := startServer(h)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	n := o.widgets
	if sc.ids > 0 {
		n = min(n, sc.ids)
	}
	cl, err := newClient(workload{base: srv.URL(), n: n, zipf: sc.zipf, putFrac: sc.putFrac, gzip: sc.gzip}, o.conns)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if sc.fill {
		if err := cl.fill(ctx, o.conns); err != nil {
			return nil, err
		}
	}
	var stored int64
	if sc.storedBytes {
		if stored, err = storedBytes(ctx, e.cache, n); err != nil {
			return nil, err
		}
	}
	if o.warmup > 0 {
		cl.run(ctx, o.conns, o.warmup, false, nil)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var phase atomic.Int32
	var stopOutage func() error
	if o.cpuprofile != "" {
		path := o.cpuprofile
		if several {
			ext := filepath.Ext(path)
			path = strings.TrimSuffix(path, ext) + "." + strings.ReplaceAll(sc.name, "/", "-") + ext
			if o.rounds > 1 {
				path = strings.TrimSuffix(path, ext) + fmt.Sprintf(".round%d", round+1) + ext
			}
		}
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("-cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if sc.outage {
		stopOutage = e.runOutage(ctx, o.duration, &phase)
	}
	e.runs.Store(0)
	cpu0 := processCPU()
	lr := cl.run(ctx, o.conns, o.duration, true, &phase)
	cpu := processCPU() - cpu0
	runs := e.runs.Load()
	if stopOutage != nil {
		if err := stopOutage(); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	all := lr.all()
	res := &result{
		Scenario:    sc.name,
		Description: sc.desc,
		Requests:    lr.Requests,
		RPS:         float64(lr.Requests) / lr.Elapsed.Seconds(),
		P50:         ms(percentile(all, 0.50)),
		P99:         ms(percentile(all, 0.99)),
		P999:        ms(percentile(all, 0.999)),
		Errors:      lr.Errors,
		FirstError:  lr.FirstErr,
		CPUPerReqUS: perRequestUS(cpu, lr.Requests),
		Puts:        lr.Puts,
	}
	if sc.runs {
		res.HandlerRuns = runs
	}
	res.StoredBytes = stored
	if sc.hits && lr.Gets > 0 {
		r := float64(lr.Hits) / float64(lr.Gets)
		res.HitRatio = &r
	}
	if sc.outage {
		during := append(append([]time.Duration(nil), lr.Lat[phaseStopped]...), lr.Lat[phaseKilled]...)
		sortDurations(during)
		window := lr.Elapsed - o.duration/3
		res.Outage = &outage{
			P99Before:     ms(percentile(lr.Lat[phaseBefore], 0.99)),
			P99Stopped:    ms(percentile(lr.Lat[phaseStopped], 0.99)),
			P99Killed:     ms(percentile(lr.Lat[phaseKilled], 0.99)),
			P99Outage:     ms(percentile(during, 0.99)),
			P999Outage:    ms(percentile(during, 0.999)),
			MaxOutage:     ms(percentile(during, 1)),
			RequestsBoth:  len(during),
			RequestsStop:  len(lr.Lat[phaseStopped]),
			RequestsKill:  len(lr.Lat[phaseKilled]),
			RPSDuring:     float64(len(during)) / window.Seconds(),
			WindowSeconds: window.Seconds(),
		}
	}
	return res, nil
}

func describeMachine() machine {
	m := machine{
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		Note:       "the load generator runs in the same process as the server under test and shares its cores",
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// processCPU returns the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perRequestUS is cpu per request in microseconds (0 without requests).
func perRequestUS(cpu time.Duration, requests int64) float64 {
	if requests <= 0 || cpu <= 0 {
		return 0
	}
	return float64(cpu) / float64(time.Microsecond) / float64(requests)
}

// medianRound returns the round with the median requests/s (the lower
// median for an even count), with every round's requests/s and the errors
// of all rounds.
func medianRound(rs []result) result {
	if len(rs) == 1 {
		return rs[0]
	}
	byRPS := slices.Clone(rs)
	slices.SortFunc(byRPS, func(a, b result) int { return cmp.Compare(a.RPS, b.RPS) })
	med := byRPS[(len(byRPS)-1)/2]
	cpus := make([]float64, 0, len(rs))
	for _, r := range rs {
		cpus = append(cpus, r.CPUPerReqUS)
	}
	slices.Sort(cpus)
	med.CPUPerReqUS = cpus[(len(cpus)-1)/2]
	med.Errors = 0
	for _, r := range rs {
		med.RoundsRPS = append(med.RoundsRPS, r.RPS)
		med.Errors += r.Errors
		if med.FirstError == "" {
			med.FirstError = r.FirstError
		}
	}
	return med
}
