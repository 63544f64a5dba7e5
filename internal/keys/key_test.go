package keys

import (
	"errors"
	"net/url"
	"slices"
	"testing"
)

func TestKeySpec(t *testing.T) {
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
		// Appended after what dst holds, as the middleware appends the key
		// to its buffer.
		got, err := appendKey([]byte("ns|"), mustKey(tt.tpl), vals, tt.id, tt.hasID, tt.query, tt.caller, tt.hasCaller)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "ns|"+tt.want {
			t.Errorf("key of %q (id %q %v, query %v, caller %q %v) = %q, want %q", tt.tpl, tt.id, tt.hasID, tt.query, tt.caller, tt.hasCaller, got, "ns|"+tt.want)
		}
	}
}

func TestQueryNeverShared(t *testing.T) {
	// "?a=1%26b%3D2" and "?a=1&b=2" never share an entry.
	k := func(raw string) string {
		q, err := ParseQuery(nil, raw)
		if err != nil {
			t.Fatalf("ParseQuery(%q): %v", raw, err)
		}
		key, err := appendKey(nil, mustKey("widget"), lookupMap(nil), "42", true, q, "", false)
		if err != nil {
			t.Fatal(err)
		}
		return string(key)
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
	}
	// Same pairs as url.ParseQuery for valid queries.
	for _, raw := range []string{"a=1&b=2&a=0", "x=%2F%3A&y=+", "k"} {
		pairs, err := ParseQuery(nil, raw)
		if err != nil {
			t.Fatal(err)
		}
		uv, _ := url.ParseQuery(raw)
		var fromURL []Pair
		for name, vs := range uv {
			for _, v := range vs {
				fromURL = append(fromURL, Pair{name, v})
			}
		}
		slices.SortStableFunc(pairs, comparePairs)
		slices.SortStableFunc(fromURL, comparePairs)
		if !slices.Equal(pairs, fromURL) {
			t.Errorf("ParseQuery(%q) = %v, url.ParseQuery gives %v", raw, pairs, fromURL)
		}
	}
}

// An InvalidateKeys entry formats its id with AppendValue after the prefix
// and a ":"; it must give the key a route gives with AppendID, whose id is
// the path value.
func TestAppendValueAsID(t *testing.T) {
	vals := lookupMap(map[string]string{"username": "a b"})
	prefix, err := mustKey("{username}_post_cache").AppendFormat(nil, vals)
	if err != nil {
		t.Fatal(err)
	}
	got, err := mustKey("{username}").AppendValue(append(prefix, ':'), vals)
	if err != nil {
		t.Fatal(err)
	}
	route := AppendID([]byte("a%20b_post_cache"), "a b")
	if string(got) != "a%20b_post_cache:a%20b" || string(got) != string(route) {
		t.Errorf("InvalidateKeys key = %q, route key %q; want both %q", got, route, "a%20b_post_cache:a%20b")
	}
	var me *MissingError
	if got, err := mustKey("{nope}").AppendValue([]byte("widget:"), vals); !errors.As(err, &me) || string(got) != "widget:" {
		t.Errorf("AppendValue missing = %v, dst %q; want a *MissingError and dst unchanged", err, got)
	}
}

// The whole key of a cache hit, built into reused buffers as the middleware
// builds it, allocates nothing.
func TestKeyNoAlloc(t *testing.T) {
	tpl := mustKey("{username}_posts:page_{page}:items_per_page:{items_per_page}")
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
	var buf []byte
	var pairs []Pair
	build := func() {
		var err error
		pairs, err = ParseQuery(pairs[:0], "page=1&items_per_page=10&sort=name")
		if err != nil {
			t.Fatal(err)
		}
		buf, err = appendKey(buf[:0], tpl, lookup, "alice", true, pairs, "user-17", true)
		if err != nil {
			t.Fatal(err)
		}
	}
	build() // warm the buffers
	if allocs := testing.AllocsPerRun(100, build); allocs != 0 {
		t.Errorf("building a key allocated %v times, want 0", allocs)
	}
	if got, want := string(buf), "alice_posts:page_1:items_per_page:10:alice:q=items_per_page=10&page=1&sort=name:u=user-17"; got != want {
		t.Errorf("key = %q, want %q", got, want)
	}
}
