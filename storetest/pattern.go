package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hoardcache/hoard"
)

// testDeletePattern protects DeletePattern users from the faults of the
// Python layer hoard was modelled on and from partial walks: the pattern is a real glob (user:1 does not match
// user:10), every match goes even when there are many more than one SCAN
// page and they span every node, nothing else goes, the count is exact, and
// metacharacters inside keys are matched literally when escaped. It runs
// only on stores that implement hoard.PatternDeleter; a store that cannot
// walk keys does not implement it (rather than pretend to succeed).
func (s *suite) testDeletePattern(t *testing.T) {
	if _, ok := s.open(t).st.(hoard.PatternDeleter); !ok {
		t.Skip("the store does not implement hoard.PatternDeleter")
	}

	patterns := func(t *testing.T) (*env, hoard.PatternDeleter) {
		t.Helper()
		e := s.open(t)
		pd, ok := e.st.(hoard.PatternDeleter)
		if !ok {
			t.Fatalf("storetest: Harness.New returned a %T, which does not implement hoard.PatternDeleter, after a store that did", e.st)
		}
		return e, pd
	}

	t.Run("Large", func(t *testing.T) {
		e, pd := patterns(t)
		const n = 12000
		items := e.keys("item", n)
		matches := append(items, e.key("item", ""))
		others := append(e.keys("other", 500),
			e.key("item"),         // the prefix without the separator
			e.key("items", "1"),   // the Python layer matched user:1* for user:1
			e.key("Item", "1"),    // case matters
			e.key("x", "item:1"),  // the pattern is anchored at the start
			e.key("itemx", "1:2"), // and ':' is literal
		)
		value := func(i int) []byte { return []byte(fmt.Sprint(i)) }
		e.fill(matches, value, longTTL)
		e.fill(others, value, longTTL)
		s.requireSpread(e, items[:100])
		deleted, err := pd.DeletePattern(e.ctx, e.key("item", "*"))
		if err != nil {
			t.Fatalf("DeletePattern(%q): %v", e.key("item", "*"), err)
		}
		if deleted != len(matches) {
			t.Errorf("DeletePattern returned %d, want %d (the number of matching keys)", deleted, len(matches))
		}
		left := 0
		for i, v := range e.getAll(matches) {
			if v != nil {
				if left < 5 {
					t.Errorf("matching key %q survived DeletePattern", matches[i])
				}
				left++
			}
		}
		if left > 0 {
			t.Errorf("%d of %d matching keys survived DeletePattern", left, len(matches))
		}
		for i, v := range e.getAll(others) {
			if msg := diff(v, value(i)); msg != "" {
				t.Errorf("DeletePattern(%q) touched non-matching key %q: %s", e.key("item", "*"), others[i], msg)
			}
		}
	})

	t.Run("Exact", func(t *testing.T) {
		// Without wildcards a pattern names one key: user:1 is not user:10.
		e, pd := patterns(t)
		one, ten, sub := e.key("user", "1"), e.key("user", "10"), e.key("user", "1", "x")
		for _, k := range []string{one, ten, sub} {
			e.set(k, []byte("v"), longTTL)
		}
		n, err := pd.DeletePattern(e.ctx, one)
		if err != nil || n != 1 {
			t.Errorf("DeletePattern(%q) = %d, %v; want 1, nil", one, n, err)
		}
		e.wantAbsent(one)
		e.wantValue(ten, []byte("v"))
		e.wantValue(sub, []byte("v"))
	})

	t.Run("NoMatch", func(t *testing.T) {
		e, pd := patterns(t)
		n, err := pd.DeletePattern(e.ctx, e.key("nothing", "*"))
		if err != nil || n != 0 {
			t.Errorf("DeletePattern(no match) = %d, %v; want 0, nil", n, err)
		}
	})

	t.Run("Glob", func(t *testing.T) {
		// Redis glob syntax, as documented on hoard.Store.
		e, pd := patterns(t)
		names := []string{"a1", "b1", "c1", "d1", "A1", "a12", "-1"}
		for i, c := range []struct {
			pattern string
			want    []string
		}{
			{"?1", []string{"a1", "b1", "c1", "d1", "A1", "-1"}},
			{"[ab]1", []string{"a1", "b1"}},
			{"[^a]1", []string{"b1", "c1", "d1", "A1", "-1"}},
			{"[a-c]1", []string{"a1", "b1", "c1"}},
			{"a*", []string{"a1", "a12"}},
			{"*2", []string{"a12"}},
			{"*", names},
			{"??1", nil},
		} {
			ns := fmt.Sprintf("g%d", i)
			for _, name := range names {
				e.set(e.key(ns, name), []byte(name), longTTL)
			}
			pattern := e.key(ns, c.pattern)
			n, err := pd.DeletePattern(e.ctx, pattern)
			if err != nil || n != len(c.want) {
				t.Errorf("DeletePattern(%q) = %d, %v; want %d, nil", pattern, n, err, len(c.want))
			}
			for _, name := range names {
				_, found := e.get(e.key(ns, name))
				if matched := slices.Contains(c.want, name); found == matched {
					t.Errorf("DeletePattern(%q): key %q present=%v, want present=%v", pattern, e.key(ns, name), found, !matched)
				}
			}
		}
	})

	t.Run("EscapedMetacharacters", func(t *testing.T) {
		// Keys may hold glob metacharacters (escaping in hoard keeps them
		// out of values, but stores are used directly too). An escaped
		// pattern deletes exactly the literal key, never its look-alikes.
		e, pd := patterns(t)
		for i, c := range []struct {
			literal string
			decoys  []string // keys the unescaped pattern would match
		}{
			{`a*b`, []string{`aXb`, `ab`, `aXYb`}},
			{`a?b`, []string{`aXb`}},
			{`a[b]`, []string{`ab`}},
			{`a\b`, []string{`ab`}},
			{`[a-c]`, []string{`b`}},
			{`*`, []string{`x`, `xyz`}},
			{`\*`, []string{`*`}},
			{`x[^y]`, []string{`xz`}},
		} {
			ns := fmt.Sprintf("m%d", i)
			lit := e.key(ns, c.literal)
			e.set(lit, []byte("v"), longTTL)
			for _, d := range c.decoys {
				e.set(e.key(ns, d), []byte("decoy"), longTTL)
			}
			pattern := e.key(ns, escapeGlob(c.literal))
			n, err := pd.DeletePattern(e.ctx, pattern)
			if err != nil || n != 1 {
				t.Errorf("DeletePattern(%q) = %d, %v; want 1, nil", pattern, n, err)
			}
			e.wantAbsent(lit)
			for _, d := range c.decoys {
				if _, found := e.get(e.key(ns, d)); !found {
					t.Errorf("DeletePattern(%q) deleted %q: an escaped metacharacter matched as a wildcard", pattern, e.key(ns, d))
				}
			}
		}
		// An escaped literal prefix followed by a real wildcard.
		hits := []string{e.key("p", "a*b", "1"), e.key("p", "a*b", "2")}
		miss := e.key("p", "aXb", "1")
		for _, k := range append(hits, miss) {
			e.set(k, []byte("v"), longTTL)
		}
		pattern := e.key("p", escapeGlob("a*b"), "*")
		n, err := pd.DeletePattern(e.ctx, pattern)
		if err != nil || n != 2 {
			t.Errorf("DeletePattern(%q) = %d, %v; want 2, nil", pattern, n, err)
		}
		e.wantAbsent(hits[0])
		e.wantAbsent(hits[1])
		e.wantValue(miss, []byte("v"))
	})
}

// escapeGlob escapes the glob metacharacters of s with backslashes.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
