package hoard_test

// Security tests: what one client sends can never change
// what another receives. Request headers are not part of a key, so a
// response that depends on one is either marked with Vary (never stored) or
// the application's responsibility (Route's doc comment); per-caller routes
// never share; method overrides, HEAD, query order and duplication, and path
// encoding cannot make two different resources share an entry.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
)

// serveLocal runs one request through h in process and returns what the
// client would receive; header holds name, value pairs ("Host" sets r.Host).
func serveLocal(t testing.TB, h http.Handler, method, target string, header ...string) testResponse {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		if strings.EqualFold(header[i], "Host") {
			req.Host = header[i+1]
			continue
		}
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return testResponse{Status: res.StatusCode, Header: res.Header, Body: string(b)}
}

// localMux registers routes on a ServeMux with c.Handle (or c.Middleware
// when viaMiddleware) and counts handler runs per pattern.
func localMux(t testing.TB, c *hoard.Cache, routes ...miniRoute) (*http.ServeMux, map[string]*atomic.Int64) {
	t.Helper()
	mux := http.NewServeMux()
	runs := map[string]*atomic.Int64{}
	for _, mr := range routes {
		n := &atomic.Int64{}
		runs[mr.pattern] = n
		h := mr.h
		counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1); h(w, r) })
		switch {
		case mr.rt == nil:
			mux.Handle(mr.pattern, counted)
		case mr.viaMiddleware:
			mux.Handle(mr.pattern, c.MustMiddleware(*mr.rt)(counted))
		default:
			if err := c.Handle(mux, mr.pattern, *mr.rt, counted); err != nil {
				t.Fatalf("Handle(%q): %v", mr.pattern, err)
			}
		}
	}
	return mux, runs
}

// TestSecurityVary: a response that varies by a request header is never
// stored (hoard does not key by headers), so two clients with different
// Accept-Language never receive each other's body; "Vary: *" and a Vary
// written under a non-canonical name ("vary") are never stored either.
func TestSecurityVary(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	byLanguage := func(name string) http.HandlerFunc {
		var seq atomic.Int64
		return func(w http.ResponseWriter, r *http.Request) {
			if name == "vary" {
				w.Header()["vary"] = []string{"Accept-Language"} // as is: net/http sends it so
			} else {
				w.Header().Set("Vary", name)
			}
			fmt.Fprintf(w, "lang=%s seq=%d", r.Header.Get("Accept-Language"), seq.Add(1))
		}
	}
	mux, runs := localMux(t, c,
		miniRoute{pattern: "GET /greeting", rt: &hoard.Route{KeyPrefix: "greeting"}, h: byLanguage("Accept-Language")},
		miniRoute{pattern: "GET /star", rt: &hoard.Route{KeyPrefix: "star"}, h: byLanguage("*")},
		miniRoute{pattern: "GET /lower", rt: &hoard.Route{KeyPrefix: "lower"}, h: byLanguage("vary")},
	)
	for _, path := range []string{"/greeting", "/star", "/lower"} {
		for i := range 3 {
			for _, lang := range []string{"en", "fr"} {
				r := serveLocal(t, mux, http.MethodGet, path, "Accept-Language", lang)
				if !strings.HasPrefix(r.Body, "lang="+lang+" ") {
					t.Fatalf("%s round %d: Accept-Language %s received %q", path, i, lang, r.Body)
				}
				if r.CacheStatus() != csMiss {
					t.Errorf("%s: a Vary response was not a plain miss: %v", path, r)
				}
			}
		}
		wantRuns(t, path, runs["GET "+path].Load(), 6)
		if storeHas(t, c, strings.TrimPrefix(path, "/")) {
			t.Errorf("%s: a response with Vary was stored", path)
		}
	}
}

// TestSecurityUnkeyedHeaders: Host, X-Forwarded-Host, X-Forwarded-Proto,
// X-Original-URL and friends are not part of the key. A handler whose output
// depends on one and says so with Vary is never stored, so a poisoning
// request cannot reach a client without the header. A handler that ignores
// them shares one entry among all such requests (by design; reflecting such
// a header without Vary is the application's bug, see Route's doc comment),
// and the entry holds the handler's answer, not the attacker's header.
func TestSecurityUnkeyedHeaders(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	poison := []string{
		"Host", "evil.example",
		"X-Forwarded-Host", "evil.example",
		"X-Forwarded-Proto", "javascript",
		"X-Forwarded-Scheme", "nothttps",
		"X-Original-URL", "/admin",
		"X-Rewrite-URL", "/admin",
		"X-Forwarded-Prefix", "/evil",
	}
	reflectVary := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Host, X-Forwarded-Host, X-Forwarded-Proto, X-Original-URL")
		fmt.Fprintf(w, `<a href="%s://%s%s/x">`, r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host")+r.Host,
			r.Header.Get("X-Original-URL"))
	}
	mux, runs := localMux(t, c,
		miniRoute{pattern: "GET /links", rt: &hoard.Route{KeyPrefix: "links"}, h: reflectVary},
		miniRoute{pattern: "GET /plain/{id}", rt: &hoard.Route{KeyPrefix: "plain"}, h: echo("id")},
	)

	// The poisoning request first, then a victim without the headers.
	bad := serveLocal(t, mux, http.MethodGet, "/links", poison...)
	if !strings.Contains(bad.Body, "evil.example") {
		t.Fatalf("the reflecting handler did not reflect: %v", bad)
	}
	for i := range 2 {
		good := serveLocal(t, mux, http.MethodGet, "/links", "Host", "shop.example")
		if strings.Contains(good.Body, "evil") || strings.Contains(good.Body, "admin") || !strings.Contains(good.Body, "shop.example") {
			t.Fatalf("victim request %d received the poisoned answer: %v", i, good)
		}
	}
	wantRuns(t, "Vary'd reflecting handler", runs["GET /links"].Load(), 3)
	if storeHas(t, c, "links") {
		t.Error("a response with Vary was stored")
	}

	// A handler that ignores them: one entry, the handler's own answer.
	first := serveLocal(t, mux, http.MethodGet, "/plain/1", poison...)
	second := serveLocal(t, mux, http.MethodGet, "/plain/1")
	wantHit(t, "request without the unkeyed headers", second)
	if second.Body != first.Body || strings.Contains(second.Body, "evil") {
		t.Errorf("entry %q is not the handler's answer %q", second.Body, first.Body)
	}
	wantRuns(t, "header-blind handler", runs["GET /plain/{id}"].Load(), 1)
	if !storeHas(t, c, "plain:1") {
		t.Error("the header-blind answer was not stored under plain:1 (no header in the key)")
	}
}

// TestSecurityMethodOverride: a GET carrying X-HTTP-Method-Override (or
// X-HTTP-Method, X-Method-Override) is never answered from the cache nor
// stored, so an application that honours the header behind hoard cannot have
// a write answered by a cached read, nor the write's answer stored as the
// resource's GET. A POST asking to be a GET stays a write: never stored, and
// it invalidates.
func TestSecurityMethodOverride(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	var deleted atomic.Bool
	var seq atomic.Int64
	// The handler honours method overrides itself, as some frameworks do.
	h := func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		for _, k := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"} {
			if v := r.Header.Get(k); v != "" {
				method = v
			}
		}
		switch method {
		case http.MethodDelete:
			deleted.Store(true)
			fmt.Fprintf(w, "deleted seq=%d", seq.Add(1))
		default:
			fmt.Fprintf(w, "widget deleted=%v seq=%d", deleted.Load(), seq.Add(1))
		}
	}
	mux, runs := localMux(t, c,
		miniRoute{pattern: "GET /w/{id}", rt: &hoard.Route{KeyPrefix: "w"}, h: h},
		miniRoute{pattern: "POST /w/{id}", rt: &hoard.Route{KeyPrefix: "w"}, h: h},
	)
	get := func(header ...string) testResponse { return serveLocal(t, mux, http.MethodGet, "/w/1", header...) }

	stored := get()
	wantHit(t, "plain GET", get())
	for _, name := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"} {
		deleted.Store(false)
		before := runs["GET /w/{id}"].Load()
		r := get(name, "DELETE")
		if !strings.HasPrefix(r.Body, "deleted") || r.CacheStatus() != csBypass {
			t.Errorf("GET with %s: DELETE was answered by %v, want the handler's delete, bypassing the cache", name, r)
		}
		wantRuns(t, "GET with "+name, runs["GET /w/{id}"].Load(), before+1)
		if after := get(); strings.HasPrefix(after.Body, "deleted") {
			t.Errorf("after GET with %s: a plain GET received the write's answer %v", name, after)
		}
	}
	if r := get(); r.Body != stored.Body {
		t.Errorf("the stored GET changed: %q, want %q", r.Body, stored.Body)
	}

	// POST asking to be read as GET: a write, never stored, and it
	// invalidates the resource.
	for range 2 {
		if r := serveLocal(t, mux, http.MethodPost, "/w/1", "X-HTTP-Method-Override", "GET"); r.CacheStatus() != "" {
			t.Errorf("POST with override GET: Cache-Status %q, want none (a write)", r.CacheStatus())
		}
	}
	if r := get(); isHit(r) {
		t.Errorf("GET after POST with override GET was a hit: the POST did not invalidate: %v", r)
	}
}

// TestSecurityHeadAndWrites: HEAD is served from the GET entry but a HEAD
// miss stores nothing (an empty body can never become the GET's entry); no
// write method stores, and OPTIONS passes through.
func TestSecurityHeadAndWrites(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	var seq atomic.Int64
	h := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s body seq=%d", r.Method, seq.Add(1))
	}
	mux, _ := localMux(t, c,
		miniRoute{pattern: "/r/{id}", rt: &hoard.Route{KeyPrefix: "r"}, h: h},
	)
	// A HEAD miss runs the handler as a GET (as HTTP caches do) and stores
	// the GET's answer, so that the HEAD carries the GET's ETag and a later
	// GET gets the GET body, never a HEAD's.
	if r := serveLocal(t, mux, http.MethodHead, "/r/1"); r.CacheStatus() != csStored || r.Body != "" || r.Header.Get("Etag") == "" {
		t.Errorf("HEAD before any GET: %v; want a stored miss with an ETag and no body", r)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		serveLocal(t, mux, m, "/r/1")
	}
	if storeHas(t, c, "r:1") {
		t.Fatal("a write left an entry")
	}
	g := serveLocal(t, mux, http.MethodGet, "/r/1")
	if !strings.HasPrefix(g.Body, "GET body") || g.CacheStatus() != csStored {
		t.Fatalf("first GET: %v", g)
	}
	head := serveLocal(t, mux, http.MethodHead, "/r/1")
	wantHit(t, "HEAD after GET", head)
	if head.Body != "" || head.Header.Get("Content-Length") != strconv.Itoa(len(g.Body)) {
		t.Errorf("HEAD hit: body %q, Content-Length %q; want none and %d", head.Body, head.Header.Get("Content-Length"), len(g.Body))
	}
	if r := serveLocal(t, mux, http.MethodGet, "/r/1"); r.Body != g.Body {
		t.Errorf("GET after HEAD: %q, want %q", r.Body, g.Body)
	}
}

// TestSecurityQueryCanonicalization: only requests the handler cannot tell
// apart share an entry. Different names in another order, "+" and "%20",
// empty pairs: shared. One name's values in another order (Query().Get
// differs), a repeated pair, an encoded "&" or "=": never shared. A query
// that does not decode strictly bypasses.
func TestSecurityQueryCanonicalization(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	h := func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		fmt.Fprintf(w, "a=%q first=%q b=%q", q["a"], q.Get("a"), q["b"])
	}
	mux, _ := localMux(t, c, miniRoute{pattern: "GET /q", rt: &hoard.Route{KeyPrefix: "q"}, h: h})
	get := func(raw string) testResponse { return serveLocal(t, mux, http.MethodGet, "/q?"+raw) }

	distinct := []string{"a=2&a=1", "a=1&a=2", "a=1", "a=1&a=1", "a=1%26b%3D2", "a=1&b=2", "a=1%3Db", "a%3D1", "b=1&a=1&a=2", "a="}
	for _, raw := range distinct {
		if r := get(raw); r.CacheStatus() != csStored {
			t.Errorf("?%s: want its own stored entry, got %v", raw, r)
		}
	}
	for _, raw := range distinct {
		r := get(raw)
		if !isHit(r) {
			t.Errorf("?%s: want a hit, got %v", raw, r)
		}
		uq, _ := url.ParseQuery(raw)
		if wantBody := fmt.Sprintf("a=%q first=%q b=%q", uq["a"], uq.Get("a"), uq["b"]); r.Body != wantBody {
			t.Errorf("?%s was served %q, the answer of another query (want %q)", raw, r.Body, wantBody)
		}
	}
	same := [][2]string{{"b=2&a=1", "a=1&b=2"}, {"a=x+y", "a=x%20y"}, {"a=1&&b=2&", "b=2&a=1"}, {"%61=1", "a=1"}, {"b=0&a=2&a=1", "a=2&b=0&a=1"}}
	for _, p := range same {
		first := get(p[0])
		if r := get(p[1]); !isHit(r) || r.Body != first.Body {
			t.Errorf("?%s after ?%s: want a hit with the same answer, got %v (first %v)", p[1], p[0], r, first)
		}
	}
	for _, raw := range []string{"a=1;b=2", "a=%zz"} {
		if r := get(raw); r.CacheStatus() != csBypass {
			t.Errorf("?%s: a query that does not decode must bypass, got %v", raw, r)
		}
	}
}

// TestSecurityPathEncoding: path values are keyed exactly as the handler
// sees them (r.PathValue, decoded); case, an encoded "/", "%25" and spaces
// give different keys, and a non-canonical path is redirected by the mux
// before hoard runs.
func TestSecurityPathEncoding(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	mux, runs := localMux(t, c, miniRoute{pattern: "GET /files/{name}", rt: &hoard.Route{KeyPrefix: "file"}, h: echo("name")})
	paths := []string{"/files/a", "/files/A", "/files/a%2Fb", "/files/a%252Fb", "/files/a%20b", "/files/a+b", "/files/a%3Au=b", "/files/%2A"}
	bodies := map[string]string{}
	for _, p := range paths {
		r := serveLocal(t, mux, http.MethodGet, p)
		if r.CacheStatus() != csStored {
			t.Fatalf("%s: want its own stored entry, got %v", p, r)
		}
		bodies[p] = r.Body
	}
	for _, p := range paths {
		r := serveLocal(t, mux, http.MethodGet, p)
		if !isHit(r) || r.Body != bodies[p] {
			t.Errorf("%s: want a hit with its own answer %q, got %v", p, bodies[p], r)
		}
	}
	wantRuns(t, "distinct paths", runs["GET /files/{name}"].Load(), int64(len(paths)))
	// The same decoded value is the same resource.
	if r := serveLocal(t, mux, http.MethodGet, "/files/%61"); !isHit(r) || r.Body != bodies["/files/a"] {
		t.Errorf("/files/%%61 (= a): %v", r)
	}
	for _, p := range []string{"/files//a", "/files/./a", "/x/../files/a"} {
		if r := serveLocal(t, mux, http.MethodGet, p); r.Status/100 != 3 || r.CacheStatus() != "" {
			t.Errorf("%s: want the mux's redirect before hoard, got %v", p, r)
		}
	}
}

// TestSecurityUnkeyedPath: a GET pattern whose key omits part of the path
// would serve one resource's answer for another. Handle refuses it; under
// Middleware such requests bypass the cache.
func TestSecurityUnkeyedPath(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{Logger: discardLogger()}, nil)
	bad := []struct {
		pattern string
		rt      hoard.Route
		paths   []string
	}{
		{"GET /users/{username}/posts/{id}", hoard.Route{KeyPrefix: "post"}, []string{"/users/alice/posts/1", "/users/bob/posts/1"}},
		{"GET /orgs/{org}/repos/{repo}", hoard.Route{KeyPrefix: "repo", ResourceID: "repo"}, []string{"/orgs/a/repos/x", "/orgs/b/repos/x"}},
		{"GET /files/", hoard.Route{KeyPrefix: "files"}, []string{"/files/a", "/files/b"}},
		{"/", hoard.Route{KeyPrefix: "root"}, []string{"/a", "/b"}},
	}
	for _, tt := range bad {
		mux := http.NewServeMux()
		err := c.Handle(mux, tt.pattern, tt.rt, echo())
		if !errors.Is(err, hoard.ErrRouteConfig) {
			t.Errorf("Handle(%q, %+v): err = %v, want a route configuration error", tt.pattern, tt.rt, err)
		}
		mux, _ = localMux(t, c, miniRoute{pattern: tt.pattern, rt: &tt.rt, h: echo(), viaMiddleware: true})
		for _, p := range tt.paths {
			for range 2 {
				if r := serveLocal(t, mux, http.MethodGet, p); r.CacheStatus() != csBypass || !strings.Contains(r.Body, `"seq"`) {
					t.Errorf("Middleware on %q, GET %s: want a bypass, got %v", tt.pattern, p, r)
				}
			}
		}
	}
	// Keyed patterns are fine, including a subtree with ResourceID and a
	// write-only route that omits a wildcard.
	for _, ok := range []struct {
		pattern string
		rt      hoard.Route
	}{
		{"GET /users/{username}/posts/{id}", hoard.Route{KeyPrefix: "{username}_post", ResourceID: "id"}},
		{"GET /files/{path...}", hoard.Route{KeyPrefix: "file"}},
		{"GET /files/{$}", hoard.Route{KeyPrefix: "file_index"}},
		{"PUT /users/{username}/posts/{id}", hoard.Route{KeyPrefix: "post"}},
	} {
		if err := c.Handle(http.NewServeMux(), ok.pattern, ok.rt, echo()); err != nil {
			t.Errorf("Handle(%q, %+v): %v", ok.pattern, ok.rt, err)
		}
	}
}

// TestSecurityPerCaller: a per-caller route never serves one caller's body
// to another, whatever the caller id holds (separators, escapes, glob
// metacharacters), and a GET without a caller bypasses. Caller ids are
// escaped in the key, so "alice&u=bob" is not "alice" plus a second caller.
func TestSecurityPerCaller(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		var seq atomic.Int64
		h := func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "private to %q seq=%d", callerOf(r), seq.Add(1))
		}
		mux, runs := localMux(t, c,
			miniRoute{pattern: "GET /me/{id}", rt: &hoard.Route{KeyPrefix: "me", PerCaller: callerOf}, h: h})
		callers := []string{"alice", "bob", "alice&u=bob", "alice:u=bob", "alice%26u%3Dbob", "alice:q=x", "*", "%2A", "a*", "?",
			"[ab]", `\`, "a=b", "alice ", "al ice", "alice\t", "#g:me:1", "u=alice", "ALICE", "alice/../bob", "élise",
			strings.Repeat("x", 300)}
		bodies := map[string]string{}
		for _, caller := range callers {
			r := serveLocal(t, mux, http.MethodGet, "/me/1", callerHeader, caller)
			if r.CacheStatus() != csStored || !strings.Contains(r.Body, strconv.Quote(caller)) {
				t.Fatalf("caller %q: want its own stored answer, got %v", caller, r)
			}
			bodies[caller] = r.Body
		}
		for _, caller := range callers {
			r := serveLocal(t, mux, http.MethodGet, "/me/1", callerHeader, caller)
			if !isHit(r) || r.Body != bodies[caller] {
				t.Errorf("caller %q: want a hit with its own answer %q, got %v", caller, bodies[caller], r)
			}
		}
		wantRuns(t, "one run per caller", runs["GET /me/{id}"].Load(), int64(len(callers)))
		for range 2 {
			if r := serveLocal(t, mux, http.MethodGet, "/me/1"); r.CacheStatus() != csBypass || !strings.Contains(r.Body, `private to ""`) {
				t.Errorf("no caller: want a bypass with the handler's own answer, got %v", r)
			}
		}
		if storeHas(t, c, "me:1") {
			t.Error("a GET without a caller stored an entry")
		}
	})
}

// TestSecurityAuthorizationOnSharedRoute pins the behaviour documented on
// Route: hoard does not look at Authorization. A route without PerCaller is
// shared by the application's decision: an authenticated and an anonymous
// request read and store one entry. A handler that marks an answer
// "Cache-Control: private" keeps it out of the shared cache; PerCaller keys
// by caller.
func TestSecurityAuthorizationOnSharedRoute(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	var seq atomic.Int64
	public := func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "catalogue seq=%d", seq.Add(1))
	}
	// Adds private data for authenticated requests, and says so.
	careful := func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			w.Header().Set("Cache-Control", "private")
			fmt.Fprintf(w, "account of %s seq=%d", a, seq.Add(1))
			return
		}
		fmt.Fprintf(w, "anonymous seq=%d", seq.Add(1))
	}
	byToken := func(r *http.Request) string { return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") }
	mux, runs := localMux(t, c,
		miniRoute{pattern: "GET /catalogue", rt: &hoard.Route{KeyPrefix: "catalogue"}, h: public},
		miniRoute{pattern: "GET /careful", rt: &hoard.Route{KeyPrefix: "careful"}, h: careful},
		miniRoute{pattern: "GET /account", rt: &hoard.Route{KeyPrefix: "account", PerCaller: byToken}, h: careful},
	)

	// Shared route: one entry whoever asks.
	first := serveLocal(t, mux, http.MethodGet, "/catalogue", "Authorization", "Bearer alice")
	for _, hdr := range [][]string{{"Authorization", "Bearer bob"}, nil} {
		if r := serveLocal(t, mux, http.MethodGet, "/catalogue", hdr...); !isHit(r) || r.Body != first.Body {
			t.Errorf("shared route, %v: want a hit with the one shared answer %q, got %v", hdr, first.Body, r)
		}
	}
	wantRuns(t, "shared route", runs["GET /catalogue"].Load(), 1)

	// The handler keeps private answers out: never stored, never served to
	// another; an anonymous answer is stored and, as documented, also
	// answers authenticated requests once stored.
	for _, tok := range []string{"Bearer alice", "Bearer bob"} {
		r := serveLocal(t, mux, http.MethodGet, "/careful", "Authorization", tok)
		if !strings.HasPrefix(r.Body, "account of "+tok+" ") || isHit(r) {
			t.Errorf("private answer for %s: %v", tok, r)
		}
	}
	if storeHas(t, c, "careful") {
		t.Error("a Cache-Control: private answer was stored on a shared route")
	}
	anon := serveLocal(t, mux, http.MethodGet, "/careful")
	if r := serveLocal(t, mux, http.MethodGet, "/careful", "Authorization", "Bearer alice"); !isHit(r) || r.Body != anon.Body {
		t.Errorf("documented: a stored shared answer serves authenticated requests too; got %v", r)
	}

	// PerCaller: keyed by the caller; no caller bypasses.
	a := serveLocal(t, mux, http.MethodGet, "/account", "Authorization", "Bearer alice")
	b := serveLocal(t, mux, http.MethodGet, "/account", "Authorization", "Bearer bob")
	if a.Body == b.Body || !strings.Contains(a.Body, "alice") || !strings.Contains(b.Body, "bob") {
		t.Errorf("per-caller answers: %v / %v", a, b)
	}
	if r := serveLocal(t, mux, http.MethodGet, "/account"); r.CacheStatus() != csBypass {
		t.Errorf("per-caller route without a caller: %v", r)
	}
}

// TestSecurityNonCanonicalHeaderNames: a handler may write header fields
// under non-canonical names (w.Header()["set-cookie"]); net/http sends them
// as is, and clients read names case-insensitively, so they are checked as
// the canonical ones: never stored with a cookie, Vary, private or no-store.
func TestSecurityNonCanonicalHeaderNames(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	var routes []miniRoute
	fields := [][2]string{
		{"set-cookie", "session=alice-secret"},
		{"SET-COOKIE", "session=alice-secret"},
		{"cache-control", "private"},
		{"cache-control", "no-store"},
		{"content-encoding", "gzip"},
		{"vary", "Cookie"},
	}
	for i, f := range fields {
		routes = append(routes, miniRoute{pattern: "GET /h/" + strconv.Itoa(i), rt: &hoard.Route{KeyPrefix: "h" + strconv.Itoa(i)},
			h: func(w http.ResponseWriter, r *http.Request) {
				w.Header()[f[0]] = []string{f[1]}
				io.WriteString(w, "answer for "+r.Header.Get(callerHeader))
			}})
	}
	mux, _ := localMux(t, c, routes...)
	for i, f := range fields {
		path := "/h/" + strconv.Itoa(i)
		serveLocal(t, mux, http.MethodGet, path, callerHeader, "alice")
		r := serveLocal(t, mux, http.MethodGet, path, callerHeader, "bob")
		if isHit(r) || r.Body != "answer for bob" {
			t.Errorf("%s: %s: the first answer was stored and served to another client: %v", f[0], f[1], r)
		}
		if storeHas(t, c, "h"+strconv.Itoa(i)) {
			t.Errorf("%s: %s: stored", f[0], f[1])
		}
	}
}

// TestSecurityRangeAndConditional: a partial (206) or Not Modified (304)
// answer that the handler gives to one client's Range or If-None-Match is
// never stored, so no other client receives a fragment or an empty 304
// in place of the whole resource.
func TestSecurityRangeAndConditional(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	content := strings.Repeat("0123456789", 20)
	h := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Etag", `"v1"`)
		http.ServeContent(w, r, "doc.txt", time.Time{}, strings.NewReader(content))
	}
	mux, runs := localMux(t, c, miniRoute{pattern: "GET /doc/{id}", rt: &hoard.Route{KeyPrefix: "rdoc"}, h: h})

	part := serveLocal(t, mux, http.MethodGet, "/doc/1", "Range", "bytes=0-9")
	if part.Status != http.StatusPartialContent || part.Body != content[:10] {
		t.Fatalf("Range request: %v", part)
	}
	nm := serveLocal(t, mux, http.MethodGet, "/doc/1", "If-None-Match", `"v1"`)
	if nm.Status != http.StatusNotModified {
		t.Fatalf("conditional request on a miss: %v", nm)
	}
	if storeHas(t, c, "rdoc:1") {
		t.Fatal("a 206 or 304 answer was stored")
	}
	full := serveLocal(t, mux, http.MethodGet, "/doc/1")
	if full.Status != http.StatusOK || full.Body != content || full.CacheStatus() != csStored {
		t.Fatalf("plain GET after them: %v", full)
	}
	if r := serveLocal(t, mux, http.MethodGet, "/doc/1"); !isHit(r) || r.Body != content {
		t.Errorf("plain GET: want a hit with the whole resource, got %v", r)
	}
	// A hit ignores Range (allowed by RFC 9110) and answers the whole body;
	// If-None-Match on a hit is a 304 without a body.
	if r := serveLocal(t, mux, http.MethodGet, "/doc/1", "Range", "bytes=0-9"); r.Status != http.StatusOK || r.Body != content {
		t.Errorf("Range on a hit: %v", r)
	}
	if r := serveLocal(t, mux, http.MethodGet, "/doc/1", "If-None-Match", `"v1"`); r.Status != http.StatusNotModified || r.Body != "" {
		t.Errorf("If-None-Match on a hit: %v", r)
	}
	wantRuns(t, "Range and conditional", runs["GET /doc/{id}"].Load(), 3)
}
