package hoard

import (
	"context"
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
