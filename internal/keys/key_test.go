package keys

import (
	"errors"
	"net/url"
	"slices"
	"testing"
)

func TestAppendKeySpec(t *testing.T) {
	vals := lookupMap(map[string]string{"username": "alice", "page": "1", "items_per_page": "10"})
	tests := []struct {
		tpl       string
		id        string
		hasID     bool
		query     []Pair
		caller    string
		hasCaller bool
		want      string
	}{
		{"widget", "42", true, nil, "", false, "widget:42"},
		{"{username}_posts:page_{page}:items_per_page:{items_per_page}", "alice", true, nil, "", false,
			"alice_posts:page_1:items_per_page:10:alice"},
		{"widget", "", false, nil, "", false, "widget"},
		{"widget", "", true, nil, "", false, "widget:"},
		{"widget", "a:b", true, nil, "", false, "widget:a%3Ab"},
		{"widget", "42", true, []Pair{{"b", "2"}, {"a", "9"}, {"a", "1"}}, "", false, "widget:42:q=a=9&a=1&b=2"}, // one name keeps its order
		{"widget", "42", true, []Pair{{"a", "1&b=2"}}, "", false, "widget:42:q=a=1%26b%3D2"},
		{"widget", "42", true, nil, "u7", true, "widget:42:u=u7"},
		{"widget", "42", true, nil, "*", true, "widget:42:u=%2A"},
		{"widget", "", false, []Pair{{"x", ""}}, "", true, "widget:q=x=:u="},
	}
	for _, tt := range tests {
		prefix, err := MustParseKey(tt.tpl).AppendFormat(nil, vals)
		if err != nil {
			t.Fatal(err)
		}
		got := string(AppendKey([]byte("ns|"), prefix, tt.id, tt.hasID, tt.query, tt.caller, tt.hasCaller))
		if got != "ns|"+tt.want {
			t.Errorf("AppendKey(%q, %q, %v, %q, %v) = %q, want %q", prefix, tt.id, tt.query, tt.caller, tt.hasCaller, got, "ns|"+tt.want)
		}

		var b Builder
		if err := b.Prefix(MustParseKey(tt.tpl), vals); err != nil {
			t.Fatal(err)
		}
		if tt.hasID {
			b.ID(tt.id)
		}
		res := string(b.Bytes())
		b.Query(tt.query)
		if tt.hasCaller {
			b.Caller(tt.caller)
		}
		if b.String() != tt.want {
			t.Errorf("Builder = %q, want %q", b.String(), tt.want)
		}
		if string(b.Resource()) != res {
			t.Errorf("Builder.Resource() = %q, want %q", b.Resource(), res)
		}
	}
}

func TestQueryNeverShared(t *testing.T) {
	// spec 1.2: "?a=1%26b%3D2" and "?a=1&b=2" never share an entry.
	k := func(raw string) string {
		var b Builder
		if err := b.Prefix(MustParseKey("widget"), lookupMap(nil)); err != nil {
			t.Fatal(err)
		}
		b.ID("42")
		if err := b.QueryString(raw); err != nil {
			t.Fatalf("QueryString(%q): %v", raw, err)
		}
		return b.String()
	}
	distinct := []string{"a=1%26b%3D2", "a=1&b=2", "a=1", "a=1&a=1", "a=1%3Ab", "a%3D1", "a=%3D1", "", "a", "b=1", "a=1&b=3", "a=2&b=1",
		// One name's values keep their order: r.URL.Query().Get("a") tells
		// these apart.
		"a=2&a=1", "a=1&a=2", "a=1&b=0&a=2"}
	seen := map[string]string{}
	for _, raw := range distinct {
		key := k(raw)
		if prev, dup := seen[key]; dup {
			t.Errorf("queries %q and %q share key %q", prev, raw, key)
		}
		seen[key] = raw
	}
	same := [][2]string{
		{"b=2&a=1", "a=1&b=2"},
		{"a=2&b=0&a=1", "b=0&a=2&a=1"},
		{"a=x+y", "a=x%20y"},
		{"a=1&&b=2&", "b=2&a=1"},
		{"a", "a="},
		{"%61=1", "a=1"},
	}
	for _, p := range same {
		if k(p[0]) != k(p[1]) {
			t.Errorf("queries %q and %q should give one key: %q vs %q", p[0], p[1], k(p[0]), k(p[1]))
		}
	}
	if got := k("a=1%26b%3D2"); got != "widget:42:q=a=1%26b%3D2" {
		t.Errorf("key = %q", got)
	}
}

func TestParseQuery(t *testing.T) {
	got, err := ParseQuery(nil, "b=2&a=x+y&c&=v&d=%7E")
	want := []Pair{{"b", "2"}, {"a", "x y"}, {"c", ""}, {"", "v"}, {"d", "~"}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseQuery = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"a=%zz", "a=1;b=2", "a=%", "%g=1"} {
		if _, err := ParseQuery(nil, bad); !errors.Is(err, ErrBadQuery) {
			t.Errorf("ParseQuery(%q) err = %v, want ErrBadQuery", bad, err)
		}
		var b Builder
		_ = b.Prefix(MustParseKey("w"), lookupMap(nil))
		if err := b.QueryString(bad); !errors.Is(err, ErrBadQuery) || b.String() != "w" {
			t.Errorf("Builder.QueryString(%q) = %v, key %q", bad, err, b.String())
		}
	}
	// Same pairs as url.ParseQuery for valid queries.
	for _, raw := range []string{"a=1&b=2&a=0", "x=%2F%3A&y=+", "k"} {
		pairs, err := ParseQuery(nil, raw)
		if err != nil {
			t.Fatal(err)
		}
		uv, _ := url.ParseQuery(raw)
		fromURL := QueryPairs(nil, uv)
		slices.SortStableFunc(pairs, comparePairs)
		slices.SortStableFunc(fromURL, comparePairs)
		if !slices.Equal(pairs, fromURL) {
			t.Errorf("ParseQuery(%q) = %v, url.ParseQuery gives %v", raw, pairs, fromURL)
		}
	}
}

func TestBuilderIDValue(t *testing.T) {
	vals := lookupMap(map[string]string{"username": "a b"})
	var b Builder
	if err := b.Prefix(MustParseKey("{username}_post_cache"), vals); err != nil {
		t.Fatal(err)
	}
	if err := b.IDValue(MustParseKey("{username}"), vals); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "a%20b_post_cache:a%20b" {
		t.Errorf("key = %q", got)
	}
	if err := b.Prefix(MustParseKey("widget"), vals); err != nil {
		t.Fatal(err)
	}
	var me *MissingError
	if err := b.IDValue(MustParseKey("{nope}"), vals); !errors.As(err, &me) || b.String() != "widget" {
		t.Errorf("IDValue missing = %v, key %q", err, b.String())
	}
	// A missing prefix value leaves the builder empty.
	if err := b.Prefix(MustParseKey("{nope}"), vals); !errors.As(err, &me) || b.String() != "" {
		t.Errorf("Prefix missing = %v, key %q", err, b.String())
	}
}

func TestBuilderOrder(t *testing.T) {
	for name, f := range map[string]func(b *Builder){
		"ID before Prefix":  func(b *Builder) { b.ID("1") },
		"ID twice":          func(b *Builder) { b.Prefix(MustParseKey("w"), nil); b.ID("1"); b.ID("2") },
		"ID after Caller":   func(b *Builder) { b.Prefix(MustParseKey("w"), nil); b.Caller("c"); b.ID("2") },
		"Query after Query": func(b *Builder) { b.Prefix(MustParseKey("w"), nil); b.Query(nil); b.Query(nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f(new(Builder))
		}()
	}
}

func TestBuilderNoAlloc(t *testing.T) {
	tpl := MustParseKey("{username}_posts:page_{page}:items_per_page:{items_per_page}")
	var b Builder
	lookup := func(name string) (string, bool) {
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
	build := func() {
		if err := b.Prefix(tpl, lookup); err != nil {
			t.Fatal(err)
		}
		b.ID("alice")
		if err := b.QueryString("page=1&items_per_page=10&sort=name"); err != nil {
			t.Fatal(err)
		}
		b.Caller("user-17")
	}
	build() // warm the buffers
	if allocs := testing.AllocsPerRun(100, build); allocs != 0 {
		t.Errorf("Builder allocated %v times per key, want 0", allocs)
	}
	if got, want := b.String(), "alice_posts:page_1:items_per_page:10:alice:q=items_per_page=10&page=1&sort=name:u=user-17"; got != want {
		t.Errorf("key = %q, want %q", got, want)
	}
}
