package hoard_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
)

// TestChiPatterns: chi sets r.Pattern to its own syntax; every parameter
// it matched is in the key (or the route bypasses), as with ServeMux: a
// catch-all * is the id like {path...}, a {name:regexp} is name.
func TestChiPatterns(t *testing.T) {
	for _, name := range []string{storefixture.Memory, storefixture.Redis} {
		t.Run(name, func(t *testing.T) {
			c := storefixture.Shared(t, name).NewCache(t, hoard.Config{})
			r := chi.NewRouter()
			answer := func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "%s %s", r.URL.Path, r.Method)
			}
			for _, rt := range []struct {
				pattern, prefix string
			}{
				{"/files/*", "file"},
				{"/w/{id:[0-9]+}", "w"},
				{"/codes/{code:[a-z]{2}}", "code"},
				{"/users/{user}/posts/{id}", "post"},
			} {
				mw := c.MustMiddleware(hoard.Route{KeyPrefix: rt.prefix})
				r.With(mw).Get(rt.pattern, answer)
				r.With(mw).Put(rt.pattern, answer)
			}
			srv := httptest.NewServer(r)
			t.Cleanup(srv.Close)
			get := func(p string) testResponse { return doRequest(t, http.MethodGet, srv.URL+p) }

			for _, paths := range [][2]string{
				{"/files/a/x.txt", "/files/b/x.txt"},
				{"/w/1", "/w/2"},
				{"/codes/ab", "/codes/cd"},
			} {
				for _, p := range paths {
					if got := get(p); got.Body != p+" GET" || got.CacheStatus() != "hoard; fwd=miss; stored" {
						t.Errorf("GET %s: %v; want its own answer, stored", p, got)
					}
				}
				wantHit(t, paths[0]+" again", get(paths[0]))
				if got := doRequest(t, http.MethodPut, srv.URL+paths[0]); got.Status != http.StatusOK {
					t.Fatalf("PUT %s: %v", paths[0], got)
				}
				if got := get(paths[0]); strings.HasPrefix(got.CacheStatus(), hitPrefix) {
					t.Errorf("GET %s after its PUT: %v; want a miss", paths[0], got)
				}
				wantHit(t, paths[1]+" after the PUT of "+paths[0], get(paths[1]))
			}
			if !storeHas(t, c, "w:1") || !storeHas(t, c, "file:b/x.txt") {
				t.Error("entries not under w:1 and file:b/x.txt")
			}
			// {user} is in no key: two users' posts would share an entry.
			for _, p := range []string{"/users/alice/posts/1", "/users/bob/posts/1"} {
				if got := get(p); got.Body != p+" GET" || got.CacheStatus() != "hoard; fwd=bypass" {
					t.Errorf("GET %s: %v; want its own answer, bypassed", p, got)
				}
			}
		})
	}
}
