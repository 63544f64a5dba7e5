package redis_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hoardcache/hoard/redis"
)

func ExampleParseURL() {
	opts, err := redis.ParseURL("rediss://app:secret@cache.internal:6380/2")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(opts.Addrs, opts.Username, opts.DB, opts.TLSConfig.ServerName)

	opts, err = redis.ParseURL("redis://10.0.0.1:7000,10.0.0.2:7000?cluster=true")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(opts.Addrs, opts.Cluster)

	_, err = redis.ParseURL("redis://localhost:6379/2?cluster=true")
	fmt.Println(err)
	// Output:
	// [cache.internal:6380] app 2 cache.internal
	// [10.0.0.1:7000 10.0.0.2:7000] true
	// redis: URL selects DB 2 with cluster=true, but Redis Cluster only has DB 0
}

func ExampleNew() {
	ctx := context.Background()
	opts, err := redis.ParseURL("redis://localhost:6379/0")
	if err != nil {
		log.Fatal(err)
	}
	opts.Timeout = 100 * time.Millisecond
	store, err := redis.New(ctx, opts)
	if err != nil {
		log.Fatal(err) // names the address and what to check
	}
	defer store.Close()

	if err := store.Set(ctx, "greeting", []byte("hello"), time.Minute); err != nil {
		log.Print(err) // a cache is optional: log and carry on
	}
	if v, found, err := store.Get(ctx, "greeting"); err == nil && found {
		fmt.Println(string(v))
	}
	n, err := store.DeletePattern(ctx, "greet*")
	fmt.Println(n, err)
}
