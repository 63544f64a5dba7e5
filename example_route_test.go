package hoard_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/stores"
)

// exampleRequest sends one request to srv and prints what a client sees.
func exampleRequest(srv *httptest.Server, method, path string) {
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(`{"name": "sprocket"}`))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Printf("%s %s: %d %s [%s]\n", method, path, res.StatusCode, strings.TrimSpace(string(body)), res.Header.Get("Cache-Status"))
}

// The demo's widget routes (FastAPI-boilerplate's
// @cache(key_prefix="widget", resource_id_name="widget_id", expiration=600)),
// registered with Handle, which checks every placeholder against the
// pattern when the route is registered.
func ExampleCache_Handle() {
	c, err := stores.OpenEnv(context.Background()) // the CACHE_* variables; none set: in-memory
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	names := map[string]string{"42": "widget"} // the "database"
	runs := 0
	getWidget := func(w http.ResponseWriter, r *http.Request) {
		runs++
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id": %s, "name": %q}`, r.PathValue("widget_id"), names[r.PathValue("widget_id")])
	}
	putWidget := func(w http.ResponseWriter, r *http.Request) {
		names[r.PathValue("widget_id")] = "sprocket"
		w.WriteHeader(http.StatusNoContent)
	}

	mux := http.NewServeMux()
	// GET: cached under widget:<widget_id> for 600 s.
	read := hoard.Route{KeyPrefix: "widget", ResourceID: "widget_id", TTL: 600 * time.Second}
	// PUT, PATCH, DELETE: invalidate widget:<widget_id> (every query and
	// caller variant) and every cached listing page.
	write := hoard.Route{KeyPrefix: "widget", ResourceID: "widget_id", InvalidatePatterns: []string{"widgets:*"}}
	for _, err := range []error{
		c.HandleFunc(mux, "GET /api/v1/widgets/{widget_id}", read, getWidget),
		c.HandleFunc(mux, "PUT /api/v1/widgets/{widget_id}", write, putWidget),
	} {
		if err != nil {
			log.Fatal(err) // a misconfigured route fails here, never per request
		}
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	exampleRequest(srv, "GET", "/api/v1/widgets/42")
	exampleRequest(srv, "GET", "/api/v1/widgets/42")
	exampleRequest(srv, "PUT", "/api/v1/widgets/42")
	exampleRequest(srv, "GET", "/api/v1/widgets/42")
	fmt.Println("handler runs:", runs)

	// A GET-only route that declares invalidations is refused.
	err = c.HandleFunc(mux, "GET /api/v1/gadgets/{id}", write, getWidget)
	fmt.Println(err != nil)
	// Output:
	// GET /api/v1/widgets/42: 200 {"id": 42, "name": "widget"} [hoard; fwd=miss; stored]
	// GET /api/v1/widgets/42: 200 {"id": 42, "name": "widget"} [hoard; hit; ttl=600]
	// PUT /api/v1/widgets/42: 204  []
	// GET /api/v1/widgets/42: 200 {"id": 42, "name": "sprocket"} [hoard; fwd=miss; stored]
	// handler runs: 2
	// true
}

// Middleware wraps one handler, for routers other than http.ServeMux too
// (chi fills r.PathValue; for others set Route.Params). Listing pages are
// keyed by their query through placeholders with defaults.
func ExampleCache_Middleware() {
	c, err := stores.Open(context.Background(), stores.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	cached, err := c.Middleware(hoard.Route{
		KeyPrefix: "widgets:page_{page}:items_per_page:{items_per_page}",
		Defaults:  map[string]string{"page": "1", "items_per_page": "10"},
		TTL:       time.Minute,
	})
	if err != nil {
		log.Fatal(err)
	}
	invalidating, err := c.Middleware(hoard.Route{InvalidatePatterns: []string{"widgets:*"}})
	if err != nil {
		log.Fatal(err)
	}

	count := 3
	list := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"total_count": %d}`, count)
	})
	create := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count++
		w.WriteHeader(http.StatusCreated)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/widgets", cached(list))
	mux.Handle("POST /api/v1/widgets", invalidating(create))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	exampleRequest(srv, "GET", "/api/v1/widgets")
	exampleRequest(srv, "GET", "/api/v1/widgets?page=1") // the same page: a hit
	exampleRequest(srv, "POST", "/api/v1/widgets")
	exampleRequest(srv, "GET", "/api/v1/widgets?items_per_page=10&page=1")
	// Output:
	// GET /api/v1/widgets: 200 {"total_count": 3} [hoard; fwd=miss; stored]
	// GET /api/v1/widgets?page=1: 200 {"total_count": 3} [hoard; hit; ttl=60]
	// POST /api/v1/widgets: 201  []
	// GET /api/v1/widgets?items_per_page=10&page=1: 200 {"total_count": 4} [hoard; fwd=miss; stored]
}
