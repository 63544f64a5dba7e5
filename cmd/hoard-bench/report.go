package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

func sortDurations(d []time.Duration) { slices.Sort(d) }

// floors maps a hit scenario to the raw scenario of its store.
var floors = map[string]string{
	"hit/redis":      "raw/redis",
	"hit/redis/zipf": "raw/redis",
	// A near-cache hit normally makes no round trip: raw/redis is the
	// floor it is meant to beat.
	"hit/redis/near":      "raw/redis",
	"hit/redis/near/zipf": "raw/redis",
	"hit/memcached":       "raw/memcached",
	"hit/memcached/zipf":  "raw/memcached",
	// The floor of a hit with hoard's key layout, against the one-key floor.
	"raw/memcached/3keys": "raw/memcached",
}

func find(rs []result, name string) *result {
	for i := range rs {
		if rs[i].Scenario == name {
			return &rs[i]
		}
	}
	return nil
}

// computeRatios fills VsCeiling and VsFloor (requests/s ratios within the
// run).
func computeRatios(rs []result) {
	ceiling := find(rs, "ceiling")
	for i := range rs {
		r := &rs[i]
		if ceiling != nil && ceiling.RPS > 0 {
			v := r.RPS / ceiling.RPS
			r.VsCeiling = &v
		}
		if f := find(rs, floors[r.Scenario]); f != nil && f.RPS > 0 {
			v := r.RPS / f.RPS
			r.Floor, r.VsFloor = f.Scenario, &v
		}
	}
}

// targetResult is one target of the issue, checked against this run.
type targetResult struct {
	Target   string  `json:"target"`
	Measured string  `json:"measured"`
	Value    float64 `json:"value"`
	Want     float64 `json:"want"`
	Met      bool    `json:"met"`
}

// checkTargets evaluates the targets whose scenarios ran.
func checkTargets(rs []result) []targetResult {
	var out []targetResult
	ratio := func(a, b string, want float64) {
		ra, rb := find(rs, a), find(rs, b)
		if ra == nil || rb == nil || rb.RPS == 0 {
			return
		}
		v := ra.RPS / rb.RPS
		out = append(out, targetResult{
			Target:   fmt.Sprintf("%s ≥ %s × %s (requests/s)", a, strconv.FormatFloat(want, 'f', -1, 64), b),
			Measured: fmt.Sprintf("%.2f ×", v),
			Value:    v, Want: want, Met: v >= want,
		})
	}
	ratio("hit/memory", "ceiling", 0.85)
	ratio("hit/redis", "raw/redis", 0.85)
	ratio("hit/memcached", "raw/memcached", 0.85)
	ratio("hit/redis", "uncached", 3)
	ratio("hit/redis", "uncached/postgres", 3)
	ratio("disabled", "nomiddleware", 0.97)
	ratio("hit/redis/near", "ceiling", 0.85)
	if n, m := find(rs, "hit/redis/near"), find(rs, "hit/memory"); n != nil && m != nil {
		want := m.P99 + 1
		out = append(out, targetResult{
			Target:   "hit/redis/near p99 within 1 ms of hit/memory's",
			Measured: fmt.Sprintf("%.2f ms (limit %.2f + 1 = %.2f ms)", n.P99, m.P99, want),
			Value:    n.P99, Want: want, Met: n.P99 <= want,
		})
	}
	if o := find(rs, "outage/redis"); o != nil {
		out = append(out, targetResult{
			Target:   "outage/redis: 0 errors",
			Measured: fmt.Sprintf("%d errors", o.Errors),
			Value:    float64(o.Errors), Want: 0, Met: o.Errors == 0,
		})
		if u := find(rs, "uncached"); u != nil && o.Outage != nil {
			want := u.P99 + 5
			out = append(out, targetResult{
				Target:   "outage/redis: p99 during the outage ≤ uncached p99 + 5 ms",
				Measured: fmt.Sprintf("%.2f ms (limit %.2f + 5 = %.2f ms)", o.Outage.P99Outage, u.P99, want),
				Value:    o.Outage.P99Outage, Want: want, Met: o.Outage.P99Outage <= want,
			})
		}
	}
	return out
}

// writeTable prints the report as Markdown tables (aligned, so they read as
// plain text too).
func writeTable(w io.Writer, rep *report) {
	m := rep.Machine
	rounds := ""
	if rep.Settings.Rounds > 1 {
		rounds = fmt.Sprintf(", median of %d rounds", rep.Settings.Rounds)
	}
	pool := ""
	if n := rep.Settings.MemcachedPool; n > 0 {
		pool = fmt.Sprintf(", memcached pool %d per server", n)
	}
	fmt.Fprintf(w, "hoard-bench: %d connections, %v per scenario after %v warm-up%s, %d widgets%s; %s, %d cores, %s %s\n\n",
		rep.Settings.Connections, time.Duration(rep.Settings.DurationS*float64(time.Second)),
		time.Duration(rep.Settings.WarmupS*float64(time.Second)), rounds, rep.Settings.Widgets, pool, m.CPU, m.Cores, m.GoVersion, m.OS)
	rows := [][]string{{"scenario", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "hit ratio", "× ceiling", "× floor"}}
	right := []bool{false, true, true, true, true, true, true, true, true}
	cpuCol := slices.ContainsFunc(rep.Results, func(r result) bool { return r.CPUPerReqUS > 0 })
	if cpuCol {
		rows[0] = append(rows[0], "CPU µs/req")
		right = append(right, true)
	}
	if rep.Settings.Rounds > 1 {
		rows[0] = append(rows[0], "req/s of each round")
		right = append(right, false)
	}
	for _, r := range rep.Results {
		row := []string{"`" + r.Scenario + "`", fmt.Sprintf("%.0f", r.RPS), fmtMS(r.P50), fmtMS(r.P99), fmtMS(r.P999), fmt.Sprint(r.Errors), "", "", ""}
		if cpuCol {
			cpu := ""
			if r.CPUPerReqUS > 0 {
				cpu = fmt.Sprintf("%.0f", r.CPUPerReqUS)
			}
			row = append(row, cpu)
		}
		if rep.Settings.Rounds > 1 {
			var each []string
			for _, v := range r.RoundsRPS {
				each = append(each, fmt.Sprintf("%.0f", v))
			}
			row = append(row, strings.Join(each, ", "))
		}
		if r.HitRatio != nil {
			row[6] = fmt.Sprintf("%.3f", *r.HitRatio)
		}
		if r.VsCeiling != nil {
			row[7] = fmt.Sprintf("%.2f", *r.VsCeiling)
		}
		if r.VsFloor != nil {
			row[8] = fmt.Sprintf("%.2f × %s", *r.VsFloor, r.Floor)
		}
		rows = append(rows, row)
	}
	markdownTable(w, rows, right)

	for _, r := range rep.Results {
		if r.FirstError != "" {
			fmt.Fprintf(w, "\n%s: first error: %s\n", r.Scenario, r.FirstError)
		}
	}
	for _, r := range rep.Results {
		if r.HandlerRuns > 0 {
			fmt.Fprintf(w, "\n`%s`: the handler ran %d times (%.0f a second) for %d requests.\n",
				r.Scenario, r.HandlerRuns, float64(r.HandlerRuns)*r.RPS/float64(max(r.Requests, 1)), r.Requests)
		}
		if o := r.Outage; o != nil {
			fmt.Fprintf(w, "\n`%s` by phase: before p99 %s ms; SIGSTOPped p99 %s ms (%d requests); after SIGKILL p99 %s ms (%d requests);\n"+
				"whole outage window (%.1f s) p99 %s ms, p99.9 %s ms, max %s ms, %.0f req/s.\n",
				r.Scenario, fmtMS(o.P99Before), fmtMS(o.P99Stopped), o.RequestsStop, fmtMS(o.P99Killed), o.RequestsKill,
				o.WindowSeconds, fmtMS(o.P99Outage), fmtMS(o.P999Outage), fmtMS(o.MaxOutage), o.RPSDuring)
		}
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w)
		rows := [][]string{{"target", "measured", "met"}}
		for _, t := range rep.Targets {
			met := "yes"
			if !t.Met {
				met = "**no**"
			}
			rows = append(rows, []string{t.Target, t.Measured, met})
		}
		markdownTable(w, rows, []bool{false, false, false})
	}
	if mem := rep.Memory; mem != nil {
		fmt.Fprintln(w)
		writeMemory(w, mem)
	}
}

func fmtMS(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// markdownTable writes rows (the first is the header) with padded columns;
// right[i] right-aligns column i.
func markdownTable(w io.Writer, rows [][]string, right []bool) {
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)), 3)
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if right[i] {
				b.WriteString(" " + pad + c + " |")
			} else {
				b.WriteString(" " + c + pad + " |")
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(rows[0])
	sep := make([]string, len(width))
	for i, n := range width {
		if right[i] {
			sep[i] = strings.Repeat("-", n-1) + ":"
		} else {
			sep[i] = strings.Repeat("-", n)
		}
	}
	line(sep)
	for _, row := range rows[1:] {
		line(row)
	}
}
