package hoard_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/faultstore"
	"github.com/hoardcache/hoard/memory"
)

// TestOutageRecoveryOtherInstance: two Caches on one store stand in for
// two instances. During an outage A acknowledges an invalidation it could
// not write (pending in A); B comes back first. B must not serve the entry
// A's write made stale: it serves no stored entry for its quiet period
// after the outage, and A, though it serves no request, replays its
// pending invalidation within that period (its replay loop probes the
// store). Without the quiet period B reads the old value as soon as its
// breaker closes; without the replay loop, once its quiet period ends.
func TestOutageRecoveryOtherInstance(t *testing.T) {
	ctx := context.Background()
	mem, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fa, fb := faultstore.New(mem), faultstore.New(mem)
	cfg := hoard.Config{KeyPrefix: "p:", Timeout: 20 * time.Millisecond, Logger: discardLogger()}
	a, err := hoard.New(fa, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := hoard.New(fb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	if err := b.Set(ctx, "k", []byte("old"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, found, err := b.Get(ctx, "k"); !found || err != nil || string(v) != "old" {
		t.Fatalf("Get before the outage = %q, %v, %v", v, found, err)
	}
	down := faultstore.Fault{Err: errors.New("test store: down")}
	openBreaker := func(c *hoard.Cache) {
		for range 10 {
			c.Get(ctx, "other")
		}
	}
	fb.Inject(down)
	openBreaker(b) // B's breaker opens first, so B's probe comes first
	time.Sleep(300 * time.Millisecond)
	fa.Inject(down)
	if err := a.Invalidate(ctx, "k"); err == nil {
		t.Fatal("Invalidate during the outage: no error")
	}
	openBreaker(a)
	if n := a.Stats().PendingInvalidations; n == 0 {
		t.Fatal("A's failed invalidation is not pending")
	}
	fa.Inject()
	fb.Inject()

	// B's breaker closes about 1s after it opened, A's 300 ms later;
	// watch B well past its quiet period.
	deadline := time.Now().Add(4500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if v, found, err := b.Get(ctx, "k"); found && string(v) == "old" {
			t.Fatalf("B served %q, the value A invalidated during the outage (A pending: %d)", v, a.Stats().PendingInvalidations)
		} else if err != nil && !errors.Is(err, hoard.ErrUnavailable) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := a.Stats().PendingInvalidations; n != 0 {
		t.Fatalf("A, serving no request, still has %d invalidations pending after the store came back", n)
	}
}

// keepOpen is a store that Close leaves open, so that a second Cache (the
// process restarted) can use what the first one left.
type keepOpen struct{ hoard.Store }

func (keepOpen) Close() error { return nil }

// TestPendingFileSurvivesRestart: an invalidation that failed during an
// outage is in Config.PendingFile; a Cache started again from the file
// (the process killed and restarted) while the store is still down does
// not serve the entry it covers, and replays it once the store is back.
// Without the file the restarted Cache serves the old value.
func TestPendingFileSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	mem, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	fs := faultstore.New(keepOpen{mem})
	cfg := hoard.Config{KeyPrefix: "p:", Timeout: 20 * time.Millisecond, Logger: discardLogger(),
		PendingFile: filepath.Join(t.TempDir(), "pending")}
	a, err := hoard.New(fs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Set(ctx, "k", []byte("old"), time.Minute); err != nil {
		t.Fatal(err)
	}
	fs.Inject(faultstore.Fault{Err: errors.New("test store: down")})
	if err := a.Invalidate(ctx, "k"); err == nil {
		t.Fatal("Invalidate during the outage: no error")
	}
	a.Close() // the process dies (nothing is replayed on the way out)

	b, err := hoard.New(fs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if n := b.Stats().PendingInvalidations; n == 0 {
		t.Fatal("the restarted Cache read no pending invalidation from the file")
	}
	fs.Inject() // the store is back
	deadline := time.Now().Add(3 * time.Second)
	for b.Stats().PendingInvalidations != 0 {
		if v, found, _ := b.Get(ctx, "k"); found && string(v) == "old" {
			t.Fatalf("the restarted Cache served %q, invalidated before the restart", v)
		}
		if time.Now().After(deadline) {
			t.Fatal("the pending invalidation was not replayed 3 s after the store came back")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if v, found, err := b.Get(ctx, "k"); found || err != nil {
		t.Fatalf("Get after the replay = %q, %v, %v; want a miss", v, found, err)
	}
	if fi, err := os.Stat(cfg.PendingFile); err != nil || fi.Size() != 0 {
		t.Fatalf("pending file after the replay: %v, %v; want it emptied", fi, err)
	}
}
