package hoard

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hoardcache/hoard/internal/storeerr"
)

func TestBreakerOpensAfterThresholdAndProbes(t *testing.T) {
	b := newBreaker(3, 40*time.Millisecond)
	boom := errors.New("boom")
	for i := 0; i < 2; i++ {
		if !b.allow() {
			t.Fatalf("closed breaker refused call %d", i)
		}
		b.record(boom)
	}
	if !b.allow() {
		t.Fatal("breaker opened before the threshold")
	}
	b.record(boom)
	if b.allow() {
		t.Fatal("breaker did not open at the threshold")
	}
	time.Sleep(50 * time.Millisecond)
	if !b.allow() {
		t.Fatal("no probe after the cool-down")
	}
	if b.allow() {
		t.Fatal("a second probe went through while the first is out")
	}
	b.record(boom) // the probe failed: open again at once
	if b.allow() {
		t.Fatal("failed probe did not reopen the breaker")
	}
	time.Sleep(50 * time.Millisecond)
	if !b.allow() {
		t.Fatal("no probe after the second cool-down")
	}
	b.record(nil)
	for i := 0; i < 5; i++ {
		if !b.allow() {
			t.Fatal("successful probe did not close the breaker")
		}
	}
}

func TestBreakerIgnoresCallerCancellation(t *testing.T) {
	b := newBreaker(1, time.Hour)
	b.record(context.Canceled)
	if !b.allow() {
		t.Fatal("a caller's cancellation opened the breaker")
	}
	b.record(context.DeadlineExceeded)
	if b.allow() {
		t.Fatal("a store timeout did not count as a failure")
	}
}

// TestBreakerIgnoresServerDown: a call a pool store skipped at once because
// its server is marked down (storeerr.ErrServerDown, also when joined with
// other servers' errors) is not counted: with one memcached server of three
// down, a third of the reads fail that way, and counting them opened the
// breaker for the keys of the live servers too.
func TestBreakerIgnoresServerDown(t *testing.T) {
	b := newBreaker(3, time.Hour)
	down := fmt.Errorf("memcached 127.0.0.1:1: get: %w", errors.Join(fmt.Errorf("%w after: refused", storeerr.ErrServerDown)))
	for i := range 10 {
		if !b.allow() {
			t.Fatalf("breaker opened after %d calls skipped for a server marked down", i)
		}
		b.record(down)
	}
	for range 3 {
		b.record(errors.New("i/o timeout"))
	}
	if b.allow() {
		t.Fatal("breaker still closed after 3 real failures")
	}
}

func TestPendingSet(t *testing.T) {
	var p pendingSet
	if !p.empty() {
		t.Fatal("new set not empty")
	}
	p.add([]string{"g1", "g2"}, []string{"k1"})
	p.add([]string{"g1"}, nil)
	g, k, seq := p.snapshot()
	if len(g) != 2 || len(k) != 1 || p.empty() {
		t.Fatalf("snapshot = %v %v; the set must stay non-empty until forget", g, k)
	}
	// Added again while the replay of seq is in flight: must survive it.
	p.add([]string{"g2"}, nil)
	p.forget(seq)
	g, k, _ = p.snapshot()
	if len(g) != 1 || g[0] != "g2" || len(k) != 0 || p.empty() {
		t.Fatalf("after forget: %v %v; an invalidation added during the replay was lost", g, k)
	}
	_, _, seq = p.snapshot()
	p.forget(seq)
	if !p.empty() {
		t.Fatal("set not empty after the last forget")
	}
}

func TestBreakerOpensWhenMostCallsFail(t *testing.T) {
	b := newBreaker(5, time.Hour)
	boom := errors.New("boom")
	// Every read fails while one write in three succeeds.
	for i := 0; i < 30 && b.allow(); i++ {
		b.record(boom)
		if i%3 == 0 {
			b.record(nil)
		}
	}
	if b.allow() {
		t.Fatal("breaker stayed closed while most calls failed")
	}
}

// TestPendingSetPerKey: blocks names the reads a pending key concerns;
// forgetKeys drops only the keys written by a replay that saw them.
func TestPendingSetPerKey(t *testing.T) {
	var p pendingSet
	if p.blocks([]string{"e", "g"}) {
		t.Fatal("empty set blocks")
	}
	p.add([]string{"g1"}, []string{"e1"})
	for _, tc := range []struct {
		keys []string
		want bool
	}{{[]string{"e", "g1"}, true}, {[]string{"e1", "g"}, true}, {[]string{"e2", "g2"}, false}} {
		if got := p.blocks(tc.keys); got != tc.want {
			t.Errorf("blocks(%v) = %v, want %v", tc.keys, got, tc.want)
		}
	}
	gens, dels, seq := p.pendingAmong([]string{"e1", "g1", "g1", "x"})
	if len(gens) != 1 || gens[0] != "g1" || len(dels) != 1 || dels[0] != "e1" {
		t.Fatalf("pendingAmong = %v %v", gens, dels)
	}
	p.add([]string{"g1"}, nil) // again, after the replay's snapshot
	p.forgetKeys(gens, dels, seq)
	if !p.blocks([]string{"g1"}) || p.blocks([]string{"e1"}) {
		t.Fatal("forgetKeys dropped a key added after its snapshot, or kept one it wrote")
	}
	p.forgetKeys(nil, nil, p.seq)
	if !p.blocks([]string{"g1"}) {
		t.Fatal("forgetKeys with no keys dropped g1")
	}
}

// TestBreakerAbandonReleasesProbe: a half-open breaker's probe that makes
// no call after all gives the slot back, so the breaker can still close.
func TestBreakerAbandonReleasesProbe(t *testing.T) {
	b := newBreaker(1, time.Millisecond)
	b.record(errors.New("boom"))
	time.Sleep(2 * time.Millisecond)
	if !b.allow() {
		t.Fatal("no probe after the cool-down")
	}
	if b.allow() {
		t.Fatal("two probes at once")
	}
	b.abandon()
	if !b.allow() {
		t.Fatal("the abandoned probe's slot was not released")
	}
	b.record(nil)
	if !b.allow() || !b.allow() {
		t.Fatal("breaker not closed after the probe succeeded")
	}
}
