package memcached_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hoardcache/hoard/memcached"
)

func Example() {
	s, err := memcached.New(memcached.Options{
		Servers: []string{"cache-1:11211", "cache-2:11211", "cache-3:11211"},
		Timeout: 100 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		log.Printf("memcached is not answering: %v", err)
	}
	// Any key works: long ones and ones with spaces are stored hashed.
	if err := s.Set(ctx, "GET /api/posts?q=hello world", []byte(`{"posts":[]}`), time.Hour); err != nil {
		log.Print(err)
	}
	value, found, err := s.Get(ctx, "GET /api/posts?q=hello world")
	fmt.Println(string(value), found, err)
}

func ExampleNew_badAddress() {
	_, err := memcached.New(memcached.Options{Servers: []string{"cache-1:11211", "cache-2"}})
	fmt.Println(err)
	// Output:
	// memcached.Options.Servers = "cache-2": must be host:port with a port 1-65535, e.g. localhost:11211 or [::1]:11211
}
