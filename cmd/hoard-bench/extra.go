package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/memory"
)

// The memory figure: a fresh process (this executable again, with
// memoryChildEnv set) opens a memory-store Cache with a given
// CACHE_MEMORY_MAX_BYTES, stores memoryEntries values of memoryValueSize
// bytes straight into its store (Store.Set: one store entry each, no
// generation keys), and reports its resident size and what the store
// accounts for. A child process keeps the figure free of the benchmark's own
// memory (SQLite, clients, earlier scenarios).
const (
	memoryChildEnv  = "HOARD_BENCH_MEMORY_CHILD" // value: "MaxBytes,entries"
	memoryEntries   = 100000
	memoryValueSize = 1024
)

// memoryFigure is the -memory result: one run per limit.
type memoryFigure struct {
	Entries   int           `json:"entries"`
	ValueSize int           `json:"value_bytes"`
	Runs      []memoryChild `json:"runs"`
}

// memoryChild is what one child process measured.
type memoryChild struct {
	MaxBytes      int64 `json:"max_bytes"`       // CACHE_MEMORY_MAX_BYTES
	Held          int   `json:"entries_held"`    // entries still in the store
	Accounted     int64 `json:"accounted_bytes"` // the store's WeightedSize
	RSSEmpty      int64 `json:"rss_empty_bytes"` // after opening the empty cache
	RSSFull       int64 `json:"rss_full_bytes"`  // after the writes, GC and returning free memory
	RSSPeak       int64 `json:"rss_peak_bytes"`  // VmHWM
	HeapInuse     int64 `json:"heap_inuse_bytes"`
	LimitRespects bool  `json:"limit_respected"`
}

// memoryLimits are the limits measured: the default (100,000 KiB values do
// not fit: the store must evict) and one that holds them all.
var memoryLimits = []int64{memory.DefaultMaxBytes, 256 << 20}

// measureMemory runs one child per limit, each storing entries values.
func measureMemory(ctx context.Context, entries int, limits []int64, logf func(string, ...any)) (*memoryFigure, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	fig := &memoryFigure{Entries: entries, ValueSize: memoryValueSize}
	for _, limit := range limits {
		logf("memory: %d entries of %d bytes, CACHE_MEMORY_MAX_BYTES=%d, in a child process", entries, memoryValueSize, limit)
		cmd := exec.CommandContext(ctx, exe)
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%d", memoryChildEnv, limit, entries))
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("child: %v: %s", err, strings.TrimSpace(errb.String()))
		}
		var m memoryChild
		line := out.Bytes()
		if i := bytes.Index(line, []byte("{")); i >= 0 {
			line = line[i:]
		}
		if j := bytes.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
		}
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("child output %q: %w", out.String(), err)
		}
		fig.Runs = append(fig.Runs, m)
	}
	return fig, nil
}

// memoryChildMain is the child's work (see measureMemory); it prints one
// JSON line. It runs before anything else in main (and in TestMain, so that
// the test binary can be the child too).
func memoryChildMain(spec string) error {
	var limit int64
	var entries int
	if _, err := fmt.Sscanf(spec, "%d,%d", &limit, &entries); err != nil {
		return fmt.Errorf("%s=%q: want MaxBytes,entries: %w", memoryChildEnv, spec, err)
	}
	ctx := context.Background()
	st, err := memory.New(memory.Options{MaxBytes: limit})
	if err != nil {
		return err
	}
	c, err := hoard.New(st, hoard.Config{})
	if err != nil {
		return err
	}
	defer c.Close()
	settle := func() {
		runtime.GC()
		debug.FreeOSMemory()
	}
	settle()
	m := memoryChild{MaxBytes: limit, RSSEmpty: procStatus("VmRSS")}
	value := bytes.Repeat([]byte("x"), memoryValueSize)
	for i := range entries {
		if err := st.Set(ctx, "entry:"+strconv.Itoa(i), value, time.Hour); err != nil {
			return err
		}
	}
	m.Held = st.Len()
	m.Accounted = st.WeightedSize()
	settle()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.HeapInuse = int64(ms.HeapInuse)
	m.RSSFull = procStatus("VmRSS")
	m.RSSPeak = procStatus("VmHWM")
	m.LimitRespects = m.Accounted <= limit
	return json.NewEncoder(os.Stdout).Encode(m)
}

// procStatus returns a "kB" field of /proc/self/status in bytes (0 if
// unreadable).
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n << 10
		}
	}
	return 0
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func writeMemory(w io.Writer, fig *memoryFigure) {
	fmt.Fprintf(w, "Memory store after %d Set of %d-byte values (a fresh process per limit):\n\n", fig.Entries, fig.ValueSize)
	rows := [][]string{{"CACHE_MEMORY_MAX_BYTES", "entries held", "bytes accounted", "limit respected", "RSS empty", "RSS full", "RSS peak", "Go heap in use"}}
	for _, r := range fig.Runs {
		ok := "yes"
		if !r.LimitRespects {
			ok = "**no**"
		}
		rows = append(rows, []string{fmt.Sprintf("%d (%s)", r.MaxBytes, mib(r.MaxBytes)), strconv.Itoa(r.Held),
			fmt.Sprintf("%d (%s)", r.Accounted, mib(r.Accounted)), ok, mib(r.RSSEmpty), mib(r.RSSFull), mib(r.RSSPeak), mib(r.HeapInuse)})
	}
	markdownTable(w, rows, []bool{true, true, true, false, true, true, true, true})
}

// chartSVG draws requests/s and p99 per scenario as two bar charts side by
// side, one row per scenario.
func chartSVG(rep *report) []byte {
	const (
		labelW = 170
		barW   = 300
		gap    = 90
		rowH   = 22
		top    = 64
		left   = 10
	)
	n := len(rep.Results)
	width := left + labelW + barW + gap + barW + 70
	height := top + n*rowH + 40
	var maxRPS, maxP99 float64
	for _, r := range rep.Results {
		maxRPS = max(maxRPS, r.RPS)
		maxP99 = max(maxP99, r.P99)
	}
	maxRPS, maxP99 = max(maxRPS, 1), max(maxP99, 0.001)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	m := rep.Machine
	title := fmt.Sprintf("hoard-bench: %d connections, %gs per scenario; %s, %d cores, %s", rep.Settings.Connections, rep.Settings.DurationS, m.CPU, m.Cores, m.GoVersion)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%d" y="36" fill="#555">load generator and server share the cores; compare ratios within one run</text>`+"\n", left)
	x1 := left + labelW
	x2 := x1 + barW + gap
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">requests/s (higher is better)</text>`+"\n", x1, top-10)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">p99 latency, ms (lower is better)</text>`+"\n", x2, top-10)
	color := func(name string) string {
		switch {
		case strings.HasPrefix(name, "hit/"):
			return "#2b7bba"
		case strings.HasPrefix(name, "mixed/"):
			return "#6aa84f"
		case strings.HasPrefix(name, "raw/"), name == "ceiling":
			return "#999999"
		case strings.HasPrefix(name, "outage/"):
			return "#cc4125"
		default:
			return "#e69138"
		}
	}
	for i, r := range rep.Results {
		y := top + i*rowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", x1-6, y+15, html.EscapeString(r.Scenario))
		w1 := r.RPS / maxRPS * barW
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x1, y+3, w1, rowH-6, color(r.Scenario))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%.0f</text>`+"\n", float64(x1)+w1+4, y+15, r.RPS)
		w2 := r.P99 / maxP99 * barW
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x2, y+3, w2, rowH-6, color(r.Scenario))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(x2)+w2+4, y+15, fmtMS(r.P99))
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", x1, top, x1, top+n*rowH)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", x2, top, x2, top+n*rowH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">grey: ceiling and bare store GETs; blue: cache hits; green: 95/5 GET/PUT; red: Redis outage; orange: no cache</text>`+"\n", left, top+n*rowH+24)
	b.WriteString("</svg>\n")
	return b.Bytes()
}
