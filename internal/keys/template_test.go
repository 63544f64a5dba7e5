package keys

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in      string
		pattern bool
		off     int
		want    string // substring of the message
	}{
		{"", false, 0, `key template is empty; give a literal`},
		{"", true, 0, `pattern template is empty`},
		{"user_{id", false, 5, `hoard: key template "user_{id": unbalanced "{" at byte 5; close it with "}"`},
		{"user_id}", false, 7, `unbalanced "}" at byte 7; remove it`},
		{"a{b{c}}", false, 3, `nested "{" at byte 3 inside the placeholder opened at byte 1`},
		{"a{}", false, 1, `empty placeholder "{}" at byte 1; name it`},
		{"a{1x}", false, 2, `invalid placeholder name "1x" at byte 2`},
		{"a{x-y}", true, 2, `invalid placeholder name "x-y"`},
		{"a{x*}", true, 2, `invalid placeholder name "x*"`},
		{"a b", false, 1, `space at byte 1`},
		{"a\tb", false, 1, `control character U+0009 at byte 1`},
		{"a\u00a0b", true, 1, `whitespace or control character U+00A0 at byte 1`},
		{"a\x7fb", false, 1, `U+007F at byte 1`},
		{"a\xffb", false, 1, `invalid UTF-8 at byte 1`},
		{"#gen", false, 0, `leading "#" is reserved`},
		{"#gen*", true, 0, `leading "#" is reserved`},
		{"{a}#gen", false, 3, `"#" at byte 3 starts the key when the placeholders before it are empty`},
		{"{a}{b}#*", true, 6, `"#" at byte 6 starts the key`},
		{"widgets:*", false, 8, `glob character '*' at byte 8; key templates cannot hold`},
		{"user?", false, 4, `glob character '?'`},
		{"user[1]", false, 4, `glob character '['`},
		{`user\1`, false, 4, `glob character '\\'`},
		{"user[12]*", true, 4, `'[' at byte 4; pattern templates support only the wildcards "*" and "?"`},
		{"user]*", true, 4, `']' at byte 4`},
		{`user\*`, true, 4, `'\\' at byte 4`},
		{"{a}_{b}", false, 4, `placeholders {a} (byte 0) and {b} (byte 4) are separated only by "_", which a value can contain too`},
		{"x{a}{b}", false, 4, `placeholders {a} (byte 1) and {b} (byte 4) are adjacent`},
		{"{a}%{b}", false, 4, `separated only by "%"`},
	}
	for _, tt := range tests {
		var err error
		if tt.pattern {
			_, err = ParsePattern(tt.in)
		} else {
			_, err = ParseKey(tt.in)
		}
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("parse(%q, pattern=%v) = %v, want a *SyntaxError", tt.in, tt.pattern, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parse(%q, pattern=%v) error\n  %s\nwant it to contain\n  %s", tt.in, tt.pattern, err, tt.want)
		}
		if se.Offset != tt.off || se.Template != tt.in || se.Pattern != tt.pattern {
			t.Errorf("parse(%q): SyntaxError{Offset %d, Template %q, Pattern %v}, want offset %d", tt.in, se.Offset, se.Template, se.Pattern, tt.off)
		}
		if !strings.HasPrefix(err.Error(), "hoard: ") {
			t.Errorf("error %q lacks the hoard: prefix", err)
		}
	}
}

func TestParseOK(t *testing.T) {
	tests := []struct {
		in      string
		pattern bool
		names   []string
	}{
		{"widget", false, nil},
		{"widgets:page_{page}:items_per_page:{items_per_page}", false, []string{"page", "items_per_page"}},
		{"{username}_posts:page_{page}:items_per_page:{items_per_page}", false, []string{"username", "page", "items_per_page"}},
		{"{username}_post_cache", false, []string{"username"}},
		{"{a}:{b}:{a}", false, []string{"a", "b"}},
		{"{a}={b}&{c}#{d}", false, []string{"a", "b", "c", "d"}},
		{"café:{_x9}", false, []string{"_x9"}},
		{"w%:{a}", false, []string{"a"}},
		{"widgets:*", true, nil},
		{"{username}_posts:*", true, []string{"username"}},
		{"{a}_{b}_{c}_*", true, []string{"a", "b", "c"}},
		{"*{a}{b}?", true, []string{"a", "b"}},
		{"user:1", true, nil},
		{"a#b", false, nil},
	}
	for _, tt := range tests {
		parse := ParseKey
		if tt.pattern {
			parse = ParsePattern
		}
		tpl, err := parse(tt.in)
		if err != nil {
			t.Errorf("parse(%q): %v", tt.in, err)
			continue
		}
		if tpl.String() != tt.in {
			t.Errorf("String() = %q, want %q", tpl.String(), tt.in)
		}
		if !slices.Equal(tpl.Names(), tt.names) {
			t.Errorf("%q: Names() = %q, want %q", tt.in, tpl.Names(), tt.names)
		}
	}
	// A key template is a valid pattern template.
	if _, err := ParsePattern("{a}_{b}"); err != nil {
		t.Errorf("ParsePattern({a}_{b}): %v; patterns may have ambiguous placeholders", err)
	}
}

func TestNamesIsACopy(t *testing.T) {
	tpl := mustKey("{a}:{b}")
	tpl.Names()[0] = "zzz"
	if tpl.Names()[0] != "a" {
		t.Fatal("Names() exposes the template's own slice")
	}
}

func TestAppendFormat(t *testing.T) {
	vals := map[string]string{
		"username": "alice", "page": "1", "items_per_page": "10",
		"evil": "*", "colon": "a:b", "empty": "",
	}
	tests := []struct {
		tpl     string
		pattern bool
		want    string
	}{
		{"widget", false, "widget"},
		{"{username}_posts:page_{page}:items_per_page:{items_per_page}", false, "alice_posts:page_1:items_per_page:10"},
		{"{username}_post_cache", false, "alice_post_cache"},
		{"{username}_posts:*", true, "alice_posts:*"},
		{"{evil}_posts:*", true, "%2A_posts:*"},
		{"u:{colon}:?", true, "u:a%3Ab:?"},
		{"x{empty}y", false, "xy"},
		{"{page}:{page}", false, "1:1"},
	}
	for _, tt := range tests {
		parse := ParseKey
		if tt.pattern {
			parse = ParsePattern
		}
		tpl := must(parse(tt.tpl))
		got, err := tpl.AppendFormat([]byte("pre|"), lookupMap(vals))
		if err != nil || string(got) != "pre|"+tt.want {
			t.Errorf("%q.AppendFormat = %q, %v; want %q", tt.tpl, got, err, "pre|"+tt.want)
		}
	}
}

func TestAppendFormatMissing(t *testing.T) {
	tpl := mustPattern("{username}_posts:{page}*")
	got, err := tpl.AppendFormat([]byte("keep"), lookupMap(map[string]string{"username": "bob"}))
	var me *MissingError
	if !errors.As(err, &me) || me.Name != "page" || me.Template != tpl.String() {
		t.Fatalf("err = %v, want *MissingError for page", err)
	}
	if string(got) != "keep" {
		t.Errorf("dst after a missing value = %q, want it unchanged", got)
	}
	want := `hoard: no value for placeholder {page} in template "{username}_posts:{page}*"`
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want prefix %q", err, want)
	}
	if _, err := tpl.AppendValue(nil, lookupMap(nil)); !errors.As(err, &me) || me.Name != "username" {
		t.Errorf("AppendValue err = %v, want *MissingError for username", err)
	}
}

func TestAppendValue(t *testing.T) {
	vals := lookupMap(map[string]string{"username": "a:b", "id": "7"})
	tests := []struct{ tpl, want string }{
		{"global", "global"},
		{"{username}", "a%3Ab"},
		{"{username}=x:{id}", "a%3Ab%3Dx%3A7"},
	}
	for _, tt := range tests {
		got, err := mustKey(tt.tpl).AppendValue(nil, vals)
		if err != nil || string(got) != tt.want {
			t.Errorf("%q.AppendValue = %q, %v; want %q", tt.tpl, got, err, tt.want)
		}
		// The id a route takes from a path value "a:b" must be the same.
		raw := strings.NewReplacer("{username}", "a:b", "{id}", "7").Replace(tt.tpl)
		if e := Escape(raw); e != tt.want {
			t.Errorf("Escape(%q) = %q, AppendValue gave %q", raw, e, tt.want)
		}
	}
}

func TestAppendFormatNoAlloc(t *testing.T) {
	tpl := mustKey("{username}_posts:page_{page}:items_per_page:{items_per_page}")
	vals := [3]string{"alice", "1", "10"}
	buf := make([]byte, 0, 128)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		buf, err = tpl.AppendFormat(buf[:0], func(name string) (string, bool) {
			switch name {
			case "username":
				return vals[0], true
			case "page":
				return vals[1], true
			case "items_per_page":
				return vals[2], true
			}
			return "", false
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("AppendFormat allocated %v times, want 0", allocs)
	}
}
