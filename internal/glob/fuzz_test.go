package glob

import (
	"strings"
	"testing"
)

// FuzzMatch checks Match against the transliteration of Redis's matcher on
// arbitrary patterns and strings, and the promise of LiteralPrefix. Seeds
// are in testdata/fuzz/FuzzMatch.
func FuzzMatch(f *testing.F) {
	for _, c := range matchCases {
		f.Add(c.pattern, c.s)
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		got := Match(pattern, s)
		// Redis gives up past 1000 nested stars; Match does not.
		if strings.Count(pattern, "*") < 1000 {
			if want := redisKeysMatch(pattern, s); got != want {
				t.Fatalf("Match(%q, %q) = %v, Redis says %v", pattern, s, got, want)
			}
		}
		checkPrefix(t, pattern, s)
		// The escaped pattern, read as a literal, matches s only if equal.
		if got, want := Match(Escape(pattern), s), pattern == s; got != want {
			t.Fatalf("Match(Escape(%q), %q) = %v, want %v", pattern, s, got, want)
		}
	})
}

// FuzzEscape checks that Escape(s) matches s and nothing else, and that its
// literal prefix is s.
func FuzzEscape(f *testing.F) {
	f.Add("", "")
	f.Add("*", "")
	f.Add("*", "x")
	f.Add("a?b", "axb")
	f.Add("[ab]", "a")
	f.Add("\\", "\\\\")
	f.Add("user:alice", "user:alice:1")
	f.Fuzz(func(t *testing.T, s, other string) {
		p := Escape(s)
		if !Match(p, s) {
			t.Fatalf("Match(Escape(%q) = %q, %q) = false", s, p, s)
		}
		if other != s && Match(p, other) {
			t.Fatalf("Match(Escape(%q) = %q, %q) = true; it must match only %q", s, p, other, s)
		}
		if got := LiteralPrefix(p); got != s {
			t.Fatalf("LiteralPrefix(Escape(%q)) = %q, want the input", s, got)
		}
		if hasMeta(p) {
			t.Fatalf("Escape(%q) = %q has an unescaped metacharacter", s, p)
		}
	})
}
