//go:build consistency

package main

// The expiry herd: three demo processes on one SQLite file and one Redis,
// and herd.clients concurrent clients reading one hot key round robin over
// them. DEFAULT_CACHE_EXPIRATION=1 gives the key a 1 s TTL (GET
// /api/v1/users/{username} sets no TTL and no stale window of its own), so
// that it expires about once a second. Run once with the miss lease
// (CACHE_MISS_WAIT=1s, the default) and once without (CACHE_MISS_WAIT=0);
// -v prints both:
//
//	go test -count=1 -tags consistency -run FleetExpiryHerd -v ./cmd/hoard-demo
//
// A response whose Cache-Status is a miss that is not collapsed ran the
// handler; runs less than herdGap apart belong to one expiry. Under -race
// (scripts/test) the demo is several times slower: 50 clients then, so
// that the check measures the lease rather than a saturated machine.

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoardcache/hoard/internal/testserver"
)

var (
	herdClients  = flag.Int("herd.clients", 200, "TestFleetExpiryHerd's concurrent clients (50 under -race unless set)")
	herdDuration = flag.Duration("herd.duration", 5*time.Second, "how long TestFleetExpiryHerd loads each configuration")
)

// herdGap separates the handler runs of two expiries (the TTL is 1 s).
const herdGap = 500 * time.Millisecond

// herdRequest is one request of the herd.
type herdRequest struct {
	start   time.Time
	took    time.Duration
	status  int
	outcome string // Cache-Status
}

// herdReport sums up one configuration's requests.
type herdReport struct {
	requests, runs, expiries int
	p99, p99Expiry, max      time.Duration
	failed                   int
}

func (r herdReport) runsPerExpiry() float64 { return float64(r.runs) / float64(max(r.expiries, 1)) }

func (r herdReport) String() string {
	return fmt.Sprintf("%d requests, %d handler runs over %d expiries (%.2f per expiry), p99 %v, p99 of the requests that met an expiry %v, max %v, %d failed",
		r.requests, r.runs, r.expiries, r.runsPerExpiry(), r.p99.Round(10*time.Microsecond), r.p99Expiry.Round(10*time.Microsecond), r.max.Round(10*time.Microsecond), r.failed)
}

// TestFleetExpiryHerd: with the miss lease, an expiry of a hot key read by
// three instances runs the handler about once (at most 1.5 times per
// expiry on average, allowing for a run that starts just after the
// previous one's lease is released), where each instance's own
// singleflight alone runs it up to three times.
func TestFleetExpiryHerd(t *testing.T) {
	bin := buildDemo(t)
	r := testserver.RedisT(t, testserver.RedisOptions{})
	dir := t.TempDir()
	db := "DATABASE_URL=sqlite:" + filepath.Join(dir, "demo.db")
	reports := map[string]herdReport{}
	for i, wait := range []string{"1s", "0"} {
		env := []string{"CACHE_BACKEND=redis", "CACHE_REDIS_URL=redis://" + r.Addr + "/0", "CACHE_TIMEOUT=1s",
			fmt.Sprintf("CACHE_KEY_PREFIX=herd%d:", i), "DEFAULT_CACHE_EXPIRATION=1", "CACHE_MISS_WAIT=" + wait, "LOG_LEVEL=warn", db}
		var urls []string
		for range 3 {
			// The first process seeds the database; the others find it.
			urls = append(urls, startDemoProcess(t, bin, dir, env...).base+"/api/v1/users/alice")
		}
		rep := runHerd(t, urls)
		t.Logf("CACHE_MISS_WAIT=%s: %v", wait, rep)
		if rep.failed > 0 {
			t.Errorf("CACHE_MISS_WAIT=%s: %v; want every request answered 200", wait, rep)
		}
		reports[wait] = rep
	}
	// Without the lease the figures are only reported: how many runs an
	// expiry costs then depends on the machine's load.
	if rep := reports["1s"]; rep.expiries < 2 || rep.runsPerExpiry() > 1.5 {
		t.Errorf("with the miss lease: %v; want about one handler run per expiry on three instances (at most 1.5), over two expiries at least", rep)
	}
}

// runHerd loads urls (round robin) with herd.clients clients for
// herd.duration and sums up what they saw.
func runHerd(t *testing.T, urls []string) herdReport {
	t.Helper()
	clients := *herdClients
	if raceEnabled && !flagSet("herd.clients") {
		clients = 50
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	var (
		mu  sync.Mutex
		all []herdRequest
		wg  sync.WaitGroup
	)
	end := time.Now().Add(*herdDuration)
	for c := range clients {
		wg.Go(func() {
			var mine []herdRequest
			for n := c; time.Now().Before(end); n++ {
				q := herdRequest{start: time.Now()}
				res, err := client.Get(urls[n%len(urls)])
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					q.status, q.outcome = res.StatusCode, res.Header.Get("Cache-Status")
				}
				q.took = time.Since(q.start)
				mine = append(mine, q)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return sumHerd(all)
}

// sumHerd counts handler runs and expiries and takes the percentiles.
func sumHerd(all []herdRequest) herdReport {
	rep := herdReport{requests: len(all)}
	var took, expiry []time.Duration
	var runs []time.Time
	for _, q := range all {
		took = append(took, q.took)
		if q.status != http.StatusOK {
			rep.failed++
			continue
		}
		if strings.Contains(q.outcome, "fwd=miss") {
			expiry = append(expiry, q.took)
			if !strings.Contains(q.outcome, "collapsed") {
				runs = append(runs, q.start)
			}
		}
	}
	slices.SortFunc(runs, time.Time.Compare)
	for i, at := range runs {
		if i == 0 || at.Sub(runs[i-1]) > herdGap {
			rep.expiries++
		}
	}
	rep.runs = len(runs)
	slices.Sort(took)
	slices.Sort(expiry)
	rep.p99, rep.max = quantile(took, 0.99), took[len(took)-1]
	rep.p99Expiry = quantile(expiry, 0.99)
	return rep
}

// flagSet reports whether the test's command line set flag name.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
