package hoard_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/stores"
)

// chi needs no adapter: it fills r.PathValue and sets r.Pattern, so a Route
// names chi's URL parameters as it names ServeMux wildcards, and the last
// one is the id ({widget_id} here; {id:[0-9]+} is id, a final * is "*").
func Example_chi() {
	c, err := stores.Open(context.Background(), stores.Config{}) // in-memory
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	names := map[string]string{"42": "widget"} // the "database"
	widget, err := c.Middleware(hoard.Route{KeyPrefix: "widget", TTL: 10 * time.Minute})
	if err != nil {
		log.Fatal(err) // a misconfigured route fails here, never per request
	}
	r := chi.NewRouter()
	r.With(widget).Get("/api/v1/widgets/{widget_id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"id": %s, "name": %q}`, r.PathValue("widget_id"), names[r.PathValue("widget_id")])
	})
	r.With(widget).Patch("/api/v1/widgets/{widget_id}", func(w http.ResponseWriter, r *http.Request) {
		names[chi.URLParam(r, "widget_id")] = "sprocket"
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(r)
	defer srv.Close()

	exampleRequest(srv, "GET", "/api/v1/widgets/42")
	exampleRequest(srv, "GET", "/api/v1/widgets/42")
	exampleRequest(srv, "PATCH", "/api/v1/widgets/42")
	exampleRequest(srv, "GET", "/api/v1/widgets/42")
	// Output:
	// GET /api/v1/widgets/42: 200 {"id": 42, "name": "widget"} [hoard; fwd=miss; stored]
	// GET /api/v1/widgets/42: 200 {"id": 42, "name": "widget"} [hoard; hit; ttl=600]
	// PATCH /api/v1/widgets/42: 204  []
	// GET /api/v1/widgets/42: 200 {"id": 42, "name": "sprocket"} [hoard; fwd=miss; stored]
}
