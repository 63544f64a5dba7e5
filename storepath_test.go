package hoard_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/faultstore"
)

// TestEveryCallAdmitted: once the breaker is open, no call of the Cache
// reaches the store, whatever the entry point: every store call goes
// through one path that applies admission (Delete, DeletePattern and Ping
// used to skip it). Then the cache fails open (routes) or says
// ErrUnavailable (provider API).
func TestEveryCallAdmitted(t *testing.T) {
	c, s := newFaultCache(t, hoard.Config{Logger: discardLogger()})
	ctx := context.Background()
	mux, _ := localMux(t, c,
		miniRoute{pattern: "GET /w/{id}", rt: &hoard.Route{KeyPrefix: "w"}, h: echo("id")},
		miniRoute{pattern: "PUT /w/{id}", rt: &hoard.Route{KeyPrefix: "w", InvalidatePatterns: []string{"ws:*"}}, h: echo("id")},
	)
	boom := errors.New("store down")
	s.Inject(faultstore.Fault{Err: boom})
	for range 20 {
		c.Ping(ctx)
	}
	if err := c.Ping(ctx); !errors.Is(err, hoard.ErrUnavailable) {
		t.Fatalf("Ping after 20 failures = %v; want the breaker open (ErrUnavailable)", err)
	}
	network := []faultstore.Method{faultstore.Get, faultstore.GetMulti, faultstore.Set, faultstore.Add,
		faultstore.Touch, faultstore.Delete, faultstore.DeletePattern, faultstore.Exists, faultstore.Ping}
	before := s.Calls(network...)
	calls := map[string]func() error{
		"Get":           func() error { _, _, err := c.Get(ctx, "k"); return err },
		"Set":           func() error { return c.Set(ctx, "k", []byte("v"), time.Minute) },
		"Exists":        func() error { _, err := c.Exists(ctx, "k"); return err },
		"Delete":        func() error { return c.Delete(ctx, "k") },
		"DeletePattern": func() error { _, err := c.DeletePattern(ctx, "k*"); return err },
		"Invalidate":    func() error { return c.Invalidate(ctx, "k") },
		"Clear":         func() error { return c.Clear(ctx) },
		"Ping":          func() error { return c.Ping(ctx) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, hoard.ErrUnavailable) {
			t.Errorf("%s with the breaker open = %v; want ErrUnavailable", name, err)
		}
	}
	if v, err := c.Fetch(ctx, "k", 0, func(context.Context) ([]byte, error) { return []byte("loaded"), nil }); err != nil || string(v) != "loaded" {
		t.Errorf("Fetch with the breaker open = %q, %v; want the loaded value", v, err)
	}
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut} {
		if r := serveLocal(t, mux, m, "/w/1"); r.Status != http.StatusOK {
			t.Errorf("%s with the breaker open: %v; want the handler's answer", m, r)
		}
	}
	if n := s.Calls(network...) - before; n != 0 {
		t.Errorf("%d store calls with the breaker open; want none", n)
	}
}
