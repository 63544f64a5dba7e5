package hoard

import (
	"context"
	"strings"
	"testing"
)

// shardedStub is a Sharded store of three shards (its Store methods are
// never called); walkingShardedStub is one that can also delete by pattern.
type shardedStub struct{ Store }

func (shardedStub) ShardCount() int    { return 3 }
func (shardedStub) ShardOf(string) int { return 0 }
func (shardedStub) ShardKey(base string, shard int) string {
	return base + "{" + string(rune('a'+shard)) + "}"
}

type walkingShardedStub struct{ shardedStub }

func (walkingShardedStub) DeletePattern(context.Context, string) (int, error) { return 0, nil }

// TestKeyspaceLayoutByCapability: a Sharded store of several shards gets
// the tagged layout unless it is a PatternDeleter, whose globs must match
// the plain (untagged) keys.
func TestKeyspaceLayoutByCapability(t *testing.T) {
	if k := newKeyspace("ns:", shardedStub{}); k.sharded == nil || len(k.epochs) != 3 || k.entry("w:1") != "ns:{w:1}" {
		t.Errorf("Sharded store: sharded=%v, %d epochs, entry %q; want the tagged layout", k.sharded != nil, len(k.epochs), k.entry("w:1"))
	}
	if k := newKeyspace("ns:", walkingShardedStub{}); k.sharded != nil || len(k.epochs) != 1 || k.entry("w:1") != "ns:w:1" {
		t.Errorf("Sharded PatternDeleter: sharded=%v, %d epochs, entry %q; want the plain layout", k.sharded != nil, len(k.epochs), k.entry("w:1"))
	}
}

// TestMissLeaseKey: a miss lease is named after the entry and the
// generations it was read under, the same in every process, inside the
// namespace, and on a Sharded store tagged like its entry (so it lives on
// the entry's server).
func TestMissLeaseKey(t *testing.T) {
	k := newKeyspace("ns:", shardedStub{})
	entry := k.entry("w:1")
	g1 := [][]byte{[]byte("epoch"), []byte("gen1")}
	a, b := k.missLease(entry, g1), k.missLease(entry, [][]byte{[]byte("epoch"), []byte("gen1")})
	if a != b {
		t.Errorf("lease of one entry and generations: %q then %q; want the same name", a, b)
	}
	if c := k.missLease(entry, [][]byte{[]byte("epoch"), []byte("gen2")}); c == a {
		t.Errorf("lease after the generation changed: %q; want another name than %q", c, a)
	}
	// Moving a byte between generations changes the name too.
	if c := k.missLease(entry, [][]byte{[]byte("epochg"), []byte("en1")}); c == a {
		t.Errorf("generations split differently gave the same lease %q", c)
	}
	if !strings.HasPrefix(a, "ns:#m:") || !strings.HasSuffix(a, ":{w:1}") {
		t.Errorf("lease %q; want ns:#m:<hash>:{w:1}", a)
	}
}
