package memory_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hoardcache/hoard/memory"
)

func Example() {
	s, err := memory.New(memory.Options{MaxBytes: 32 << 20}) // 0 means 64 MiB
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	_ = s.Set(ctx, "alice_posts:page_1", []byte(`[{"id":1}]`), time.Minute)
	_ = s.Set(ctx, "alice_posts:page_2", []byte(`[]`), time.Minute)
	_ = s.Set(ctx, "user:alice", []byte(`{"username":"alice"}`), time.Minute)

	v, found, _ := s.Get(ctx, "alice_posts:page_2")
	fmt.Printf("%s %v\n", v, found)

	added, _ := s.Add(ctx, "user:alice", []byte("other"), time.Minute)
	fmt.Println("added:", added)

	n, _ := s.DeletePattern(ctx, "alice_posts:*")
	fmt.Println("deleted:", n)

	values, _ := s.GetMulti(ctx, []string{"alice_posts:page_1", "user:alice"})
	fmt.Printf("%v %s\n", values[0] == nil, values[1])
	// Output:
	// [] true
	// added: false
	// deleted: 2
	// true {"username":"alice"}
}
