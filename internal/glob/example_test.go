package glob_test

import (
	"fmt"

	"github.com/hoardcache/hoard/internal/glob"
)

func ExampleMatch() {
	fmt.Println(glob.Match("alice_posts:*", "alice_posts:page_1:items_per_page:10"))
	fmt.Println(glob.Match("user:1", "user:10")) // a real glob: no implicit '*'
	fmt.Println(glob.Match("user:[0-9]?", "user:10"))
	// Output:
	// true
	// false
	// true
}

func ExampleEscape() {
	id := "*" // a hostile id must not widen the pattern
	p := glob.Escape(id) + ":*"
	fmt.Println(p, glob.Match(p, "*:1"), glob.Match(p, "alice:1"))
	fmt.Printf("%q\n", glob.LiteralPrefix(p))
	// Output:
	// \*:* true false
	// "*:"
}
