package main

// The front page (GET /) in a real headless Chromium, driven by chromedp:
// it renders, shows the health, its buttons show a miss, a hit and an
// invalidation, and its figures follow the requests.

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/hoardcache/hoard/internal/testlog"
	"github.com/hoardcache/hoard/stores"
)

// stepTimeout bounds one browser step: generous, because the CI machine is
// a loaded 2-core box running Chromium beside the race-enabled tests.
const stepTimeout = 60 * time.Second

// widgetRoute is the route the page's buttons exercise.
const widgetRoute = "GET /api/v1/widgets/{widget_id}"

// chromiumPath finds Chromium. A missing browser fails the test rather
// than skipping it, so that the page is never counted as tested without
// one (scripts/test installs Debian's chromium as root).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: the front page test needs it (apt-get install chromium; scripts/test installs it as root)")
	return ""
}

// newBrowser starts a headless Chromium for t and returns the context of
// its tab. The browser reaches loopback only: every host name but
// localhost fails to resolve, and no proxy is used. Its output is logged if
// t fails.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	out := &testlog.Buffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"),
		chromedp.CombinedOutput(out),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.String())
		}
	})
	// The first Run starts the browser, which lives as long as the context
	// of that call: a timeout on it would stop the browser later, so a
	// timer bounds the start instead.
	timer := time.AfterFunc(stepTimeout, cancel)
	_, err := chromedp.Run(ctx, chromedp.Evaluate[int]("1"))
	if !timer.Stop() {
		t.Fatalf("chromium did not start within %v: %v", stepTimeout, err)
	}
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// step runs actions in the browser within stepTimeout; on failure it
// reports what step was doing and the text the page shows.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v\nthe page shows:\n%s", what, err, pageText(ctx))
	}
}

// waitTrue waits (within stepTimeout) until the JavaScript expression cond
// is true in the page.
func waitTrue(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	step(t, ctx, "waiting for "+what, chromedp.Poll[chromedp.Void](cond,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout)))
}

// pageText is the page's visible text, for failure messages.
func pageText(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// textIs is a JavaScript condition: the element with id has the text want.
func textIs(id, want string) string {
	return fmt.Sprintf("document.getElementById(%q).textContent === %q", id, want)
}

// lastIs is a JavaScript condition: the page's last answer is request
// number n and shows want (part of its Cache-Status).
func lastIs(n int, method, want string) string {
	return fmt.Sprintf("(t => t.startsWith(%q) && t.includes(%q))(document.getElementById('last').textContent)",
		"#"+strconv.Itoa(n)+" "+method+" ", want)
}

// routeIs is a JavaScript condition: the routes table shows route with
// the figures of want (field → text, as data-field names them).
func routeIs(route string, want map[string]string) string {
	var conds []string
	for field, v := range want {
		conds = append(conds, fmt.Sprintf("cell(%q) === %q", field, v))
	}
	return fmt.Sprintf(`(() => {
		const cell = f => document.querySelector('tr[data-route=' + JSON.stringify(%q) + '] td[data-field="' + f + '"]')?.textContent;
		return %s;
	})()`, route, strings.Join(conds, " && "))
}

// TestFrontPage: the front page in headless Chromium over the demo with
// its metrics (memory store). It renders with the health; GET shows a
// miss then a hit, PATCH then GET a miss again (the invalidation); the
// routes table follows the clicks and, by its auto-refresh, requests sent
// from elsewhere.
func TestFrontPage(t *testing.T) {
	start := time.Now()
	m, err := newDemoMetrics()
	if err != nil {
		t.Fatal(err)
	}
	b := storefixture.Shared(t, storefixture.Memory)
	cfg := b.Config(t)
	cfg.Cache.MeterProvider = m.provider
	c := b.Open(t, cfg)
	e := newEnvConfig(t, sqliteDB(t), c, config{Hoard: stores.Config{Cache: c.Config()}, Metrics: m.handler, MetricsReader: m.reader})
	ctx := newBrowser(t)
	t.Logf("chromium started in %v", time.Since(start).Round(time.Millisecond))

	step(t, ctx, "opening the page", chromedp.Navigate(e.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#get")))
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	title, err := chromedp.Run(sctx, chromedp.Title())
	cancel()
	if err != nil || title != "hoard demo" {
		t.Fatalf("title %q, %v; want \"hoard demo\"", title, err)
	}
	waitTrue(t, ctx, "the health", textIs("health-status", "ready")+" && "+textIs("health-database", "ok")+" && "+
		textIs("health-cache", "ok")+" && "+textIs("pending", "0")+" && "+textIs("breaker", "closed"))
	waitTrue(t, ctx, "the widget route at zero", routeIs(widgetRoute, map[string]string{"requests": "0", "hit": "0", "hit_ratio": "–"}))

	step(t, ctx, "clicking GET", chromedp.Click(chromedp.CSS("#get")))
	waitTrue(t, ctx, "a miss", lastIs(1, "GET", "→ 200, Cache-Status: hoard; fwd=miss; stored"))
	step(t, ctx, "clicking GET again", chromedp.Click(chromedp.CSS("#get")))
	waitTrue(t, ctx, "a hit", lastIs(2, "GET", "→ 200, Cache-Status: hoard; hit"))
	step(t, ctx, "clicking PATCH", chromedp.Click(chromedp.CSS("#patch")))
	waitTrue(t, ctx, "the PATCH answered", lastIs(3, "PATCH", "→ 200"))
	step(t, ctx, "clicking GET after the PATCH", chromedp.Click(chromedp.CSS("#get")))
	waitTrue(t, ctx, "a miss after the invalidation", lastIs(4, "GET", "→ 200, Cache-Status: hoard; fwd=miss; stored"))
	waitTrue(t, ctx, "the figures after the clicks",
		routeIs(widgetRoute, map[string]string{"requests": "3", "hit": "1", "miss": "2", "hit_ratio": "33%", "stale": "0", "bypass": "0"}))

	// The PATCH went through: its price is served.
	if r := e.hit("/api/v1/widgets/1"); !strings.Contains(string(r.Body), `"price":12.5`) {
		t.Fatalf("%v; want the price the page's PATCH set", r)
	}
	// GET /status says the same as the page.
	st := decode[statusBody](t, e.want(e.get("/status"), http.StatusOK))
	if !st.Metrics || st.BreakerOpen == nil || *st.BreakerOpen || st.PendingInvalidations != 0 || st.Health["status"] != "ready" {
		t.Fatalf("GET /status: %+v", st)
	}
	for _, rs := range st.Routes {
		if rs.Route == widgetRoute && (rs.Requests != 4 || rs.Hit != 2 || rs.Miss != 2 || rs.HitRatio == nil || *rs.HitRatio != 0.5) {
			t.Fatalf("GET /status: %+v; want 4 requests, 2 hits, 2 misses", rs)
		}
	}
	// Requests sent from elsewhere show up by the page's auto-refresh
	// alone (no click).
	e.hit("/api/v1/widgets/1")
	waitTrue(t, ctx, "the auto-refresh", routeIs(widgetRoute, map[string]string{"requests": "5", "hit": "3", "miss": "2", "hit_ratio": "60%"}))
	t.Logf("front page test took %v", time.Since(start).Round(time.Millisecond))
}

// TestFrontPageWithoutMetrics: without a metrics reader (config built
// without one) the page and GET /status still answer, with zero counts and
// an unknown breaker; paths other than "/" stay JSON 404s.
func TestFrontPageWithoutMetrics(t *testing.T) {
	e := newEnv(t, sqliteDB(t), storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{}))
	r := e.want(e.get("/"), http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" || !strings.Contains(string(r.Body), "<title>hoard demo</title>") {
		t.Fatalf("GET /: Content-Type %q, body %.200s", ct, r.Body)
	}
	e.get("/api/v1/widgets/1")
	st := decode[statusBody](t, e.want(e.get("/status"), http.StatusOK))
	if st.Metrics || st.BreakerOpen != nil || st.Health["status"] != "ready" || len(st.Routes) == 0 {
		t.Fatalf("GET /status without metrics: %+v", st)
	}
	for _, rs := range st.Routes {
		if rs.Requests != 0 || rs.HitRatio != nil {
			t.Fatalf("GET /status without metrics: %+v; want zero", rs)
		}
	}
	for _, path := range []string{"/nothing", "/index.html", "/status/x"} {
		r := e.want(e.get(path), http.StatusNotFound)
		if d := decode[map[string]string](t, r)["detail"]; d != "no route GET "+path {
			t.Fatalf("%v; want the JSON 404", r)
		}
	}
}
