package hoard

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"
)

// Replay of failed invalidations (the pending set, pending.go). A key that
// the store did not delete is deleted again before any read that checks it
// is served from the store: by the read itself, for its own keys (replayOwn,
// within one Timeout), or by the background replay of all of them
// (replayIfDue), so that no request waits for a long replay after an
// outage. The read's own deletions go through calls, like any call a
// request makes; the background replay through replayCalls. Neither calls
// the store while the breaker is open.

// replayIfDue starts the background replay if invalidations are pending,
// the breaker is closed (the replay would be refused) and the last failed
// replay is at least replayInterval old.
func (c *Cache) replayIfDue() {
	if !c.pending.empty() && c.breaker.closed() && time.Now().UnixNano() >= c.pending.retryAt.Load() {
		c.startReplay()
	}
}

// startReplay runs replayPending in the background (goBackground), unless
// one is running or the Cache is closed.
func (c *Cache) startReplay() {
	if !c.pending.replaying.CompareAndSwap(false, true) {
		return
	}
	if !c.goBackground(func(ctx context.Context) {
		defer c.pending.replaying.Store(false)
		c.replayPending(ctx)
	}) {
		c.pending.replaying.Store(false)
	}
}

// goBackground runs f in a goroutine of its own with a context that Close
// cancels, and which Close waits for. It reports false, without running f,
// when the Cache is closed.
func (c *Cache) goBackground(f func(ctx context.Context)) bool {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.closed {
		return false
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		f(c.bgCtx)
	}()
	return true
}

// replayPending deletes the pending keys, as far as the store takes them.
// The replay lock keeps two replays from deleting one key twice for one
// failure (each deletion is a miss for the entries stored since the last).
func (c *Cache) replayPending(ctx context.Context) {
	if !c.pending.lockReplay(ctx) {
		return
	}
	defer c.pending.unlockReplay()
	keys, seq := c.pending.snapshot()
	if len(keys) == 0 {
		return
	}
	// In random order: keys the store takes are deleted even when another
	// one keeps failing (its server of a pool is down) and stops the replay.
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	if failed, err := c.replay(ctx, keys, seq); err != nil {
		c.log.error("hoard: replaying invalidations failed; the namespaces they name are served uncached until the store takes them", err,
			slog.Int("pending", failed))
	}
}

// replayOwn deletes those of a read's keys that are pending, within one
// Timeout (waiting for a replay in progress included), and reports whether
// none is pending any more.
func (c *Cache) replayOwn(ctx context.Context, keys []string) bool {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if c.pending.lockReplay(rctx) {
		if own, seq := c.pending.pendingAmong(keys); len(own) > 0 {
			notDeleted, _ := deleteKeys(rctx, &c.calls, own)
			c.forgetPending(without(own, notDeleted), seq)
		}
		c.pending.unlockReplay()
	}
	return !c.pending.blocks(keys)
}

// replay deletes pending keys snapshot at seq (deleteKeys) and forgets
// those deleted. It returns how many it could not delete.
func (c *Cache) replay(ctx context.Context, keys []string, seq uint64) (failed int, err error) {
	notDeleted, err := deleteKeys(ctx, &c.replayCalls, keys)
	c.forgetPending(without(keys, notDeleted), seq)
	return len(notDeleted), err
}

// forgetPending forgets replayed keys (pendingSet.forget) and empties the
// pending file once nothing is pending.
func (c *Cache) forgetPending(keys []string, seq uint64) {
	c.metrics.invalidated(context.Background(), invReplayed, len(keys))
	c.pending.forget(keys, seq)
	if err := c.pendingFile.compact(c.pending); err != nil {
		c.log.error("hoard: emptying CACHE_PENDING_FILE failed; its keys will be replayed again at the next start", err)
	}
}

// replayRecord is replayCalls' recorder: a failure reaches the breaker at
// most once per replayInterval, so that a server of a pool that stays down
// does not open the breaker for the servers that answer.
func (c *Cache) replayRecord(err error) {
	if err != nil && !c.pending.failedAt(time.Now()) {
		return
	}
	c.breaker.record(err)
}

// without returns the keys not in drop.
func without(keys, drop []string) []string {
	if len(drop) == 0 {
		return keys
	}
	return slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return slices.Contains(drop, k) })
}
