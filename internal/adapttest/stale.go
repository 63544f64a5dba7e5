package adapttest

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
)

// StaleRoute has a 1 s TTL and a 30 s stale window.
var StaleRoute = hoard.Route{KeyPrefix: "w", TTL: time.Second, StaleWhileRevalidate: 30 * time.Second}

// Stale is the application of StaleWhileRevalidate: GET /w/:id through
// StaleRoute answers Answer(tenant, id), where the tenant is the X-Tenant
// header, put in the framework's context by a middleware of the adapter's
// test; HEAD /w/:id, a handler of its own, answers HeadBody (which must
// never be stored as the GET's); GET /other/:id, uncached, answers tenant
// and id too.
type Stale struct {
	Client
	version, runs atomic.Int32
	gate          atomic.Pointer[chan struct{}]
}

// HeadBody is what the HEAD handler of /w/:id writes.
const HeadBody = "the HEAD handler's body"

// Answer is the body of GET /w/:id: it waits on the gate, when one is set,
// after reading the version, so that a test can hold a background run.
func (a *Stale) Answer(tenant, id string) string {
	a.runs.Add(1)
	v := a.version.Load()
	if gate := a.gate.Load(); gate != nil {
		<-*gate
	}
	return fmt.Sprintf("%s %s v%d", tenant, id, v)
}

// RunStaleWhileRevalidate runs staleWhileRevalidate on every backend, on
// a Stale application serve builds on a Cache of that backend.
func RunStaleWhileRevalidate(t *testing.T, serve func(*testing.T, *hoard.Cache) *Stale) {
	for _, name := range Backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			staleWhileRevalidate(t, serve(t, storefixture.Shared(t, name).NewCache(t, hoard.Config{})))
		})
	}
}

// staleWhileRevalidate: past its TTL an entry is served stale at once while
// one background run, started by a GET, refreshes it. The run has the request's path
// parameter and tenant, while the request's own framework context, back in
// the framework's pool, serves other requests (under -race, a run still
// using it is a race).
func staleWhileRevalidate(t *testing.T, a *Stale) {
	Expect(t, "first GET", a.Do(t, "GET", "/w/7", "X-Tenant", "acme"), 200, "acme 7 v0", Stored)
	time.Sleep(1100 * time.Millisecond) // past the TTL of the entry stored before the answer
	a.version.Store(1)
	gate := make(chan struct{})
	a.gate.Store(&gate)
	runs := a.runs.Load()
	// A HEAD has a handler of its own on a framework: served the stale
	// entry, it does not revalidate (the HEAD handler's answer would be
	// stored as the GET's).
	head := a.Do(t, "HEAD", "/w/7", "X-Tenant", "acme")
	if head.Status != 200 || !strings.Contains(head.CacheStatus(), "detail=stale-while-revalidate") {
		t.Fatalf("HEAD past the TTL: %d [%s]; want the stale entry", head.Status, head.CacheStatus())
	}
	got := a.Do(t, "GET", "/w/7", "X-Tenant", "acme")
	if got.Status != 200 || got.Body != "acme 7 v0" || !strings.Contains(got.CacheStatus(), "detail=stale-while-revalidate") {
		t.Fatalf("GET past the TTL: %d %q [%s]; want the stale answer at once", got.Status, got.Body, got.CacheStatus())
	}
	for deadline := time.Now().Add(5 * time.Second); a.runs.Load() == runs; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no background revalidation started")
		}
	}
	for i := range 20 { // while the run waits on the gate
		id := fmt.Sprint(100 + i)
		Expect(t, "other request", a.Do(t, "GET", "/other/"+id, "X-Tenant", "other"), 200, "other "+id, "")
	}
	close(gate)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := a.Do(t, "GET", "/w/7", "X-Tenant", "acme")
		if got.Body == "acme 7 v1" && strings.HasPrefix(got.CacheStatus(), Hit) && !strings.Contains(got.CacheStatus(), "stale") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the revalidation was released: %d %q [%s]; want a fresh hit of acme 7 v1", got.Status, got.Body, got.CacheStatus())
		}
	}
	if n := a.runs.Load() - runs; n != 1 {
		t.Errorf("the handler ran %d times after the TTL; want the one background run", n)
	}
}
