package hoardecho_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/hoardecho"
	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/labstack/echo/v4"
)

// backends are the stores every test runs on: the in-process store and a
// real redis-server.
var backends = []string{storefixture.Memory, storefixture.Redis}

// app is an echo application over a versioned widget table, with counts of
// handler runs and what a logging middleware outside hoard saw.
type app struct {
	srv *httptest.Server

	mu      sync.Mutex
	version map[string]int
	runs    map[string]int // handler runs by route
	logged  []logLine
}

type logLine struct {
	method, path string
	status, size int
}

func (a *app) run(route string) {
	a.mu.Lock()
	a.runs[route]++
	a.mu.Unlock()
}

func (a *app) runsOf(route string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runs[route]
}

func (a *app) lastLog(t *testing.T) logLine {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.logged) == 0 {
		t.Fatal("the logging middleware saw no request")
	}
	return a.logged[len(a.logged)-1]
}

// newApp serves the application through hoardecho on cache c.
func newApp(t *testing.T, c *hoard.Cache) *app {
	t.Helper()
	a := &app{version: map[string]int{}, runs: map[string]int{}}
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc { // logging middleware, outside hoard
		return func(ec echo.Context) error {
			err := next(ec)
			if err != nil {
				ec.Error(err) // as echo's logger middleware does
			}
			a.mu.Lock()
			a.logged = append(a.logged, logLine{ec.Request().Method, ec.Request().URL.Path, ec.Response().Status, int(ec.Response().Size)})
			a.mu.Unlock()
			return err
		}
	})

	widget := hoardecho.MustMiddleware(c, hoard.Route{KeyPrefix: "widget", TTL: time.Minute})
	e.GET("/widgets/:id", func(ec echo.Context) error {
		a.run("get widget")
		a.mu.Lock()
		v := a.version[ec.Param("id")]
		a.mu.Unlock()
		ec.Response().Header().Set("Content-Type", "application/json")
		return ec.String(http.StatusOK, fmt.Sprintf(`{"id": %q, "version": %d}`, ec.Param("id"), v))
	}, widget)
	e.HEAD("/widgets/:id", func(ec echo.Context) error {
		a.run("get widget") // hoard runs a HEAD miss as a GET; the hit does not run it
		return ec.NoContent(http.StatusOK)
	}, widget)
	e.PATCH("/widgets/:id", func(ec echo.Context) error {
		a.run("patch widget")
		a.mu.Lock()
		a.version[ec.Param("id")]++
		a.mu.Unlock()
		return ec.NoContent(http.StatusNoContent)
	}, widget)

	// A handler that returns an error: echo writes it inside hoard.
	missing := hoardecho.MustMiddleware(c, hoard.Route{KeyPrefix: "missing"})
	e.GET("/missing/:id", func(ec echo.Context) error {
		a.run("missing")
		return echo.NewHTTPError(http.StatusNotFound, "no such thing")
	}, missing)

	search := hoardecho.MustMiddleware(c, hoard.Route{KeyPrefix: "search", QueryKeys: []string{"q"}})
	e.GET("/search", func(ec echo.Context) error {
		a.run("search")
		return ec.String(http.StatusOK, "results for "+ec.QueryParam("q"))
	}, search)

	// A named id (ResourceID) and a second parameter not in the key.
	post := hoardecho.MustMiddleware(c, hoard.Route{KeyPrefix: "post", ResourceID: "id"})
	e.GET("/users/:user/posts/:id", func(ec echo.Context) error {
		a.run("post")
		return ec.String(http.StatusOK, "post "+ec.Param("id")+" by "+ec.Param("user"))
	}, post)

	a.srv = httptest.NewServer(e)
	t.Cleanup(a.srv.Close)
	return a
}

type response struct {
	status int
	body   string
	header http.Header
}

// do sends one request; header holds name, value pairs.
func (a *app) do(t *testing.T, method, path string, header ...string) response {
	t.Helper()
	res, err := a.send(method, path, header...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// send is do for any goroutine: it returns the error.
func (a *app) send(method, path string, header ...string) (response, error) {
	req, err := http.NewRequest(method, a.srv.URL+path, nil)
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{res.StatusCode, string(body), res.Header}, nil
}

func expect(t *testing.T, what string, got response, status int, body, cacheStatus string) {
	t.Helper()
	if got.status != status || got.body != body || !strings.HasPrefix(got.header.Get("Cache-Status"), cacheStatus) {
		t.Errorf("%s: got %d %q [%s], want %d %q [%s…]", what, got.status, got.body, got.header.Get("Cache-Status"), status, body, cacheStatus)
	}
}

const (
	stored = "hoard; fwd=miss; stored"
	hit    = "hoard; hit"
	bypass = "hoard; fwd=bypass"
)

// eachBackend runs f on a fresh application over every backend.
func eachBackend(t *testing.T, f func(t *testing.T, a *app)) {
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := storefixture.Shared(t, name).NewCache(t, hoard.Config{})
			f(t, newApp(t, c))
		})
	}
}

func TestMissThenHit(t *testing.T) {
	eachBackend(t, func(t *testing.T, a *app) {
		want := `{"id": "1", "version": 0}`
		first := a.do(t, "GET", "/widgets/1")
		expect(t, "first GET", first, 200, want, stored)
		if got := first.header.Get("Content-Type"); got != "application/json" {
			t.Errorf("Content-Type %q, want the handler's", got)
		}
		if l := a.lastLog(t); l.status != 200 || l.size != len(want) {
			t.Errorf("gin logged %d, %d bytes on the miss; want 200, %d", l.status, l.size, len(want))
		}
		second := a.do(t, "GET", "/widgets/1")
		expect(t, "second GET", second, 200, want, hit)
		if n := a.runsOf("get widget"); n != 1 {
			t.Errorf("the handler ran %d times, want 1 (the hit must not run it)", n)
		}
		if l := a.lastLog(t); l.status != 200 || l.size != len(want) {
			t.Errorf("gin logged %d, %d bytes on the hit; want 200, %d", l.status, l.size, len(want))
		}
		head := a.do(t, "HEAD", "/widgets/1")
		expect(t, "HEAD", head, 200, "", hit)
	})
}

func TestETag(t *testing.T) {
	eachBackend(t, func(t *testing.T, a *app) {
		first := a.do(t, "GET", "/widgets/7")
		etag := first.header.Get("ETag")
		if etag == "" {
			t.Fatalf("no ETag on a stored response; header %v", first.header)
		}
		if got := a.do(t, "GET", "/widgets/7").header.Get("ETag"); got != etag {
			t.Errorf("hit ETag %q, want the stored %q", got, etag)
		}
		nm := a.do(t, "GET", "/widgets/7", "If-None-Match", etag)
		expect(t, "If-None-Match", nm, http.StatusNotModified, "", hit)
		if l := a.lastLog(t); l.status != http.StatusNotModified {
			t.Errorf("gin logged %d for the 304", l.status)
		}
		other := a.do(t, "GET", "/widgets/7", "If-None-Match", `"other"`)
		expect(t, "If-None-Match of another version", other, 200, `{"id": "7", "version": 0}`, hit)
		if n := a.runsOf("get widget"); n != 1 {
			t.Errorf("the handler ran %d times, want 1", n)
		}
	})
}

func TestPatchInvalidates(t *testing.T) {
	eachBackend(t, func(t *testing.T, a *app) {
		a.do(t, "GET", "/widgets/1")
		expect(t, "GET", a.do(t, "GET", "/widgets/1"), 200, `{"id": "1", "version": 0}`, hit)
		a.do(t, "GET", "/widgets/2")

		patch := a.do(t, "PATCH", "/widgets/1")
		if patch.status != http.StatusNoContent {
			t.Fatalf("PATCH: %d %q, want 204", patch.status, patch.body)
		}
		if l := a.lastLog(t); l.method != "PATCH" || l.status != http.StatusNoContent {
			t.Errorf("gin logged %+v for the PATCH", l)
		}
		expect(t, "GET after PATCH", a.do(t, "GET", "/widgets/1"), 200, `{"id": "1", "version": 1}`, stored)
		expect(t, "GET again", a.do(t, "GET", "/widgets/1"), 200, `{"id": "1", "version": 1}`, hit)
		// Another id is another resource: still cached.
		expect(t, "the other widget", a.do(t, "GET", "/widgets/2"), 200, `{"id": "2", "version": 0}`, hit)
	})
}

func TestIDsAreSeparateEntries(t *testing.T) {
	eachBackend(t, func(t *testing.T, a *app) {
		expect(t, "widget 1", a.do(t, "GET", "/widgets/1"), 200, `{"id": "1", "version": 0}`, stored)
		expect(t, "widget 2", a.do(t, "GET", "/widgets/2"), 200, `{"id": "2", "version": 0}`, stored)
		expect(t, "widget 1 again", a.do(t, "GET", "/widgets/1"), 200, `{"id": "1", "version": 0}`, hit)
		expect(t, "widget 2 again", a.do(t, "GET", "/widgets/2"), 200, `{"id": "2", "version": 0}`, hit)
	})
}

func TestNotFoundIsNotStored(t *testing.T) {
	eachBackend(t, func(t *testing.T, a *app) {
		for i := range 2 {
			got := a.do(t, "GET", "/missing/1")
			if got.status != http.StatusNotFound || !strings.Contains(got.body, "no such thing") || strings.HasPrefix(got.header.Get("Cache-Status"), hit) {
				t.Errorf("GET %d: %d %q [%s], want the handler's 404, not a hit", i, got.status, got.body, got.header.Get("Cache-Status"))
			}
		}
		if n := a.runsOf("missing"); n != 2 {
			t.Errorf("the handler ran %d times, want 2", n)
		}
		if l := a.lastLog(t); l.status != http.StatusNotFound {
			t.Errorf("gin logged %d, want 404", l.status)
		}
	})
}

func TestQueryKey(t *testing.T) {
	eachBackend(t, func(t *testing.T, a *app) {
		expect(t, "q=a", a.do(t, "GET", "/search?q=a"), 200, "results for a", stored)
		expect(t, "q=b", a.do(t, "GET", "/search?q=b"), 200, "results for b", stored)
		expect(t, "q=a again", a.do(t, "GET", "/search?q=a"), 200, "results for a", hit)
		// A parameter outside QueryKeys bypasses the cache.
		expect(t, "unlisted parameter", a.do(t, "GET", "/search?q=a&debug=1"), 200, "results for a", bypass)
		if n := a.runsOf("search"); n != 3 {
			t.Errorf("the handler ran %d times, want 3", n)
		}
	})
}

// A path parameter outside the key would let two paths share an entry:
// such a route's GETs bypass the cache.
func TestUnkeyedParameterBypasses(t *testing.T) {
	eachBackend(t, func(t *testing.T, a *app) {
		expect(t, "alice's post", a.do(t, "GET", "/users/alice/posts/1"), 200, "post 1 by alice", bypass)
		expect(t, "bob's post", a.do(t, "GET", "/users/bob/posts/1"), 200, "post 1 by bob", bypass)
	})
}

func TestConfigErrors(t *testing.T) {
	c := storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{})
	for _, tc := range []struct {
		name string
		rt   hoard.Route
		want string
	}{
		{"Params", hoard.Route{KeyPrefix: "w", Params: func(*http.Request, string) string { return "" }}, "leave it nil"},
		{"no KeyPrefix", hoard.Route{}, "KeyPrefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mw, err := hoardecho.Middleware(c, tc.rt)
			if err == nil || mw != nil {
				t.Fatalf("Middleware accepted %+v", tc.rt)
			}
			if !errors.Is(err, hoard.ErrRouteConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want hoard.ErrRouteConfig naming %q", err, tc.want)
			}
		})
	}
	if _, err := hoardecho.Middleware(nil, hoard.Route{KeyPrefix: "w"}); err == nil {
		t.Error("Middleware accepted a nil Cache")
	}
	defer func() {
		if recover() == nil {
			t.Error("MustMiddleware did not panic on a bad Route")
		}
	}()
	hoardecho.MustMiddleware(c, hoard.Route{})
}

// Middleware after hoard runs on a miss, not on a hit, and its headers are
// stored; middleware registered with e.Use (applied per request) works too.
func TestChainAfterMiddleware(t *testing.T) {
	c := storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{})
	var after atomic.Int32
	e := echo.New()
	e.Use(hoardecho.MustMiddleware(c, hoard.Route{KeyPrefix: "a"}))
	e.GET("/a/:id", func(ec echo.Context) error { return ec.String(200, "a "+ec.Param("id")) },
		func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(ec echo.Context) error {
				after.Add(1)
				ec.Response().Header().Set("X-After", "1")
				return next(ec)
			}
		})
	srv := httptest.NewServer(e)
	defer srv.Close()
	a := &app{srv: srv}
	for i, want := range []string{stored, hit} {
		got := a.do(t, "GET", "/a/1")
		expect(t, fmt.Sprint("GET ", i), got, 200, "a 1", want)
		if got.header.Get("X-After") != "1" {
			t.Errorf("GET %d: the stored response lost the header set by middleware after hoard", i)
		}
	}
	if n := after.Load(); n != 1 {
		t.Errorf("middleware after hoard ran %d times, want 1", n)
	}
	// An unknown path passes through (echo's 404), uncached.
	if got := a.do(t, "GET", "/nowhere"); got.status != http.StatusNotFound || strings.HasPrefix(got.header.Get("Cache-Status"), hit) {
		t.Errorf("unknown path: %d [%s]", got.status, got.header.Get("Cache-Status"))
	}
}

// Under a ServeMux (which sets r.Pattern to "GET /api/{rest...}", whose
// wildcard hoard would find missing from the key), the route is still cached by its echo path.
func TestUnderServeMux(t *testing.T) {
	c := storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{})
	e := echo.New()
	e.GET("/api/w/:id", func(ec echo.Context) error { return ec.String(200, "w "+ec.Param("id")) },
		hoardecho.MustMiddleware(c, hoard.Route{KeyPrefix: "w"}))
	mux := http.NewServeMux()
	mux.Handle("GET /api/{rest...}", e)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	a := &app{srv: srv}
	expect(t, "first", a.do(t, "GET", "/api/w/1"), 200, "w 1", stored)
	expect(t, "second", a.do(t, "GET", "/api/w/1"), 200, "w 1", hit)
}

// Concurrent misses of one key share a handler run; every client gets the
// handler's answer.
func TestConcurrentMisses(t *testing.T) {
	eachBackend(t, func(t *testing.T, a *app) {
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				got, err := a.send("GET", "/widgets/9")
				if err != nil {
					t.Error(err)
					return
				}
				if got.status != 200 || got.body != `{"id": "9", "version": 0}` {
					t.Errorf("got %d %q [%s]", got.status, got.body, got.header.Get("Cache-Status"))
				}
			})
		}
		wg.Wait()
		if n := a.runsOf("get widget"); n < 1 || n > 20 {
			t.Errorf("the handler ran %d times", n)
		}
		expect(t, "after", a.do(t, "GET", "/widgets/9"), 200, `{"id": "9", "version": 0}`, hit)
	})
}

// A miss whose fresh answer matches If-None-Match is a 304, and
// c.Response() outside hoard says so (not the handler's 200).
func TestMissAnswers304(t *testing.T) {
	c := storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{})
	var logged atomic.Int32
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ec echo.Context) error {
			err := next(ec)
			logged.Store(int32(ec.Response().Status))
			return err
		}
	})
	mw := hoardecho.MustMiddleware(c, hoard.Route{KeyPrefix: "s"})
	e.GET("/s/:id", func(ec echo.Context) error { return ec.String(200, "same body") }, mw)
	e.PATCH("/s/:id", func(ec echo.Context) error { return ec.NoContent(http.StatusNoContent) }, mw)
	srv := httptest.NewServer(e)
	defer srv.Close()
	a := &app{srv: srv}
	etag := a.do(t, "GET", "/s/1").header.Get("ETag")
	a.do(t, "PATCH", "/s/1")
	expect(t, "GET after PATCH", a.do(t, "GET", "/s/1", "If-None-Match", etag), http.StatusNotModified, "", stored)
	if s := logged.Load(); s != http.StatusNotModified {
		t.Errorf("echo logged %d, want 304", s)
	}
}

// A named ResourceID and a placeholder key every path parameter: two users'
// note 1 are two entries, and a PATCH invalidates only its own.
func TestNamedResourceID(t *testing.T) {
	c := storefixture.Shared(t, storefixture.Redis).NewCache(t, hoard.Config{})
	var version atomic.Int32
	e := echo.New()
	mw := hoardecho.MustMiddleware(c, hoard.Route{KeyPrefix: "{user}_note", ResourceID: "note"})
	e.GET("/users/:user/notes/:note", func(ec echo.Context) error {
		return ec.String(200, fmt.Sprintf("%s/%s v%d", ec.Param("user"), ec.Param("note"), version.Load()))
	}, mw)
	e.PATCH("/users/:user/notes/:note", func(ec echo.Context) error { version.Add(1); return ec.NoContent(http.StatusNoContent) }, mw)
	srv := httptest.NewServer(e)
	defer srv.Close()
	a := &app{srv: srv}
	expect(t, "alice", a.do(t, "GET", "/users/alice/notes/1"), 200, "alice/1 v0", stored)
	expect(t, "bob", a.do(t, "GET", "/users/bob/notes/1"), 200, "bob/1 v0", stored)
	expect(t, "alice again", a.do(t, "GET", "/users/alice/notes/1"), 200, "alice/1 v0", hit)
	a.do(t, "PATCH", "/users/alice/notes/1")
	expect(t, "alice after PATCH", a.do(t, "GET", "/users/alice/notes/1"), 200, "alice/1 v1", stored)
	expect(t, "bob after alice's PATCH", a.do(t, "GET", "/users/bob/notes/1"), 200, "bob/1 v0", hit)
}

// staleApp serves GET /w/:id through hoardecho with a 1 s TTL and a 30 s
// stale window; a middleware after hoard's sets the tenant from a header,
// and the handler answers tenant, id and version, waiting on gate (when
// set) after reading the version, so that a test can hold a background
// run. GET /other/:id serves other requests meanwhile.
type staleApp struct {
	*app
	version, runs atomic.Int32
	gate          atomic.Pointer[chan struct{}]
}

func newStaleApp(t *testing.T, c *hoard.Cache) *staleApp {
	a := &staleApp{}
	e := echo.New()
	tenant := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ec echo.Context) error {
			ec.Set("tenant", ec.Request().Header.Get("X-Tenant"))
			return next(ec)
		}
	}
	mw := hoardecho.MustMiddleware(c, hoard.Route{KeyPrefix: "w", TTL: time.Second, StaleWhileRevalidate: 30 * time.Second})
	e.GET("/w/:id", func(ec echo.Context) error {
		a.runs.Add(1)
		v := a.version.Load()
		if gate := a.gate.Load(); gate != nil {
			<-*gate
		}
		return ec.String(http.StatusOK, fmt.Sprintf("%s %s v%d", ec.Get("tenant"), ec.Param("id"), v))
	}, mw, tenant)
	e.GET("/other/:id", func(ec echo.Context) error {
		return ec.String(http.StatusOK, fmt.Sprintf("%s %s", ec.Get("tenant"), ec.Param("id")))
	}, tenant)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	a.app = &app{srv: srv}
	return a
}

// TestStaleWhileRevalidate: past its TTL an entry is served stale at once
// while one background run refreshes it. The run gets a new echo.Context
// with the request's path and parameters and runs the middleware after
// hoard's too, while the request's own Context, back in echo's pool,
// serves others.
func TestStaleWhileRevalidate(t *testing.T) {
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := storefixture.Shared(t, name).NewCache(t, hoard.Config{})
			a := newStaleApp(t, c)
			storedAt := time.Now()
			expect(t, "first GET", a.do(t, "GET", "/w/7", "X-Tenant", "acme"), 200, "acme 7 v0", stored)
			time.Sleep(time.Until(storedAt.Add(1100 * time.Millisecond))) // past the TTL
			a.version.Store(1)
			gate := make(chan struct{})
			a.gate.Store(&gate)
			runs := a.runs.Load()
			got := a.do(t, "GET", "/w/7", "X-Tenant", "acme")
			if got.status != 200 || got.body != "acme 7 v0" || !strings.Contains(got.header.Get("Cache-Status"), "detail=stale-while-revalidate") {
				t.Fatalf("GET past the TTL: %d %q [%s]; want the stale answer at once", got.status, got.body, got.header.Get("Cache-Status"))
			}
			for deadline := time.Now().Add(5 * time.Second); a.runs.Load() == runs; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no background revalidation started")
				}
			}
			// The run waits on gate: the request's echo.Context now serves
			// other requests (under -race, a run still using it is a race).
			for i := range 20 {
				id := fmt.Sprint(100 + i)
				expect(t, "other request", a.do(t, "GET", "/other/"+id, "X-Tenant", "other"), 200, "other "+id, "")
			}
			close(gate)
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				got := a.do(t, "GET", "/w/7", "X-Tenant", "acme")
				if got.body == "acme 7 v1" && strings.HasPrefix(got.header.Get("Cache-Status"), hit) && !strings.Contains(got.header.Get("Cache-Status"), "stale") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("5 s after the revalidation was released: %d %q [%s]; want a fresh hit of acme 7 v1", got.status, got.body, got.header.Get("Cache-Status"))
				}
			}
			if n := a.runs.Load() - runs; n != 1 {
				t.Errorf("the handler ran %d times after the TTL; want the one background run", n)
			}
		})
	}
}
