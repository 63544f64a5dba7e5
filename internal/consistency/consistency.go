// Package consistency is a stale-read checker for the demo API's widgets
// behind a response cache.
//
// A Checker drives many concurrent keep-alive HTTP clients doing random GETs
// and PUTs on a small set of widgets (GET and PUT {BaseURL}/{id}). Every PUT
// writes a strictly increasing version into the widget's name ("v" and the
// number, zero-padded). For each GET the checker remembers, before sending
// it, the highest version whose PUT had been answered 2xx (the floor), and
// flags the GET as stale if its 2xx answer holds an older version: a client
// that was told its write succeeded must never read what was there before.
//
// At most one PUT per widget is in flight at a time, so the order in which
// the database applies a widget's writes is the order of their versions,
// and "acknowledged before the GET was sent" is well defined. A PUT that
// fails (non-2xx, transport error) may or may not have been applied: its
// version is never reused, it never raises the floor, and a later GET may
// return it.
//
// Besides stale reads the checker counts GETs, PUTs, cache hits (a
// Cache-Status header starting "hoard; hit"), non-2xx answers, transport
// errors and invalid answers (a 2xx body that is not the widget asked for,
// or a version that was never written), and keeps the first few failures
// as examples. Snapshot may be called while Run runs, so that a test can
// measure windows (before, during and after a fault) with Report.Sub.
package consistency

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config says what a Checker checks and how hard. Zero values are defaults.
type Config struct {
	// BaseURL is the widgets collection, e.g.
	// "http://127.0.0.1:8000/api/v1/widgets"; widget id lives at
	// BaseURL + "/" + id. Required.
	BaseURL string
	// IDs are the widgets used; they must exist. Default 1 to 12.
	IDs []int64
	// Clients is the number of concurrent clients. Default 16.
	Clients int
	// WriteFraction is the share of requests that are PUTs (when the
	// chosen widget has no PUT in flight; otherwise a GET is sent). Default
	// 0.1.
	WriteFraction float64
	// RequestTimeout bounds one request; a request that takes longer is a
	// transport error. Default 10 s.
	RequestTimeout time.Duration
	// MaxExamples is how many failures are kept as examples. Default 10.
	MaxExamples int
}

func (c Config) withDefaults() Config {
	if len(c.IDs) == 0 {
		for i := int64(1); i <= 12; i++ {
			c.IDs = append(c.IDs, i)
		}
	}
	if c.Clients <= 0 {
		c.Clients = 16
	}
	if c.WriteFraction == 0 {
		c.WriteFraction = 0.1
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.MaxExamples <= 0 {
		c.MaxExamples = 10
	}
	return c
}

// Report is what a Checker has seen, in total or (after Sub) in a window.
type Report struct {
	// Elapsed is the time the figures cover.
	Elapsed time.Duration
	// GETs and PUTs are the requests sent (whatever their outcome).
	GETs, PUTs int64
	// Hits are GETs answered 2xx from the cache.
	Hits int64
	// Stale are GETs that returned a version older than one whose PUT had
	// been acknowledged before the GET was sent.
	Stale int64
	// Invalid are 2xx answers whose body is not the widget asked for or
	// holds a version that was never written.
	Invalid int64
	// Non2xx are answers with a status outside 200-299.
	Non2xx int64
	// TransportErrors are requests that got no complete answer.
	TransportErrors int64
	// Widgets are the per-widget figures, in Config.IDs order.
	Widgets []WidgetReport
	// Examples describe the first failures (stale, invalid, non-2xx,
	// transport), at most Config.MaxExamples in a full report; after Sub,
	// the ones that occurred in the window.
	Examples []string
}

// WidgetReport are the figures of one widget.
type WidgetReport struct {
	ID         int64
	GETs, Hits int64
	PUTs       int64
	Stale      int64
}

// Failures is the number of stale reads, invalid answers, non-2xx answers
// and transport errors.
func (r Report) Failures() int64 { return r.Stale + r.Invalid + r.Non2xx + r.TransportErrors }

// HitRatio is Hits / GETs (0 without GETs).
func (r Report) HitRatio() float64 {
	if r.GETs == 0 {
		return 0
	}
	return float64(r.Hits) / float64(r.GETs)
}

// Err is nil when there was no failure, else an error that counts them and
// lists the examples.
func (r Report) Err() error {
	if r.Failures() == 0 {
		return nil
	}
	return fmt.Errorf("consistency: %s\nexamples:\n  %s", r, strings.Join(r.Examples, "\n  "))
}

// String gives the figures on one line.
func (r Report) String() string {
	return fmt.Sprintf("%v: %d GETs (%.1f%% hits), %d PUTs, %d stale, %d invalid, %d non-2xx, %d transport errors",
		r.Elapsed.Round(time.Millisecond), r.GETs, 100*r.HitRatio(), r.PUTs, r.Stale, r.Invalid, r.Non2xx, r.TransportErrors)
}

// Sub returns the figures of r that came after earlier, a previous
// Snapshot of the same Checker.
func (r Report) Sub(earlier Report) Report {
	d := Report{
		Elapsed:         r.Elapsed - earlier.Elapsed,
		GETs:            r.GETs - earlier.GETs,
		PUTs:            r.PUTs - earlier.PUTs,
		Hits:            r.Hits - earlier.Hits,
		Stale:           r.Stale - earlier.Stale,
		Invalid:         r.Invalid - earlier.Invalid,
		Non2xx:          r.Non2xx - earlier.Non2xx,
		TransportErrors: r.TransportErrors - earlier.TransportErrors,
	}
	for i, w := range r.Widgets {
		if i < len(earlier.Widgets) {
			e := earlier.Widgets[i]
			w.GETs, w.Hits, w.PUTs, w.Stale = w.GETs-e.GETs, w.Hits-e.Hits, w.PUTs-e.PUTs, w.Stale-e.Stale
		}
		d.Widgets = append(d.Widgets, w)
	}
	if len(r.Examples) > len(earlier.Examples) {
		d.Examples = r.Examples[len(earlier.Examples):]
	}
	return d
}

// Checker runs the clients and keeps the figures. Create it with New.
type Checker struct {
	cfg     Config
	client  *http.Client
	widgets []*widgetState
	base    int64 // versions of this checker are above base
	started atomic.Int64

	gets, puts, hits, stale, invalid, non2xx, transport atomic.Int64

	mu       sync.Mutex
	examples []string
}

type widgetState struct {
	id                      int64
	url                     string
	writing                 atomic.Bool  // a PUT is in flight
	issued                  atomic.Int64 // highest version sent in a PUT
	acked                   atomic.Int64 // highest version whose PUT was answered 2xx
	gets, hits, puts, stale atomic.Int64
}

// New returns a Checker for cfg.
func New(cfg Config) (*Checker, error) {
	cfg = cfg.withDefaults()
	if cfg.BaseURL == "" {
		return nil, errors.New("consistency: Config.BaseURL is empty; give the widgets collection URL, e.g. http://127.0.0.1:8000/api/v1/widgets")
	}
	if cfg.WriteFraction < 0 || cfg.WriteFraction > 1 {
		return nil, fmt.Errorf("consistency: Config.WriteFraction %v is outside 0..1", cfg.WriteFraction)
	}
	c := &Checker{
		cfg: cfg,
		client: &http.Client{
			Timeout: cfg.RequestTimeout,
			Transport: &http.Transport{
				MaxIdleConns:        2 * cfg.Clients,
				MaxIdleConnsPerHost: 2 * cfg.Clients,
				IdleConnTimeout:     time.Minute,
			},
		},
		// Versions above any an earlier Checker on the same database can
		// have written (one per microsecond at most), so that a GET of an
		// earlier run's value is never mistaken for a current one.
		base: time.Now().UnixMicro(),
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	for _, id := range cfg.IDs {
		w := &widgetState{id: id, url: base + "/" + strconv.FormatInt(id, 10)}
		w.issued.Store(c.base)
		c.widgets = append(c.widgets, w)
	}
	return c, nil
}

// Close releases the clients' idle connections.
func (c *Checker) Close() { c.client.CloseIdleConnections() }

// Run runs the clients until ctx is done and returns the report. Requests
// in flight when ctx ends are completed (they have their own timeout), so
// the end of a run is not counted as transport errors.
func (c *Checker) Run(ctx context.Context) Report {
	c.started.CompareAndSwap(0, time.Now().UnixNano())
	var wg sync.WaitGroup
	for range c.cfg.Clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				c.step()
			}
		})
	}
	wg.Wait()
	return c.Snapshot()
}

// Snapshot returns the figures so far; it may be called while Run runs.
func (c *Checker) Snapshot() Report {
	r := Report{
		GETs:            c.gets.Load(),
		PUTs:            c.puts.Load(),
		Hits:            c.hits.Load(),
		Stale:           c.stale.Load(),
		Invalid:         c.invalid.Load(),
		Non2xx:          c.non2xx.Load(),
		TransportErrors: c.transport.Load(),
	}
	if s := c.started.Load(); s != 0 {
		r.Elapsed = time.Duration(time.Now().UnixNano() - s)
	}
	for _, w := range c.widgets {
		r.Widgets = append(r.Widgets, WidgetReport{ID: w.id, GETs: w.gets.Load(), Hits: w.hits.Load(), PUTs: w.puts.Load(), Stale: w.stale.Load()})
	}
	c.mu.Lock()
	r.Examples = append([]string(nil), c.examples...)
	c.mu.Unlock()
	return r
}

// step sends one request: a PUT with probability WriteFraction when the
// chosen widget has none in flight, else a GET.
func (c *Checker) step() {
	w := c.widgets[rand.IntN(len(c.widgets))]
	if rand.Float64() < c.cfg.WriteFraction && w.writing.CompareAndSwap(false, true) {
		c.put(w)
		w.writing.Store(false)
		return
	}
	c.get(w)
}

// Version returns the version written into a widget name by the checker
// ("v" and digits), and false for any other name (such as a seeded one).
func Version(name string) (int64, bool) {
	if len(name) < 2 || name[0] != 'v' {
		return 0, false
	}
	v, err := strconv.ParseInt(name[1:], 10, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return v, true
}

// Name is the widget name that carries version v.
func Name(v int64) string { return fmt.Sprintf("v%019d", v) }

type widgetBody struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

func (c *Checker) put(w *widgetState) {
	v := w.issued.Add(1)
	c.puts.Add(1)
	w.puts.Add(1)
	body := fmt.Sprintf(`{"name": %q, "price": %d, "description": "written by the consistency checker"}`, Name(v), v%1000000)
	req, err := http.NewRequest(http.MethodPut, w.url, strings.NewReader(body))
	if err != nil {
		c.fail(&c.transport, "PUT %s: %v", w.url, err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	status, hdr, b, err := c.do(req)
	switch {
	case err != nil:
		c.fail(&c.transport, "PUT %s (version %d): %v", w.url, v, err)
		return
	case status < 200 || status > 299:
		c.fail(&c.non2xx, "PUT %s (version %d): status %d [%s] %s", w.url, v, status, hdr.Get("Cache-Status"), snippet(b))
		return
	}
	var got widgetBody
	if err := json.Unmarshal(b, &got); err != nil || got.ID != w.id || got.Name != Name(v) {
		c.fail(&c.invalid, "PUT %s (version %d): status %d but body %s", w.url, v, status, snippet(b))
		return
	}
	// One PUT per widget at a time: versions are acknowledged in order.
	w.acked.Store(v)
}

func (c *Checker) get(w *widgetState) {
	floor := w.acked.Load() // acknowledged before this GET is sent
	c.gets.Add(1)
	w.gets.Add(1)
	req, err := http.NewRequest(http.MethodGet, w.url, nil)
	if err != nil {
		c.fail(&c.transport, "GET %s: %v", w.url, err)
		return
	}
	sent := time.Now()
	status, hdr, b, err := c.do(req)
	cs := hdr.Get("Cache-Status")
	switch {
	case err != nil:
		c.fail(&c.transport, "GET %s: %v", w.url, err)
		return
	case status < 200 || status > 299:
		c.fail(&c.non2xx, "GET %s: status %d [%s] %s", w.url, status, cs, snippet(b))
		return
	}
	hit := strings.HasPrefix(cs, "hoard; hit")
	if hit {
		c.hits.Add(1)
		w.hits.Add(1)
	}
	var got widgetBody
	if err := json.Unmarshal(b, &got); err != nil || got.ID != w.id {
		c.fail(&c.invalid, "GET %s: status %d [%s] but body %s", w.url, status, cs, snippet(b))
		return
	}
	v, ok := Version(got.Name)
	if !ok {
		v = 0 // the seeded value, older than any write
	}
	if v > c.base && v > w.issued.Load() {
		c.fail(&c.invalid, "GET %s: [%s] version %d was never written (highest sent %d)", w.url, cs, v, w.issued.Load())
		return
	}
	if v < floor {
		w.stale.Add(1)
		c.fail(&c.stale, "GET %s sent %s after version %d was acknowledged: got %q (version %d, %d behind) [%s] Age=%s",
			w.url, sent.Format("15:04:05.000000"), floor, got.Name, v, floor-v, cs, hdr.Get("Age"))
	}
}

// do sends req and reads the whole answer.
func (c *Checker) do(req *http.Request) (int, http.Header, []byte, error) {
	res, err := c.client.Do(req)
	if err != nil {
		return 0, http.Header{}, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, res.Header, b, fmt.Errorf("status %d, reading the body: %w", res.StatusCode, err)
	}
	return res.StatusCode, res.Header, b, nil
}

// fail counts a failure and keeps it as an example while there is room.
func (c *Checker) fail(counter *atomic.Int64, format string, args ...any) {
	counter.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.examples) < c.cfg.MaxExamples {
		c.examples = append(c.examples, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
