package hoard_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
)

// eachStore runs f against every store on the shared test servers.
func eachStore(t *testing.T, f func(t *testing.T, b storefixture.Backend)) {
	for _, b := range storefixture.All(t) {
		t.Run(b.Name, func(t *testing.T) { f(t, b) })
	}
}

func TestProviderGetSet(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		if _, found, err := c.Get(ctx, "absent"); found || err != nil {
			t.Fatalf("absent key: found=%v err=%v", found, err)
		}
		for _, v := range [][]byte{{}, []byte("[]"), {0, 1, 255}, bytes.Repeat([]byte("x"), 512<<10)} {
			if err := c.Set(ctx, "k", v, 0); err != nil {
				t.Fatal(err)
			}
			got, found, err := c.Get(ctx, "k")
			if err != nil || !found || !bytes.Equal(got, v) || got == nil {
				t.Fatalf("round trip of %d bytes: found=%v err=%v equal=%v", len(v), found, err, bytes.Equal(got, v))
			}
		}
		if err := c.Set(ctx, "k", []byte("v"), -time.Second); !errors.Is(err, hoard.ErrInvalidTTL) {
			t.Errorf("negative TTL: %v, want ErrInvalidTTL", err)
		}
		if err := c.Set(ctx, "#g:k", []byte("v"), 0); !errors.Is(err, hoard.ErrReservedKey) {
			t.Errorf("reserved key: %v, want ErrReservedKey", err)
		}
		if ok, err := c.Exists(ctx, "k"); !ok || err != nil {
			t.Errorf("Exists = %v, %v", ok, err)
		}
		if err := c.Delete(ctx, "k", "other"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Exists(ctx, "k"); ok {
			t.Error("key exists after Delete")
		}
		if err := c.Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
}

func TestProviderTTL(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, b storefixture.Backend) {
		t.Parallel()
		c := b.NewCache(t, hoard.Config{})
		if err := c.Set(ctx, "short", []byte("v"), time.Second); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, found, err := c.Get(ctx, "short")
			if err != nil {
				t.Fatal(err)
			}
			if !found {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("a 1 s entry still served after 5 s")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func TestProviderInvalidate(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		for _, k := range []string{"user:1", "user:10"} {
			if err := c.Set(ctx, k, []byte(k), 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Invalidate(ctx, "user:1"); err != nil {
			t.Fatal(err)
		}
		if _, found, _ := c.Get(ctx, "user:1"); found {
			t.Error("user:1 served after Invalidate")
		}
		if _, found, _ := c.Get(ctx, "user:10"); !found {
			t.Error("Invalidate(user:1) also dropped user:10")
		}
	})
}

func TestProviderDeletePattern(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		for _, k := range []string{"user:1", "user:10", "user:2", "post:1"} {
			if err := c.Set(ctx, k, []byte(k), 0); err != nil {
				t.Fatal(err)
			}
		}
		n, err := c.DeletePattern(ctx, "user:1")
		if _, ok := c.Store().(hoard.PatternDeleter); !ok {
			if !errors.Is(err, hoard.ErrPatternNotSupported) {
				t.Fatalf("DeletePattern on %s: %v, want ErrPatternNotSupported", b.Name, err)
			}
			return
		}
		if err != nil || n != 1 {
			t.Fatalf("DeletePattern(user:1) = %d, %v; want exactly 1 (no implicit * at the end)", n, err)
		}
		if _, found, _ := c.Get(ctx, "user:10"); !found {
			t.Error("user:10 deleted by the pattern user:1")
		}
		n, err = c.DeletePattern(ctx, "user:*")
		if err != nil || n != 2 {
			t.Fatalf("DeletePattern(user:*) = %d, %v; want 2", n, err)
		}
		if _, found, _ := c.Get(ctx, "post:1"); !found {
			t.Error("post:1 deleted by user:*")
		}
	})
}

// Clear empties only this cache's namespace: a cache with another
// KeyPrefix on the same server, and keys outside any namespace, survive.
func TestProviderClear(t *testing.T) {
	eachStore(t, func(t *testing.T, b storefixture.Backend) {
		mine := b.Open(t, b.Config(t))
		if b.Name == storefixture.Memory {
			// The memory store is private to its Cache: check the
			// namespace rule on the same store instead.
			other, err := hoard.New(mine.Store(), hoard.Config{KeyPrefix: storefixture.UniquePrefix()})
			if err != nil {
				t.Fatal(err)
			}
			checkClear(t, mine, other)
			return
		}
		checkClear(t, mine, b.NewCache(t, hoard.Config{}))
	})
}

func checkClear(t *testing.T, mine, other *hoard.Cache) {
	ctx := context.Background()
	outside := "outside-" + storefixture.UniquePrefix()
	if err := mine.Store().Set(ctx, outside, []byte("keep"), time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*hoard.Cache{mine, other} {
		if err := c.Set(ctx, "k", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := mine.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := mine.Get(ctx, "k"); found {
		t.Error("value served after Clear")
	}
	if _, found, _ := other.Get(ctx, "k"); !found {
		t.Error("Clear removed another namespace's value")
	}
	if v, found, err := mine.Store().Get(ctx, outside); !found || err != nil || string(v) != "keep" {
		t.Errorf("Clear touched a key outside the namespace: %q %v %v", v, found, err)
	}
	// The cache still works after Clear.
	if err := mine.Set(ctx, "k", []byte("v2"), 0); err != nil {
		t.Fatal(err)
	}
	if v, found, _ := mine.Get(ctx, "k"); !found || string(v) != "v2" {
		t.Errorf("after Clear, Set/Get = %q %v", v, found)
	}
}

func TestProviderJSON(t *testing.T) {
	ctx := context.Background()
	c := storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{})
	if err := c.SetJSON(ctx, "s", "text", 0); err != nil {
		t.Fatal(err)
	}
	if s, found, err := hoard.GetJSON[string](ctx, c, "s"); s != "text" || !found || err != nil {
		t.Errorf("string: %q %v %v", s, found, err)
	}
	if err := c.SetJSON(ctx, "b", false, 0); err != nil {
		t.Fatal(err)
	}
	if v, found, err := hoard.GetJSON[bool](ctx, c, "b"); v || !found || err != nil {
		t.Errorf("bool false: %v %v %v", v, found, err)
	}
	if err := c.SetJSON(ctx, "n", nil, 0); err != nil {
		t.Fatal(err)
	}
	if v, found, err := hoard.GetJSON[*int](ctx, c, "n"); v != nil || !found || err != nil {
		t.Errorf("null: %v %v %v (a stored null is found, not a miss)", v, found, err)
	}
	type widget struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	if err := c.SetJSON(ctx, "w", widget{1, "a"}, 0); err != nil {
		t.Fatal(err)
	}
	if w, _, err := hoard.GetJSON[widget](ctx, c, "w"); w != (widget{1, "a"}) || err != nil {
		t.Errorf("struct: %+v %v", w, err)
	}
	if _, found, err := hoard.GetJSON[int](ctx, c, "s"); !found || err == nil {
		t.Errorf("decoding a string into int: found=%v err=%v, want an error", found, err)
	}
}

func TestProviderFetch(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		var loads atomic.Int32
		release := make(chan struct{})
		load := func(context.Context) ([]byte, error) {
			loads.Add(1)
			<-release
			return []byte("loaded"), nil
		}
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := c.Fetch(ctx, "f", 0, load)
				if err != nil || string(v) != "loaded" {
					t.Errorf("Fetch = %q, %v", v, err)
				}
			}()
		}
		time.Sleep(200 * time.Millisecond)
		close(release)
		wg.Wait()
		if n := loads.Load(); n != 1 {
			t.Errorf("50 concurrent Fetches loaded %d times, want 1", n)
		}
		if _, err := c.Fetch(ctx, "f", 0, load); err != nil || loads.Load() != 1 {
			t.Errorf("Fetch after the load did not hit: loads=%d err=%v", loads.Load(), err)
		}
		boom := errors.New("boom")
		if _, err := c.Fetch(ctx, "e", 0, func(context.Context) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Errorf("load error = %v", err)
		}
		if _, found, _ := c.Get(ctx, "e"); found {
			t.Error("a failed load stored a value")
		}
	})
}

// A value loaded before a concurrent Invalidate is never served after it.
func TestProviderFetchNoStaleSet(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, b storefixture.Backend) {
		c := b.NewCache(t, hoard.Config{})
		loading := make(chan struct{})
		resume := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Fetch(ctx, "row", 0, func(context.Context) ([]byte, error) {
				close(loading)
				<-resume
				return []byte("old"), nil
			})
		}()
		<-loading
		if err := c.Invalidate(ctx, "row"); err != nil { // the write committed "new"
			t.Fatal(err)
		}
		close(resume)
		<-done
		v, err := c.Fetch(ctx, "row", 0, func(context.Context) ([]byte, error) { return []byte("new"), nil })
		if err != nil || string(v) != "new" {
			t.Fatalf("after Invalidate, Fetch = %q, %v; the slow load's old value was served", v, err)
		}
	})
}

func TestProviderDisabled(t *testing.T) {
	ctx := context.Background()
	c, err := hoard.New(nil, hoard.Config{Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, found, err := c.Get(ctx, "k"); found || err != nil {
		t.Errorf("disabled cache hit: %v %v", found, err)
	}
	n := 0
	for i := 0; i < 2; i++ {
		c.Fetch(ctx, "k", 0, func(context.Context) ([]byte, error) { n++; return nil, nil })
	}
	if n != 2 {
		t.Errorf("disabled Fetch loaded %d times, want every time", n)
	}
	if err := c.Clear(ctx); err != nil {
		t.Error(err)
	}
}

// TestFetchAndRouteNeverShareAFlight (regression): with an empty
// KeyPrefix, Fetch("w:1") and a GET of the route entry w:1 read the same
// keys and generations; they shared one singleflight group, so a Fetch that
// joined a route's flight returned an empty value (and a route that joined
// a Fetch's flight panicked).
func TestFetchAndRouteNeverShareAFlight(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	inHandler, release := make(chan struct{}), make(chan struct{})
	mux, _ := localMux(t, c, miniRoute{pattern: "GET /w/{id}", rt: &hoard.Route{KeyPrefix: "w"},
		h: func(w http.ResponseWriter, r *http.Request) {
			close(inHandler)
			<-release
			io.WriteString(w, "route answer")
		}})
	done := make(chan testResponse)
	go func() { done <- serveLocal(t, mux, http.MethodGet, "/w/1") }()
	<-inHandler
	fetched := make(chan []byte)
	go func() {
		v, err := c.Fetch(context.Background(), "w:1", time.Minute, func(context.Context) ([]byte, error) { return []byte("loaded"), nil })
		if err != nil {
			t.Error(err)
		}
		fetched <- v
	}()
	select {
	case v := <-fetched:
		if string(v) != "loaded" {
			t.Errorf("Fetch during a route miss of the same key = %q; want its own load", v)
		}
	case <-time.After(10 * time.Second):
		t.Error("Fetch waited for the route's handler: it joined the route's flight")
		close(release)
		<-done
		return
	}
	close(release)
	if r := <-done; r.Body != "route answer" {
		t.Errorf("route GET: %v", r)
	}
}
