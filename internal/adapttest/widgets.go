package adapttest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
)

// Backends are the stores every scenario runs on: the in-process store and
// a real redis-server.
var Backends = []string{storefixture.Memory, storefixture.Redis}

// The Routes of the application, each with the adapter's middleware:
//
//	GET, HEAD, PATCH /widgets/:id   WidgetRoute   GetWidget, HeadWidget (a 200 without body), PatchWidget (204)
//	GET /missing/:id                MissingRoute  Missing (404 "no such thing")
//	GET /search                     SearchRoute   Search(q)
//	GET /files/<catch-all>          FileRoute     File(the catch-all parameter)
//	GET /users/:user/posts/:id      PostRoute     Post(user, id)
//
// behind a logging middleware outside hoard that calls Log.
var (
	WidgetRoute  = hoard.Route{KeyPrefix: "widget", TTL: time.Minute}
	MissingRoute = hoard.Route{KeyPrefix: "missing"}
	SearchRoute  = hoard.Route{KeyPrefix: "search", QueryKeys: []string{"q"}}
	// FileRoute's id is the framework's catch-all parameter.
	FileRoute = hoard.Route{KeyPrefix: "file"}
	// PostRoute names its id; the user parameter is in no key, so its
	// GETs bypass the cache.
	PostRoute = hoard.Route{KeyPrefix: "post", ResourceID: "id"}
)

// Widgets is the application the scenarios run on, over a versioned widget
// table, with counts of handler runs and what the logging middleware saw.
// An adapter's test serves it on its framework (see the Routes above) and
// sets Client.URL.
type Widgets struct {
	Client

	mu      sync.Mutex
	version map[string]int
	runs    map[string]int // handler runs by route
	logged  []LogLine
}

// LogLine is what the logging middleware saw of a response.
type LogLine struct {
	Method, Path string
	Status, Size int
}

// NewWidgets returns an empty application.
func NewWidgets() *Widgets {
	return &Widgets{version: map[string]int{}, runs: map[string]int{}}
}

func (a *Widgets) run(route string) {
	a.mu.Lock()
	a.runs[route]++
	a.mu.Unlock()
}

// RunsOf is how many times the handler of route ran.
func (a *Widgets) RunsOf(route string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runs[route]
}

// GetWidget is the GET handler's JSON body (Content-Type
// application/json).
func (a *Widgets) GetWidget(id string) string {
	a.run("get widget")
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprintf(`{"id": %q, "version": %d}`, id, a.version[id])
}

// HeadWidget counts a run of the HEAD handler, a handler of its own on a
// framework: a HEAD hit does not run it, a HEAD miss runs it uncached.
func (a *Widgets) HeadWidget() { a.run("head widget") }

// PatchWidget writes widget id.
func (a *Widgets) PatchWidget(id string) {
	a.run("patch widget")
	a.mu.Lock()
	a.version[id]++
	a.mu.Unlock()
}

// Missing is run by the handler of a resource that does not exist.
func (a *Widgets) Missing() { a.run("missing") }

// Search is the search handler's body.
func (a *Widgets) Search(q string) string {
	a.run("search")
	return "results for " + q
}

// File is the body of the file at path (gin's catch-all value begins
// with "/", echo's does not).
func (a *Widgets) File(path string) string {
	a.run("file")
	return "file " + strings.TrimPrefix(path, "/")
}

// Post is the body of user's post id.
func (a *Widgets) Post(user, id string) string {
	a.run("post")
	return "post " + id + " by " + user
}

// Log records what the logging middleware saw.
func (a *Widgets) Log(method, path string, status, size int) {
	a.mu.Lock()
	a.logged = append(a.logged, LogLine{method, path, status, size})
	a.mu.Unlock()
}

// LastLog is the last line the logging middleware saw.
func (a *Widgets) LastLog(t *testing.T) LogLine {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.logged) == 0 {
		t.Fatal("the logging middleware saw no request")
	}
	return a.logged[len(a.logged)-1]
}

// scenarios are what RunScenarios runs.
var scenarios = []struct {
	name string
	run  func(*testing.T, *Widgets)
}{
	{"MissThenHit", missThenHit},
	{"ETag", etags},
	{"PatchInvalidates", patchInvalidates},
	{"IDsAreSeparateEntries", idsAreSeparateEntries},
	{"NotFoundIsNotStored", notFoundIsNotStored},
	{"QueryKey", queryKey},
	{"UnkeyedParameterBypasses", unkeyedParameterBypasses},
	{"ConcurrentMisses", concurrentMisses},
	{"HeadMissNotStored", headMissNotStored},
	{"CatchAllIsTheID", catchAllIsTheID},
}

// RunScenarios runs every scenario on every backend, each on a fresh
// application serve builds on a Cache of that backend.
func RunScenarios(t *testing.T, serve func(*testing.T, *hoard.Cache) *Widgets) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			for _, name := range Backends {
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, serve(t, storefixture.Shared(t, name).NewCache(t, hoard.Config{})))
				})
			}
		})
	}
}

// missThenHit: a GET is stored, the next one is a hit that does not run
// the handler, and the logging middleware outside sees the status and size
// that reached the client on both.
func missThenHit(t *testing.T, a *Widgets) {
	want := `{"id": "1", "version": 0}`
	first := a.Do(t, "GET", "/widgets/1")
	Expect(t, "first GET", first, 200, want, Stored)
	if got := first.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q, want the handler's", got)
	}
	if l := a.LastLog(t); l.Status != 200 || l.Size != len(want) {
		t.Errorf("the logging middleware saw %d, %d bytes on the miss; want 200, %d", l.Status, l.Size, len(want))
	}
	Expect(t, "second GET", a.Do(t, "GET", "/widgets/1"), 200, want, Hit)
	if n := a.RunsOf("get widget"); n != 1 {
		t.Errorf("the handler ran %d times, want 1 (the hit must not run it)", n)
	}
	if l := a.LastLog(t); l.Status != 200 || l.Size != len(want) {
		t.Errorf("the logging middleware saw %d, %d bytes on the hit; want 200, %d", l.Status, l.Size, len(want))
	}
	Expect(t, "HEAD", a.Do(t, "HEAD", "/widgets/1"), 200, "", Hit)
}

// etags: a stored answer's ETag comes with its hits, and If-None-Match of
// it is a 304 the logging middleware sees.
func etags(t *testing.T, a *Widgets) {
	first := a.Do(t, "GET", "/widgets/7")
	etag := first.Header.Get("ETag")
	if etag == "" {
		t.Fatalf("no ETag on a stored response; header %v", first.Header)
	}
	if got := a.Do(t, "GET", "/widgets/7").Header.Get("ETag"); got != etag {
		t.Errorf("hit ETag %q, want the stored %q", got, etag)
	}
	Expect(t, "If-None-Match", a.Do(t, "GET", "/widgets/7", "If-None-Match", etag), http.StatusNotModified, "", Hit)
	if l := a.LastLog(t); l.Status != http.StatusNotModified {
		t.Errorf("the logging middleware saw %d for the 304", l.Status)
	}
	Expect(t, "If-None-Match of another version", a.Do(t, "GET", "/widgets/7", "If-None-Match", `"other"`), 200, `{"id": "7", "version": 0}`, Hit)
	if n := a.RunsOf("get widget"); n != 1 {
		t.Errorf("the handler ran %d times, want 1", n)
	}
}

// patchInvalidates: a PATCH invalidates its widget, not another.
func patchInvalidates(t *testing.T, a *Widgets) {
	a.Do(t, "GET", "/widgets/1")
	Expect(t, "GET", a.Do(t, "GET", "/widgets/1"), 200, `{"id": "1", "version": 0}`, Hit)
	a.Do(t, "GET", "/widgets/2")
	if patch := a.Do(t, "PATCH", "/widgets/1"); patch.Status != http.StatusNoContent {
		t.Fatalf("PATCH: %d %q, want 204", patch.Status, patch.Body)
	}
	if l := a.LastLog(t); l.Method != "PATCH" || l.Status != http.StatusNoContent {
		t.Errorf("the logging middleware saw %+v for the PATCH", l)
	}
	Expect(t, "GET after PATCH", a.Do(t, "GET", "/widgets/1"), 200, `{"id": "1", "version": 1}`, Stored)
	Expect(t, "GET again", a.Do(t, "GET", "/widgets/1"), 200, `{"id": "1", "version": 1}`, Hit)
	Expect(t, "the other widget", a.Do(t, "GET", "/widgets/2"), 200, `{"id": "2", "version": 0}`, Hit)
}

// idsAreSeparateEntries: the path parameter is in the key.
func idsAreSeparateEntries(t *testing.T, a *Widgets) {
	Expect(t, "widget 1", a.Do(t, "GET", "/widgets/1"), 200, `{"id": "1", "version": 0}`, Stored)
	Expect(t, "widget 2", a.Do(t, "GET", "/widgets/2"), 200, `{"id": "2", "version": 0}`, Stored)
	Expect(t, "widget 1 again", a.Do(t, "GET", "/widgets/1"), 200, `{"id": "1", "version": 0}`, Hit)
	Expect(t, "widget 2 again", a.Do(t, "GET", "/widgets/2"), 200, `{"id": "2", "version": 0}`, Hit)
}

// notFoundIsNotStored: a 404 runs the handler every time.
func notFoundIsNotStored(t *testing.T, a *Widgets) {
	for i := range 2 {
		got := a.Do(t, "GET", "/missing/1")
		if got.Status != http.StatusNotFound || !strings.Contains(got.Body, "no such thing") || strings.HasPrefix(got.CacheStatus(), Hit) {
			t.Errorf("GET %d: %d %q [%s], want the handler's 404, not a hit", i, got.Status, got.Body, got.CacheStatus())
		}
	}
	if n := a.RunsOf("missing"); n != 2 {
		t.Errorf("the handler ran %d times, want 2", n)
	}
	if l := a.LastLog(t); l.Status != http.StatusNotFound {
		t.Errorf("the logging middleware saw %d, want 404", l.Status)
	}
}

// queryKey: a listed query parameter is in the key; an unlisted one
// bypasses the cache.
func queryKey(t *testing.T, a *Widgets) {
	Expect(t, "q=a", a.Do(t, "GET", "/search?q=a"), 200, "results for a", Stored)
	Expect(t, "q=b", a.Do(t, "GET", "/search?q=b"), 200, "results for b", Stored)
	Expect(t, "q=a again", a.Do(t, "GET", "/search?q=a"), 200, "results for a", Hit)
	Expect(t, "unlisted parameter", a.Do(t, "GET", "/search?q=a&debug=1"), 200, "results for a", Bypass)
	if n := a.RunsOf("search"); n != 3 {
		t.Errorf("the handler ran %d times, want 3", n)
	}
}

// unkeyedParameterBypasses: a path parameter outside the key would let two
// paths share an entry, so the route's GETs bypass the cache.
func unkeyedParameterBypasses(t *testing.T, a *Widgets) {
	Expect(t, "alice's post", a.Do(t, "GET", "/users/alice/posts/1"), 200, "post 1 by alice", Bypass)
	Expect(t, "bob's post", a.Do(t, "GET", "/users/bob/posts/1"), 200, "post 1 by bob", Bypass)
}

// headMissNotStored: a framework routes HEAD to a handler of its own, whose
// answer (here without a body) is not the GET's: a HEAD miss runs it
// uncached, stores nothing, and a HEAD after a GET is a hit of the GET's
// entry.
func headMissNotStored(t *testing.T, a *Widgets) {
	Expect(t, "HEAD first", a.Do(t, "HEAD", "/widgets/3"), 200, "", Bypass)
	if n := a.RunsOf("head widget"); n != 1 {
		t.Errorf("the HEAD handler ran %d times, want 1", n)
	}
	want := `{"id": "3", "version": 0}`
	Expect(t, "GET after it", a.Do(t, "GET", "/widgets/3"), 200, want, Stored)
	Expect(t, "GET again", a.Do(t, "GET", "/widgets/3"), 200, want, Hit)
	head := a.Do(t, "HEAD", "/widgets/3")
	Expect(t, "HEAD after the GET", head, 200, "", Hit)
	if got := head.Header.Get("Content-Length"); got != fmt.Sprint(len(want)) {
		t.Errorf("HEAD hit Content-Length %q, want the GET's %d", got, len(want))
	}
	if n := a.RunsOf("head widget"); n != 1 {
		t.Errorf("the HEAD handler ran %d times, want 1 (the hit does not run it)", n)
	}
}

// catchAllIsTheID: the catch-all parameter of a route is its id, so two
// paths under it are two entries.
func catchAllIsTheID(t *testing.T, a *Widgets) {
	Expect(t, "a/x", a.Do(t, "GET", "/files/a/x"), 200, "file a/x", Stored)
	Expect(t, "b/x", a.Do(t, "GET", "/files/b/x"), 200, "file b/x", Stored)
	Expect(t, "a/x again", a.Do(t, "GET", "/files/a/x"), 200, "file a/x", Hit)
}

// concurrentMisses: every client of concurrent misses of one key gets the
// handler's answer, and then it is a hit.
func concurrentMisses(t *testing.T, a *Widgets) {
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			got, err := a.Send("GET", "/widgets/9")
			if err != nil {
				t.Error(err)
				return
			}
			if got.Status != 200 || got.Body != `{"id": "9", "version": 0}` {
				t.Errorf("got %d %q [%s]", got.Status, got.Body, got.CacheStatus())
			}
		})
	}
	wg.Wait()
	if n := a.RunsOf("get widget"); n < 1 || n > 20 {
		t.Errorf("the handler ran %d times", n)
	}
	Expect(t, "after", a.Do(t, "GET", "/widgets/9"), 200, `{"id": "9", "version": 0}`, Hit)
}

// ConfigErrors: the adapter's Middleware (called by middleware, which says
// whether it returned a handler) refuses a Route with Params or without
// KeyPrefix, naming the fix, and a nil Cache; its MustMiddleware (must)
// panics on a bad Route.
func ConfigErrors(t *testing.T, middleware func(*hoard.Cache, hoard.Route) (bool, error), must func(*hoard.Cache, hoard.Route)) {
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
			handler, err := middleware(c, tc.rt)
			if err == nil || handler {
				t.Fatalf("Middleware accepted %+v", tc.rt)
			}
			if !errors.Is(err, hoard.ErrRouteConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want hoard.ErrRouteConfig naming %q", err, tc.want)
			}
		})
	}
	if _, err := middleware(nil, hoard.Route{KeyPrefix: "w"}); err == nil {
		t.Error("Middleware accepted a nil Cache")
	}
	defer func() {
		if recover() == nil {
			t.Error("MustMiddleware did not panic on a bad Route")
		}
	}()
	must(c, hoard.Route{})
}
