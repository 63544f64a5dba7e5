package hoard

import (
	"context"
	"time"
)

// After an outage. While the store was down, another instance of the
// service may have acknowledged writes whose invalidations it could not
// write: they are pending in that process (pending.go), which replays them
// once the store answers again. Until it has, the store still holds the
// entries those writes made stale, and this instance, which cannot know
// about them, would serve them. So when the breaker closes after having
// been open (the store came back), the Cache serves no stored entry for
// quietPeriod: reads run the handler (and store its fresh answer), as
// during the outage. quietPeriod covers another instance's replay: its
// breaker probes the store at most breakerCooldown after the store came
// back, by a request or by the replay loop below (every replayInterval
// while invalidations are pending, so an idle instance replays too), and
// the probe and the replay (one delete: deleteKeys) take at most a Timeout
// each, plus the store's own wait after a delete (a near cache's lag, at
// most Timeout).
//
// The period starts when this instance sees the store back; instances that
// saw no failure during the outage (no traffic) do not know there was one:
// the assumption is stated in docs/reliability.md.

// quietPeriod is how long after the store came back from an outage stored
// entries are not served, for a Cache whose store calls time out after
// timeout.
func quietPeriod(timeout time.Duration) time.Duration {
	// Twice the cool-down: the replaying instance's breaker may have
	// reopened (a probe timing out) just as the store came back, and the
	// margin absorbs a loaded machine's scheduling delays.
	return 2*breakerCooldown + 4*timeout
}

// quiet reports whether the Cache is in its quiet period after an outage.
func (c *Cache) quiet() bool { return c.breaker.recoveredWithin(c.quietFor) }

// readEntry is read for keys whose first is an entry's: the entry reads as
// absent during the quiet period.
func (c *Cache) readEntry(ctx context.Context, keys []string) ([][]byte, error) {
	vals, err := c.read(ctx, keys)
	if err == nil && c.quiet() {
		vals[0] = nil
	}
	return vals, err
}

// replayLoop replays pending invalidations every replayInterval while some
// are pending, probing the store first while the breaker is open, so that
// they reach the store soon after it comes back even when no request
// arrives. It returns when the Cache is closed.
func (c *Cache) replayLoop() {
	defer c.bg.Done()
	t := time.NewTicker(replayInterval)
	defer t.Stop()
	for {
		select {
		case <-c.bgCtx.Done():
			return
		case <-t.C:
		}
		if c.pending.empty() {
			continue
		}
		if !c.breaker.closed() {
			// Admitted only as the half-open probe: its success closes the
			// breaker, its failure keeps it open for another cool-down.
			_ = c.calls.ping(c.bgCtx)
		}
		c.replayIfDue()
	}
}
