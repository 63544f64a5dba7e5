package hoard_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/hoardcache/hoard"
)

func ExampleFromEnv() {
	// In production these come from the deployment; set here for the example.
	for k, v := range map[string]string{
		"CACHE_BACKEND":            "redis",
		"CACHE_REDIS_URL":          "rediss://:s3cret@cache.internal:6380/0",
		"DEFAULT_CACHE_EXPIRATION": "600",
		"CACHE_TIMEOUT":            "100ms",
	} {
		os.Setenv(k, v)
		defer os.Unsetenv(k)
	}

	cfg, err := hoard.FromEnv()
	if err != nil {
		log.Fatal(err) // every bad variable, one per line
	}
	fmt.Println(cfg.Backend, cfg.RedisAddrs(), cfg.DefaultTTL, cfg.Timeout)
	fmt.Println(cfg.Client.APIPrefix, cfg.Client.PublicPrefixes, cfg.Client.MaxAge)
	// Output:
	// redis [cache.internal:6380] 10m0s 100ms
	// /api [/static/] 1m0s
}

func ExampleFromLookup() {
	env := map[string]string{
		"CACHE_BACKEND":         "memcache",
		"CACHE_REDIS_PORT":      "70000",
		"CACHE_TIMEOUT":         "50",
		"CLIENT_CACHE_MAX_AGE":  "300",
		"CACHE_MEMCACHED_HOST":  "mc1",
		"CACHE_REDIS_POOL_SIZE": "20",
	}
	_, err := hoard.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	fmt.Println(err)
	// Output:
	// CACHE_BACKEND="memcache": must be one of memory, redis, memcached
	// CACHE_TIMEOUT="50": must be a duration with a unit, such as 50ms or 1s
	// CACHE_REDIS_PORT="70000": must be a port number 1-65535
}

func ExampleConfig_Validate() {
	cfg := hoard.Config{
		Backend:   hoard.BackendMemcached,
		Memcached: hoard.MemcachedConfig{Servers: []string{"mc1:11211", "mc2"}},
	}
	fmt.Println(cfg.Validate())
	// Output:
	// Config.Memcached.Servers = "mc2" (CACHE_MEMCACHED_SERVERS): must be host:port with a port 1-65535, e.g. cache1:11211
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
