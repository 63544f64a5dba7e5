package hoard_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
)

// TestInspect: Inspect shows a route entry (status, headers, TTL, whether
// its generations are current) under the key a route gives it, variants
// included, and a provider value; an entry a write made stale shows as
// not current, never as served.
func TestInspect(t *testing.T) {
	ctx := context.Background()
	c := newMemoryCache(t, hoard.Config{}, nil)
	mux, _ := localMux(t, c, miniRoute{pattern: "GET /i/{id}", rt: &hoard.Route{KeyPrefix: "i", TTL: time.Minute},
		h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Kind", "item")
			w.Write([]byte("item " + r.PathValue("id") + r.URL.RawQuery))
		}})
	serveLocal(t, mux, http.MethodGet, "/i/1")
	serveLocal(t, mux, http.MethodGet, "/i/1?b=2")
	e, found, err := c.Inspect(ctx, "i:1")
	if err != nil || !found || !e.Route || e.Status != 200 || string(e.Body) != "item 1" || e.Header.Get("X-Kind") != "item" ||
		e.TTL != time.Minute || e.Remaining <= 0 || !e.Current || e.Checked != 2 {
		t.Fatalf("Inspect(i:1) = %+v, %v, %v", e, found, err)
	}
	if e, found, _ := c.Inspect(ctx, "i:1:q=b=2"); !found || string(e.Body) != "item 1b=2" || !e.Current {
		t.Errorf("Inspect of the query variant = %+v, %v", e, found)
	}
	if err := c.Set(ctx, "plain", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if e, found, _ := c.Inspect(ctx, "plain"); !found || e.Route || string(e.Body) != "v" || !e.Current {
		t.Errorf("Inspect of a provider value = %+v, %v", e, found)
	}
	if err := c.Invalidate(ctx, "i:1"); err != nil {
		t.Fatal(err)
	}
	if e, found, _ := c.Inspect(ctx, "i:1:q=b=2"); !found || e.Current {
		t.Errorf("Inspect of a variant after Invalidate(i:1) = %+v, %v; want found, not current", e, found)
	}
	if _, found, _ := c.Inspect(ctx, "i:9"); found {
		t.Error("Inspect of a key never stored: found")
	}
	if _, _, err := c.Inspect(ctx, "#g:i:1"); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("Inspect of a hoard-own key: %v; want ErrReservedKey", err)
	}
}
