package hoard

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
)

// invalidate deletes the generation and entry keys of an invalidation, or,
// if the store fails, keeps those it could not delete to be replayed before
// the store serves hits of their namespaces again (replay.go).
func (c *Cache) invalidate(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	notDeleted, err := deleteKeys(ctx, &c.calls, keys)
	c.metrics.invalidated(ctx, invWritten, len(keys)-len(notDeleted))
	c.metrics.invalidated(ctx, invFailed, len(notDeleted))
	if err != nil {
		attrs := []any{slog.Int("keys", len(notDeleted))}
		if c.addPending(notDeleted) {
			attrs = append(attrs, slog.Bool("namespace_wide", true))
		}
		c.log.error("hoard: invalidation failed; it will be replayed before the cache serves hits of its namespaces again", err, attrs...)
	}
	return err
}

// addPending adds keys to the pending set, and to the pending file when
// there is one (synced before it returns). It reports whether the set
// collapsed into the namespace-wide invalidation.
func (c *Cache) addPending(keys []string) (collapsed bool) {
	collapsed, err := c.pendingFile.add(c.pending, keys)
	if err != nil {
		c.log.error("hoard: writing CACHE_PENDING_FILE failed; this invalidation is pending in memory only", err, slog.String("file", c.pendingFile.path))
	}
	return collapsed
}

// maxInvalidationFanout bounds the concurrent store calls of one
// invalidation (a replay after an outage may hold many keys).
const maxInvalidationFanout = 8

// deleteKeys deletes keys through path in one call: one round trip, and
// one wait for a store that waits after a delete (the Redis near cache's
// lag), however many keys a replay after an outage holds. When that fails
// on a Sharded store (a pool, a Cluster), whose servers fail one by one,
// it deletes them again one call per key, so that the keys of the servers
// that answer are deleted; those calls run concurrently (one more round
// trip, or timeout), and after the first failure no new call is started.
// It returns the keys it did not delete (failed or not tried).
func deleteKeys(ctx context.Context, path *storePath, keys []string) (notDeleted []string, err error) {
	if err = path.delete(ctx, keys...); err == nil {
		return nil, nil
	}
	if _, sharded := path.store.(Sharded); !sharded || len(keys) == 1 || errors.Is(err, ErrUnavailable) {
		return keys, err
	}
	done := make([]bool, len(keys))
	{
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			errs   []error
			failed atomic.Bool
			sem    = make(chan struct{}, maxInvalidationFanout)
		)
		for i := 0; i < len(keys) && !failed.Load(); i++ {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if failed.Load() {
					return
				}
				err := path.delete(ctx, keys[i])
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed.Store(true)
					errs = append(errs, err)
					return
				}
				done[i] = true
			}()
		}
		wg.Wait()
		err = errors.Join(errs...)
	}
	for i, ok := range done {
		if !ok {
			notDeleted = append(notDeleted, keys[i])
		}
	}
	return notDeleted, err
}
