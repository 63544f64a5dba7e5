package keys

import (
	"errors"
	"slices"
	"strings"
	"testing"
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
		if string(AppendEscape(nil, v)) != e || escapedLen(v) != len(e) {
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
	var b Builder
	if err := b.Prefix(tpl, lookupMap(k.vals)); err != nil {
		t.Fatal(err)
	}
	if k.hasID {
		b.ID(k.id)
	}
	b.Query(k.query)
	if k.hasCaller {
		b.Caller(k.caller)
	}
	prefix, err := tpl.AppendFormat(nil, lookupMap(k.vals))
	if err != nil {
		t.Fatal(err)
	}
	if alt := string(AppendKey(nil, prefix, k.id, k.hasID, k.query, k.caller, k.hasCaller)); alt != b.String() {
		t.Fatalf("AppendKey %q and Builder %q disagree", alt, b.String())
	}
	return b.String()
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
			slices.SortFunc(k.query, comparePairs)
			return k
		}
		k1, k2 := tuple(vals1, id1, q1, c1, flags), tuple(vals2, id2, q2, c2, flags>>2)
		key1, key2 := buildKey(t, tpl, k1), buildKey(t, tpl, k2)
		for _, key := range []string{key1, key2} {
			if strings.HasPrefix(key, "#") {
				t.Fatalf("key %q starts with the reserved #", key)
			}
			if !strings.HasPrefix(key, tpl.literalPrefix()) {
				t.Fatalf("key %q does not start with the template's literal text %q", key, tpl.literalPrefix())
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
				pat, err := ptpl.Format(lookupMap(vals))
				if err != nil {
					t.Fatal(err)
				}
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
