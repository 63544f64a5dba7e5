package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// workload says what the load generator sends.
type workload struct {
	base    string  // server URL, "http://127.0.0.1:port"
	n       int     // widget ids are 1..n
	zipf    bool    // Zipf-distributed ids (s = zipfS), else uniform
	putFrac float64 // share of PUTs (mixed scenarios); the rest are GETs
	gzip    bool    // GETs send Accept-Encoding: gzip (and read the compressed answer as it comes)
}

// zipfS is the exponent of the Zipf distribution of ids (rank 1 is widget
// 1): with 10,000 ids, the 100 hottest get about 2/3 of the requests.
const zipfS = 1.1

// Phases of a run, for latencies split by time (outage: before, while the
// server is stopped, after it was killed).
const maxPhases = 3

// sample accumulates one worker's measurements.
type sample struct {
	lat       [maxPhases][]time.Duration
	errors    int64
	firstErr  string
	gets      int64
	hits      int64
	puts      int64
	completed int64
}

// loadResult is what one timed run measured.
type loadResult struct {
	Elapsed  time.Duration
	Requests int64
	Errors   int64
	FirstErr string
	Gets     int64
	Hits     int64
	Puts     int64
	// Lat[p] holds the sorted latencies of the requests started in phase p.
	Lat [maxPhases][]time.Duration
}

// all returns every latency, sorted.
func (r *loadResult) all() []time.Duration {
	var out []time.Duration
	for _, l := range r.Lat {
		out = append(out, l...)
	}
	slices.Sort(out)
	return out
}

// percentile returns the p-quantile (0 < p ≤ 1) of sorted latencies: the
// smallest sample that at least p of the samples do not exceed.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// client is a keep-alive HTTP/1.1 client for c concurrent workers.
type client struct {
	tr   *http.Transport
	gets []*http.Request // gets[id-1]: GET of widget id, shared read-only
	w    workload
}

func newClient(w workload, c int) (*client, error) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        c,
		MaxIdleConnsPerHost: c,
		MaxConnsPerHost:     c,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	cl := &client{tr: tr, gets: make([]*http.Request, w.n), w: w}
	for i := range cl.gets {
		req, err := http.NewRequest(http.MethodGet, w.base+widgetPath+strconv.Itoa(i+1), nil)
		if err != nil {
			return nil, err
		}
		if w.gzip {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		cl.gets[i] = req
	}
	return cl, nil
}

func (cl *client) Close() { cl.tr.CloseIdleConnections() }

// do sends one request and reads the whole answer.
func (cl *client) do(req *http.Request) (status int, cacheStatus string, err error) {
	resp, err := cl.tr.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, "", err
	}
	return resp.StatusCode, resp.Header.Get("Cache-Status"), nil
}

func (cl *client) put(id int, seq int64) *http.Request {
	body := `{"name":"Widget ` + strconv.Itoa(id) + ` v` + strconv.FormatInt(seq, 10) + `","price":1.5,"description":"changed by the benchmark"}`
	req, _ := http.NewRequest(http.MethodPut, cl.w.base+widgetPath+strconv.Itoa(id), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(body))
	return req
}

// fill GETs every widget once, with c workers, so that every entry is
// cached before the timed run.
func (cl *client) fill(ctx context.Context, c int) error {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(cl.gets) {
					return
				}
				st, _, err := cl.do(cl.gets[i])
				if err == nil && st != http.StatusOK {
					err = fmt.Errorf("GET %s: status %d", cl.gets[i].URL.Path, st)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	return ctx.Err()
}

// run drives the workload with c workers, each with one request in flight
// on its own keep-alive connection, for d. phase, when not nil, says which
// phase a request belongs to as it starts. Latencies are kept only when
// record is set (not during the warm-up).
func (cl *client) run(ctx context.Context, c int, d time.Duration, record bool, phase *atomic.Int32) *loadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	samples := make([]*sample, c)
	var putSeq atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for k := range c {
		s := &sample{}
		samples[k] = s
		if record {
			// Enough for ~40k requests/s per run without growing.
			for p := range s.lat {
				capacity := 0
				if p == 0 {
					capacity = int(d/time.Second+1) * 40000 / c
				}
				s.lat[p] = make([]time.Duration, 0, capacity)
			}
		}
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
			var zipf *rand.Zipf
			if cl.w.zipf {
				zipf = rand.NewZipf(rng, zipfS, 1, uint64(cl.w.n-1))
			}
			for ctx.Err() == nil {
				var id int
				if zipf != nil {
					id = int(zipf.Uint64()) + 1
				} else {
					id = rng.IntN(cl.w.n) + 1
				}
				isPut := cl.w.putFrac > 0 && rng.Float64() < cl.w.putFrac
				req := cl.gets[id-1]
				if isPut {
					req = cl.put(id, putSeq.Add(1))
				}
				p := 0
				if phase != nil {
					p = int(phase.Load())
				}
				t0 := time.Now()
				st, cs, err := cl.do(req)
				lat := time.Since(t0)
				if ctx.Err() != nil && err != nil {
					break // the run ended during this request
				}
				s.completed++
				if err == nil && st != http.StatusOK {
					err = fmt.Errorf("%s %s: status %d", req.Method, req.URL.Path, st)
				}
				if err != nil {
					s.errors++
					if s.firstErr == "" {
						s.firstErr = err.Error()
					}
				}
				if isPut {
					s.puts++
				} else {
					s.gets++
					if strings.Contains(cs, "; hit") {
						s.hits++
					}
				}
				if record {
					s.lat[p] = append(s.lat[p], lat)
				}
			}
		}(uint64(k) + uint64(time.Now().UnixNano()))
	}
	wg.Wait()
	res := &loadResult{Elapsed: time.Since(start)}
	for _, s := range samples {
		res.Requests += s.completed
		res.Errors += s.errors
		if res.FirstErr == "" {
			res.FirstErr = s.firstErr
		}
		res.Gets += s.gets
		res.Hits += s.hits
		res.Puts += s.puts
		for p := range s.lat {
			res.Lat[p] = append(res.Lat[p], s.lat[p]...)
		}
	}
	for p := range res.Lat {
		slices.Sort(res.Lat[p])
	}
	return res
}
