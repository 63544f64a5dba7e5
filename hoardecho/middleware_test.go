package hoardecho_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/hoardecho"
	"github.com/hoardcache/hoard/internal/adapttest"
	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/labstack/echo/v4"
)

// newWidgets serves adapttest's application through hoardecho on cache c.
func newWidgets(t *testing.T, c *hoard.Cache) *adapttest.Widgets {
	t.Helper()
	a := adapttest.NewWidgets()
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc { // logging middleware, outside hoard
		return func(ec echo.Context) error {
			err := next(ec)
			if err != nil {
				ec.Error(err) // as echo's logger middleware does
			}
			a.Log(ec.Request().Method, ec.Request().URL.Path, ec.Response().Status, int(ec.Response().Size))
			return err
		}
	})

	widget := hoardecho.MustMiddleware(c, adapttest.WidgetRoute)
	e.GET("/widgets/:id", func(ec echo.Context) error {
		body := a.GetWidget(ec.Param("id"))
		ec.Response().Header().Set("Content-Type", "application/json")
		return ec.String(http.StatusOK, body)
	}, widget)
	e.HEAD("/widgets/:id", func(ec echo.Context) error {
		a.HeadWidget()
		return ec.NoContent(http.StatusOK)
	}, widget)
	e.PATCH("/widgets/:id", func(ec echo.Context) error {
		a.PatchWidget(ec.Param("id"))
		return ec.NoContent(http.StatusNoContent)
	}, widget)
	// A handler that returns an error: echo writes it inside hoard.
	e.GET("/missing/:id", func(ec echo.Context) error {
		a.Missing()
		return echo.NewHTTPError(http.StatusNotFound, "no such thing")
	}, hoardecho.MustMiddleware(c, adapttest.MissingRoute))
	e.GET("/search", func(ec echo.Context) error {
		return ec.String(http.StatusOK, a.Search(ec.QueryParam("q")))
	}, hoardecho.MustMiddleware(c, adapttest.SearchRoute))
	e.GET("/files/*", func(ec echo.Context) error {
		return ec.String(http.StatusOK, a.File(ec.Param("*")))
	}, hoardecho.MustMiddleware(c, adapttest.FileRoute))
	e.GET("/users/:user/posts/:id", func(ec echo.Context) error {
		return ec.String(http.StatusOK, a.Post(ec.Param("user"), ec.Param("id")))
	}, hoardecho.MustMiddleware(c, adapttest.PostRoute))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// newStale serves adapttest's Stale application through hoardecho on
// cache c; the tenant is set by a middleware after hoard's, which the
// background run runs again on its new echo.Context.
func newStale(t *testing.T, c *hoard.Cache) *adapttest.Stale {
	a := &adapttest.Stale{}
	e := echo.New()
	tenant := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ec echo.Context) error {
			ec.Set("tenant", ec.Request().Header.Get("X-Tenant"))
			return next(ec)
		}
	}
	mw := hoardecho.MustMiddleware(c, adapttest.StaleRoute)
	e.GET("/w/:id", func(ec echo.Context) error {
		return ec.String(http.StatusOK, a.Answer(ec.Get("tenant").(string), ec.Param("id")))
	}, mw, tenant)
	e.HEAD("/w/:id", func(ec echo.Context) error { return ec.String(http.StatusOK, adapttest.HeadBody) }, mw)
	e.GET("/other/:id", func(ec echo.Context) error {
		return ec.String(http.StatusOK, fmt.Sprintf("%s %s", ec.Get("tenant"), ec.Param("id")))
	}, tenant)
	srv := httptest.NewServer(e)
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
			mw, err := hoardecho.Middleware(c, rt)
			return mw != nil, err
		},
		func(c *hoard.Cache, rt hoard.Route) { hoardecho.MustMiddleware(c, rt) })
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
	// An unknown path passes through (echo's 404), uncached.
	if got := a.Do(t, "GET", "/nowhere"); got.Status != http.StatusNotFound || strings.HasPrefix(got.Header.Get("Cache-Status"), adapttest.Hit) {
		t.Errorf("unknown path: %d [%s]", got.Status, got.Header.Get("Cache-Status"))
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
	a := adapttest.Client{URL: srv.URL}
	adapttest.Expect(t, "first", a.Do(t, "GET", "/api/w/1"), 200, "w 1", adapttest.Stored)
	adapttest.Expect(t, "second", a.Do(t, "GET", "/api/w/1"), 200, "w 1", adapttest.Hit)
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
	a := adapttest.Client{URL: srv.URL}
	etag := a.Do(t, "GET", "/s/1").Header.Get("ETag")
	a.Do(t, "PATCH", "/s/1")
	adapttest.Expect(t, "GET after PATCH", a.Do(t, "GET", "/s/1", "If-None-Match", etag), http.StatusNotModified, "", adapttest.Stored)
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
	a := adapttest.Client{URL: srv.URL}
	adapttest.Expect(t, "alice", a.Do(t, "GET", "/users/alice/notes/1"), 200, "alice/1 v0", adapttest.Stored)
	adapttest.Expect(t, "bob", a.Do(t, "GET", "/users/bob/notes/1"), 200, "bob/1 v0", adapttest.Stored)
	adapttest.Expect(t, "alice again", a.Do(t, "GET", "/users/alice/notes/1"), 200, "alice/1 v0", adapttest.Hit)
	a.Do(t, "PATCH", "/users/alice/notes/1")
	adapttest.Expect(t, "alice after PATCH", a.Do(t, "GET", "/users/alice/notes/1"), 200, "alice/1 v1", adapttest.Stored)
	adapttest.Expect(t, "bob after alice's PATCH", a.Do(t, "GET", "/users/bob/notes/1"), 200, "bob/1 v0", adapttest.Hit)
}
