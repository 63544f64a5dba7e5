package keys

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func matches(t *testing.T, tpl *Template, key string, max int) ([]string, bool) {
	t.Helper()
	out, ok := tpl.AppendMatches(nil, key, max)
	if tpl.m.direct || tpl.m.literal {
		// The shortcuts must agree with the general walk.
		// (The walk may refuse a key too big for its budget.)
		walk, wok := tpl.appendMatchesWalk(nil, key, max)
		if wok && (!ok || !slices.Equal(walk, out)) {
			t.Errorf("%q vs %q: direct path %q, %v; walk %q, %v", tpl, key, out, ok, walk, wok)
		}
	}
	for _, r := range out {
		if !refGlob(r, key) || (key != "" && !globMatch(r, key)) {
			t.Errorf("%q.AppendMatches(%q) gave %q, which does not match the key", tpl, key, r)
		}
	}
	return out, ok
}

func TestAppendMatchesSpec(t *testing.T) {
	alice := "alice_posts:page_1:items_per_page:10:alice"
	tests := []struct {
		pattern string
		key     string
		want    []string
	}{
		{"{username}_posts:*", alice, []string{"alice_posts:*"}},
		{"{username}_posts:*", alice + ":q=sort=new:u=17", []string{"alice_posts:*"}},
		{"{username}_posts:*", "%2A_posts:page_1:items_per_page:10:%2A", []string{"%2A_posts:*"}},
		{"{username}_posts:*", "alice_post_cache:3", nil},
		{"{username}_posts:*", "widget:42", nil},
		{"widgets:*", "widgets:page_1:items_per_page:10", []string{"widgets:*"}},
		{"widgets:*", "widget:42", nil},
		{"user:1", "user:10", nil},
		{"user:1", "user:1", []string{"user:1"}},
		{"user:{id}", "user:10", []string{"user:10"}},
		{"user:{id}", "user:10:q=a=1", nil},
		{"user:{id}*", "user:10:q=a=1", []string{"user:*", "user:1*", "user:10*"}},
		{"user:?", "user:1", []string{"user:?"}},
		{"user:?", "user:10", nil},
		{"{a}:{b}", "x:y", []string{"x:y"}},
		{"{a}{b}", "xy", []string{"xy"}},
		{"{a}", "x%2Ay", []string{"x%2Ay"}},
		{"{a}", "x%41y", nil}, // %41 is not an escape Escape makes
		{"{a}", "x%2ay", nil}, // nor lower-case hex
		{"{a}", "x*y", nil},   // a value never holds a raw "*"
		{"*{a}", "x:y", []string{"*", "*y"}},
		{"{a}*", "", []string{"*"}},
		{"{a}_{b}_*", "a_b_c_d", []string{"a_b_*", "a_b_c_*"}},
		{"*_{b}_*", "a_b_c_d", []string{"*_b_*", "*_b_c_*", "*_c_*"}},
		{"{u}:{u}", "x:x", []string{"x:x"}},
		{"{u}:{u}", "x:y", nil},
		{"{u}*{u}", "ab:cab", []string{"*", "ab*ab"}},
		{"{u}*{u}", "ab:cb", []string{"*"}},
	}
	for _, tt := range tests {
		tpl := mustPattern(tt.pattern)
		got, ok := matches(t, tpl, tt.key, 100)
		if !ok || !slices.Equal(got, tt.want) {
			t.Errorf("%q.AppendMatches(%q) = %q, %v; want %q", tt.pattern, tt.key, got, ok, tt.want)
		}
		if brute := bruteMatches(tpl, tt.key); !slices.Equal(brute, tt.want) {
			t.Errorf("test table is wrong: brute force for %q, %q gives %q", tt.pattern, tt.key, brute)
		}
	}
}

func TestUsernameStarDoesNotWiden(t *testing.T) {
	lookup := func(user string) func(string) (string, bool) {
		return lookupMap(map[string]string{"username": user, "page": "1", "items_per_page": "10"})
	}
	key := func(user string) string {
		k, err := appendKey(nil, mustKey("{username}_posts:page_{page}:items_per_page:{items_per_page}"), lookup(user), user, true, nil, "", false)
		if err != nil {
			t.Fatal(err)
		}
		return string(k)
	}
	evil := key("*")
	if !strings.Contains(evil, "%2A") || strings.Contains(evil, "*") {
		t.Fatalf("key for username * = %q", evil)
	}
	b, err := mustPattern("{username}_posts:*").AppendFormat(nil, lookup("*"))
	if err != nil {
		t.Fatal(err)
	}
	pat := string(b)
	if pat != "%2A_posts:*" {
		t.Fatalf("pattern = %q", pat)
	}
	if globMatch(pat, key("bob")) {
		t.Errorf("pattern %q written by user * matches bob's key %q", pat, key("bob"))
	}
	if !globMatch(pat, evil) {
		t.Errorf("pattern %q does not match its own user's key %q", pat, evil)
	}
	got, ok := matches(t, mustPattern("{username}_posts:*"), key("bob"), 10)
	if !ok || !slices.Equal(got, []string{"bob_posts:*"}) {
		t.Errorf("matches for bob = %q, %v", got, ok)
	}
}

func TestAppendMatchesMax(t *testing.T) {
	tpl := mustPattern("user:{id}*")
	key := "user:12345"
	all, ok := matches(t, tpl, key, 6)
	if !ok || len(all) != 6 {
		t.Fatalf("max 6: %q, %v", all, ok)
	}
	dst := []string{"keep"}
	out, ok := tpl.AppendMatches(dst, key, 5)
	if ok || !slices.Equal(out, dst) {
		t.Errorf("max 5 (one too few): %q, %v; want dst unchanged and ok=false", out, ok)
	}
	// max 0: a match is "more than max"; no match is fine.
	if _, ok := tpl.AppendMatches(nil, key, 0); ok {
		t.Error("max 0 with a match: ok = true")
	}
	if out, ok := tpl.AppendMatches(nil, "widget:1", 0); !ok || len(out) != 0 {
		t.Error("max 0 without a match: ok = false")
	}
	if _, ok := mustPattern("user:1").AppendMatches(nil, "user:1", 0); ok {
		t.Error("max 0, literal match: ok = true")
	}
	// Appends after dst.
	out, ok = mustPattern("{a}:*").AppendMatches([]string{"x"}, "k:1", 10)
	if !ok || !slices.Equal(out, []string{"x", "k:*"}) {
		t.Errorf("append: %q, %v", out, ok)
	}
}

// TestAppendMatchesAdversarial feeds long keys built to make a naive
// backtracking matcher exponential or a naive walk cubic. The assertions
// are on the results; a quadratic-or-worse matcher would time out the test.
func TestAppendMatchesAdversarial(t *testing.T) {
	abc := mustPattern("{a}_{b}_{c}_*")
	long := strings.Repeat("a_", 2000) // 4000 bytes, 2000 underscores
	if out, ok := abc.AppendMatches(nil, long, 64); ok || len(out) != 0 {
		t.Errorf("%d-byte key of a_ with max 64: %d results, ok=%v; want ok=false (thousands of patterns match)", len(long), len(out), ok)
	}
	// Exactly three underscores deep in a long run of safe bytes: one
	// result, however long the values.
	key := strings.Repeat("x", 3000) + "_" + strings.Repeat("y", 3000) + "_z_" + strings.Repeat("w", 1000)
	out, ok := abc.AppendMatches(nil, key, 64)
	if want := []string{key[:len(key)-1000] + "*"}; !ok || !slices.Equal(out, want) {
		t.Errorf("one-match key: got %d results, ok=%v", len(out), ok)
	}
	// No underscore at all: cheap rejection.
	if out, ok := abc.AppendMatches(nil, strings.Repeat("a", 8000), 64); !ok || len(out) != 0 {
		t.Errorf("no-underscore key: %q, %v", out, ok)
	}
	// Underscores but never three before a colon-free tail ... and many
	// colons: placeholders cannot cross them, so nothing matches.
	key = strings.Repeat("a_b:", 1500)
	if out, ok := abc.AppendMatches(nil, key, 64); !ok || len(out) != 0 {
		t.Errorf("colon key: %d results, ok=%v; want none", len(out), ok)
	}
	// Stars around placeholders on a key of all colons: the placeholders
	// can only be empty, so a single pattern, though there are millions of
	// ways to place them.
	stars := mustPattern("*{a}*{b}*{c}*")
	key = strings.Repeat(":", 300)
	out, ok = stars.AppendMatches(nil, key, 64)
	if !ok || !slices.Equal(out, []string{"****"}) {
		t.Errorf("stars on colons: %q, %v", out, ok)
	}
	// A template whose literal runs repeat: "*a*a*a*a*" against a run of a.
	aaa := mustPattern("*a*a*a*a*{x}")
	out, ok = aaa.AppendMatches(nil, strings.Repeat("a", 2000)+":", 64)
	if !ok || !slices.Equal(out, []string{"*a*a*a*a*"}) {
		t.Errorf("*a*a*a*a*{x}: %q, %v", out, ok)
	}
	// With no limit on results, the work budget still ends the walk.
	if out, ok := abc.AppendMatches(nil, strings.Repeat("_", 60000), 1<<30); ok {
		t.Errorf("60000 underscores: %d results, ok=true; want the work budget to answer ok=false", len(out))
	}
	// Too long to examine: refuses (ok=false), which is safe.
	huge := strings.Repeat("q", maxCells)
	if _, ok := mustPattern("*{a}").AppendMatches(nil, huge, 64); ok {
		t.Error("a key over the table limit was examined")
	}
}

// TestAppendMatchesOracle compares AppendMatches with the brute-force
// definition on many small random templates and keys.
func TestAppendMatchesOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab_:*?="
	keyAlphabet := []string{"a", "b", "_", ":", "%2A", "%3A", "%", "*", "%41"}
	n := 3000
	if testing.Short() {
		n = 300
	}
	tried, nonEmpty, direct := 0, 0, 0
	for tried < n {
		// template: literal bytes, wildcards and up to 3 placeholders
		var sb strings.Builder
		nph := 0
		for i := rng.IntN(6) + 1; i > 0; i-- {
			if rng.IntN(3) == 0 && nph < 3 {
				sb.WriteString("{" + string(rune('p'+rng.IntN(3))) + "}")
				nph++
			} else {
				sb.WriteByte(alphabet[rng.IntN(len(alphabet))])
			}
		}
		tpl, err := ParsePattern(sb.String())
		if err != nil {
			continue
		}
		piece := func() string { return keyAlphabet[rng.IntN(len(keyAlphabet))] }
		var kb strings.Builder
		if rng.IntN(2) == 0 {
			// A key the template probably matches: its text with each
			// placeholder and wildcard replaced by random pieces.
			for i := 0; i < len(tpl.src); i++ {
				switch c := tpl.src[i]; c {
				case '{':
					i += strings.IndexByte(tpl.src[i:], '}')
					fallthrough
				case '*':
					for j := rng.IntN(3); j > 0; j-- {
						kb.WriteString(piece())
					}
				case '?':
					kb.WriteByte(piece()[0])
				default:
					kb.WriteByte(c)
				}
			}
		} else {
			for i := rng.IntN(6); i > 0; i-- {
				kb.WriteString(piece())
			}
		}
		key := kb.String()
		if len(key) > 9 {
			continue
		}
		tried++
		got, ok := matches(t, tpl, key, 1000)
		want := bruteMatches(tpl, key)
		if !ok || !slices.Equal(got, want) {
			t.Errorf("%q.AppendMatches(%q) = %q, %v; brute force %q", tpl, key, got, ok, want)
		}
		if len(want) > 0 {
			nonEmpty++
			if tpl.m.direct {
				direct++
			}
		}
	}
	if direct < n/50 {
		t.Errorf("only %d matching cases took the direct path; the test is too weak", direct)
	}
	t.Logf("%d cases, %d matched, %d of them by the direct path", n, nonEmpty, direct)
	if nonEmpty < n/4 {
		t.Errorf("only %d of %d random cases matched anything; the test is too weak", nonEmpty, n)
	}
}

// TestSoundnessSpecRoutes checks the property on the demo's routes: every
// pattern a write formats that matches a read's key is among the read's
// matches.
func TestSoundnessSpecRoutes(t *testing.T) {
	keyTpls := []string{"widget", "widgets:page_{page}:items_per_page:{items_per_page}", "user",
		"{username}_posts:page_{page}:items_per_page:{items_per_page}", "{username}_post_cache"}
	patTpls := []string{"widgets:*", "{username}_posts:*", "{username}_post*", "*_posts:*", "user:{username}", "widget:?"}
	values := []string{"alice", "bob", "*", "a_posts", "a:b", "", "1", "10", "_", "%2A", "?"}
	for _, kt := range keyTpls {
		kTpl := mustKey(kt)
		for _, v1 := range values {
			for _, v2 := range values[:5] {
				vals := lookupMap(map[string]string{"username": v1, "page": v2, "items_per_page": "10"})
				q, err := ParseQuery(nil, "x="+url_(v1))
				if err != nil {
					t.Fatal(err)
				}
				k, err := appendKey(nil, kTpl, vals, v2, true, q, v1, true)
				if err != nil {
					t.Fatal(err)
				}
				key := string(k)
				for _, pt := range patTpls {
					pTpl := mustPattern(pt)
					got, ok := matches(t, pTpl, key, 64)
					if !ok {
						t.Errorf("%q vs %q: ok=false", pt, key)
						continue
					}
					for _, w := range values {
						b, err := pTpl.AppendFormat(nil, lookupMap(map[string]string{"username": w}))
						if err != nil {
							t.Fatal(err)
						}
						pat := string(b)
						if globMatch(pat, key) && !slices.Contains(got, pat) {
							t.Errorf("write pattern %q matches key %q but %q.AppendMatches gave %q", pat, key, pt, got)
						}
					}
				}
			}
		}
	}
}

func url_(s string) string { return fmt.Sprintf("%x", s) }
