package hoard_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/hoardcache/hoard"
)

func ExampleConfig_Validate() {
	cfg := hoard.Config{
		KeyPrefix: "my app:",
		Client:    hoard.ClientCacheConfig{APIPrefix: "api"},
	}
	fmt.Println(cfg.Validate())
	// Output:
	// hoard.Config.KeyPrefix = "my app:": must not contain whitespace or control characters
	// hoard.Config.Client.APIPrefix = "api": must be a path starting with "/", e.g. /api
}

func ExampleClientCache() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/widgets/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"id": 1}`)
	})
	mux.HandleFunc("GET /api/v1/catalog", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300") // what a route with ClientMaxAge sets
		fmt.Fprintln(w, `[]`)
	})
	mux.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "body { color: teal }")
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "home") })

	// Zero fields are the defaults: API_PREFIX /api, public /static/, max-age 60.
	handler := hoard.ClientCache(hoard.ClientCacheConfig{})(mux)

	for _, path := range []string{"/api/v1/widgets/1", "/api/v1/catalog", "/static/site.css", "/"} {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Printf("%-18s %s\n", path, rec.Header().Get("Cache-Control"))
	}
	// Output:
	// /api/v1/widgets/1  private, no-cache, no-store, must-revalidate
	// /api/v1/catalog    public, max-age=300
	// /static/site.css   public, max-age=60
	// /                  private, no-store
}
