package hoard_test

// Stored-entry corruption and key fuzzing at the route level: bytes in the store that are not a current entry are a miss and
// are overwritten, never served; two requests share an entry only when the
// handler cannot tell them apart.

import (
	"bytes"
	"context"
	"fmt"
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
)

// corruptions derive bad values from a valid stored entry v.
var corruptions = []struct {
	name string
	bad  func(v []byte) []byte
}{
	{"empty", func([]byte) []byte { return []byte{} }},
	{"text", func([]byte) []byte { return []byte("not a hoard entry") }},
	{"foreign JSON", func([]byte) []byte { return []byte(`{"id":1,"name":"forged"}`) }},
	{"cut inside the body", func(v []byte) []byte { return bytes.Clone(v[:len(v)-6]) }},
	{"cut inside the head", func(v []byte) []byte { return bytes.Clone(v[:10]) }},
	{"last byte lost", func(v []byte) []byte { return bytes.Clone(v[:len(v)-1]) }},
	{"byte appended", func(v []byte) []byte { return append(bytes.Clone(v), 'x') }},
	{"bit flipped in the body", func(v []byte) []byte {
		c := bytes.Clone(v)
		c[len(c)-8] ^= 0x20
		return c
	}},
	{"bit flipped in the status", func(v []byte) []byte {
		c := bytes.Clone(v)
		i := bytes.Index(c, []byte("Content-Type")) - 3 // in the head, before the headers
		c[i] ^= 1
		return c
	}},
	{"other version", func(v []byte) []byte { c := bytes.Clone(v); c[1]++; return c }},
	{"other kind", func(v []byte) []byte { c := bytes.Clone(v); c[2] = 1; return c }},
}

// corruptRoute is a GET route whose every answer differs (a sequence
// number), with a body long enough to be cut inside.
func corruptRoute() (miniRoute, *atomic.Int64) {
	var seq atomic.Int64
	return miniRoute{pattern: "GET /doc/{id}", rt: &hoard.Route{KeyPrefix: "doc"}, h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "document %s, answer number %d, end of document", r.PathValue("id"), seq.Add(1))
	}}, &seq
}

// TestRouteCorruptEntryIsOverwritten: garbage or truncated bytes written
// straight into the store under an entry's key are a miss: a HEAD runs the
// handler (as a GET) and stores a valid entry over the garbage, which the
// next GETs hit.
func TestRouteCorruptEntryIsOverwritten(t *testing.T) {
	routeStores(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{KeyPrefix: "corrupt|"})
		mr, _ := corruptRoute()
		mux, runs := localMux(t, c, mr)
		ctx := context.Background()
		for i, tc := range corruptions {
			path := "/doc/" + strconv.Itoa(i)
			key := storeKey(c, "doc:"+strconv.Itoa(i))
			first := serveLocal(t, mux, http.MethodGet, path)
			if first.CacheStatus() != csStored {
				t.Fatalf("%s: first GET: %v", tc.name, first)
			}
			v, ok, err := c.Store().Get(ctx, key)
			if err != nil || !ok {
				t.Fatalf("%s: the entry is not in the store under %q: %v %v", tc.name, key, ok, err)
			}
			bad := tc.bad(v)
			if err := c.Store().Set(ctx, key, bad, time.Minute); err != nil {
				t.Fatalf("%s: writing garbage: %v", tc.name, err)
			}
			before := runs[mr.pattern].Load()
			// The HEAD misses, runs the handler as a GET and stores its
			// answer over the garbage; the GET then hits it.
			if r := serveLocal(t, mux, http.MethodHead, path); r.CacheStatus() != csStored || r.Body != "" {
				t.Errorf("%s: HEAD over a corrupt entry: want a stored miss without body, got %v", tc.name, r)
			}
			fresh := serveLocal(t, mux, http.MethodGet, path)
			if !isHit(fresh) || fresh.Body == first.Body || !strings.HasSuffix(fresh.Body, "end of document") {
				t.Errorf("%s: GET after the HEAD over a corrupt entry: want the fresh answer the HEAD stored; got %v (first %q)", tc.name, fresh, first.Body)
			}
			wantRuns(t, tc.name, runs[mr.pattern].Load(), before+1)
			now, ok, err := c.Store().Get(ctx, key)
			if err != nil || !ok || bytes.Equal(now, bad) {
				t.Errorf("%s: the corrupt value was not overwritten (found %v, err %v)", tc.name, ok, err)
			}
			if r := serveLocal(t, mux, http.MethodGet, path); !isHit(r) || r.Body != fresh.Body {
				t.Errorf("%s: after the overwrite: want a hit with %q, got %v", tc.name, fresh.Body, r)
			}
		}
	})
}

// FuzzRouteStoredGarbage: whatever bytes sit in the store under an entry's
// key, a GET serves either the entry that was stored (the bytes are exactly
// it) or a fresh answer from the handler, which then replaces them. The
// bytes are the fuzzer's own (mode 0), or the valid entry cut at cut (1),
// with byte cut xored with the input's first byte (2), or cut and followed
// by the input (3).
func FuzzRouteStoredGarbage(f *testing.F) {
	f.Add([]byte("garbage"), uint8(0), uint16(0))
	f.Add([]byte{}, uint8(1), uint16(40))
	f.Add([]byte{1}, uint8(2), uint16(65535))
	f.Add([]byte("h\x02\x02"), uint8(3), uint16(3))
	f.Add([]byte("more body"), uint8(3), uint16(65535))
	c := newMemoryCache(f, hoard.Config{}, nil)
	mr, _ := corruptRoute()
	mux, _ := localMux(f, c, mr)
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, in []byte, mode uint8, cut uint16) {
		id := strconv.FormatInt(n.Add(1), 10)
		path, key := "/doc/"+id, "doc:"+id
		ctx := context.Background()
		first := serveLocal(t, mux, http.MethodGet, path)
		v, ok, err := c.Store().Get(ctx, key)
		if first.CacheStatus() != csStored || err != nil || !ok {
			t.Fatalf("first GET: %v; entry found %v, %v", first, ok, err)
		}
		var bad []byte
		switch at := int(cut) % (len(v) + 1); mode % 4 {
		case 0:
			bad = in
		case 1:
			bad = bytes.Clone(v[:at])
		case 2:
			bad = bytes.Clone(v)
			if len(in) > 0 && at < len(v) {
				bad[at] ^= in[0]
			}
		case 3:
			bad = append(bytes.Clone(v[:at]), in...)
		}
		if err := c.Store().Set(ctx, key, bad, time.Minute); err != nil {
			t.Fatal(err)
		}
		r := serveLocal(t, mux, http.MethodGet, path)
		if bytes.Equal(bad, v) {
			if !isHit(r) || r.Body != first.Body {
				t.Fatalf("the intact entry: want a hit with %q, got %v", first.Body, r)
			}
			return
		}
		if r.CacheStatus() != csStored || r.Body == first.Body || !strings.HasSuffix(r.Body, "end of document") {
			t.Fatalf("corrupt value %q (entry %q): want a fresh stored answer, got %v", bad, v, r)
		}
		if again := serveLocal(t, mux, http.MethodGet, path); !isHit(again) || again.Body != r.Body {
			t.Fatalf("after the overwrite: want a hit with %q, got %v", r.Body, again)
		}
	})
}

// identity is what a handler can see of a request: its path value, its
// decoded query (url.Values keeps one name's values in order) and its
// caller.
// On a route under /p/, whose key fills {page} with Defaults' "1" when the
// query has none, an absent page reads as page=1, as such a handler would.
func identity(r *http.Request) string {
	q := r.URL.Query()
	if strings.HasPrefix(r.URL.Path, "/p/") && len(q["page"]) == 0 {
		q["page"] = []string{"1"}
	}
	return fmt.Sprintf("id=%q query=%v caller=%q", r.PathValue("id"), q, callerOf(r))
}

// FuzzRouteKey: two requests share a cached answer only when the handler
// cannot tell them apart. Every answer a cached per-caller route gives must
// name the identity of the request it answers, as the bare handler would;
// entries from earlier inputs stay in the cache, so each request is checked
// against every earlier one. Caller ids and path values hold separators,
// escapes and glob metacharacters; a GET without a caller bypasses. Every
// key the route sends to the store is inside the cache's namespace
// (CACHE_KEY_PREFIX), and only hoard's own keys (generations, the epoch,
// leases) start with "#".
// Each request goes to two routes: /n/{id}, whose key holds the whole
// query, and /p/{id}, whose KeyPrefix consumes the query parameter "page"
// (one value in the key), so that a repeated placeholder parameter or a
// query parameter named like the path's ("?id=") must bypass; keys longer
// than MaxKeyBytes (200 here) must bypass too.
func FuzzRouteKey(f *testing.F) {
	f.Add("1", "a=1&a=2", "alice", "1", "a=2&a=1", "alice")
	f.Add("1", "", "alice&u=bob", "1", "", "alice")
	f.Add("1", "u=bob", "alice", "1", "", "alice:u=bob")
	f.Add("*", "", "alice", "%2A", "", "alice")
	f.Add("a:q=b", "", "x", "a", "q=b", "x")
	f.Add("1", "a=1%26b%3D2", "c", "1", "a=1&b=2", "c")
	f.Add("1", "a=x+y", "c", "1", "a=x%20y", "c")
	f.Add("1", "a=1;b=2", "c", "1", "a=1", "c")
	f.Add("1", "", "", "1", "", "*")
	f.Add("A", "b=1&a=1", "%", "a", "a=1&b=1", "%25")
	f.Add("2", "page=2", "c", "2", "page=2&page=1", "c")
	f.Add("2", "", "c", "2", "id=7", "c")
	f.Add("2", "page=1", "c", "2", "", "c")
	f.Add(strings.Repeat("x", 190), "", "c", strings.Repeat("x", 190), "a=1", "c")
	// Every key that reaches the store outside namespace ns, or posing as
	// one of hoard's own, is recorded in bad.
	const ns = "fz|"
	var bad atomic.Pointer[string]
	c, s := newFaultCache(f, hoard.Config{KeyPrefix: ns, MaxKeyBytes: 200, Logger: discardLogger()})
	s.Inject(faultstore.Fault{Observe: func(_ faultstore.Method, keys []string) {
		for _, k := range keys {
			if !strings.HasPrefix(k, ns) || strings.HasPrefix(k, ns+"#") && !hoardOwnKey(strings.TrimPrefix(k, ns)) {
				bad.Store(&k)
			}
		}
	}})
	var seq atomic.Int64
	h := func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s seq=%d", identity(r), seq.Add(1))
	}
	routes := []miniRoute{
		{pattern: "GET /n/{id}", rt: &hoard.Route{KeyPrefix: "n", PerCaller: callerOf}, h: h},
		{pattern: "GET /p/{id}", rt: &hoard.Route{KeyPrefix: "p:page_{page}", Defaults: map[string]string{"page": "1"}, PerCaller: callerOf}, h: h},
	}
	cached, _ := localMux(f, c, routes...)
	bare := http.NewServeMux()
	for _, r := range routes {
		bare.HandleFunc(r.pattern, h)
	}
	f.Fuzz(func(t *testing.T, id1, q1, c1, id2, q2, c2 string) {
		for _, req := range [][2]string{{id1, q1}, {id2, q2}, {id1, q1}} {
			for _, caller := range []string{c1, c2, c1 + "@p"} {
				// The caller picks the route, so that both see every input.
				base, caller := "/n/", caller
				if c, ok := strings.CutSuffix(caller, "@p"); ok {
					base, caller = "/p/", c
				}
				target := base + url.PathEscape(req[0])
				if req[1] != "" {
					target += "?" + req[1]
				}
				r1, err := http.NewRequest(http.MethodGet, target, nil)
				if err != nil || strings.ContainsAny(caller, "\r\n") {
					continue
				}
				r1.Header.Set(callerHeader, caller)
				r2 := r1.Clone(context.Background())
				got, want := httptest.NewRecorder(), httptest.NewRecorder()
				cached.ServeHTTP(got, r1)
				bare.ServeHTTP(want, r2)
				if got.Code != want.Code {
					t.Fatalf("GET %s as %q: status %d, the bare handler says %d", target, caller, got.Code, want.Code)
				}
				if got.Code != http.StatusOK {
					continue
				}
				gotID, _, _ := strings.Cut(got.Body.String(), " seq=")
				wantID, _, _ := strings.Cut(want.Body.String(), " seq=")
				if gotID != wantID {
					t.Fatalf("GET %s as %q (%s) was answered for another request: %q, want %q",
						target, caller, got.Header().Get("Cache-Status"), gotID, wantID)
				}
				if caller == "" && got.Header().Get("Cache-Status") != csBypass {
					t.Fatalf("GET %s without a caller: %q, want a bypass", target, got.Header().Get("Cache-Status"))
				}
				if k := bad.Load(); k != nil {
					t.Fatalf("GET %s as %q: key %q reached the store, outside namespace %q or posing as hoard's own", target, caller, *k, ns)
				}
			}
		}
	})
}

// hoardOwnKey reports whether k, a store key without its namespace, has
// the shape of one of hoard's own: a generation, the epoch, a
// revalidation lease, or a miss lease (#m:, 1 to 16 hex digits, ':').
func hoardOwnKey(k string) bool {
	switch {
	case k == "#epoch", strings.HasPrefix(k, "#g:"), strings.HasPrefix(k, "#l:"):
		return true
	}
	rest, ok := strings.CutPrefix(k, "#m:")
	if !ok {
		return false
	}
	hash, _, ok := strings.Cut(rest, ":")
	return ok && len(hash) >= 1 && len(hash) <= 16 && strings.Trim(hash, "0123456789abcdef") == ""
}
