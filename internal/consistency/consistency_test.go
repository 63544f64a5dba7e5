package consistency

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake is a widget API with a deliberately configurable cache in front.
type fake struct {
	mu     sync.Mutex
	db     map[int64]string // id → name
	cached map[int64]string // what the "cache" serves
	mode   string
	gets   int
	puts   int
}

// Modes of the fake:
//   - "correct": a write-through cache; every GET is a hit of the current value.
//   - "stale": writes go to the database but the cache is never invalidated.
//   - "lagging": the cache is invalidated after the PUT's response is sent
//     (the bug read-your-writes forbids), so a GET right after may be stale.
//   - "errors": every 5th GET answers 500.
//   - "drop": every 5th GET closes the connection without an answer.
//   - "future": GETs answer a version no PUT wrote.
//   - "wrongid": GETs answer another widget.
//   - "put500": every 3rd PUT is applied but answered 500 (its outcome is
//     unknown to the client; reading its version later is not a failure).
func newFake(mode string) *fake {
	f := &fake{db: map[int64]string{}, cached: map[int64]string{}, mode: mode}
	for id := int64(1); id <= 20; id++ {
		f.db[id] = "Seeded"
		f.cached[id] = "Seeded"
	}
	return f
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/api/v1/widgets/"), 10, 64)
	if err != nil {
		http.Error(w, "bad id", http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodPut:
		var in struct{ Name string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.puts++
		failed := f.mode == "put500" && f.puts%3 == 0
		f.db[id] = in.Name
		if f.mode != "stale" && f.mode != "lagging" {
			f.cached[id] = in.Name
		}
		f.mu.Unlock()
		if failed {
			http.Error(w, "applied, but answered 500", http.StatusInternalServerError)
			return
		}
		// Content-Length lets the client read the whole answer at the
		// flush, before the handler returns.
		b, _ := json.Marshal(map[string]any{"id": id, "name": in.Name})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
		if f.mode == "lagging" {
			w.(http.Flusher).Flush()
			time.Sleep(2 * time.Millisecond)
			f.mu.Lock()
			f.cached[id] = in.Name
			f.mu.Unlock()
		}
	case http.MethodGet:
		f.mu.Lock()
		f.gets++
		n, name := f.gets, f.cached[id]
		f.mu.Unlock()
		switch {
		case f.mode == "errors" && n%5 == 0:
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		case f.mode == "drop" && n%5 == 0:
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		case f.mode == "future":
			name = Name(time.Now().UnixMicro() + 1e12)
		case f.mode == "wrongid":
			id++
		}
		w.Header().Set("Cache-Status", "hoard; hit; ttl=60")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": id, "name": name, "price": 1})
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
	}
}

func run(t *testing.T, mode string, cfg Config) Report {
	t.Helper()
	srv := httptest.NewServer(newFake(mode))
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL + "/api/v1/widgets"
	if cfg.Clients == 0 {
		cfg.Clients = 4
	}
	if cfg.WriteFraction == 0 {
		cfg.WriteFraction = 0.3
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r := c.Run(ctx)
	t.Logf("%s: %v", mode, r)
	if r.GETs == 0 || r.PUTs == 0 {
		t.Fatalf("%s: no traffic: %v", mode, r)
	}
	return r
}

func TestCorrectServerPasses(t *testing.T) {
	r := run(t, "correct", Config{})
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r.Hits != r.GETs {
		t.Errorf("hits %d, GETs %d; the fake answers every GET as a hit", r.Hits, r.GETs)
	}
	var gets, puts int64
	for _, w := range r.Widgets {
		gets += w.GETs
		puts += w.PUTs
	}
	if len(r.Widgets) != 12 || gets != r.GETs || puts != r.PUTs {
		t.Errorf("per-widget figures (%d widgets, %d GETs, %d PUTs) do not add up to %v", len(r.Widgets), gets, puts, r)
	}
}

func TestDetectsStaleReads(t *testing.T) {
	for _, mode := range []string{"stale", "lagging"} {
		t.Run(mode, func(t *testing.T) {
			r := run(t, mode, Config{IDs: []int64{1, 2}})
			if r.Stale == 0 {
				t.Fatalf("no stale read found against a server that serves old values: %v", r)
			}
			err := r.Err()
			if err == nil || !strings.Contains(err.Error(), "was acknowledged") {
				t.Fatalf("Err() = %v; want the stale reads described", err)
			}
			if r.Invalid+r.Non2xx+r.TransportErrors != 0 {
				t.Errorf("only stale reads expected: %v", r)
			}
		})
	}
}

func TestCountsFailures(t *testing.T) {
	tests := []struct {
		mode  string
		field func(Report) int64
		text  string
	}{
		{"errors", func(r Report) int64 { return r.Non2xx }, "status 500"},
		{"drop", func(r Report) int64 { return r.TransportErrors }, "GET http"},
		{"future", func(r Report) int64 { return r.Invalid }, "never written"},
		{"wrongid", func(r Report) int64 { return r.Invalid }, "but body"},
		{"put500", func(r Report) int64 { return r.Non2xx }, "applied, but"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			r := run(t, tt.mode, Config{MaxExamples: 3})
			if tt.field(r) == 0 {
				t.Fatalf("failure not counted: %v", r)
			}
			if r.Stale != 0 {
				t.Errorf("no stale read expected: %v", r)
			}
			if tt.mode == "put500" && r.Invalid+r.TransportErrors != 0 {
				t.Errorf("a failed PUT that was applied is not an invalid read: %v\n%q", r, r.Examples)
			}
			// MaxExamples caps the examples; a short run on a loaded
			// machine may see fewer failures than the cap.
			want := min(int64(3), r.Stale+r.Invalid+r.Non2xx+r.TransportErrors)
			if int64(len(r.Examples)) != want || !strings.Contains(r.Examples[0], tt.text) {
				t.Errorf("examples %q; want %d, the first containing %q", r.Examples, want, tt.text)
			}
		})
	}
}

func TestSub(t *testing.T) {
	a := Report{Elapsed: time.Second, GETs: 10, Hits: 5, PUTs: 2, Widgets: []WidgetReport{{ID: 1, GETs: 10, Hits: 5}}, Examples: []string{"x"}}
	b := Report{Elapsed: 3 * time.Second, GETs: 30, Hits: 20, PUTs: 3, Stale: 1, Widgets: []WidgetReport{{ID: 1, GETs: 30, Hits: 20, Stale: 1}}, Examples: []string{"x", "y"}}
	d := b.Sub(a)
	if d.Elapsed != 2*time.Second || d.GETs != 20 || d.Hits != 15 || d.PUTs != 1 || d.Stale != 1 ||
		d.Widgets[0] != (WidgetReport{ID: 1, GETs: 20, Hits: 15, Stale: 1}) || len(d.Examples) != 1 || d.Examples[0] != "y" {
		t.Fatalf("Sub = %+v", d)
	}
	if d.HitRatio() != 0.75 || d.Failures() != 1 {
		t.Fatalf("HitRatio %v, Failures %d", d.HitRatio(), d.Failures())
	}
}

func TestVersion(t *testing.T) {
	for _, v := range []int64{0, 1, 1764000000000000} {
		if got, ok := Version(Name(v)); !ok || got != v {
			t.Errorf("Version(Name(%d)) = %d, %v", v, got, ok)
		}
	}
	for _, name := range []string{"", "v", "Sprocket", "v-1", "vx1", "v1.5"} {
		if _, ok := Version(name); ok {
			t.Errorf("Version(%q) is ok; want not a version", name)
		}
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "BaseURL") {
		t.Errorf("New without BaseURL: %v", err)
	}
	if _, err := New(Config{BaseURL: "http://x", WriteFraction: 2}); err == nil {
		t.Error("New with WriteFraction 2: no error")
	}
}
