package hoard

import (
	"bytes"
	"context"
	"slices"
	"time"
)

// Waiting for another instance's miss (Config.MissWait). Singleflight
// holds a missing entry to one handler run per process; across the
// instances sharing a store, the first to miss takes a lease in the store
// (its Add: Redis SET NX, Memcached add), named after the entry and the
// generations it was read under (keyspace.missLease). The others poll the
// store for the leaseholder's entry and answer from it. They stop waiting,
// and run the handler themselves, after MissWait, or as soon as the lease
// is gone without an entry. The leaseholder deletes the lease once its
// run is over, stored or not (a lease left to expire would hold up a
// later miss of the same entry, evicted or overwritten meanwhile, for
// MissWait); it expires after MissWait if the leaseholder dies. A write
// changes the generations and so the lease: a read after it never waits
// for a run from before it.

// A waiting instance reads the entry and the lease after firstPoll, then
// twice as long after each read, up to every maxPoll: a fast handler's
// entry is found within about a millisecond of being stored, and a slow
// one's costs a read every 10 ms per waiting process (not per request:
// the requests of a process wait on one flight).
const (
	firstPoll = time.Millisecond
	maxPoll   = 10 * time.Millisecond
)

// missLease is a lease on running the handler for one entry.
type missLease struct {
	key string
	won bool // this instance holds it: delete it once the run is over
}

// takeMissLease asks the store for the lease of key under gens. It
// returns ok false when another instance holds it. A store that cannot
// answer gives the lease to every caller (liveness before strictness);
// so do MissWait off and a ProcessLocal store.
func (c *Cache) takeMissLease(ctx context.Context, key string, gens [][]byte) (l missLease, ok bool) {
	if !c.leases {
		return l, true
	}
	l.key = c.keys.missLease(key, gens)
	won, err := c.calls.add(ctx, l.key, []byte{1}, c.cfg.MissWait)
	l.won = err == nil && won
	return l, err != nil || won
}

// storedSince returns the entry that another instance stored since this
// one read storeKeys (the entry's key, then its generations'), when this
// one has just won lease l: a lease won right after the previous holder
// released it (its run over, its entry stored) is no reason to run the
// handler again. One read per lease won.
func (c *Cache) storedSince(ctx context.Context, storeKeys []string, l missLease) *entry {
	if !l.won {
		return nil
	}
	vals, err := c.readEntry(ctx, storeKeys)
	if err != nil {
		return nil
	}
	return freshEntry(vals[0], vals[1:])
}

// freshEntry decodes a stored route entry, returning it if it is within
// its TTL and was stored under gens, the generations read with it in the
// same round trip (through readEntry, so never during the quiet period
// after an outage, nor over a pending invalidation), else nil.
func freshEntry(v []byte, gens [][]byte) *entry {
	if v == nil {
		return nil
	}
	e, err := decodeEntry(v, kindHTTP)
	if err != nil || !e.current(gens) || e.overdue(time.Now()) >= 0 {
		return nil
	}
	return &e
}

// releaseMissLease gives up a lease this instance holds once its run is
// over: waiting instances then answer from the entry, or, when nothing was
// stored, run the handler at once.
func (c *Cache) releaseMissLease(ctx context.Context, l missLease) {
	if l.won {
		_ = c.calls.delete(context.WithoutCancel(ctx), l.key)
	}
}

// awaitPeer polls the store for the entry that the holder of lease l is
// producing under gens, the generations of storeKeys[1:] that this
// instance read, for at most MissWait. It returns the entry when it
// appears, current with the generations read with it, or nil when the
// lease is gone without an entry, the generations changed (a write: the
// holder's answer will not be served), MissWait has passed, ctx is done or
// the store fails.
func (c *Cache) awaitPeer(ctx context.Context, storeKeys []string, l missLease, gens [][]byte) *entry {
	deadline := time.NewTimer(c.cfg.MissWait)
	defer deadline.Stop()
	poll := time.NewTimer(firstPoll)
	defer poll.Stop()
	c.stats.missWaits.Add(1)
	keys := append(storeKeys[:len(storeKeys):len(storeKeys)], l.key)
	n := len(storeKeys)
	for wait := firstPoll; ; {
		select {
		case <-ctx.Done():
			return nil
		case <-deadline.C:
			return nil
		case <-poll.C:
		}
		vals, err := c.readEntry(ctx, keys)
		if err != nil || !sameValues(vals[1:n], gens) {
			return nil
		}
		if e := freshEntry(vals[0], gens); e != nil {
			c.stats.missServed.Add(1)
			return e
		}
		if vals[n] == nil {
			return nil // the lease is gone without an entry
		}
		wait = min(2*wait, maxPoll)
		poll.Reset(wait)
	}
}

// sameValues reports whether a and b hold the same values.
func sameValues(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, bytes.Equal)
}
