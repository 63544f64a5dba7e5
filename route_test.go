package hoard_test

// Behaviour tests of the route middleware, over real HTTP
// against every store.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/faultstore"
	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/hoardcache/hoard/memory"
)

// routeStores runs f as a subtest against every store of storefixture.All.
func routeStores(t *testing.T, f func(t *testing.T, b storefixture.Backend)) {
	t.Helper()
	for _, b := range storefixture.All(t) {
		t.Run(b.Name, func(t *testing.T) { f(t, b) })
	}
}

// miniRoute is one route of a miniServer. rt nil mounts h without hoard;
// viaMiddleware mounts it with Cache.Middleware instead of Cache.Handle.
type miniRoute struct {
	pattern       string
	rt            *hoard.Route
	h             http.HandlerFunc
	viaMiddleware bool
}

// miniServer serves a few ad-hoc routes (mounted by localMux) on a real
// HTTP server and counts their handler runs.
type miniServer struct {
	*httptest.Server
	runs map[string]*atomic.Int64
}

func newMiniServer(t testing.TB, c *hoard.Cache, routes ...miniRoute) *miniServer {
	t.Helper()
	mux, runs := localMux(t, c, routes...)
	s := &miniServer{Server: httptest.NewServer(mux), runs: runs}
	t.Cleanup(s.Close)
	return s
}

// Runs returns the handler runs of the route registered under pattern.
func (s *miniServer) Runs(pattern string) int64 { return s.runs[pattern].Load() }

func (s *miniServer) Get(t testing.TB, path string, header ...string) testResponse {
	t.Helper()
	return doRequest(t, http.MethodGet, s.URL+path, header...)
}

func (s *miniServer) Do(t testing.TB, method, path string, header ...string) testResponse {
	t.Helper()
	return doRequest(t, method, s.URL+path, header...)
}

// echo answers 200 with a JSON object naming the request's path values
// listed, its raw query and a per-handler sequence number, so that a fresh
// answer always differs from a cached one.
func echo(names ...string) http.HandlerFunc {
	var seq atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) {
		m := map[string]string{"seq": strconv.FormatInt(seq.Add(1), 10), "query": r.URL.RawQuery}
		for _, n := range names {
			m[n] = r.PathValue(n)
		}
		writeJSON(w, http.StatusOK, m)
	}
}

// hitPrefix starts the Cache-Status of a hit.
const hitPrefix = "hoard; hit; ttl="

func wantHit(t *testing.T, what string, r testResponse) {
	t.Helper()
	if r.Status != http.StatusOK || !strings.HasPrefix(r.CacheStatus(), hitPrefix) {
		t.Errorf("%s: want a 200 hit, got %v", what, r)
	}
}

func wantRuns(t *testing.T, what string, got, want int64) {
	t.Helper()
	if got != want {
		t.Errorf("%s: handler ran %d times, want %d", what, got, want)
	}
}

// testResponse is a response as the client received it.
type testResponse struct {
	Status int
	Header http.Header
	Body   string
}

// CacheStatus returns the Cache-Status header.
func (r testResponse) CacheStatus() string { return r.Header.Get("Cache-Status") }

// JSON decodes the body into v, failing the test if it does not decode.
func (r testResponse) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.Body), v); err != nil {
		t.Fatalf("response body %q: %v", r.Body, err)
	}
}

// String summarizes the response for failure messages.
func (r testResponse) String() string {
	return fmt.Sprintf("%d %q Cache-Status=%q", r.Status, r.Body, r.CacheStatus())
}

// requestClient is doRequest's client: net/http's default transport, and
// 10 s for a whole exchange.
var requestClient = &http.Client{Timeout: 10 * time.Second}

// doRequest sends one request over real HTTP and reads the whole response,
// failing the test on a transport error. header holds name, value pairs.
// The request times out after 10 s.
func doRequest(t testing.TB, method, url string, header ...string) testResponse {
	t.Helper()
	r, err := sendRequest(requestClient, method, url, header...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sendRequest is doRequest over client that returns its error instead: it
// is safe to call from any goroutine.
func sendRequest(client *http.Client, method, url string, header ...string) (testResponse, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return testResponse{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	if len(header)%2 != 0 {
		return testResponse{}, fmt.Errorf("%s %s: header needs name, value pairs, got %q", method, url, header)
	}
	for i := 0; i < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		return testResponse{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return testResponse{}, fmt.Errorf("%s %s: reading body: %w", method, url, err)
	}
	return testResponse{Status: res.StatusCode, Header: res.Header, Body: string(b)}, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// newMemoryCache returns a Cache over a fresh memory store wrapped by wrap
// (nil: no wrapper), with cfg (its Backend and store fields are ignored).
func newMemoryCache(t testing.TB, cfg hoard.Config, wrap func(hoard.Store) hoard.Store) *hoard.Cache {
	t.Helper()
	m, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var s hoard.Store = m
	if wrap != nil {
		s = wrap(m)
	}
	c, err := hoard.New(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newFaultCache is newMemoryCache with the store wrapped in a
// faultstore.Store (no fault injected yet), which it also returns.
func newFaultCache(t testing.TB, cfg hoard.Config) (*hoard.Cache, faultstore.Store) {
	t.Helper()
	var s faultstore.Store
	c := newMemoryCache(t, cfg, func(m hoard.Store) hoard.Store {
		s = faultstore.New(m)
		return s
	})
	return c, s
}

// discardLogger returns a logger that drops everything, for tests that make
// the cache log store failures on purpose.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// storeHas reports whether the store holds the entry of logical key (a key
// without the cache's KeyPrefix).
// storeKey returns the store key of the route entry whose key is logical
// (prefix[:id][:q=…][:u=…]): KeyPrefix + logical, except on a hoard.Sharded store of
// several shards (memcached), where the resource (the key up to its query
// or caller part) is the key's hash tag: KeyPrefix{resource}rest.
func storeKey(c *hoard.Cache, logical string) string {
	ns := c.Config().KeyPrefix
	sh, ok := c.Store().(hoard.Sharded)
	_, walks := c.Store().(hoard.PatternDeleter)
	if !ok || sh.ShardCount() < 2 || walks || strings.Contains(ns, "{") {
		return ns + logical
	}
	end := len(logical)
	for _, sep := range []string{":q=", ":u="} {
		if i := strings.Index(logical, sep); i >= 0 && i < end {
			end = i
		}
	}
	return ns + "{" + logical[:end] + "}" + logical[end:]
}

func storeHas(t *testing.T, c *hoard.Cache, logical string) bool {
	t.Helper()
	ok, err := c.Store().Exists(context.Background(), storeKey(c, logical))
	if err != nil {
		t.Fatalf("Exists(%q): %v", logical, err)
	}
	return ok
}

func TestRouteGetTwiceRunsHandlerOnce(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		app := newWidgetApp(t, c, nil)
		users := newMiniServer(t, c, userRoutes()...)
		for _, tc := range []struct {
			s             *miniServer
			path, pattern string
		}{
			{app.miniServer, "/widgets/1", widgetGet},
			{app.miniServer, "/widgets", widgetList},
			{users, "/users/alice", "GET /users/{username}"},
			{users, "/users/alice/posts", "GET /users/{username}/posts"},
			{users, "/users/alice/posts/1", "GET /users/{username}/posts/{id}"},
		} {
			first := tc.s.Get(t, tc.path)
			second := tc.s.Get(t, tc.path)
			if first.Status != http.StatusOK || first.CacheStatus() != "hoard; fwd=miss; stored" {
				t.Errorf("GET %s first: want a stored 200 miss, got %v", tc.path, first)
			}
			wantHit(t, "GET "+tc.path+" second", second)
			if second.Status != first.Status || second.Body != first.Body ||
				second.Header.Get("Content-Type") != first.Header.Get("Content-Type") {
				t.Errorf("GET %s: hit differs from miss:\n miss %v %q\n hit  %v %q", tc.path,
					first, first.Header.Get("Content-Type"), second, second.Header.Get("Content-Type"))
			}
			wantRuns(t, tc.pattern, tc.s.Runs(tc.pattern), 1)
		}
		if !storeHas(t, c, "widget:1") || !storeHas(t, c, "alice_posts:page_1:items_per_page:10:alice") {
			t.Error("entries are not under the documented keys (widget:1, alice_posts:page_1:items_per_page:10:alice)")
		}
	})
}

func TestRouteDatabaseChangeInvisibleUntilWrite(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		app := newWidgetApp(t, b.NewCache(t, hoard.Config{}), newWidgetDB(3))
		old := app.get(t, 1).version()
		var list widgetPage
		app.Get(t, "/widgets").JSON(t, &list)

		app.DB.Bump(1)
		app.DB.Add()
		if r := app.get(t, 1); r.version() != old {
			t.Errorf("a database change behind the cache's back is visible before any write: %v", r)
		}
		var list2 widgetPage
		app.Get(t, "/widgets").JSON(t, &list2)
		if list2.TotalCount != list.TotalCount {
			t.Errorf("listing changed without a write: %d then %d", list.TotalCount, list2.TotalCount)
		}

		// A write to another widget leaves widget 1's entry alone ...
		if r := app.Do(t, http.MethodPatch, "/widgets/2"); r.Status != http.StatusOK {
			t.Fatalf("PATCH widget 2: %v", r)
		}
		if r := app.get(t, 1); r.version() != old {
			t.Errorf("a write to widget 2 invalidated widget 1: %v", r)
		}
		// ... but refreshes every listing (widgets:*).
		var list3 widgetPage
		app.Get(t, "/widgets").JSON(t, &list3)
		if list3.TotalCount != list.TotalCount+1 {
			t.Errorf("listing after PATCH widget 2: total_count %d, want %d", list3.TotalCount, list.TotalCount+1)
		}

		if r := app.Do(t, http.MethodPatch, "/widgets/1"); r.Status != http.StatusOK {
			t.Fatalf("PATCH widget 1: %v", r)
		}
		if r := app.get(t, 1); r.version() != app.DB.Version(1) || r.CacheStatus() != "hoard; fwd=miss; stored" {
			t.Errorf("after PATCH widget 1: want the database's version %d from a fresh miss, got %v", app.DB.Version(1), r)
		}
	})
}

func TestRouteTTLExpires(t *testing.T) {
	const ttl = 2 * time.Second // Memcached counts whole seconds
	for _, b := range storefixture.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel() // each subtest mostly waits for its TTL
			app := &widgetApp{DB: newWidgetDB(1), TTL: ttl}
			s := newMiniServer(t, b.NewCache(t, hoard.Config{}), app.routes()...)
			const path = "/widgets/1"
			old := s.Get(t, path).version()
			stored := time.Now()
			later, _ := app.DB.Bump(1)
			r := s.Get(t, path)
			if r.version() != old && time.Since(stored) < ttl/2 {
				t.Fatalf("changed before the TTL: %v", r)
			}
			if cs := r.CacheStatus(); r.version() == old && cs != hitPrefix+"2" && cs != hitPrefix+"1" {
				t.Errorf("Cache-Status of a hit with TTL 2s: %q", cs)
			}
			deadline := time.Now().Add(ttl + 5*time.Second)
			for r.version() != later.Version {
				if time.Now().After(deadline) {
					t.Fatalf("entry still served %v after a TTL of %v: %v", time.Since(stored), ttl, r)
				}
				time.Sleep(100 * time.Millisecond)
				r = s.Get(t, path)
			}
			wantRuns(t, "GET widget", s.Runs(widgetGet), 2)
		})
	}
}

func TestRoutePagesAndQueryOrder(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		app := newWidgetApp(t, c, newWidgetDB(3))
		var p1, p2 widgetPage
		app.Get(t, "/widgets?page=1&items_per_page=2").JSON(t, &p1)
		app.Get(t, "/widgets?page=2&items_per_page=2").JSON(t, &p2)
		if len(p1.Data) != 2 || len(p2.Data) != 1 || p1.Data[0].ID == p2.Data[0].ID {
			t.Errorf("pages 1 and 2 served the same entry: %+v / %+v", p1, p2)
		}
		wantRuns(t, "two pages", app.Runs(widgetList), 2)

		wantHit(t, "reordered query", app.Get(t, "/widgets?items_per_page=2&page=1"))
		// Defaults fill absent placeholders: no query, page=1 and the full
		// query are one entry.
		app.Get(t, "/widgets")
		wantHit(t, "page=1 (defaults)", app.Get(t, "/widgets?page=1"))
		wantHit(t, "explicit defaults", app.Get(t, "/widgets?items_per_page=10&page=1"))
		wantRuns(t, "after reordered and defaulted queries", app.Runs(widgetList), 3)

		// Query parameters outside the placeholders are part of the key,
		// sorted.
		a := app.Get(t, "/widgets/1?expand=x&b=y")
		wantHit(t, "reordered other query", app.Get(t, "/widgets/1?b=y&expand=x"))
		if r := app.Get(t, "/widgets/1"); r.CacheStatus() != "hoard; fwd=miss; stored" {
			t.Errorf("no query shares the entry of ?expand=x&b=y (%v): %v", a, r)
		}
		wantRuns(t, "widget variants", app.Runs(widgetGet), 2)
		if !storeHas(t, c, "widget:1:q=b=y&expand=x") {
			t.Error("query variant not stored under widget:1:q=b=y&expand=x")
		}
	})
}

// callerHeader carries the caller's identity in the per-caller tests.
const callerHeader = "X-Test-User"

func callerOf(r *http.Request) string { return r.Header.Get(callerHeader) }

func TestRoutePerCaller(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		rt := &hoard.Route{KeyPrefix: "note", PerCaller: callerOf}
		const get = "GET /notes/{id}"
		s := newMiniServer(t, c, miniRoute{pattern: get, rt: rt, h: echo("id")})

		alice := s.Get(t, "/notes/1", callerHeader, "alice")
		bob := s.Get(t, "/notes/1", callerHeader, "bob")
		if alice.Body == bob.Body {
			t.Errorf("alice and bob share an entry: %v / %v", alice, bob)
		}
		wantRuns(t, "two callers", s.Runs(get), 2)
		wantHit(t, "alice again", s.Get(t, "/notes/1", callerHeader, "alice"))
		if r := s.Get(t, "/notes/1", callerHeader, "alice"); r.Body != alice.Body {
			t.Errorf("alice's hit is not alice's answer: %v, want %v", r, alice)
		}
		wantRuns(t, "alice's hits", s.Runs(get), 2)
		if !storeHas(t, c, "note:1:u=alice") || !storeHas(t, c, "note:1:u=bob") {
			t.Error("per-caller entries not under note:1:u=<caller>")
		}

		// No caller: never cached, never served from the cache.
		for i := range 3 {
			r := s.Get(t, "/notes/1")
			if r.Status != http.StatusOK || r.CacheStatus() != "hoard; fwd=bypass" {
				t.Errorf("no caller, request %d: want a 200 bypass, got %v", i, r)
			}
		}
		wantRuns(t, "no caller", s.Runs(get), 5)
		if storeHas(t, c, "note:1") {
			t.Error("a per-caller route stored an entry without a caller")
		}
	})
}

func TestRouteWriteInvalidates(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		app := newWidgetApp(t, c, newWidgetDB(3))
		for _, method := range []string{http.MethodPut, http.MethodPatch, http.MethodPost, http.MethodDelete} {
			t.Run(method, func(t *testing.T) {
				// Fill the widget entries, a query variant and two listing pages.
				paths := []string{"/widgets/1", "/widgets/1?expand=x",
					"/widgets?page=1&items_per_page=2", "/widgets?page=2&items_per_page=2"}
				for _, p := range paths {
					app.Get(t, p)
					wantHit(t, p, app.Get(t, p))
				}
				if !storeHas(t, c, "widget:1") {
					t.Fatal("widget:1 not stored")
				}
				target := "/widgets/1" // DELETE last: widget 1 is gone afterwards
				if method == http.MethodPost {
					target = "/widgets"
				}
				if r := app.Do(t, method, target); r.Status/100 != 2 {
					t.Fatalf("%s: %v", method, r)
				}
				if method != http.MethodPost && storeHas(t, c, "widget:1") {
					t.Errorf("%s did not delete the primary entry widget:1", method)
				}
				for _, p := range paths {
					// POST /widgets names no widget: only the listings change.
					if method == http.MethodPost && strings.HasPrefix(p, "/widgets/1") {
						wantHit(t, p+" after POST /widgets", app.Get(t, p))
						continue
					}
					g := app.Get(t, p)
					gone := method == http.MethodDelete && strings.HasPrefix(p, "/widgets/1")
					if strings.HasPrefix(g.CacheStatus(), hitPrefix) || (g.Status == http.StatusNotFound) != gone {
						t.Errorf("%s did not invalidate %s: %v", method, p, g)
					}
				}
			})
		}
	})
}

func TestRouteWriteInvalidatesExtraKeys(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		const (
			count   = "GET /stats/widget_count"
			profile = "GET /profiles/{username}"
			post    = "POST /things"
			post2   = "POST /things2"
			patch   = "PATCH /users/{username}"
		)
		s := newMiniServer(t, c,
			miniRoute{pattern: count, rt: &hoard.Route{KeyPrefix: "widget_count:global"}, h: echo()},
			miniRoute{pattern: profile, rt: &hoard.Route{KeyPrefix: "{username}_profile", ResourceID: "username"}, h: echo("username")},
			// FastAPI-boilerplate's layer lost the literal id "global" (it took it for a
			// parameter name) and never formatted an extra key's prefix.
			miniRoute{pattern: post, rt: &hoard.Route{InvalidateKeys: map[string]string{"widget_count": "global"}}, h: echo()},
			// The same through Middleware: ServeMux sets r.Pattern, and a
			// query parameter named "global" must not redirect the literal.
			miniRoute{pattern: post2, rt: &hoard.Route{InvalidateKeys: map[string]string{"widget_count": "global"}},
				h: echo(), viaMiddleware: true},
			miniRoute{pattern: patch, rt: &hoard.Route{KeyPrefix: "user", ResourceID: "username",
				InvalidateKeys: map[string]string{"{username}_profile": "username"}}, h: echo("username")},
		)
		for _, p := range []string{"/stats/widget_count", "/profiles/alice", "/profiles/bob"} {
			s.Get(t, p)
			wantHit(t, p, s.Get(t, p))
		}
		if !storeHas(t, c, "widget_count:global") || !storeHas(t, c, "alice_profile:alice") {
			t.Fatal("entries not under widget_count:global and alice_profile:alice")
		}

		if r := s.Do(t, http.MethodPost, "/things"); r.Status != http.StatusOK {
			t.Fatalf("POST /things: %v", r)
		}
		if storeHas(t, c, "widget_count:global") {
			t.Error("literal extra key widget_count:global not deleted")
		}
		if r := s.Get(t, "/stats/widget_count"); strings.HasPrefix(r.CacheStatus(), hitPrefix) {
			t.Errorf("literal extra key widget_count → global not invalidated: %v", r)
		}

		s.Get(t, "/stats/widget_count")
		wantHit(t, "count before POST /things2", s.Get(t, "/stats/widget_count"))
		if r := s.Do(t, http.MethodPost, "/things2?global=evil"); r.Status != http.StatusOK {
			t.Fatalf("POST /things2: %v", r)
		}
		if r := s.Get(t, "/stats/widget_count"); strings.HasPrefix(r.CacheStatus(), hitPrefix) {
			t.Errorf("literal extra key through Middleware (with ?global=evil) not invalidated: %v", r)
		}

		if r := s.Do(t, http.MethodPatch, "/users/alice"); r.Status != http.StatusOK {
			t.Fatalf("PATCH /users/alice: %v", r)
		}
		if r := s.Get(t, "/profiles/alice"); strings.HasPrefix(r.CacheStatus(), hitPrefix) {
			t.Errorf("formatted extra key {username}_profile → username not invalidated: %v", r)
		}
		wantHit(t, "bob's profile after alice's write", s.Get(t, "/profiles/bob"))
		wantRuns(t, "count", s.Runs(count), 3)
		wantRuns(t, "profiles", s.Runs(profile), 3)
	})
}

func TestRouteEmptyAnswersAreCached(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		bodies := map[string]string{"/empty/array": "[]", "/empty/object": "{}", "/empty/body": ""}
		s := newMiniServer(t, c, miniRoute{pattern: "GET /empty/{kind}", rt: &hoard.Route{KeyPrefix: "empty"},
			h: func(w http.ResponseWriter, r *http.Request) {
				body := bodies[r.URL.Path]
				if body != "" {
					w.Header().Set("Content-Type", "application/json")
				}
				w.Write([]byte(body))
			}})
		for path, body := range bodies {
			first := s.Get(t, path)
			second := s.Get(t, path)
			if first.Body != body || first.CacheStatus() != "hoard; fwd=miss; stored" {
				t.Errorf("GET %s: want %q stored, got %v", path, body, first)
			}
			wantHit(t, path, second)
			if second.Body != body || second.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
				t.Errorf("GET %s hit: want body %q with its Content-Length, got %v (Content-Length %q)",
					path, body, second, second.Header.Get("Content-Length"))
			}
		}
		wantRuns(t, "empty answers", s.Runs("GET /empty/{kind}"), 3)
	})
}

func TestRouteDisabled(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		store := faultstore.New(b.NewStore(t))
		c, err := hoard.New(store, hoard.Config{Disabled: true, KeyPrefix: storefixture.UniquePrefix()})
		if err != nil {
			t.Fatal(err)
		}
		app := newWidgetApp(t, c, nil)
		users := newMiniServer(t, c, userRoutes()...)
		const posts = "GET /users/{username}/posts"
		for i := range 3 {
			r := app.Get(t, "/widgets/1")
			if r.Status != http.StatusOK || r.CacheStatus() != "" {
				t.Errorf("GET %d with the cache disabled: want a plain 200, got %v", i, r)
			}
			users.Get(t, "/users/alice/posts")
		}
		if r := app.Do(t, http.MethodPut, "/widgets/1"); r.Status != http.StatusOK {
			t.Errorf("PUT with the cache disabled: %v", r)
		}
		users.Do(t, http.MethodPost, "/users/alice/posts")
		wantRuns(t, "GET widget", app.Runs(widgetGet), 3)
		wantRuns(t, "GET posts", users.Runs(posts), 3)
		if n := store.Calls(); n != 0 {
			t.Errorf("disabled cache made %d store calls, want 0", n)
		}
	})
}

// errInjected is what the failing store calls of TestRouteStoreFailuresFailOpen return.
var errInjected = errors.New("injected store failure")

func TestRouteStoreFailuresFailOpen(t *testing.T) {
	c, faulty := newFaultCache(t, hoard.Config{Logger: discardLogger()})
	fail := func(methods ...faultstore.Method) {
		faulty.Inject(faultstore.Fault{Methods: methods, Err: errInjected})
	}
	app := newWidgetApp(t, c, newWidgetDB(1))
	const path = "/widgets/1"
	wantFresh := func(what string) {
		t.Helper()
		r := app.get(t, 1)
		if want := app.DB.Version(1); r.version() != want || strings.HasPrefix(r.CacheStatus(), hitPrefix) {
			t.Errorf("%s: want a fresh 200 with version %d, got %v", what, want, r)
		}
	}
	// Let the breaker close again between phases (it opens after repeated
	// failures and lets a probe through after a second).
	heal := func() {
		t.Helper()
		faulty.Inject()
		deadline := time.Now().Add(5 * time.Second)
		for {
			app.Get(t, path)
			if r := app.Get(t, path); strings.HasPrefix(r.CacheStatus(), hitPrefix) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the cache never served hits again after the store recovered")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	t.Run("get fails", func(t *testing.T) {
		heal()
		fail(faultstore.Get, faultstore.GetMulti)
		for range 3 {
			app.DB.Bump(1)
			wantFresh("read failing")
		}
	})
	t.Run("set fails", func(t *testing.T) {
		heal()
		app.Do(t, http.MethodPatch, path) // drop the entry
		fail(faultstore.Set, faultstore.Add)
		for range 3 {
			app.DB.Bump(1)
			wantFresh("store failing")
		}
		if r := app.Do(t, http.MethodPut, path); r.Status != http.StatusOK {
			t.Errorf("PUT while Set fails: %v", r)
		}
		wantFresh("after a PUT whose generation bump failed")
	})
	t.Run("delete fails", func(t *testing.T) {
		heal()
		fail(faultstore.Delete, faultstore.DeletePattern)
		if r := app.Do(t, http.MethodPut, path); r.Status != http.StatusOK {
			t.Errorf("PUT while Delete fails: %v", r)
		}
		wantFresh("after a PUT whose delete failed")
		app.DB.Bump(1)
		wantFresh("while the failed invalidation is pending")
	})
	heal()
}

// TestRouteUpstreamFaults proves fixed each fault of the caching layer
// hoard was modelled on (FastAPI-boilerplate's) that the README lists as a
// deliberate difference.
func TestRouteUpstreamFaults(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		app := newWidgetApp(t, c, nil)

		t.Run("write by A invalidates B's per-caller entry", func(t *testing.T) {
			const get, put = "GET /notes/{id}", "PUT /notes/{id}"
			rt := &hoard.Route{KeyPrefix: "note", PerCaller: callerOf}
			s := newMiniServer(t, c, miniRoute{pattern: get, rt: rt, h: echo("id")},
				miniRoute{pattern: put, rt: rt, h: echo("id")})
			s.Get(t, "/notes/7", callerHeader, "bob")
			wantHit(t, "bob", s.Get(t, "/notes/7", callerHeader, "bob"))
			s.Do(t, http.MethodPut, "/notes/7", callerHeader, "alice")
			if r := s.Get(t, "/notes/7", callerHeader, "bob"); strings.HasPrefix(r.CacheStatus(), hitPrefix) {
				t.Errorf("alice's write left bob's entry: %v", r)
			}
			// A write with no caller at all still invalidates.
			wantHit(t, "bob again", s.Get(t, "/notes/7", callerHeader, "bob"))
			if r := s.Do(t, http.MethodPut, "/notes/7"); r.Status != http.StatusOK {
				t.Fatalf("PUT without a caller: %v", r)
			}
			if r := s.Get(t, "/notes/7", callerHeader, "bob"); strings.HasPrefix(r.CacheStatus(), hitPrefix) {
				t.Errorf("a write without a caller left bob's entry: %v", r)
			}
			wantRuns(t, "bob's reads", s.Runs(get), 3)
		})

		t.Run("query variant is stale-free after PUT", func(t *testing.T) {
			const path = "/widgets/1?expand=x"
			app.Get(t, path)
			app.DB.Bump(1) // behind the cache's back
			p := app.put(t, 1)
			if r := app.Get(t, path); r.version() != p.version() {
				t.Errorf("GET %s after PUT /widgets/1 answered version %d: %v", path, p.version(), r)
			}
		})

		t.Run("escaped query is not the unescaped one", func(t *testing.T) {
			const get = "GET /q"
			s := newMiniServer(t, c, miniRoute{pattern: get, rt: &hoard.Route{KeyPrefix: "q"},
				h: func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, r.URL.Query()) }})
			one := s.Get(t, "/q?a=1%26b%3D2")
			two := s.Get(t, "/q?a=1&b=2")
			if one.Body == two.Body {
				t.Errorf("?a=1%%26b%%3D2 and ?a=1&b=2 share an entry: %v", two)
			}
			var q url.Values
			one.JSON(t, &q)
			if q.Get("a") != "1&b=2" {
				t.Errorf("?a=1%%26b%%3D2 answered %v", one)
			}
			wantHit(t, "escaped again", s.Get(t, "/q?a=1%26b%3D2"))
			wantRuns(t, "two queries", s.Runs(get), 2)
		})

		t.Run("username * invalidates only its own listing", func(t *testing.T) {
			users := newMiniServer(t, c, userRoutes()...)
			star, alice := "/users/%2A/posts", "/users/alice/posts"
			before := users.Get(t, star)
			for _, p := range []string{alice, alice + "?page=2"} {
				if r := users.Get(t, p); r.Status != http.StatusOK {
					t.Fatalf("GET %s: %v", p, r)
				}
			}
			wantHit(t, "*'s listing", users.Get(t, star))
			if r := users.Do(t, http.MethodPost, star); r.Status != http.StatusOK {
				t.Fatalf("POST %s: %v", star, r)
			}
			if r := users.Get(t, star); isHit(r) || r.Body == before.Body {
				t.Errorf("*'s listing after its POST: %v, want a fresh answer (before: %v)", r, before)
			}
			wantHit(t, "alice's listing after *'s write", users.Get(t, alice))
			wantHit(t, "alice's page 2 after *'s write", users.Get(t, alice+"?page=2"))
		})

		t.Run("widget:1 invalidation leaves widget:10 alone", func(t *testing.T) {
			for _, p := range []string{"/widgets/1", "/widgets/10", "/widgets/11"} {
				app.Get(t, p)
			}
			app.Do(t, http.MethodPatch, "/widgets/1")
			wantHit(t, "widget 10 after a write to widget 1", app.Get(t, "/widgets/10"))
			if r := app.Get(t, "/widgets/1"); strings.HasPrefix(r.CacheStatus(), hitPrefix) {
				t.Errorf("widget 1 after its write: %v", r)
			}
			// The provider API: a resource name is not a prefix either.
			if err := c.Invalidate(context.Background(), "widget:1"); err != nil {
				t.Fatal(err)
			}
			wantHit(t, "widget 10 after Invalidate(widget:1)", app.Get(t, "/widgets/10"))
			wantHit(t, "widget 11 after Invalidate(widget:1)", app.Get(t, "/widgets/11"))
		})
	})
}

func TestRouteWriteWithUnfillablePlaceholder(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{Logger: discardLogger()}, nil)
	const post = "POST /reports"
	s := newMiniServer(t, c, miniRoute{pattern: post, h: echo(),
		rt: &hoard.Route{QueryKeys: []string{"tenant"}, InvalidatePatterns: []string{"{tenant}_reports:*"}}})
	r := s.Do(t, http.MethodPost, "/reports")
	if r.Status != http.StatusInternalServerError || !strings.Contains(r.Body, "{tenant}") {
		t.Errorf("write without a value for {tenant}: want a 500 naming it, got %v", r)
	}
	var detail struct{ Detail string }
	r.JSON(t, &detail)
	if detail.Detail == "" {
		t.Errorf("500 body is not {\"detail\": …}: %q", r.Body)
	}
	wantRuns(t, "refused write", s.Runs(post), 0)
	if r := s.Do(t, http.MethodPost, "/reports?tenant=acme"); r.Status != http.StatusOK {
		t.Errorf("write with ?tenant=acme: %v", r)
	}
	wantRuns(t, "write with a tenant", s.Runs(post), 1)
}

// chiLike emulates a router such as chi: it fills r.PathValue itself (chi
// does since v5.0.12) but leaves r.Pattern empty, then calls the middleware.
func chiLike(prefix string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutPrefix(r.URL.Path, prefix)
		if !ok || id == "" || strings.Contains(id, "/") {
			http.NotFound(w, r)
			return
		}
		r.SetPathValue("id", id)
		next.ServeHTTP(w, r)
	})
}

type paramsKey struct{}

// contextRouter emulates a router that keeps path parameters in the
// request's context (read with Route.Params).
func contextRouter(prefix string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutPrefix(r.URL.Path, prefix)
		if !ok || id == "" {
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), paramsKey{}, map[string]string{"id": id})))
	})
}

func TestRouteOtherRouters(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		var runs atomic.Int64
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := runs.Add(1)
			fmt.Fprintf(w, "item %s run %d", r.PathValue("id"), n)
		})

		t.Run("path values without r.Pattern", func(t *testing.T) {
			runs.Store(0)
			mw := c.MustMiddleware(hoard.Route{KeyPrefix: "chi_item", ResourceID: "id",
				InvalidateKeys: map[string]string{"chi_count": "global"}})
			srv := httptest.NewServer(chiLike("/items/", mw(h)))
			t.Cleanup(srv.Close)
			get := func(p string) testResponse { return doRequest(t, http.MethodGet, srv.URL+p) }
			one, two := get("/items/1"), get("/items/2")
			if one.Body == two.Body {
				t.Errorf("items 1 and 2 share an entry: %v", two)
			}
			wantHit(t, "item 1 again", get("/items/1"))
			if !storeHas(t, c, "chi_item:1") {
				t.Error("entry not under chi_item:1")
			}
			if r := doRequest(t, http.MethodPut, srv.URL+"/items/1"); r.Status != http.StatusOK {
				t.Fatalf("PUT /items/1: %v", r)
			}
			if r := get("/items/1"); strings.HasPrefix(r.CacheStatus(), hitPrefix) {
				t.Errorf("item 1 after PUT: %v", r)
			}
			wantHit(t, "item 2 after PUT of item 1", get("/items/2"))
		})

		t.Run("Params hook", func(t *testing.T) {
			runs.Store(0)
			params := func(r *http.Request, name string) string {
				m, _ := r.Context().Value(paramsKey{}).(map[string]string)
				return m[name]
			}
			mw := c.MustMiddleware(hoard.Route{KeyPrefix: "ctx_item", ResourceID: "id", Params: params})
			srv := httptest.NewServer(contextRouter("/things/", mw(h)))
			t.Cleanup(srv.Close)
			get := func(p string) testResponse { return doRequest(t, http.MethodGet, srv.URL+p) }
			get("/things/a")
			get("/things/b")
			wantHit(t, "thing a again", get("/things/a"))
			if runs.Load() != 2 || !storeHas(t, c, "ctx_item:a") || !storeHas(t, c, "ctx_item:b") {
				t.Errorf("Params hook: %d runs, want 2, entries ctx_item:a and ctx_item:b", runs.Load())
			}
			doRequest(t, http.MethodDelete, srv.URL+"/things/a")
			if r := get("/things/a"); strings.HasPrefix(r.CacheStatus(), hitPrefix) {
				t.Errorf("thing a after DELETE: %v", r)
			}
			wantHit(t, "thing b after DELETE of a", get("/things/b"))
		})
	})
}
