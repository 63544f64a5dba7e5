package glob

import (
	"strings"
	"testing"
)

// matchCases are the semantics of Redis's stringmatchlen (KEYS, SCAN MATCH),
// each checked against redis-server 7.0 by TestMatchAgainstRedis's fixed
// list as well.
var matchCases = []struct {
	pattern, s string
	want       bool
}{
	// literals
	{"", "", true},
	{"", "a", false},
	{"abc", "abc", true},
	{"abc", "abcd", false},
	{"abcd", "abc", false},
	{"abc", "ABC", false},
	{"a:b", "a:b", true},

	// *
	{"*", "", true}, // KEYS/SCAN special case
	{"**", "", false},
	{"a*", "", false},
	{"*", "anything:at:all", true},
	{"**", "x", true},
	{"a*", "a", true},
	{"a*", "abc", true},
	{"a*", "ba", false},
	{"*a", "a", true},
	{"*a", "bca", true},
	{"*a", "ab", false},
	{"a*b", "ab", true},
	{"a*b", "a:x:b", true},
	{"a*b", "a:x:bc", false},
	{"a*b*c", "abc", true},
	{"a*b*c", "aXbYbZc", true},
	{"a*b*c", "acb", false},
	{"user:1", "user:10", false},
	{"user:1*", "user:10", true},
	{"*:*", "a:b", true},
	{"*:*", "ab", false},
	{"a**b", "ab", true},
	{"a*b**", "ab", true},
	{"*?", "a", true},
	{"*?*", "", false},
	{"?*", "ab", true},

	// ?
	{"?", "a", true},
	{"?", "", false},
	{"?", "ab", false},
	{"a?c", "abc", true},
	{"a?c", "a:c", true},
	{"a?c", "ac", false},
	{"??", "é", true}, // bytes, not runes

	// classes
	{"[abc]", "a", true},
	{"[abc]", "c", true},
	{"[abc]", "d", false},
	{"[abc]", "", false},
	{"[abc]", "ab", false},
	{"[^abc]", "d", true},
	{"[^abc]", "a", false},
	{"[a-c]", "b", true},
	{"[a-c]", "d", false},
	{"[c-a]", "b", true}, // reversed range
	{"[^a-c]", "b", false},
	{"[^a-c]", "z", true},
	{"[a-cx-z]", "y", true},
	{"[a-cx-z]", "m", false},
	{"[-a]", "-", true},
	{"[a-]", "-", false}, // range ']'..'a', unterminated
	{"[a-]", "_", true},
	{"[a-]", "]", true},
	{"[a-]", "a", true},
	{"[a-]]", "a", true}, // the first ']' ends the range, the second the set
	{"[a-]]", "a]", false},
	{"[]", "]", false},
	{"[]", "a", false},
	{"[]a]", "]", false}, // "[]" then "a]"
	{"[]a]", "a]", false},
	{"[^]", "x", true},
	{"[^]", "]", true},
	{"[^]", "", false},
	{"[\\]]", "]", true},
	{"[\\]a]", "a", true},
	{"[\\^a]", "^", true},
	{"[\\-]", "-", true},
	{"[\\\\]", "\\", true},
	{"[a\\-z]", "b", false},
	{"[a\\-z]", "-", true},
	{"[a-\\]]", "\\]", true}, // range '\'..'a', then a literal ']'
	{"[a-\\]]", "\\", false},
	{"[a-\\]]", "]]", true},
	{"[\\", "\\", true}, // trailing backslash inside a set is literal
	{"[*?]", "*", true},
	{"[*?]", "x", false},
	{"x[ab]y", "xby", true},
	{"x[ab]y", "xcy", false},

	// unterminated sets run to the end of the pattern
	{"[", "", false},
	{"[", "[", false},
	{"[", "a", false},
	{"[^", "a", true},
	{"[^", "", false},
	{"[^", "ab", false},
	{"[ab", "a", true},
	{"[ab", "b", true},
	{"[ab", "[ab", false},
	{"a[", "a", false},
	{"a[", "a[", false},
	{"*[", "x", false},
	{"[a-", "a", true},
	{"[a-", "-", true},
	{"[a-", "b", false},

	// escapes
	{"\\*", "*", true},
	{"\\*", "a", false},
	{"\\?", "?", true},
	{"\\?", "a", false},
	{"\\[a]", "[a]", true},
	{"\\[a]", "a", false},
	{"\\a", "a", true},
	{"\\\\", "\\", true},
	{"\\", "\\", true}, // a trailing backslash is literal
	{"a\\", "a\\", true},
	{"a\\", "a", false},
	{"a\\*b", "a*b", true},
	{"a\\*b", "axb", false},
	{"*\\*", "abc*", true},
	{"*\\*", "abc", false},

	// outside a set, ] ^ - are literal
	{"]", "]", true},
	{"a]", "a]", true},
	{"^a", "^a", true},
	{"a-z", "a-z", true},
	{"a-z", "b", false},

	// binary and high bytes
	{"a\x00b", "a\x00b", true},
	{"?", "\x00", true},
	{"[\x00]", "\x00", true},
	{"*\x00", "ab\x00", true},
	{"[\x80-\xff]", "\x90", true}, // unsigned order (see package doc)
	{"[\x80-\xff]", "a", false},
	{"\xff*", "\xff\xfe", true},
}

func TestMatch(t *testing.T) {
	for _, c := range matchCases {
		if got := Match(c.pattern, c.s); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
		// The table itself must describe Redis: check it against the
		// transliterated reference too.
		if ref := redisKeysMatch(c.pattern, c.s); ref != c.want {
			t.Errorf("reference stringmatchlen(%q, %q) = %v, table says %v", c.pattern, c.s, ref, c.want)
		}
	}
}

// TestMatchExhaustive compares Match with the transliteration of Redis's
// matcher on every pattern of up to 5 bytes over an alphabet of literals
// and metacharacters, against every string of up to 3 bytes.
func TestMatchExhaustive(t *testing.T) {
	patterns := allStrings("ab*?[]^-\\", 5)
	if testing.Short() {
		patterns = allStrings("ab*?[]^-\\", 4)
	}
	strs := allStrings("ab]-\\", 3)
	n := 0
	for _, p := range patterns {
		for _, s := range strs {
			got, want := Match(p, s), redisKeysMatch(p, s)
			if got != want {
				t.Errorf("Match(%q, %q) = %v, Redis says %v", p, s, got, want)
				if n++; n > 20 {
					t.Fatal("too many differences")
				}
			}
		}
	}
}

// allStrings returns every string over alphabet of length 0 to max.
func allStrings(alphabet string, max int) []string {
	out := []string{""}
	level := []string{""}
	for range max {
		var next []string
		for _, prefix := range level {
			for i := 0; i < len(alphabet); i++ {
				next = append(next, prefix+alphabet[i:i+1])
			}
		}
		out = append(out, next...)
		level = next
	}
	return out
}

// TestMatchPathological would not finish if a '*' backtracked recursively:
// 40 stars against 10,000 bytes is about 10^100 ways to split the string.
// Match does it in about 40·10,000 steps.
func TestMatchPathological(t *testing.T) {
	s := strings.Repeat("a", 10000)
	cases := []struct {
		pattern string
		want    bool
	}{
		{strings.Repeat("a*", 40) + "b", false},
		{strings.Repeat("*a", 40) + "*b", false},
		{strings.Repeat("a*", 40) + "a", true},
		{strings.Repeat("*?", 40) + "*b", false},
		{strings.Repeat("*[a]", 40) + "*[^a]", false},
		{strings.Repeat("*", 5000) + "b", false},
	}
	for _, c := range cases {
		if got := Match(c.pattern, s); got != c.want {
			t.Errorf("Match(%q…, 10000×a) = %v, want %v", c.pattern[:20], got, c.want)
		}
	}
	// More stars than Redis's nesting limit: Match has no limit.
	many := strings.Repeat("*a", 1500)
	if !Match(many, strings.Repeat("xa", 2000)) {
		t.Errorf("Match(1500×\"*a\", 2000×\"xa\") = false, want true")
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		Match("user:[a-z]*:posts:*\\*", "user:alice:posts:42*")
	})
	if allocs != 0 {
		t.Errorf("Match allocates %v times per call, want 0", allocs)
	}
}

func TestEscape(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"plain:key", "plain:key"},
		{"*", "\\*"},
		{"a?b", "a\\?b"},
		{"[x]", "\\[x\\]"},
		{"back\\slash", "back\\\\slash"},
		{"^-", "^-"},
		{"*?[]\\", "\\*\\?\\[\\]\\\\"},
	}
	for _, c := range cases {
		if got := Escape(c.in); got != c.want {
			t.Errorf("Escape(%q) = %q, want %q", c.in, got, c.want)
		}
		p := Escape(c.in)
		if !Match(p, c.in) {
			t.Errorf("Match(Escape(%q), %q) = false", c.in, c.in)
		}
		for _, other := range []string{c.in + "x", "x" + c.in, "", "a", "\\", "*"} {
			if other != c.in && Match(p, other) {
				t.Errorf("Match(Escape(%q), %q) = true; an escaped pattern must match only its input", c.in, other)
			}
		}
		if got := LiteralPrefix(p); got != c.in {
			t.Errorf("LiteralPrefix(Escape(%q)) = %q, want the input", c.in, got)
		}
	}
}

func TestEscapeNoAllocWithoutMeta(t *testing.T) {
	s := "user:alice:posts"
	if allocs := testing.AllocsPerRun(100, func() { Escape(s) }); allocs != 0 {
		t.Errorf("Escape of a string without metacharacters allocates %v times, want 0", allocs)
	}
}

func TestLiteralPrefix(t *testing.T) {
	cases := []struct{ pattern, want string }{
		{"", ""},
		{"abc", "abc"},
		{"user:*", "user:"},
		{"user:?x", "user:"},
		{"user:[ab]", "user:"},
		{"*abc", ""},
		{"a\\*b*", "a*b"},
		{"a\\\\b?", "a\\b"},
		{"a\\[b[", "a[b"},
		{"a\\", "a\\"}, // trailing backslash is a literal backslash
		{"\\", "\\"},
		{"a]b^c-d*", "a]b^c-d"},
		{"\\*\\?\\[\\]\\\\", "*?[]\\"},
		{"x\\*y\\", "x*y\\"},
	}
	for _, c := range cases {
		got := LiteralPrefix(c.pattern)
		if got != c.want {
			t.Errorf("LiteralPrefix(%q) = %q, want %q", c.pattern, got, c.want)
		}
	}
}

// checkPrefix checks the promise of LiteralPrefix for one pair.
func checkPrefix(t *testing.T, pattern, s string) {
	t.Helper()
	prefix := LiteralPrefix(pattern)
	m := Match(pattern, s)
	if m && !strings.HasPrefix(s, prefix) {
		t.Errorf("Match(%q, %q) = true but %q lacks LiteralPrefix %q", pattern, s, s, prefix)
	}
	if !hasMeta(pattern) && m != (s == prefix) {
		t.Errorf("pattern %q has no metacharacter: Match(_, %q) = %v, but LiteralPrefix is %q", pattern, s, m, prefix)
	}
}

// hasMeta reports whether pattern has an unescaped * ? or [.
func hasMeta(pattern string) bool {
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '*', '?', '[':
			return true
		case '\\':
			i++
		}
	}
	return false
}

func TestLiteralPrefixProperty(t *testing.T) {
	for _, p := range allStrings("a*?[]\\", 4) {
		for _, s := range allStrings("a*?[]\\", 3) {
			checkPrefix(t, p, s)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	cases := []struct{ name, pattern, s string }{
		{"prefix", "user:alice:*", "user:alice:posts:page_1:items_per_page:10"},
		{"middle", "*:posts:*", "user:alice:posts:page_1:items_per_page:10"},
		{"class", "user:[a-z]*:posts:?*", "user:alice:posts:page_1:items_per_page:10"},
		{"miss", "widget:*", "user:alice:posts:page_1:items_per_page:10"},
		{"pathological", strings.Repeat("a*", 20) + "b", strings.Repeat("a", 200)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Match(c.pattern, c.s)
			}
		})
	}
}
