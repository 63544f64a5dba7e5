package hoard

import (
	"slices"
	"strings"
	"testing"
)

func TestWildcardNames(t *testing.T) {
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/widgets/{id}", []string{"id"}},
		{"/users/{user}/posts/{id}", []string{"user", "id"}},
		{"/files/{path...}", []string{"path"}},
		{"/exact/{$}", nil},
		{"/w/{id:[0-9]+}", []string{"id"}},             // chi regexp
		{"/codes/{code:[a-z]{2}}/x", []string{"code"}}, // braces inside it
		{"/files/*", []string{"*"}},                    // chi catch-all
		{"/a*b/{id}", []string{"id"}},                  // not a final segment
		{"/broken/{id", nil},
		{"/", nil},
	} {
		if got := wildcardNames(tc.path); !slices.Equal(got, tc.want) {
			t.Errorf("wildcardNames(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

// FuzzWildcardNames: any pattern a router may set as r.Pattern is read
// without a panic, into non-empty names that appear in it, without a
// regexp (what follows a colon).
func FuzzWildcardNames(f *testing.F) {
	for _, p := range []string{"/widgets/{id}", "/w/{id:[0-9]{3}}", "/files/*", "/{a}/{b...}/{$}", "{{}}:*"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		for _, n := range wildcardNames(path) {
			if n == "" || !strings.Contains(path, n) || strings.Contains(n, ":") {
				t.Errorf("wildcardNames(%q) gave %q", path, n)
			}
		}
	})
}
