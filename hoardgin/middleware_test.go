package hoardgin_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/hoardgin"
	"github.com/hoardcache/hoard/internal/adapttest"
	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/hoardcache/hoard/internal/testlog"
)

// newWidgets serves adapttest's application through hoardgin on cache c.
func newWidgets(t *testing.T, c *hoard.Cache) *adapttest.Widgets {
	t.Helper()
	a := adapttest.NewWidgets()
	r := gin.New()
	r.Use(func(gc *gin.Context) { // logging middleware, outside hoard
		gc.Next()
		a.Log(gc.Request.Method, gc.Request.URL.Path, gc.Writer.Status(), gc.Writer.Size())
	})

	widget := hoardgin.MustMiddleware(c, adapttest.WidgetRoute)
	r.GET("/widgets/:id", widget, func(gc *gin.Context) {
		body := a.GetWidget(gc.Param("id"))
		gc.Header("Content-Type", "application/json")
		gc.String(http.StatusOK, "%s", body)
	})
	r.HEAD("/widgets/:id", widget, func(gc *gin.Context) {
		a.HeadWidget()
		gc.Status(http.StatusOK)
	})
	r.PATCH("/widgets/:id", widget, func(gc *gin.Context) {
		a.PatchWidget(gc.Param("id"))
		gc.Status(http.StatusNoContent)
	})
	r.GET("/missing/:id", hoardgin.MustMiddleware(c, adapttest.MissingRoute), func(gc *gin.Context) {
		a.Missing()
		gc.String(http.StatusNotFound, "no such thing")
	})
	r.GET("/search", hoardgin.MustMiddleware(c, adapttest.SearchRoute), func(gc *gin.Context) {
		gc.String(http.StatusOK, "%s", a.Search(gc.Query("q")))
	})
	r.GET("/files/*path", hoardgin.MustMiddleware(c, adapttest.FileRoute), func(gc *gin.Context) {
		gc.String(http.StatusOK, "%s", a.File(gc.Param("path")))
	})
	r.GET("/users/:user/posts/:id", hoardgin.MustMiddleware(c, adapttest.PostRoute), func(gc *gin.Context) {
		gc.String(http.StatusOK, "%s", a.Post(gc.Param("user"), gc.Param("id")))
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// newStale serves adapttest's Stale application through hoardgin on
// cache c; the tenant is a key set by a middleware before hoard's, which
// the background run gets in gin's copy of the Context.
func newStale(t *testing.T, c *hoard.Cache) *adapttest.Stale {
	a := &adapttest.Stale{}
	r := gin.New()
	r.Use(func(gc *gin.Context) { gc.Set("tenant", gc.GetHeader("X-Tenant")) })
	mw := hoardgin.MustMiddleware(c, adapttest.StaleRoute)
	r.GET("/w/:id", mw, func(gc *gin.Context) {
		gc.String(http.StatusOK, "%s", a.Answer(gc.GetString("tenant"), gc.Param("id")))
	})
	r.HEAD("/w/:id", mw, func(gc *gin.Context) { gc.String(http.StatusOK, adapttest.HeadBody) })
	r.GET("/other/:id", func(gc *gin.Context) {
		gc.String(http.StatusOK, "%s %s", gc.GetString("tenant"), gc.Param("id"))
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// TestScenarios runs adapttest's scenarios on the framework's router.
func TestScenarios(t *testing.T) { adapttest.RunScenarios(t, newWidgets) }

func TestStaleWhileRevalidate(t *testing.T) { adapttest.RunStaleWhileRevalidate(t, newStale) }

func TestConfigErrors(t *testing.T) {
	adapttest.ConfigErrors(t,
		func(c *hoard.Cache, rt hoard.Route) (bool, error) {
			mw, err := hoardgin.Middleware(c, rt)
			return mw != nil, err
		},
		func(c *hoard.Cache, rt hoard.Route) { hoardgin.MustMiddleware(c, rt) })
}

// The handler's own gin middleware after hoard run on a miss, not on a hit,
// and an abort there stops the handler as usual.
func TestChainAfterMiddleware(t *testing.T) {
	c := storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{})
	var after atomic.Int32
	r := gin.New()
	r.GET("/a/:id", hoardgin.MustMiddleware(c, hoard.Route{KeyPrefix: "a"}),
		func(gc *gin.Context) { after.Add(1); gc.Header("X-After", "1") },
		func(gc *gin.Context) { gc.String(200, "a %s", gc.Param("id")) })
	srv := httptest.NewServer(r)
	defer srv.Close()
	a := adapttest.Client{URL: srv.URL}
	for i, want := range []string{adapttest.Stored, adapttest.Hit} {
		got := a.Do(t, "GET", "/a/1")
		adapttest.Expect(t, fmt.Sprint("GET ", i), got, 200, "a 1", want)
		if got.Header.Get("X-After") != "1" {
			t.Errorf("GET %d: the stored response lost the header set by middleware after hoard", i)
		}
	}
	if n := after.Load(); n != 1 {
		t.Errorf("middleware after hoard ran %d times, want 1", n)
	}
}

// Under a ServeMux (which sets r.Pattern to "GET /api/{rest...}", whose
// wildcard hoard would find missing from the key), the route is still cached by its gin path.
func TestUnderServeMux(t *testing.T) {
	c := storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{})
	r := gin.New()
	r.GET("/api/w/:id", hoardgin.MustMiddleware(c, hoard.Route{KeyPrefix: "w"}),
		func(gc *gin.Context) { gc.String(200, "w %s", gc.Param("id")) })
	mux := http.NewServeMux()
	mux.Handle("GET /api/{rest...}", r)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	a := adapttest.Client{URL: srv.URL}
	adapttest.Expect(t, "first", a.Do(t, "GET", "/api/w/1"), 200, "w 1", adapttest.Stored)
	adapttest.Expect(t, "second", a.Do(t, "GET", "/api/w/1"), 200, "w 1", adapttest.Hit)
}

// A miss whose fresh answer matches If-None-Match is a 304, and gin's
// c.Writer outside hoard says so (not the handler's 200).
func TestMissAnswers304(t *testing.T) {
	c := storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{})
	var logged atomic.Int32
	r := gin.New()
	r.Use(func(gc *gin.Context) { gc.Next(); logged.Store(int32(gc.Writer.Status())) })
	mw := hoardgin.MustMiddleware(c, hoard.Route{KeyPrefix: "s"})
	r.GET("/s/:id", mw, func(gc *gin.Context) { gc.String(200, "same body") })
	r.PATCH("/s/:id", mw, func(gc *gin.Context) { gc.Status(http.StatusNoContent) })
	srv := httptest.NewServer(r)
	defer srv.Close()
	a := adapttest.Client{URL: srv.URL}
	etag := a.Do(t, "GET", "/s/1").Header.Get("ETag")
	a.Do(t, "PATCH", "/s/1")
	adapttest.Expect(t, "GET after PATCH", a.Do(t, "GET", "/s/1", "If-None-Match", etag), http.StatusNotModified, "", adapttest.Stored)
	if s := logged.Load(); s != http.StatusNotModified {
		t.Errorf("gin logged %d, want 304", s)
	}
}

// A named ResourceID and a placeholder key every path parameter: two users'
// note 1 are two entries, and a PATCH invalidates only its own.
func TestNamedResourceID(t *testing.T) {
	c := storefixture.Shared(t, storefixture.Redis).NewCache(t, hoard.Config{})
	var version atomic.Int32
	r := gin.New()
	mw := hoardgin.MustMiddleware(c, hoard.Route{KeyPrefix: "{user}_note", ResourceID: "note"})
	r.GET("/users/:user/notes/:note", mw, func(gc *gin.Context) {
		gc.String(200, "%s/%s v%d", gc.Param("user"), gc.Param("note"), version.Load())
	})
	r.PATCH("/users/:user/notes/:note", mw, func(gc *gin.Context) { version.Add(1); gc.Status(http.StatusNoContent) })
	srv := httptest.NewServer(r)
	defer srv.Close()
	a := adapttest.Client{URL: srv.URL}
	adapttest.Expect(t, "alice", a.Do(t, "GET", "/users/alice/notes/1"), 200, "alice/1 v0", adapttest.Stored)
	adapttest.Expect(t, "bob", a.Do(t, "GET", "/users/bob/notes/1"), 200, "bob/1 v0", adapttest.Stored)
	adapttest.Expect(t, "alice again", a.Do(t, "GET", "/users/alice/notes/1"), 200, "alice/1 v0", adapttest.Hit)
	a.Do(t, "PATCH", "/users/alice/notes/1")
	adapttest.Expect(t, "alice after PATCH", a.Do(t, "GET", "/users/alice/notes/1"), 200, "alice/1 v1", adapttest.Stored)
	adapttest.Expect(t, "bob after alice's PATCH", a.Do(t, "GET", "/users/bob/notes/1"), 200, "bob/1 v0", adapttest.Hit)
}

// setLocale is a handler that sets a key the main handler reads.
func setLocale(gc *gin.Context) { gc.Set("locale", gc.Query("locale")) }

// TestRevalidationRefused: a stale entry whose route gin cannot revalidate
// by its main handler alone (a handler between hoard's and it, none after
// hoard's, or a main handler that answers nothing on gin's copy of the
// Context, where IsAborted is true) is not replaced: it is served stale
// until its window ends, and the route is logged once with the reason. A
// route whose main handler follows hoard's directly is revalidated.
func TestRevalidationRefused(t *testing.T) {
	var logs testlog.Buffer
	c := storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	rt := hoard.Route{TTL: time.Second, StaleWhileRevalidate: time.Minute}
	var version atomic.Int32
	main := func(gc *gin.Context) {
		gc.String(http.StatusOK, "%s v%d locale=%s", gc.FullPath(), version.Load(), gc.GetString("locale"))
	}
	aborts := func(gc *gin.Context) {
		if gc.IsAborted() { // as after a helper that may abort
			return
		}
		main(gc)
	}
	route := func(prefix string) gin.HandlerFunc {
		rt := rt
		rt.KeyPrefix = prefix
		return hoardgin.MustMiddleware(c, rt)
	}
	r := gin.New()
	r.GET("/between/:id", route("between"), setLocale, main)
	r.GET("/only/:id", route("only"))
	r.GET("/aborted/:id", route("aborted"), aborts)
	r.GET("/direct/:id", route("direct"), main)
	g := r.Group("/nested", route("outer"), setLocale)
	g.GET("/:id", hoardgin.MustMiddleware(c, hoard.Route{KeyPrefix: "inner"}), main)
	srv := httptest.NewServer(r)
	defer srv.Close()
	a := adapttest.Client{URL: srv.URL}

	paths := []string{"/between/1", "/only/1", "/aborted/1", "/direct/1", "/nested/1"}
	first := map[string]string{}
	for _, p := range paths {
		first[p] = a.Do(t, "GET", p+"?locale=fr").Body
	}
	time.Sleep(1100 * time.Millisecond) // past the TTL
	version.Store(1)
	for _, p := range paths {
		if got := a.Do(t, "GET", p+"?locale=fr"); got.Body != first[p] || !strings.Contains(got.CacheStatus(), "stale-while-revalidate") {
			t.Errorf("GET %s past the TTL: %q [%s]; want the stale %q", p, got.Body, got.CacheStatus(), first[p])
		}
	}
	want := "/direct/:id v1 locale="
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if got := a.Do(t, "GET", "/direct/1?locale=fr"); got.Body == want && strings.HasPrefix(got.CacheStatus(), adapttest.Hit) && !strings.Contains(got.CacheStatus(), "stale") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/direct/1 not revalidated within 5 s; want a fresh hit of %q", want)
		}
	}
	for _, p := range []string{"/between/1", "/only/1", "/aborted/1", "/nested/1"} {
		if got := a.Do(t, "GET", p+"?locale=fr"); got.Body != first[p] || !strings.Contains(got.CacheStatus(), "stale") {
			t.Errorf("GET %s after the refused revalidation: %q [%s]; want the stale %q still", p, got.Body, got.CacheStatus(), first[p])
		}
	}
	var out string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if out = logs.String(); strings.Count(out, "not revalidated in the background") >= 4 || time.Now().After(deadline) {
			break
		}
	}
	for route, reason := range map[string]string{
		"GET /between/:id": "handlers github.com/hoardcache/hoard/hoardgin_test.setLocale come between",
		"GET /only/:id":    "the route's last handler",
		"GET /aborted/:id": "wrote nothing",
		"GET /nested/:id":  "come between",
	} {
		if n := strings.Count(out, "route=\""+route); n != 1 {
			t.Errorf("%s logged %d times, want once:\n%s", route, n, out)
		}
		if !strings.Contains(out, reason) {
			t.Errorf("the log does not say why %s is not revalidated (%q):\n%s", route, reason, out)
		}
	}
	if strings.Contains(out, "/direct/") {
		t.Errorf("the revalidated route was logged:\n%s", out)
	}
}
