package keys_test

import (
	"fmt"

	"github.com/hoardcache/hoard/internal/keys"
)

func lookup(vals map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vals[name]
		return v, ok
	}
}

// A route's key: the prefix template filled from the request, then the id,
// the query and the caller.
func ExampleBuilder() {
	prefix := keys.MustParseKey("{username}_posts:page_{page}:items_per_page:{items_per_page}")
	vals := lookup(map[string]string{"username": "alice", "page": "1", "items_per_page": "10"})

	var b keys.Builder
	if err := b.Prefix(prefix, vals); err != nil {
		panic(err)
	}
	b.ID("alice")
	fmt.Println(b.String())
	if err := b.QueryString("sort=new&expand=a%26b"); err != nil {
		panic(err)
	}
	b.Caller("user 17")
	fmt.Println(b.String())
	fmt.Println(string(b.Resource()))
	// Output:
	// alice_posts:page_1:items_per_page:10:alice
	// alice_posts:page_1:items_per_page:10:alice:q=expand=a%26b&sort=new:u=user%2017
	// alice_posts:page_1:items_per_page:10:alice
}

// A read lists the patterns a write could format that cover its key; a
// write formats its own pattern from its request. They meet on the same
// string.
func ExampleTemplate_AppendMatches() {
	pattern := keys.MustParsePattern("{username}_posts:*")

	read, ok := pattern.AppendMatches(nil, "alice_posts:page_1:items_per_page:10:alice", 16)
	fmt.Println(read, ok)

	write, _ := pattern.Format(lookup(map[string]string{"username": "alice"}))
	fmt.Println(write)

	// A username of "*" is escaped: its pattern covers only its own keys.
	evil, _ := pattern.Format(lookup(map[string]string{"username": "*"}))
	fmt.Println(evil)
	// Output:
	// [alice_posts:*] true
	// alice_posts:*
	// %2A_posts:*
}

func ExampleParseKey_error() {
	_, err := keys.ParseKey("user_{id")
	fmt.Println(err)
	_, err = keys.ParseKey("{a}_{b}")
	fmt.Println(err)
	// Output:
	// hoard: key template "user_{id": unbalanced "{" at byte 5; close it with "}"
	// hoard: key template "{a}_{b}": placeholders {a} (byte 0) and {b} (byte 4) are separated only by "_", which a value can contain too, so different values could make the same key; put ":" between them, e.g. "{a}:{b}"
}

func ExampleEscape() {
	fmt.Println(keys.Escape("alice"))
	fmt.Println(keys.Escape("a:b*c"))
	fmt.Println(keys.Escape("1&b=2"))
	// Output:
	// alice
	// a%3Ab%2Ac
	// 1%26b%3D2
}
