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
	tpl := MustParseKey("{username}_posts:page_{page}:items_per_page:{items_per_page}")
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = tpl.AppendFormat(buf[:0], benchLookup)
	}
}

func BenchmarkAppendKey(b *testing.B) {
	prefix := []byte("alice_posts:page_1:items_per_page:10")
	query := []Pair{{"sort", "new"}, {"page", "1"}}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendKey(buf[:0], prefix, "alice", true, query, "user-17", true)
	}
}

// BenchmarkBuilder is the whole key of a cache hit, including the final
// string (one allocation).
func BenchmarkBuilder(b *testing.B) {
	tpl := MustParseKey("{username}_posts:page_{page}:items_per_page:{items_per_page}")
	var bld Builder
	b.ReportAllocs()
	for b.Loop() {
		_ = bld.Prefix(tpl, benchLookup)
		bld.ID("alice")
		_ = bld.QueryString("page=1&items_per_page=10")
		bld.Caller("user-17")
		_ = bld.String()
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
		tpl := MustParsePattern(c.pattern)
		dst := make([]string, 0, 8)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				dst, _ = tpl.AppendMatches(dst[:0], c.key, 16)
			}
		})
	}
}
