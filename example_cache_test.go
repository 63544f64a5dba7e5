package hoard_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/memory"
)

// exampleCache is a Cache on the in-process store with the defaults.
func exampleCache() *hoard.Cache {
	store, _ := memory.New(memory.Options{})
	c, _ := hoard.New(store, hoard.Config{})
	return c
}

func ExampleNew() {
	ctx := context.Background()
	// Any Store: here the in-process one. stores.OpenEnv(ctx) builds the
	// store and the Cache that the CACHE_* variables describe.
	store, err := memory.New(memory.Options{})
	if err != nil {
		panic(err)
	}
	// The zero Config has the defaults of the environment table.
	c, err := hoard.New(store, hoard.Config{KeyPrefix: "app:"})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	c.Set(ctx, "greeting", []byte("hello"), time.Minute)
	v, found, _ := c.Get(ctx, "greeting")
	fmt.Println(string(v), found)
	// Output: hello true
}

func ExampleGetJSON() {
	ctx := context.Background()
	c := exampleCache()
	defer c.Close()

	type user struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	c.SetJSON(ctx, "user:1", user{ID: 1, Name: "Ada"}, 0)
	u, found, err := hoard.GetJSON[user](ctx, c, "user:1")
	fmt.Println(u.Name, found, err)
	// Output: Ada true <nil>
}

func ExampleFetchJSON() {
	ctx := context.Background()
	c := exampleCache()
	defer c.Close()

	loads := 0
	load := func(context.Context) (string, error) { loads++; return "from the database", nil }
	for i := 0; i < 3; i++ {
		v, _ := hoard.FetchJSON(ctx, c, "widget:42", 10*time.Minute, load)
		fmt.Println(v)
	}
	fmt.Println("loads:", loads)
	// Output:
	// from the database
	// from the database
	// from the database
	// loads: 1
}

func ExampleCache_Invalidate() {
	ctx := context.Background()
	c := exampleCache()
	defer c.Close()

	c.Set(ctx, "widget:42", []byte("old"), 0)
	// After the database write commits, code outside a route does what a
	// write route does: every cached view of widget 42 becomes a miss.
	c.Invalidate(ctx, "widget:42")
	_, found, _ := c.Get(ctx, "widget:42")
	fmt.Println(found)
	// Output: false
}

func ExampleKey() {
	fmt.Println(hoard.Key("widget", "42"))
	fmt.Println(hoard.Key("user", "a:b*"))
	// Output:
	// widget:42
	// user:a%3Ab%2A
}
