package stores_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/memcached"
	"github.com/hoardcache/hoard/redis"
	"github.com/hoardcache/hoard/stores"
)

func ExampleOpenEnv() {
	ctx := context.Background()
	// The CACHE_* variables (none set here: an in-memory cache).
	c, err := stores.OpenEnv(ctx)
	if err != nil {
		log.Fatal(err) // every bad variable, one per line
	}
	defer c.Close()

	c.Set(ctx, "greeting", []byte("hello"), time.Minute)
	v, found, _ := c.Get(ctx, "greeting")
	fmt.Println(string(v), found)
	// Output: hello true
}

func ExampleOpen() {
	ctx := context.Background()
	// The zero Config is an in-memory cache with the defaults of the
	// environment table; each store's options are its package's own.
	c, err := stores.Open(ctx, stores.Config{Cache: hoard.Config{KeyPrefix: "app:"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Printf("%T %q\n", c.Store(), c.Config().KeyPrefix)
	// Output: *memory.Store "app:"
}

func ExampleConfig() {
	// Every option of a store, without a URL.
	cfg := stores.Config{
		Cache:   hoard.Config{KeyPrefix: "shop:", Timeout: 100 * time.Millisecond},
		Backend: stores.Redis,
		Redis: redis.Options{
			Addrs:    []string{"cache.internal:6380"},
			Username: "shop",
			Password: "s3cret",
			PoolSize: 20,
			// TLSConfig: &tls.Config{RootCAs: pool},
		},
	}
	fmt.Println(cfg.Validate())
	cfg = cfg.WithDefaults()
	fmt.Println(cfg.Redis.Addrs, cfg.Redis.Timeout, cfg.Redis.MaxValueBytes>>20, "MiB")
	// Output:
	// <nil>
	// [cache.internal:6380] 100ms 512 MiB
}

func ExampleConfig_Validate() {
	cfg := stores.Config{
		Backend:   stores.Memcached,
		Memcached: memcached.Options{Servers: []string{"mc1:11211", "mc2"}},
	}
	fmt.Println(cfg.Validate())
	// Output:
	// memcached.Options.Servers = "mc2": must be host:port with a port 1-65535, e.g. localhost:11211 or [::1]:11211
}

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

	cfg, err := stores.FromEnv()
	if err != nil {
		log.Fatal(err) // every bad variable, one per line
	}
	fmt.Println(cfg.Backend, cfg.Redis.Addrs, cfg.Redis.TLSConfig != nil, cfg.Cache.DefaultTTL, cfg.Redis.Timeout)
	fmt.Println(cfg.Cache.Client.APIPrefix, cfg.Cache.Client.PublicPrefixes, cfg.Cache.Client.MaxAge)
	// Output:
	// redis [cache.internal:6380] true 10m0s 100ms
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
	_, err := stores.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	fmt.Println(err)
	// Output:
	// CACHE_BACKEND="memcache": must be one of memory, redis, memcached
	// CACHE_TIMEOUT="50": must be a duration with a unit, such as 50ms or 1s
	// CACHE_REDIS_PORT="70000": must be a port number 1-65535
}
