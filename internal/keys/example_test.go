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

// A route's key, appended part by part into one buffer: the prefix
// template filled from the request, then the id (up to here the resource a
// write invalidates), the query and the caller.
func Example() {
	prefix, err := keys.ParseKey("{username}_posts:page_{page}:items_per_page:{items_per_page}")
	if err != nil {
		panic(err)
	}
	vals := lookup(map[string]string{"username": "alice", "page": "1", "items_per_page": "10"})

	key, err := prefix.AppendFormat(nil, vals)
	if err != nil {
		panic(err)
	}
	key = keys.AppendID(key, "alice")
	fmt.Println(string(key))
	query, err := keys.ParseQuery(nil, "sort=new&expand=a%26b")
	if err != nil {
		panic(err)
	}
	key = keys.AppendQuery(key, query)
	key = keys.AppendCaller(key, "user 17")
	fmt.Println(string(key))
	// Output:
	// alice_posts:page_1:items_per_page:10:alice
	// alice_posts:page_1:items_per_page:10:alice:q=expand=a%26b&sort=new:u=user%2017
}

// A read lists the patterns a write could format that cover its key; a
// write formats its own pattern from its request. They meet on the same
// string.
func ExampleTemplate_AppendMatches() {
	pattern, err := keys.ParsePattern("{username}_posts:*")
	if err != nil {
		panic(err)
	}

	read, ok := pattern.AppendMatches(nil, "alice_posts:page_1:items_per_page:10:alice", 16)
	fmt.Println(read, ok)

	write, _ := pattern.AppendFormat(nil, lookup(map[string]string{"username": "alice"}))
	fmt.Println(string(write))

	// A username of "*" is escaped: its pattern covers only its own keys.
	evil, _ := pattern.AppendFormat(nil, lookup(map[string]string{"username": "*"}))
	fmt.Println(string(evil))
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
