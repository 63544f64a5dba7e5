// Package glob matches strings against Redis glob patterns with the
// semantics of Redis's stringmatchlen, the matcher behind KEYS and
// SCAN … MATCH, so that a store that walks its own keys (the memory store)
// deletes by pattern exactly the keys a Redis server would.
//
// Syntax, byte by byte (not rune by rune, as in Redis):
//
//	"*"       any run of bytes, including the empty run and ':'
//	"?"       exactly one byte
//	"[abc]"   one byte of the set; "[^abc]" one byte not in it
//	"[a-z]"   one byte of the range, bounds included; "[z-a]" is the same
//	"\x"      the byte x itself, also inside brackets; a trailing "\" is
//	          a literal backslash
//
// Everything else, including ']', '^' and '-' outside brackets, is literal.
// Redis's corner cases are kept on purpose:
//
//   - An unterminated '[' runs to the end of the pattern: "[ab" is "[ab]",
//     "[" matches nothing and "[^" matches any one byte.
//   - "[]" matches nothing and "[^]" any one byte: a ']' right after '[' or
//     '[^' closes the set.
//   - A '-' between two bytes always makes a range, even when the second is
//     ']': "[a-]" is the range from ']' to 'a', unterminated. A backslash
//     before a bound is not an escape ("[a-\]" is the range '\' to 'a').
//   - The empty string matches only the pattern "" and, as KEYS and SCAN
//     special-case it, the pattern "*" (stringmatchlen itself never matches
//     an empty string against a non-empty pattern, so "**" does not).
//
// Two deliberate differences from Redis: ranges compare bytes as unsigned
// (redis-server compiled where char is signed, as on x86-64, orders bytes
// >= 0x80 below 0x00 in ranges, while on arm64 it agrees with this package),
// and there is no limit on the number of '*' (Redis gives up with "no
// match" past 1000 nested stars).
//
// Match runs in O(len(pattern)·len(s)) time in the worst case and does not
// allocate: a '*' backtracks to its last position only, never recursively,
// so patterns such as "a*a*a*a*…b" cannot blow up.
package glob

import "strings"

// Match reports whether s matches the Redis glob pattern. See the package
// documentation for the syntax and its corner cases.
func Match(pattern, s string) bool {
	if s == "" {
		return pattern == "" || pattern == "*"
	}
	p, i := 0, 0
	// The position in pattern just after the last '*' seen, and the
	// position in s that this '*' currently stops at. Every token other
	// than '*' consumes exactly one byte, so on a mismatch it is enough to
	// let the last '*' swallow one more byte: earlier stars never need to
	// be revisited (the classic greedy glob argument).
	starP, starI := -1, 0
	for {
		if p < len(pattern) && i < len(s) {
			switch c := pattern[p]; c {
			case '*':
				for p+1 < len(pattern) && pattern[p+1] == '*' {
					p++
				}
				if p+1 == len(pattern) {
					return true // a trailing '*' takes the rest of s
				}
				p++
				starP, starI = p, i
				continue
			case '?':
				p++
				i++
				continue
			case '[':
				if ok, next := matchClass(pattern, p, s[i]); ok {
					p = next
					i++
					continue
				}
			case '\\':
				if p+1 < len(pattern) {
					p++ // escaped byte; a trailing '\' is itself
				}
				fallthrough
			default:
				if pattern[p] == s[i] {
					p++
					i++
					continue
				}
			}
		} else if i == len(s) {
			// s is used up: only stars may be left.
			for p < len(pattern) && pattern[p] == '*' {
				p++
			}
			if p == len(pattern) {
				return true
			}
		}
		// Mismatch: the last '*' takes one more byte, if it can leave at
		// least one byte for the token after it (which is not a '*' and
		// needs one).
		if starP < 0 || starI+1 >= len(s) {
			return false
		}
		starI++
		p, i = starP, starI
	}
}

// matchClass matches byte c against the bracket expression that starts at
// pattern[open] == '[' and returns whether it matched and the position just
// after the expression. Its parse follows stringmatchlen exactly.
func matchClass(pattern string, open int, c byte) (matched bool, next int) {
	p := open + 1
	not := p < len(pattern) && pattern[p] == '^'
	if not {
		p++
	}
	for p < len(pattern) { // an unterminated set ends with the pattern
		b := pattern[p]
		switch {
		case b == '\\' && p+1 < len(pattern):
			p++
			if pattern[p] == c {
				matched = true
			}
		case b == ']':
			return matched != not, p + 1
		case p+2 < len(pattern) && pattern[p+1] == '-':
			lo, hi := b, pattern[p+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			if lo <= c && c <= hi {
				matched = true
			}
			p += 2
		case b == c:
			matched = true
		}
		p++
	}
	return matched != not, len(pattern)
}

// Escape returns a pattern that matches s and nothing else: it puts a
// backslash before each of * ? [ ] \ in s. Match(Escape(s), t) reports
// whether t == s, and LiteralPrefix(Escape(s)) == s.
func Escape(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if isMeta(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + n)
	for i := 0; i < len(s); i++ {
		if isMeta(s[i]) {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isMeta(c byte) bool {
	return c == '*' || c == '?' || c == '[' || c == ']' || c == '\\'
}

// LiteralPrefix returns the literal text that every string matching
// pattern starts with: the pattern up to its first '*', '?' or '[', with
// backslash escapes resolved ("user\*:*" gives "user*:"). A pattern without
// any of those metacharacters matches only its LiteralPrefix.
//
// A store can use it to skip keys cheaply before calling Match, or to walk
// only a key range in an ordered index.
func LiteralPrefix(pattern string) string {
	i := 0
	for i < len(pattern) {
		switch pattern[i] {
		case '*', '?', '[':
			return pattern[:i]
		case '\\':
			return unescapePrefix(pattern, i)
		}
		i++
	}
	return pattern
}

// unescapePrefix is LiteralPrefix for a pattern whose first backslash is at
// pattern[i], with no metacharacter before it.
func unescapePrefix(pattern string, i int) string {
	var b strings.Builder
	b.Grow(len(pattern))
	b.WriteString(pattern[:i])
	for i < len(pattern) {
		c := pattern[i]
		switch c {
		case '*', '?', '[':
			return b.String()
		case '\\':
			if i+1 < len(pattern) {
				i++
				c = pattern[i]
			}
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}
