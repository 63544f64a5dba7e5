package hoard

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"time"
)

// Generations (docs/design.md, "Why generations" and "How long each key
// lives"): a read creates the missing ones before its handler runs, and
// settles their lifetime once it knows whether it stored an entry.

const (
	// epochTTL is the lifetime of the namespace epoch (one key, or one
	// per shard). Its expiry would make every entry a miss at once, so it
	// outlives any entry; a lost epoch only costs misses.
	epochTTL = 30 * 24 * time.Hour

	// provisionalGenerationTTL is the lifetime of a generation that a read
	// creates before it runs the handler, until the answer is known (see
	// settleGenerations): long enough for the handler to answer, short
	// enough that a process dying mid-request leaves nothing lasting. A
	// handler slower than this still answers correctly; its entry is just
	// a miss sooner.
	provisionalGenerationTTL = 10 * time.Second
)

// newGeneration returns a fresh generation value. Values are random, never
// counters, so a generation key that is evicted and created again cannot
// collide with a value an old entry recorded.
func newGeneration() []byte {
	return binary.LittleEndian.AppendUint64(make([]byte, 0, 8), rand.Uint64())
}

// noteTTL raises longestTTL to ttl.
func (c *Cache) noteTTL(ttl time.Duration) {
	for {
		cur := c.longestTTL.Load()
		if int64(ttl) <= cur || c.longestTTL.CompareAndSwap(cur, int64(ttl)) {
			return
		}
	}
}

// generationTTL is the lifetime of a generation that an entry depends on:
// twice the longest entry TTL, so that an entry stored while its
// generation is young expires before the generation does.
func (c *Cache) generationTTL() time.Duration { return 2 * time.Duration(c.longestTTL.Load()) }

// ensureGenerations fills in missing generations (nil in gens; genKeys[0]
// is the namespace epoch) by creating them with a fresh random value,
// atomically: if another client created one first, its value is read back.
// The epoch is created for epochTTL; the others for ttl: a read that may
// not store anything passes provisionalGenerationTTL and settles the ones
// it created (created, a bit per index) once it knows. A key that Add finds
// present but Get finds absent (deleted in between, or a value of a type
// the store does not read, such as a Redis list) is overwritten: replacing
// a generation is an invalidation, always safe. ok is false if any
// generation stays unknown.
func (c *Cache) ensureGenerations(ctx context.Context, genKeys []string, gens [][]byte, ttl time.Duration) (created uint32, ok bool) {
	for i, g := range gens {
		if g != nil {
			continue
		}
		keyTTL := ttl
		if i == 0 {
			keyTTL = epochTTL
		}
		fresh := newGeneration()
		added, err := c.calls.add(ctx, genKeys[i], fresh, keyTTL)
		if err != nil {
			return created, false
		}
		if !added {
			v, found, err := c.calls.get(ctx, genKeys[i])
			if err != nil {
				return created, false
			}
			if found {
				gens[i] = v
				continue
			}
			if err := c.set(ctx, genKeys[i], fresh, keyTTL); err != nil {
				c.log.error("hoard: a generation key holds a value the store cannot read and cannot be replaced; its namespace is served uncached", err, keyAttr(genKeys[i]))
				return created, false
			}
		}
		gens[i] = fresh
		created |= 1 << i
	}
	return created, true
}

// settleGenerations decides the lifetime of the generations a read created
// (created, as ensureGenerations returns it) once it knows whether an entry
// that depends on them was stored: if so they get generationTTL; if not,
// nothing depends on them and they are deleted (an invalidation, always
// safe), so that a request whose answer is not stored leaves nothing
// behind. The epoch (bit 0) keeps the lifetime it was created with.
func (c *Cache) settleGenerations(ctx context.Context, genKeys []string, created uint32, stored bool) {
	for i := 1; i < len(genKeys) && created>>i != 0; i++ {
		if created&(1<<i) == 0 {
			continue
		}
		var err error
		if stored {
			err = c.calls.touch(ctx, genKeys[i], c.generationTTL())
		} else {
			err = c.calls.delete(ctx, genKeys[i])
		}
		if err != nil {
			// A stored entry then turns into a miss when the generation
			// expires; an unstored one's generation expires on its own.
			c.log.error("hoard: setting a new generation's lifetime failed; it expires within seconds", err, keyAttr(genKeys[i]))
			return
		}
	}
}
