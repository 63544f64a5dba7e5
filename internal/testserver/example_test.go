package testserver_test

import (
	"fmt"
	"log"

	"github.com/hoardcache/hoard/internal/testserver"
)

func ExampleStartRedis() {
	r, err := testserver.StartRedis(testserver.RedisOptions{
		Args: []string{"--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Stop()

	fmt.Println(r.Do("PING"))
	// Output: PONG <nil>
}

func ExampleStartMemcachedPool() {
	pool, err := testserver.StartMemcachedPool(2, testserver.MemcachedOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer testserver.StopMemcachedPool(pool)

	// testserver.Addrs(pool) is what a memcached client is configured with.
	fmt.Println(len(testserver.Addrs(pool)))
	fmt.Println(pool[0].Do("set k 0 0 5\r\nhello"))
	// Output:
	// 2
	// STORED <nil>
}
