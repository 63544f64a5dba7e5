package keys

import (
	"testing"
)

var benchLookup = func(name string) (string, bool) {
	switch name {
	case "username":
		return "alice", true
	case "page":
		return "1", true
	case "items_per_page":
		return "10", true
	}
	return "", false
}

func BenchmarkAppendFormat(b *testing.B) {
	tpl := mustKey("{username}_posts:page_{page}:items_per_page:{items_per_page}")
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = tpl.AppendFormat(buf[:0], benchLookup)
	}
}

// BenchmarkKey is the whole key of a cache hit as the middleware builds it
// into its reused buffer: the prefix, the id, the request's query parsed and
// sorted, the caller.
func BenchmarkKey(b *testing.B) {
	tpl := mustKey("{username}_posts:page_{page}:items_per_page:{items_per_page}")
	buf := make([]byte, 0, 128)
	var pairs []Pair
	b.ReportAllocs()
	for b.Loop() {
		pairs, _ = ParseQuery(pairs[:0], "page=1&items_per_page=10")
		buf, _ = appendKey(buf[:0], tpl, benchLookup, "alice", true, pairs, "user-17", true)
	}
}

func BenchmarkAppendMatches(b *testing.B) {
	cases := []struct{ name, pattern, key string }{
		{"match", "{username}_posts:*", "alice_posts:page_1:items_per_page:10:alice:q=sort=new"},
		{"match-literal-prefix", "widgets:*", "widgets:page_1:items_per_page:10"},
		{"match-two-placeholders", "{username}_post_cache:{id}*", "alice_post_cache:17:q=expand=1"},
		{"nomatch-prefix", "widgets:*", "widget:42"},
		{"nomatch-run", "{username}_posts:*", "alice_post_cache:17"},
		{"nomatch-colons", "user:{id}", "user:10:q=a=1"},
		{"nomatch-late", "{username}_posts:*", "alice:bob_posts:1"},
	}
	for _, c := range cases {
		tpl := mustPattern(c.pattern)
		dst := make([]string, 0, 8)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				dst, _ = tpl.AppendMatches(dst[:0], c.key, 16)
			}
		})
	}
}
