package keys

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hoardcache/hoard/internal/glob"
)

// globMatch is Redis's glob semantics (package internal/glob), cross-checked
// against refGlob: a pattern formatted from a template holds no "[", "]" or
// "\", so the two agree on every non-empty string. (On the empty key Redis
// matches only "" and "*", where refGlob, like AppendMatches, also lets "**"
// match: a harmless extra pattern.)
func globMatch(p, s string) bool {
	got := glob.Match(p, s)
	if s != "" && got != refGlob(p, s) {
		panic(fmt.Sprintf("internal/glob.Match(%q, %q) = %v, reference matcher disagrees", p, s, got))
	}
	return got
}

// refGlob is a reference matcher for the glob subset hoard's patterns use:
// "*" (any run, possibly empty) and "?" (one byte); every other byte is
// literal. It is a plain dynamic program, O(len(p) × len(s)).
func refGlob(p, s string) bool {
	// cur[j]: p[:i] matches s[:j]
	cur := make([]bool, len(s)+1)
	nxt := make([]bool, len(s)+1)
	cur[0] = true
	for i := 0; i < len(p); i++ {
		clear(nxt)
		switch p[i] {
		case '*':
			any := false
			for j := 0; j <= len(s); j++ {
				any = any || cur[j]
				nxt[j] = any
			}
		case '?':
			for j := 1; j <= len(s); j++ {
				nxt[j] = cur[j-1]
			}
		default:
			for j := 1; j <= len(s); j++ {
				nxt[j] = cur[j-1] && s[j-1] == p[i]
			}
		}
		cur, nxt = nxt, cur
	}
	return cur[len(s)]
}

var errBadEscape = errors.New("bad escape")

// unescape inverts Escape, strictly: it accepts only what Escape produces.
func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if !escapeAt(s, i) {
				return "", errBadEscape
			}
			b.WriteByte(byte(unhex(s[i+1])<<4 | unhex(s[i+2])))
			i += 2
			continue
		}
		if escapeSet[c] {
			return "", errBadEscape
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// inL reports whether v is a possible escaped value.
func inL(v string) bool {
	_, err := unescape(v)
	return err == nil
}

// bruteMatches is the specification of AppendMatches, computed the slow
// way: every assignment of a substring of key (a possible escaped value) to
// each distinct name, formatted, kept if it glob-matches key. Sorted,
// distinct.
func bruteMatches(t *Template, key string) []string {
	var cands []string
	seen := map[string]bool{}
	for i := 0; i <= len(key); i++ {
		for j := i; j <= len(key); j++ {
			v := key[i:j]
			if !seen[v] && inL(v) {
				seen[v] = true
				cands = append(cands, v)
			}
		}
	}
	vals := make([]string, len(t.names))
	res := map[string]bool{}
	var rec func(k int)
	rec = func(k int) {
		if k == len(vals) {
			var b []byte
			for _, p := range t.parts {
				if p.name < 0 {
					b = append(b, p.lit...)
				} else {
					b = append(b, vals[p.name]...) // already escaped
				}
			}
			if refGlob(string(b), key) {
				res[string(b)] = true
			}
			return
		}
		for _, c := range cands {
			vals[k] = c
			rec(k + 1)
		}
	}
	rec(0)
	out := make([]string, 0, len(res))
	for r := range res {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// lookupMap returns a lookup function over m.
func lookupMap(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// mustKey and mustPattern parse a template the test knows to be valid.
func mustKey(s string) *Template     { return must(ParseKey(s)) }
func mustPattern(s string) *Template { return must(ParsePattern(s)) }

func must(t *Template, err error) *Template {
	if err != nil {
		panic(err)
	}
	return t
}

// appendKey appends to dst the key prefix[:id][:q=<query>][:u=<caller>]
// (prefix[:id][:q=…][:u=…]) the way the middleware builds it (readKey in route.go): tpl
// formatted by AppendFormat, then AppendID, AppendQuery (query is sorted in
// place) and AppendCaller. On a *MissingError it returns dst unchanged.
func appendKey(dst []byte, tpl *Template, lookup func(string) (string, bool), id string, hasID bool, query []Pair, caller string, hasCaller bool) ([]byte, error) {
	dst, err := tpl.AppendFormat(dst, lookup)
	if err != nil {
		return dst, err
	}
	if hasID {
		dst = AppendID(dst, id)
	}
	dst = AppendQuery(dst, query)
	if hasCaller {
		dst = AppendCaller(dst, caller)
	}
	return dst, nil
}
