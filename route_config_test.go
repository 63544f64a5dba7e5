package hoard_test

// Configuration errors of routes fail at construction, never per request,
// with a message that names the fix. No store server needed.

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
)

func TestRouteConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		pattern string // "": through Middleware, else through Handle
		rt      hoard.Route
		want    []string // words the message must hold
	}{
		{"empty prefix", "", hoard.Route{},
			[]string{"KeyPrefix", "set it", `"widget"`}},
		{"empty prefix on a GET route", "GET /widgets/{id}", hoard.Route{ResourceID: "id"},
			[]string{"KeyPrefix"}},
		{"unbalanced {", "", hoard.Route{KeyPrefix: "{username_posts"},
			[]string{"KeyPrefix", `unbalanced "{"`, `close it with "}"`}},
		{"unbalanced }", "", hoard.Route{KeyPrefix: "username}_posts"},
			[]string{`unbalanced "}"`, "remove it"}},
		{"unbalanced { in a pattern", "", hoard.Route{KeyPrefix: "post", InvalidatePatterns: []string{"{username_posts:*"}},
			[]string{"InvalidatePatterns", `unbalanced "{"`}},
		{"unbalanced { in an extra key", "", hoard.Route{KeyPrefix: "post", InvalidateKeys: map[string]string{"{username_profile": "username"}},
			[]string{"InvalidateKeys", `unbalanced "{"`}},
		{"GET-only route with InvalidatePatterns", "GET /widgets/{widget_id}",
			hoard.Route{KeyPrefix: "widget", ResourceID: "widget_id", InvalidatePatterns: []string{"widgets:*"}},
			[]string{"GET /widgets/{widget_id}", "only reads", "move them to the write routes", "POST, PUT, PATCH, DELETE"}},
		{"GET-only route with InvalidateKeys", "GET /x",
			hoard.Route{KeyPrefix: "x", InvalidateKeys: map[string]string{"widget_count": "global"}},
			[]string{"only reads", "InvalidateKeys"}},
		{"negative TTL", "", hoard.Route{KeyPrefix: "widget", TTL: -time.Second},
			[]string{"negative TTL", "-1s", "use 0", "positive"}},
		{"negative TTL through Handle", "GET /w/{id}", hoard.Route{KeyPrefix: "widget", TTL: -1},
			[]string{"GET /w/{id}", "negative TTL"}},
		{"placeholder the route cannot fill", "GET /widgets/{widget_id}",
			hoard.Route{KeyPrefix: "{tenant}_widget", ResourceID: "widget_id"},
			[]string{"{tenant}", "cannot be filled", "QueryKeys or Defaults"}},
		{"ResourceID the route cannot fill", "GET /widgets/{widget_id}",
			hoard.Route{KeyPrefix: "widget", ResourceID: "id"},
			[]string{"{id}", "cannot be filled"}},
		{"pattern placeholder the route cannot fill", "POST /users/{username}/posts",
			hoard.Route{InvalidatePatterns: []string{"{user}_posts:*"}},
			[]string{"{user}", "cannot be filled"}},
		{"pattern not ending in *", "", hoard.Route{KeyPrefix: "widget", InvalidatePatterns: []string{"widgets:page_1"}},
			[]string{`"widgets:page_1"`, "must end with '*'", "InvalidateKeys"}},
		{"negative ClientMaxAge", "", hoard.Route{KeyPrefix: "w", ClientMaxAge: -time.Second},
			[]string{"ClientMaxAge", "use 0"}},
		{"negative MaxBodyBytes", "", hoard.Route{KeyPrefix: "w", MaxBodyBytes: -1},
			[]string{"MaxBodyBytes", "use 0"}},
		{"CacheableStatus not a final status", "", hoard.Route{KeyPrefix: "w", CacheableStatus: []int{200, 99}},
			[]string{"CacheableStatus", "99"}},
		{"pattern without a path", "GET widgets", hoard.Route{KeyPrefix: "w"},
			[]string{"no path", `"GET /widgets/{id}"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, disabled := range []bool{false, true} {
				// Errors are reported with the cache disabled too, so that
				// turning it on later cannot break start-up.
				c := newMemoryCache(t, hoard.Config{Disabled: disabled}, nil)
				var err error
				mux := http.NewServeMux()
				if tt.pattern == "" {
					var mw func(http.Handler) http.Handler
					mw, err = c.Middleware(tt.rt)
					if mw != nil {
						t.Error("Middleware returned a middleware with its error")
					}
				} else {
					err = c.Handle(mux, tt.pattern, tt.rt, http.NotFoundHandler())
				}
				if err == nil {
					t.Fatalf("disabled=%v: no error", disabled)
				}
				if !errors.Is(err, hoard.ErrRouteConfig) {
					t.Errorf("disabled=%v: %v does not wrap ErrRouteConfig", disabled, err)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("disabled=%v: error %q does not say %q", disabled, err, w)
					}
				}
				if tt.pattern != "" && !strings.HasPrefix(tt.pattern, "GET widgets") {
					// A refused route is not registered.
					path := "/" + strings.SplitN(tt.pattern, "/", 2)[1]
					if _, p := mux.Handler(httptest.NewRequest(strings.Fields(tt.pattern)[0], path, nil)); p != "" {
						t.Errorf("disabled=%v: refused route registered as %q", disabled, p)
					}
				}
			}
		})
	}
}

func TestRouteConfigAccepted(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	mux := http.NewServeMux()
	ok := []struct {
		pattern string
		rt      hoard.Route
	}{
		// Invalidate-only write routes need no KeyPrefix.
		{"POST /api/v1/widgets", hoard.Route{InvalidatePatterns: []string{"widgets:*"}}},
		// A bare id that is no parameter of the route is a literal.
		{"POST /things", hoard.Route{InvalidateKeys: map[string]string{"widget_count": "global"}}},
		// Placeholders from the path, QueryKeys and Defaults.
		{"GET /t/{username}/reports", hoard.Route{KeyPrefix: "{username}_reports:{tenant}:page_{page}",
			QueryKeys: []string{"tenant", "page"}, Defaults: map[string]string{"page": "1"}}},
		// A pattern without a method serves reads and writes.
		{"/any/{id}", hoard.Route{KeyPrefix: "any", InvalidatePatterns: []string{"anys:*"}}},
		{"PATCH /users/{username}", hoard.Route{KeyPrefix: "user", ResourceID: "username",
			InvalidateKeys: map[string]string{"{username}_profile": "username"}}},
	}
	for _, tt := range ok {
		if err := c.Handle(mux, tt.pattern, tt.rt, http.NotFoundHandler()); err != nil {
			t.Errorf("Handle(%q): %v", tt.pattern, err)
		}
	}
	if _, err := c.Middleware(hoard.Route{KeyPrefix: "{username}_posts", ResourceID: "username"}); err != nil {
		t.Errorf("Middleware leaves placeholder checks to request time: %v", err)
	}
}

func TestMustMiddlewarePanics(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	defer func() {
		p := recover()
		err, ok := p.(error)
		if !ok || !errors.Is(err, hoard.ErrRouteConfig) {
			t.Errorf("MustMiddleware with a negative TTL panicked with %v, want an ErrRouteConfig error", p)
		}
	}()
	c.MustMiddleware(hoard.Route{KeyPrefix: "w", TTL: -1})
}
