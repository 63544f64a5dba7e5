package hoard

import (
	"fmt"
	"slices"
	"testing"
)

func TestPendingSet(t *testing.T) {
	var p pendingSet
	if !p.empty() {
		t.Fatal("new set not empty")
	}
	p.add([]string{"g1", "g2", "k1"})
	p.add([]string{"g1"})
	keys, seq := p.snapshot()
	if len(keys) != 3 || p.empty() {
		t.Fatalf("snapshot = %v; the set must stay non-empty until forget", keys)
	}
	// Added again while the replay of seq is in flight: must survive it.
	p.add([]string{"g2"})
	p.forget(keys, seq)
	keys, _ = p.snapshot()
	if len(keys) != 1 || keys[0] != "g2" || p.empty() {
		t.Fatalf("after forget: %v; an invalidation added during the replay was lost", keys)
	}
	keys, seq = p.snapshot()
	p.forget(keys, seq)
	if !p.empty() {
		t.Fatal("set not empty after the last forget")
	}
}

// TestPendingSetPerKey: blocks names the reads a pending key concerns;
// forget drops only the keys deleted by a replay that saw them.
func TestPendingSetPerKey(t *testing.T) {
	var p pendingSet
	if p.blocks([]string{"e", "g"}) {
		t.Fatal("empty set blocks")
	}
	p.add([]string{"g1", "e1"})
	for _, tc := range []struct {
		keys []string
		want bool
	}{{[]string{"e", "g1"}, true}, {[]string{"e1", "g"}, true}, {[]string{"e2", "g2"}, false}} {
		if got := p.blocks(tc.keys); got != tc.want {
			t.Errorf("blocks(%v) = %v, want %v", tc.keys, got, tc.want)
		}
	}
	own, seq := p.pendingAmong([]string{"e1", "g1", "g1", "x"})
	if !slices.Equal(own, []string{"e1", "g1"}) {
		t.Fatalf("pendingAmong = %v", own)
	}
	p.add([]string{"g1"}) // again, after the replay's snapshot
	p.forget(own, seq)
	if !p.blocks([]string{"g1"}) || p.blocks([]string{"e1"}) {
		t.Fatal("forget dropped a key added after its snapshot, or kept one it deleted")
	}
	p.forget(nil, p.seq)
	if !p.blocks([]string{"g1"}) {
		t.Fatal("forget with no keys dropped g1")
	}
}

// TestPendingSetCollapses (regression, hostile traffic): during an outage,
// failed invalidations beyond maxPending are replaced by one
// namespace-wide invalidation (the epoch keys, which every read checks),
// so the set's memory stays bounded however many writes fail, and no
// invalidation is lost: every read stays blocked until the epoch is
// deleted, including reads of keys added after the collapse.
func TestPendingSetCollapses(t *testing.T) {
	p := pendingSet{epochKeys: []string{"#epoch{0}", "#epoch{1}"}}
	for i := range maxPending {
		if p.add([]string{fmt.Sprintf("#g:w:%d", i)}) {
			t.Fatalf("collapsed after %d keys; the bound is %d", i+1, maxPending)
		}
	}
	if !p.add([]string{"#g:w:last", "w:last"}) {
		t.Fatal("no collapse past maxPending")
	}
	p.add([]string{"#g:w:after"})
	keys, seq := p.snapshot()
	slices.Sort(keys)
	if !slices.Equal(keys, p.epochKeys) || p.size() != 2 {
		t.Fatalf("pending after the collapse = %v; want only the epoch keys %v", keys, p.epochKeys)
	}
	if !p.blocks([]string{"w:7", "#epoch{1}"}) {
		t.Fatal("a read checking an epoch copy is not blocked after the collapse")
	}
	p.add([]string{"#g:w:during-replay"})
	p.forget(keys, seq)
	if p.empty() {
		t.Fatal("an invalidation that failed during the epoch's replay was lost")
	}
	keys, seq = p.snapshot()
	p.forget(keys, seq)
	if !p.empty() || p.collapsed {
		t.Fatal("set not empty (or still collapsed) after the epoch keys were deleted")
	}
	p.add([]string{"#g:w:1"})
	if keys, _ := p.snapshot(); !slices.Equal(keys, []string{"#g:w:1"}) {
		t.Fatalf("after recovery, keys are pending one by one again: got %v", keys)
	}
}
