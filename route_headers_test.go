package hoard_test

// Response headers, what is (not) stored, and ClientCache.

import (
	"bufio"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/faultstore"
	"github.com/hoardcache/hoard/internal/storefixture"
)

const (
	csStored = "hoard; fwd=miss; stored"
	csMiss   = "hoard; fwd=miss"
	csBypass = "hoard; fwd=bypass"
)

func isHit(r testResponse) bool { return strings.HasPrefix(r.CacheStatus(), hitPrefix) }

func TestRouteHopByHopAndSetCookie(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		const hop, cookie = "GET /hop", "GET /cookie"
		s := newMiniServer(t, c,
			miniRoute{pattern: hop, rt: &hoard.Route{KeyPrefix: "hop"}, h: func(w http.ResponseWriter, r *http.Request) {
				h := w.Header()
				h.Set("Connection", "X-Hop")
				h.Set("X-Hop", "per connection")
				h.Set("Keep-Alive", "timeout=5")
				h.Set("Proxy-Authenticate", `Basic realm="x"`)
				h.Set("X-Keep", "end to end")
				h.Set("Content-Type", "text/plain")
				io.WriteString(w, "hop")
			}},
			miniRoute{pattern: cookie, rt: &hoard.Route{KeyPrefix: "cookie"}, h: func(w http.ResponseWriter, r *http.Request) {
				http.SetCookie(w, &http.Cookie{Name: "session", Value: "secret"})
				io.WriteString(w, "cookie")
			}},
		)
		miss := s.Get(t, "/hop")
		hit := s.Get(t, "/hop")
		if miss.CacheStatus() != csStored {
			t.Fatalf("miss: %v", miss)
		}
		wantHit(t, "/hop", hit)
		if hit.Header.Get("X-Keep") != "end to end" || hit.Header.Get("Content-Type") != "text/plain" {
			t.Errorf("end-to-end headers not replayed: %v", hit.Header)
		}
		for _, name := range []string{"X-Hop", "Keep-Alive", "Proxy-Authenticate"} {
			if v, ok := hit.Header[name]; ok {
				t.Errorf("hop-by-hop header %s replayed on a hit: %q", name, v)
			}
		}
		if d := hit.Header.Values("Date"); len(d) != 1 {
			t.Errorf("hit carries %d Date headers %q, want the server's own one", len(d), d)
		}

		for i := range 2 {
			r := s.Get(t, "/cookie")
			if r.CacheStatus() != csMiss || !strings.Contains(r.Header.Get("Set-Cookie"), "session=secret") {
				t.Errorf("Set-Cookie response %d: want the handler's own, not stored, got %v %q", i, r, r.Header.Get("Set-Cookie"))
			}
		}
		wantRuns(t, "Set-Cookie route", s.Runs(cookie), 2)
		if storeHas(t, c, "cookie") {
			t.Error("a response with Set-Cookie was stored")
		}
	})
}

func TestRouteCacheControlFromHandler(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		tests := []struct {
			cc        string
			perCaller bool
			stored    bool
		}{
			{"private", false, false},
			{"private, max-age=60", false, false},
			{`private="Set-Cookie"`, false, false},
			{"private", true, true},
			{"no-store", false, false},
			{"no-store", true, false},
			{"public, NO-STORE", false, false},
			{"public, max-age=60", false, true},
			{"no-cache", false, true},
		}
		var routes []miniRoute
		for i, tt := range tests {
			rt := &hoard.Route{KeyPrefix: "cc" + strconv.Itoa(i)}
			if tt.perCaller {
				rt.PerCaller = callerOf
			}
			cc := tt.cc
			routes = append(routes, miniRoute{pattern: "GET /cc/" + strconv.Itoa(i), rt: rt,
				h: func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Cache-Control", cc)
					io.WriteString(w, "body")
				}})
		}
		s := newMiniServer(t, c, routes...)
		for i, tt := range tests {
			path := "/cc/" + strconv.Itoa(i)
			s.Get(t, path, callerHeader, "alice")
			r := s.Get(t, path, callerHeader, "alice")
			if isHit(r) != tt.stored || r.Header.Get("Cache-Control") != tt.cc {
				t.Errorf("Cache-Control %q (per caller %v): stored %v, want %v; %v (Cache-Control %q)",
					tt.cc, tt.perCaller, isHit(r), tt.stored, r, r.Header.Get("Cache-Control"))
			}
		}
	})
}

func TestRouteStreamedResponsePassesThrough(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		release := make(chan struct{})
		var releaseOnce sync.Once
		t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
		const get = "GET /stream"
		s := newMiniServer(t, c, miniRoute{pattern: get, rt: &hoard.Route{KeyPrefix: "stream"},
			h: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "first\n")
				if err := http.NewResponseController(w).Flush(); err != nil {
					t.Errorf("Flush through the middleware: %v", err)
				}
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "second\n")
			}})

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/stream", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET /stream before the handler finished: %v", err)
		}
		defer res.Body.Close()
		if cs := res.Header.Get("Cache-Status"); cs != csMiss {
			t.Errorf("streamed response Cache-Status %q, want %q", cs, csMiss)
		}
		br := bufio.NewReader(res.Body)
		if line, err := br.ReadString('\n'); line != "first\n" || err != nil {
			t.Fatalf("first chunk before the handler finished: %q, %v", line, err)
		}
		releaseOnce.Do(func() { close(release) })
		if rest, err := io.ReadAll(br); string(rest) != "second\n" || err != nil {
			t.Errorf("rest of the stream: %q, %v", rest, err)
		}

		if r := s.Get(t, "/stream"); r.Body != "first\nsecond\n" || isHit(r) {
			t.Errorf("second GET of a streamed route: want the handler's answer, uncached; got %v", r)
		}
		wantRuns(t, "streamed route", s.Runs(get), 2)
		if storeHas(t, c, "stream") {
			t.Error("a flushed response was stored")
		}
	})
}

func TestRouteMaxBodyBytes(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		const get = "GET /body/{n}"
		s := newMiniServer(t, c, miniRoute{pattern: get, rt: &hoard.Route{KeyPrefix: "body", MaxBodyBytes: 64},
			h: func(w http.ResponseWriter, r *http.Request) {
				n, _ := strconv.Atoi(r.PathValue("n"))
				body := strings.Repeat("x", n)
				w.Header().Set("Content-Type", "text/plain")
				for len(body) > 0 { // several writes, crossing the limit mid-way
					k := min(len(body), 25)
					io.WriteString(w, body[:k])
					body = body[k:]
				}
			}})
		for _, tt := range []struct {
			n      int
			stored bool
		}{{64, true}, {65, false}, {200, false}} {
			path := "/body/" + strconv.Itoa(tt.n)
			first := s.Get(t, path)
			second := s.Get(t, path)
			for _, r := range []testResponse{first, second} {
				if r.Status != http.StatusOK || len(r.Body) != tt.n || r.Header.Get("Content-Type") != "text/plain" {
					t.Errorf("GET %s: want the whole %d-byte body, got %d bytes, %v", path, tt.n, len(r.Body), r.Header)
				}
			}
			if isHit(second) != tt.stored {
				t.Errorf("GET %s with MaxBodyBytes 64: stored %v, want %v (%v)", path, isHit(second), tt.stored, second.CacheStatus())
			}
			if !tt.stored && first.CacheStatus() != csMiss {
				t.Errorf("GET %s over the limit: Cache-Status %q, want %q", path, first.CacheStatus(), csMiss)
			}
		}
	})
}

func TestRouteHeadServedFromGetEntry(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		app := newWidgetApp(t, c, nil)
		const path = "/widgets/1"

		// HEAD first: runs the handler as a GET and stores its answer, so
		// that even the first HEAD carries the ETag (regression, hostile
		// traffic: a HEAD miss had none).
		h1 := app.Do(t, http.MethodHead, path)
		if h1.Status != http.StatusOK || h1.Body != "" || h1.CacheStatus() != csStored || !hashETag.MatchString(h1.Header.Get("Etag")) {
			t.Errorf("HEAD on a miss: %v; want a stored, bodiless 200 with an ETag", h1)
		}
		g := app.Get(t, path)
		if !isHit(g) || g.Header.Get("Etag") != h1.Header.Get("Etag") || g.Body == "" {
			t.Errorf("GET after a HEAD miss: want a hit with the HEAD's ETag and the body, got %v", g)
		}
		h2 := app.Do(t, http.MethodHead, path)
		if !isHit(h2) || h2.Status != http.StatusOK || h2.Body != "" {
			t.Errorf("HEAD after GET: want a bodiless hit, got %v", h2)
		}
		if cl := h2.Header.Get("Content-Length"); cl != strconv.Itoa(len(g.Body)) {
			t.Errorf("HEAD hit Content-Length %q, want the GET body's %d", cl, len(g.Body))
		}
		if h2.Header.Get("Content-Type") != g.Header.Get("Content-Type") || h2.Header.Get("Etag") != g.Header.Get("Etag") {
			t.Errorf("HEAD hit headers differ from GET: %v vs %v", h2.Header, g.Header)
		}
		wantRuns(t, "GET widget (HEAD, GET, HEAD)", app.Runs(widgetGet), 1)

		// A handler that leaves Content-Type to net/http's sniffing: the
		// HEAD hit, which writes no body to sniff, must still carry it.
		s := newMiniServer(t, c, miniRoute{pattern: "GET /sniffed", rt: &hoard.Route{KeyPrefix: "sniffed"},
			h: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<!DOCTYPE html><p>hi</p>") }})
		sg := s.Get(t, "/sniffed")
		sh := s.Do(t, http.MethodHead, "/sniffed")
		if ct := sg.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" || sh.Header.Get("Content-Type") != ct || !isHit(sh) {
			t.Errorf("sniffed Content-Type: GET %q, HEAD hit %q (%v)", ct, sh.Header.Get("Content-Type"), sh)
		}
	})
}

var hashETag = regexp.MustCompile(`^"[0-9a-f]{32}"$`)

func TestRouteETagAndNotModified(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		const get, own = "GET /doc/{id}", "GET /own/{id}"
		rt := &hoard.Route{KeyPrefix: "doc"}
		s := newMiniServer(t, c,
			miniRoute{pattern: get, rt: rt, h: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "document "+r.PathValue("id"))
			}},
			miniRoute{pattern: "PUT /doc/{id}", rt: rt, h: func(w http.ResponseWriter, r *http.Request) {}},
			miniRoute{pattern: own, rt: &hoard.Route{KeyPrefix: "own"}, h: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("ETag", `"v7"`)
				io.WriteString(w, "own")
			}},
		)
		miss := s.Get(t, "/doc/1")
		etag := miss.Header.Get("Etag")
		if !hashETag.MatchString(etag) {
			t.Fatalf("ETag of a handler without one: %q, want a strong hash", etag)
		}
		if other := s.Get(t, "/doc/2").Header.Get("Etag"); other == etag || !hashETag.MatchString(other) {
			t.Errorf("different bodies, ETags %q and %q", etag, other)
		}
		hit := s.Get(t, "/doc/1")
		wantHit(t, "doc 1", hit)
		if hit.Header.Get("Etag") != etag {
			t.Errorf("hit ETag %q, miss ETag %q", hit.Header.Get("Etag"), etag)
		}

		for _, inm := range []string{etag, "W/" + etag, `"zzz", ` + etag, "*"} {
			r := s.Get(t, "/doc/1", "If-None-Match", inm)
			if r.Status != http.StatusNotModified || r.Body != "" || !isHit(r) || r.Header.Get("Etag") != etag {
				t.Errorf("hit with If-None-Match %s: want 304 with the ETag, got %v %v", inm, r, r.Header)
			}
		}
		if r := s.Get(t, "/doc/1", "If-None-Match", `"zzz"`); r.Status != http.StatusOK || r.Body != "document 1" {
			t.Errorf("hit with a non-matching If-None-Match: %v", r)
		}

		// On a miss too: the response is stored, the client gets 304.
		s.Do(t, http.MethodPut, "/doc/1")
		r := s.Get(t, "/doc/1", "If-None-Match", etag)
		if r.Status != http.StatusNotModified || r.Body != "" || r.CacheStatus() != csStored {
			t.Errorf("miss with a matching If-None-Match: want a stored 304, got %v", r)
		}
		wantHit(t, "doc 1 after the 304 miss", s.Get(t, "/doc/1"))
		wantRuns(t, "docs", s.Runs(get), 3)

		// The handler's own ETag is kept, and answers 304 on miss and hit.
		for i := range 2 {
			r := s.Get(t, "/own/1", "If-None-Match", `"v7"`)
			if r.Status != http.StatusNotModified || r.Header.Get("Etag") != `"v7"` {
				t.Errorf("own ETag, request %d: want 304 with ETag \"v7\", got %v %v", i, r, r.Header)
			}
		}
		if r := s.Get(t, "/own/1"); r.Header.Get("Etag") != `"v7"` || r.Body != "own" || !isHit(r) {
			t.Errorf("own ETag on a hit: %v %v", r, r.Header)
		}
		wantRuns(t, "own ETag", s.Runs(own), 1)
	})
}

func TestRouteCacheStatusAndAge(t *testing.T) {
	for _, b := range storefixture.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel() // waits for Age to reach 1
			c := b.NewCache(t, hoard.Config{})
			const ttl = 30 * time.Second
			s := newMiniServer(t, c,
				miniRoute{pattern: "GET /s/{id}", rt: &hoard.Route{KeyPrefix: "s", TTL: ttl, QueryKeys: []string{"v"}}, h: echo("id")},
				miniRoute{pattern: "GET /p/{id}", rt: &hoard.Route{KeyPrefix: "p", PerCaller: callerOf}, h: echo("id")},
			)
			miss := s.Get(t, "/s/1")
			if miss.CacheStatus() != csStored || miss.Header.Get("Age") != "" {
				t.Errorf("miss: want Cache-Status %q and no Age, got %v Age %q", csStored, miss, miss.Header.Get("Age"))
			}
			for _, r := range []testResponse{s.Get(t, "/s/1?zz=1"), s.Get(t, "/p/1")} {
				if r.CacheStatus() != csBypass || r.Header.Get("Age") != "" {
					t.Errorf("bypass (query outside QueryKeys, or no caller): %v", r)
				}
			}
			hitRE := regexp.MustCompile(`^hoard; hit; ttl=(\d+)$`)
			deadline := time.Now().Add(5 * time.Second)
			for {
				r := s.Get(t, "/s/1")
				m := hitRE.FindStringSubmatch(r.CacheStatus())
				age, err := strconv.Atoi(r.Header.Get("Age"))
				if m == nil || err != nil || r.Body != miss.Body {
					t.Fatalf("hit: want Cache-Status %q and an Age, got %v Age %q", "hoard; hit; ttl=N", r, r.Header.Get("Age"))
				}
				left, _ := strconv.Atoi(m[1])
				if left <= 0 || left > 30 || age < 0 || age > 30 || left+age < 29 || left+age > 31 {
					t.Errorf("hit with TTL 30s: ttl=%d, Age %d", left, age)
				}
				if age >= 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Age still %d after %v", age, 5*time.Second)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

func TestRoutePanicIsNotCached(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		var runs atomic.Int64
		inHandler := make(chan struct{})
		release := make(chan struct{})
		mux := http.NewServeMux()
		err := c.HandleFunc(mux, "GET /fragile/{id}", hoard.Route{KeyPrefix: "fragile"},
			func(w http.ResponseWriter, r *http.Request) {
				if runs.Add(1) == 1 {
					io.WriteString(w, "partial")
					close(inHandler)
					<-release
					panic("boom")
				}
				io.WriteString(w, "whole")
			})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewUnstartedServer(mux)
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the recovered panic
		srv.Start()
		t.Cleanup(srv.Close)
		url := srv.URL + "/fragile/1"

		leader := make(chan error, 1)
		go func() {
			res, err := http.Get(url)
			if err == nil {
				_, err = io.ReadAll(res.Body)
				res.Body.Close()
			}
			leader <- err
		}()
		<-inHandler
		// Requests that arrive now wait for the panicking leader's flight.
		const followers = 4
		results := make(chan testResponse, followers)
		for range followers {
			go func() {
				r, err := sendRequest(http.DefaultClient, http.MethodGet, url)
				if err != nil {
					t.Error(err) // not Fatal: this is not the test's goroutine
				}
				results <- r
			}()
		}
		time.Sleep(100 * time.Millisecond) // let them join the flight (if they are late, they simply miss)
		close(release)
		if err := <-leader; err == nil {
			t.Error("the client of the panicking handler got a complete response")
		}
		for range followers {
			r := <-results
			if r.Status != http.StatusOK || r.Body != "whole" {
				t.Errorf("a request that waited for the panicking handler: %v", r)
			}
		}
		r := doRequest(t, http.MethodGet, url)
		if r.Body != "whole" || r.Status != http.StatusOK {
			t.Errorf("after the panic: %v", r)
		}
		if n := runs.Load(); n < 2 {
			t.Errorf("handler ran %d times: nobody ran after the panic", n)
		}
	})
}

func TestRouteCacheableStatus(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		h := func(w http.ResponseWriter, r *http.Request) {
			code, _ := strconv.Atoi(r.PathValue("code"))
			w.WriteHeader(code)
			io.WriteString(w, "status "+r.PathValue("code"))
		}
		s := newMiniServer(t, c,
			miniRoute{pattern: "GET /default/{code}", rt: &hoard.Route{KeyPrefix: "default"}, h: h},
			miniRoute{pattern: "GET /custom/{code}", rt: &hoard.Route{KeyPrefix: "custom", CacheableStatus: []int{200, 404}}, h: h},
		)
		tests := []struct {
			path   string
			stored bool
		}{
			{"/default/200", true}, {"/default/201", false}, {"/default/404", false}, {"/default/500", false},
			{"/custom/200", true}, {"/custom/404", true}, {"/custom/410", false},
		}
		for _, tt := range tests {
			s.Get(t, tt.path)
			r := s.Get(t, tt.path)
			code := tt.path[strings.LastIndexByte(tt.path, '/')+1:]
			if strconv.Itoa(r.Status) != code || r.Body != "status "+code || isHit(r) != tt.stored {
				t.Errorf("GET %s twice: stored %v, want %v; %v", tt.path, isHit(r), tt.stored, r)
			}
			if !tt.stored && r.CacheStatus() != csMiss {
				t.Errorf("GET %s: Cache-Status %q, want %q", tt.path, r.CacheStatus(), csMiss)
			}
		}
	})
}

func TestRouteOtherMethodsPassThrough(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		store := faultstore.New(b.NewStore(t))
		c, err := hoard.New(store, hoard.Config{KeyPrefix: storefixture.UniquePrefix()})
		if err != nil {
			t.Fatal(err)
		}
		const pattern = "/res/{id}" // every method
		s := newMiniServer(t, c, miniRoute{pattern: pattern, rt: &hoard.Route{KeyPrefix: "res"},
			h: func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					io.WriteString(w, "resource")
					return
				}
				w.Header().Set("Allow", "GET, HEAD, PUT, OPTIONS")
				w.Header().Set("X-Method", r.Method)
				w.WriteHeader(http.StatusNoContent)
			}})
		s.Get(t, "/res/1")
		before := store.Calls()
		for _, m := range []string{http.MethodOptions, "PURGE", http.MethodOptions} {
			r := s.Do(t, m, "/res/1")
			if r.Status != http.StatusNoContent || r.Header.Get("X-Method") != m || r.Header.Get("Allow") == "" {
				t.Errorf("%s: want the handler's own 204, got %v %v", m, r, r.Header)
			}
			for _, h := range []string{"Cache-Status", "Etag", "Age"} {
				if v := r.Header.Get(h); v != "" {
					t.Errorf("%s answered with %s: %q", m, h, v)
				}
			}
		}
		if n := store.Calls() - before; n != 0 {
			t.Errorf("OPTIONS and PURGE made %d store calls, want 0", n)
		}
		wantHit(t, "GET after OPTIONS and PURGE", s.Get(t, "/res/1"))
		wantRuns(t, "handler", s.Runs(pattern), 4)
	})
}

func TestRouteClientMaxAge(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		s := newMiniServer(t, c,
			miniRoute{pattern: "GET /shared/{id}", rt: &hoard.Route{KeyPrefix: "shared", ClientMaxAge: 30 * time.Second}, h: echo("id")},
			miniRoute{pattern: "GET /mine/{id}", rt: &hoard.Route{KeyPrefix: "mine", ClientMaxAge: 90 * time.Second, PerCaller: callerOf}, h: echo("id")},
			miniRoute{pattern: "GET /own/{id}", rt: &hoard.Route{KeyPrefix: "own", ClientMaxAge: 30 * time.Second},
				h: func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Cache-Control", "public, max-age=5")
					io.WriteString(w, "own")
				}},
		)
		for _, tt := range []struct{ path, want string }{
			{"/shared/1", "public, max-age=30"},
			{"/mine/1", "private, max-age=90"},
			{"/own/1", "public, max-age=5"},
		} {
			miss := s.Get(t, tt.path, callerHeader, "alice")
			hit := s.Get(t, tt.path, callerHeader, "alice")
			wantHit(t, tt.path, hit)
			for _, r := range []testResponse{miss, hit} {
				if got := r.Header.Values("Cache-Control"); len(got) != 1 || got[0] != tt.want {
					t.Errorf("GET %s (%s): Cache-Control %q, want %q", tt.path, r.CacheStatus(), got, tt.want)
				}
			}
		}
	})
}

func TestRouteWithClientCacheMiddleware(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		outer := hoard.ClientCache(hoard.ClientCacheConfig{APIPrefix: "/"}) // every path is the API's
		app := &widgetApp{DB: newWidgetDB(1)}
		mux, runs := localMux(t, c, app.routes()...)
		srv := httptest.NewServer(outer(mux))
		t.Cleanup(srv.Close)
		for i := range 2 {
			r := doRequest(t, http.MethodGet, srv.URL+"/widgets/1")
			if got := r.Header.Values("Cache-Control"); len(got) != 1 || got[0] != hoard.CacheControlAPI {
				t.Errorf("API GET %d (%s): Cache-Control %q, want %q", i, r.CacheStatus(), got, hoard.CacheControlAPI)
			}
			if i == 1 {
				wantHit(t, "API GET under ClientCache", r)
			}
		}
		wantRuns(t, "GET widget under ClientCache", runs[widgetGet].Load(), 1)

		// The same Cache serves the entry without ClientCache: what was
		// stored is the handler's header, not ClientCache's.
		bare := newMiniServer(t, c, app.routes()...)
		if r := bare.Get(t, "/widgets/1"); !isHit(r) || r.Header.Get("Cache-Control") != "" {
			t.Errorf("entry stored under ClientCache, served without it: %v, Cache-Control %q", r, r.Header.Get("Cache-Control"))
		}

		// A route's ClientMaxAge wins over ClientCache's API default.
		mux = http.NewServeMux()
		if err := c.HandleFunc(mux, "GET /api/v1/catalog", hoard.Route{KeyPrefix: "catalog", ClientMaxAge: 45 * time.Second},
			func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "catalog") }); err != nil {
			t.Fatal(err)
		}
		srv = httptest.NewServer(outer(mux))
		t.Cleanup(srv.Close)
		for i := range 2 {
			r := doRequest(t, http.MethodGet, srv.URL+"/api/v1/catalog")
			if got := r.Header.Values("Cache-Control"); len(got) != 1 || got[0] != "public, max-age=45" {
				t.Errorf("ClientMaxAge under ClientCache, GET %d (%s): Cache-Control %q", i, r.CacheStatus(), got)
			}
		}
	})
}

// Headers that a middleware outside the route puts in the response before
// the route runs (CORS, request ids) are that middleware's, not the
// handler's: a hit must not replay a stale copy next to the fresh one.
func TestRouteOuterMiddlewareHeadersNotStored(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		mux := http.NewServeMux()
		err := c.HandleFunc(mux, "GET /r/{id}", hoard.Route{KeyPrefix: "r"}, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Vary-Not", "x") // the handler's own
			w.Header().Add("Link", "</handler>; rel=preload")
			io.WriteString(w, "r")
		})
		if err != nil {
			t.Fatal(err)
		}
		var seq atomic.Int64
		outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("X-Request-Id", strconv.FormatInt(seq.Add(1), 10))
			h.Add("Link", "</outer>; rel=preconnect")
			mux.ServeHTTP(w, r)
		})
		srv := httptest.NewServer(outer)
		t.Cleanup(srv.Close)
		for i := 1; i <= 3; i++ {
			r := doRequest(t, http.MethodGet, srv.URL+"/r/1")
			if i > 1 {
				wantHit(t, "GET /r/1", r)
			}
			want := map[string][]string{
				"Access-Control-Allow-Origin": {"*"},
				"X-Request-Id":                {strconv.Itoa(i)},
				"Link":                        {"</outer>; rel=preconnect", "</handler>; rel=preload"},
				"Vary-Not":                    {"x"},
			}
			for name, vs := range want {
				if got := r.Header.Values(name); strings.Join(got, "|") != strings.Join(vs, "|") {
					t.Errorf("request %d (%s): %s = %q, want %q", i, r.CacheStatus(), name, got, vs)
				}
			}
		}
	})
}
