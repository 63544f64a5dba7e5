package keys

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hoardcache/hoard/internal/glob"
)

func FuzzEscape(f *testing.F) {
	for _, s := range [][2]string{
		{"", "x"}, {"alice", "bob"}, {"*", "%2A"}, {"1&b=2", "1%26b%3D2"}, {"a:b", "a%3Ab"},
		{"\x00\x7f\xff", " "}, {"café", "caf%C3%A9"}, {`[]\{}#`, "%"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, v, w string) {
		e := Escape(v)
		if string(AppendEscape(nil, v)) != e {
			t.Fatalf("Escape and AppendEscape disagree on %q", v)
		}
		for i := 0; i < len(e); i++ {
			if hardSet[e[i]] {
				t.Fatalf("Escape(%q) = %q holds reserved byte %q", v, e, e[i])
			}
			if e[i] == '%' && !escapeAt(e, i) {
				t.Fatalf("Escape(%q) = %q has a %% that starts no valid escape at %d", v, e, i)
			}
		}
		if back, err := unescape(e); err != nil || back != v {
			t.Fatalf("unescape(Escape(%q)) = %q, %v", v, back, err)
		}
		if ew := Escape(w); (ew == e) != (v == w) {
			t.Fatalf("Escape not injective: %q -> %q, %q -> %q", v, e, w, ew)
		}
		if Escape(v+w) != e+Escape(w) {
			t.Fatalf("Escape(%q+%q) is not the concatenation of the escapes", v, w)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"widget", "widgets:page_{page}:items_per_page:{items_per_page}", "{username}_posts:*",
		"{a}_{b}_{c}_*", "user_{id", "a}b", "{{a}}", "{}", "{1}", "a b", "#x", "x[1]", `a\b`,
		"*?", "{a}{b}", "{a}:{a}", "\xff", "é{x}", "{a}=*{b}",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, pattern bool) {
		parse := ParseKey
		if pattern {
			parse = ParsePattern
		}
		tpl, err := parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Template != s || se.Pattern != pattern || se.Offset < 0 || se.Offset > len(s) {
				t.Fatalf("parse(%q): bad error %#v", s, err)
			}
			if !strings.HasPrefix(err.Error(), "hoard: ") {
				t.Fatalf("parse(%q): message %q lacks the hoard: prefix", s, err)
			}
			return
		}
		if tpl.String() != s {
			t.Fatalf("String() = %q, want %q", tpl.String(), s)
		}
		again, err := parse(tpl.String())
		if err != nil || !slices.Equal(again.Names(), tpl.Names()) {
			t.Fatalf("reparse of %q: %v", s, err)
		}
		if !pattern {
			if _, err := ParsePattern(s); err != nil {
				t.Fatalf("key template %q is not a valid pattern template: %v", s, err)
			}
		}
		// Formatting with every name supplied succeeds, and with a value
		// that escapes to itself gives back the template's shape.
		out, err := tpl.AppendFormat(nil, func(name string) (string, bool) { return "{" + name + "}", true })
		if err != nil {
			t.Fatal(err)
		}
		want := strings.NewReplacer("{", "%7B", "}", "%7D").Replace(s)
		if string(out) != want {
			t.Fatalf("format of %q with {name} values = %q, want %q", s, out, want)
		}
		if len(tpl.Names()) > 0 {
			var me *MissingError
			if _, err := tpl.AppendFormat(nil, func(string) (string, bool) { return "", false }); !errors.As(err, &me) || me.Name != tpl.Names()[0] {
				t.Fatalf("missing value: %v", err)
			}
		}
	})
}

// fuzzValues maps the names of tpl to the NUL-separated fields of s (reused
// cyclically).
func fuzzValues(tpl *Template, s string) map[string]string {
	fields := strings.Split(s, "\x00")
	m := map[string]string{}
	for i, n := range tpl.names {
		m[n] = fields[i%len(fields)]
	}
	return m
}

// fuzzPairs reads s as NUL-separated name, value, name, value...
func fuzzPairs(s string) []Pair {
	if s == "" {
		return nil
	}
	f := strings.Split(s, "\x00")
	var p []Pair
	for i := 0; i < len(f); i += 2 {
		v := ""
		if i+1 < len(f) {
			v = f[i+1]
		}
		p = append(p, Pair{f[i], v})
	}
	return p
}

type keyTuple struct {
	vals      map[string]string
	id        string
	hasID     bool
	query     []Pair // sorted
	caller    string
	hasCaller bool
}

func (k keyTuple) equal(o keyTuple) bool {
	if len(k.vals) != len(o.vals) || k.hasID != o.hasID || k.hasCaller != o.hasCaller ||
		(k.hasID && k.id != o.id) || (k.hasCaller && k.caller != o.caller) || !slices.Equal(k.query, o.query) {
		return false
	}
	for n, v := range k.vals {
		if o.vals[n] != v {
			return false
		}
	}
	return true
}

func buildKey(t *testing.T, tpl *Template, k keyTuple) string {
	t.Helper()
	key, err := appendKey(nil, tpl, lookupMap(k.vals), k.id, k.hasID, k.query, k.caller, k.hasCaller)
	if err != nil {
		t.Fatal(err)
	}
	return string(key)
}

// literalPrefix returns the literal text of tpl before its first
// placeholder.
func literalPrefix(tpl *Template) string {
	if p := tpl.parts[0]; p.name < 0 {
		return p.lit
	}
	return ""
}

// decodeKey reads a key built from tpl back into its parts, the way the
// parse rules promise is always possible: every placeholder is followed by
// literal text holding a byte no escaped value holds, or ends its segment.
func decodeKey(tpl *Template, key string) (keyTuple, bool) {
	k := keyTuple{vals: map[string]string{}}
	rest := key
	parts := tpl.parts
	for i := 0; i < len(parts); i++ {
		p := parts[i]
		if p.name < 0 {
			if !strings.HasPrefix(rest, p.lit) {
				return k, false
			}
			rest = rest[len(p.lit):]
			continue
		}
		next := ""
		if i+1 < len(parts) {
			next = parts[i+1].lit
		}
		// The value ends where the first hard byte of the rest is, less
		// the literal text before the first hard byte of next; if next has
		// none, at the segment's end less next.
		h := strings.IndexFunc(next, func(r rune) bool { return r < 0x80 && hardSet[r] })
		var end int
		if h >= 0 {
			j := strings.IndexFunc(rest, func(r rune) bool { return r < 0x80 && hardSet[r] })
			if j < 0 {
				return k, false
			}
			end = j - h
		} else {
			j := strings.IndexByte(rest, ':')
			if j < 0 {
				j = len(rest)
			}
			end = j - len(next)
		}
		if end < 0 {
			return k, false
		}
		v, err := unescape(rest[:end])
		if err != nil {
			return k, false
		}
		name := tpl.names[p.name]
		if old, dup := k.vals[name]; dup && old != v {
			return k, false
		}
		k.vals[name] = v
		rest = rest[end:]
	}
	if rest == "" {
		return k, true
	}
	if rest[0] != ':' {
		return k, false
	}
	segs := strings.Split(rest[1:], ":")
	if s := segs[0]; !strings.HasPrefix(s, "q=") && !strings.HasPrefix(s, "u=") {
		id, err := unescape(s)
		if err != nil {
			return k, false
		}
		k.id, k.hasID = id, true
		segs = segs[1:]
	}
	if len(segs) > 0 && strings.HasPrefix(segs[0], "q=") {
		for _, kv := range strings.Split(segs[0][2:], "&") {
			n, v, ok := strings.Cut(kv, "=")
			n, err1 := unescape(n)
			v, err2 := unescape(v)
			if !ok || err1 != nil || err2 != nil {
				return k, false
			}
			k.query = append(k.query, Pair{n, v})
		}
		segs = segs[1:]
	}
	if len(segs) > 0 && strings.HasPrefix(segs[0], "u=") {
		c, err := unescape(segs[0][2:])
		if err != nil {
			return k, false
		}
		k.caller, k.hasCaller = c, true
		segs = segs[1:]
	}
	return k, len(segs) == 0
}

func FuzzKeyNamespace(f *testing.F) {
	f.Add("widget", "", "", "42", "43", "", "", "", "", uint8(1|4))
	f.Add("{username}_posts:page_{page}:items_per_page:{items_per_page}", "alice\x001\x0010", "bob\x001\x0010", "alice", "bob", "", "", "", "", uint8(5))
	f.Add("widget", "", "", "42", "42", "a\x001&b=2", "a\x001\x00b\x002", "", "", uint8(5))
	f.Add("w", "", "", "", "", "", "", "*", "bob", uint8(2|8))
	f.Add("w", "", "", "q=1", "", "", "1", "", "", uint8(1))
	f.Add("{a}:{b}", "x:y\x00z", "x\x00y:z", "", "", "", "", "", "", uint8(0))
	f.Add("{a}={b}", "x=y\x00z", "x\x00y=z", "", "", "", "", "", "", uint8(0))
	f.Add("a{x}b:c{y}", "", "b:c", "", "", "", "", "u", "u", uint8(3|12))
	f.Fuzz(func(t *testing.T, text, vals1, vals2, id1, id2, q1, q2, c1, c2 string, flags uint8) {
		tpl, err := ParseKey(text)
		if err != nil {
			return
		}
		tuple := func(vals, id, q, c string, bits uint8) keyTuple {
			k := keyTuple{vals: fuzzValues(tpl, vals), id: id, hasID: bits&1 != 0, query: fuzzPairs(q), caller: c, hasCaller: bits&2 != 0}
			slices.SortStableFunc(k.query, comparePairs)
			return k
		}
		k1, k2 := tuple(vals1, id1, q1, c1, flags), tuple(vals2, id2, q2, c2, flags>>2)
		key1, key2 := buildKey(t, tpl, k1), buildKey(t, tpl, k2)
		for _, key := range []string{key1, key2} {
			if strings.HasPrefix(key, "#") {
				t.Fatalf("key %q starts with the reserved #", key)
			}
			if !strings.HasPrefix(key, literalPrefix(tpl)) {
				t.Fatalf("key %q does not start with the template's literal text %q", key, literalPrefix(tpl))
			}
			if strings.ContainsAny(key, `*?[]\{}`) || strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				t.Fatalf("key %q holds a glob metacharacter, brace, space or control byte", key)
			}
		}
		if (key1 == key2) != k1.equal(k2) {
			t.Fatalf("template %q: tuples %+v and %+v give keys %q and %q", text, k1, k2, key1, key2)
		}
		for i, k := range []keyTuple{k1, k2} {
			key := []string{key1, key2}[i]
			got, ok := decodeKey(tpl, key)
			if !ok || !got.equal(k) {
				t.Fatalf("template %q: key %q decodes to %+v (ok=%v), built from %+v", text, key, got, ok, k)
			}
		}
	})
}

func FuzzPatternSoundness(f *testing.F) {
	f.Add("{username}_posts:page_{page}:items_per_page:{items_per_page}", "{username}_posts:*", "alice\x001\x0010", "alice", "alice", "", "", uint8(1), uint8(0))
	f.Add("{username}_posts:page_{page}:items_per_page:{items_per_page}", "{username}_posts:*", "*\x001\x0010", "*", "", "", "", uint8(1), uint8(3))
	f.Add("widgets:page_{page}:items_per_page:{items_per_page}", "widgets:*", "1\x0010", "", "", "a\x00b", "u", uint8(2), uint8(5))
	f.Add("user", "user:{id}", "", "10", "10", "", "", uint8(1), uint8(0))
	f.Add("user", "user:1", "", "1", "10", "", "", uint8(1), uint8(0))
	f.Add("{a}:{b}", "{a}_{b}_{c}_*", "x_y\x00z_w", "x\x00y", "", "", "", uint8(0), uint8(7))
	f.Add("{a}_x:{b}", "*{a}*", "x_x_x\x00_", "_x", "", "", "", uint8(0), uint8(9))
	f.Add("w:{a}", "w:{a}?{a}*", "xx%\x00", "x", "id", "k\x00v", "me", uint8(3), uint8(2))
	f.Fuzz(func(t *testing.T, ktext, ptext, kvals, pvals, id, q, caller string, flags, cut uint8) {
		ktpl, err := ParseKey(ktext)
		if err != nil {
			return
		}
		k := keyTuple{vals: fuzzValues(ktpl, kvals), id: id, hasID: flags&1 != 0, query: fuzzPairs(q), caller: caller, hasCaller: flags&2 != 0}
		key := buildKey(t, ktpl, k)
		// The fuzzed pattern, plus patterns derived from the key template,
		// which match the key far more often.
		texts := []string{ptext}
		c := int(cut) % (len(ktext) + 1)
		texts = append(texts, ktext[:c]+"*", ktext[:c]+"*"+ktext[c:], "*"+ktext[c:], ktext[:c]+"?"+ktext[c:], ktext+":*", ktext+"*")
		if c < len(ktext) {
			texts = append(texts, ktext[:c]+"?"+ktext[c+1:])
		}
		for _, ptext := range texts {
			ptpl, err := ParsePattern(ptext)
			if err != nil {
				continue
			}
			out, ok := ptpl.AppendMatches(nil, key, 256)
			if ptpl.m.direct || ptpl.m.literal {
				walk, wok := ptpl.appendMatchesWalk(nil, key, 256)
				if wok && (!ok || !slices.Equal(walk, out)) {
					t.Fatalf("%q vs %q: direct path %q, %v; walk %q, %v", ptext, key, out, ok, walk, wok)
				}
			}
			for i, r := range out {
				if !refGlob(r, key) || (key != "" && !globMatch(r, key)) {
					t.Fatalf("%q.AppendMatches(%q) gave %q, which does not match", ptext, key, r)
				}
				if i > 0 && out[i-1] >= r {
					t.Fatalf("%q.AppendMatches(%q) = %q: not sorted and distinct", ptext, key, out)
				}
			}
			// Writes with the fuzzed values, with the key's own values,
			// and with each value the key's values could be cut into.
			tries := []map[string]string{fuzzValues(ptpl, pvals), k.vals, fuzzValues(ptpl, kvals)}
			if k.hasID {
				tries = append(tries, fuzzValues(ptpl, id))
			}
			for _, vals := range tries {
				for _, n := range ptpl.names {
					if _, ok := vals[n]; !ok {
						vals[n] = pvals
					}
				}
				b, err := ptpl.AppendFormat(nil, lookupMap(vals))
				if err != nil {
					t.Fatal(err)
				}
				pat := string(b)
				if (globMatch(pat, key) || refGlob(pat, key)) && ok && !slices.Contains(out, pat) {
					t.Fatalf("write pattern %q (template %q, values %q) matches key %q, but AppendMatches gave %q",
						pat, ptext, vals, key, out)
				}
			}
			if len(key) <= 10 && len(ptpl.names) <= 2 {
				if want := bruteMatches(ptpl, key); !ok || !slices.Equal(out, want) {
					t.Fatalf("%q.AppendMatches(%q) = %q, %v; brute force %q", ptext, key, out, ok, want)
				}
			}
		}
	})
}

// langMatch reports whether key is in the language of pattern template t
// filled with vals, computed from the template's own structure: its literal
// "*" matches any run of bytes and its "?" one byte, every other literal
// byte and every byte of every escaped value only itself. It is the
// specification of "values never widen a pattern": a formatted pattern must
// glob-match exactly these keys.
func langMatch(t *Template, vals map[string]string, key string) bool {
	// tokens: 0..255 a literal byte, -1 "*", -2 "?".
	var tok []int
	for _, p := range t.parts {
		if p.name >= 0 {
			for _, c := range []byte(Escape(vals[t.names[p.name]])) {
				tok = append(tok, int(c))
			}
			continue
		}
		for _, c := range []byte(p.lit) {
			switch c {
			case '*':
				tok = append(tok, -1)
			case '?':
				tok = append(tok, -2)
			default:
				tok = append(tok, int(c))
			}
		}
	}
	cur := make([]bool, len(key)+1)
	nxt := make([]bool, len(key)+1)
	cur[0] = true
	for _, tk := range tok {
		clear(nxt)
		for j := 0; j <= len(key); j++ {
			switch {
			case tk == -1:
				nxt[j] = cur[j] || (j > 0 && nxt[j-1])
			case j == 0:
			case tk == -2:
				nxt[j] = cur[j-1]
			default:
				nxt[j] = cur[j-1] && int(key[j-1]) == tk
			}
		}
		cur, nxt = nxt, cur
	}
	return cur[len(key)]
}

// prefixPattern returns the pattern template that covers every key of key
// template k whose first parts match: k's text up to and including the
// last hard byte (":", "=", "&", "#") of its literal part at index i, then
// "*" ("{username}_posts:page_{page}:..." cut at 1 gives "{username}_posts:*").
// ok is false when that literal holds no hard byte.
func prefixPattern(k *Template, i int) (text string, ok bool) {
	var b strings.Builder
	for j, p := range k.parts[:i+1] {
		if p.name >= 0 {
			b.WriteString("{" + k.names[p.name] + "}")
			continue
		}
		if j < i {
			b.WriteString(p.lit)
			continue
		}
		h := strings.LastIndexAny(p.lit, ":=&#")
		if h < 0 {
			return "", false
		}
		b.WriteString(p.lit[:h+1])
	}
	b.WriteString("*")
	return b.String(), true
}

// FuzzPatternWidth: a pattern formatted from a template with any values is
// never wider than its template. (1) It glob-matches exactly the keys that
// the template's own "*" and "?" allow with those values written literally
// (langMatch), also behind a CACHE_KEY_PREFIX namespace escaped as
// Cache.DeletePattern does; (2) a pattern cut from a key template at a
// separator ("{username}_posts:*" from the listing's template) matches a key
// of that template exactly when the values of its placeholders are equal: a
// username of "*", "al" or "alice:x" never covers alice's keys.
func FuzzPatternWidth(f *testing.F) {
	f.Add("{username}_posts:page_{page}:items_per_page:{items_per_page}", "*\x001\x0010", "alice\x001\x0010", "x", "k\x00v", "bob", "ns:", "ns:", uint8(1))
	f.Add("{username}_posts:page_{page}:items_per_page:{items_per_page}", "al", "alice\x001\x0010", "", "", "", "", "", uint8(0))
	f.Add("{username}_posts:page_{page}:items_per_page:{items_per_page}", "alice:x", "alice\x00x", "", "", "", "a", "a", uint8(0))
	f.Add("widgets:page_{page}:items_per_page:{items_per_page}", "1\x00?", "1\x001", "", "", "", "*", "x", uint8(0))
	f.Add("{a}:{b}:{c}", "x%3A\x00y", "x:\x00y", "", "", "", "", "", uint8(2))
	f.Add("{a}={b}&{c}#d", "[\x00]\x00\\", "[\x00]\x00\\", "1", "", "", "n[s]", "n[s]", uint8(1))
	f.Add("u{a}:v", "%2A", "*", "", "", "", "", "", uint8(0))
	f.Fuzz(func(t *testing.T, ktext, pvals, kvals, id, q, caller, ns, ns2 string, flags uint8) {
		ktpl, err := ParseKey(ktext)
		if err != nil {
			return
		}
		k := keyTuple{vals: fuzzValues(ktpl, kvals), id: id, hasID: flags&1 != 0, query: fuzzPairs(q), caller: caller, hasCaller: flags&2 != 0}
		key := buildKey(t, ktpl, k)
		keys := []string{key, pvals, kvals + ":" + id}
		// Patterns: the key template cut at each separator (the first
		// ncut), and the key template itself read as a pattern.
		var ptexts []string
		for i, p := range ktpl.parts {
			if p.name < 0 {
				if pt, ok := prefixPattern(ktpl, i); ok {
					ptexts = append(ptexts, pt)
				}
			}
		}
		ncut := len(ptexts)
		ptexts = append(ptexts, ktext, ktext+"*", ktext+":?*")
		for pi, ptext := range ptexts {
			ptpl, err := ParsePattern(ptext)
			if err != nil {
				t.Fatalf("pattern %q derived from key template %q does not parse: %v", ptext, ktext, err)
			}
			for _, vals := range []map[string]string{fuzzValues(ptpl, pvals), k.vals} {
				b, err := ptpl.AppendFormat(nil, lookupMap(vals))
				if err != nil {
					t.Fatal(err)
				}
				pat := string(b)
				for _, kk := range keys {
					if got, want := glob.Match(pat, kk), langMatch(ptpl, vals, kk); got != want {
						t.Fatalf("pattern %q (template %q, values %q) vs key %q: glob %v, template language %v", pat, ptext, vals, kk, got, want)
					}
					full := glob.Escape(ns) + pat
					if glob.Match(full, ns2+kk) && (!strings.HasPrefix(ns2+kk, ns) || !langMatch(ptpl, vals, strings.TrimPrefix(ns2+kk, ns))) {
						t.Fatalf("namespaced pattern %q matches %q outside namespace %q's language of %q", full, ns2+kk, ns, ptext)
					}
				}
				if pi < ncut {
					// A cut pattern: matches the key exactly when its
					// placeholders hold the key's values.
					same := true
					for _, n := range ptpl.names {
						same = same && vals[n] == k.vals[n]
					}
					if got := glob.Match(pat, key); got != same {
						t.Fatalf("pattern %q (template %q, values %q) vs key %q of %q (values %q): match %v, values equal %v",
							pat, ptext, vals, key, ktext, k.vals, got, same)
					}
				}
			}
		}
	})
}
