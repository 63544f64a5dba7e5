package hoard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hoardcache/hoard/internal/glob"
)

// The provider API: a key-value cache for code that is not a route, with
// the same generations, so that Invalidate and Clear also reach it.

// Get returns the value stored under key. found is false for an absent,
// expired, cleared or invalidated key; err reports a store failure. The
// returned slice is the caller's to keep.
func (c *Cache) Get(ctx context.Context, key string) (value []byte, found bool, err error) {
	defer func() { c.metrics.providerRead(ctx, "get", found, err) }()
	if c.disabled {
		return nil, false, nil
	}
	if err := c.checkKey(key); err != nil {
		return nil, false, err
	}
	vals, err := c.readEntry(ctx, c.keys.readKeys(key))
	if err != nil {
		return nil, false, err
	}
	v, ok := decodeCurrentRaw(vals)
	if !ok {
		return nil, false, nil
	}
	return append(make([]byte, 0, len(v)), v...), true, nil
}

// decodeCurrentRaw returns the payload of vals[0] if it is a raw envelope
// whose generations equal vals[1:].
func decodeCurrentRaw(vals [][]byte) ([]byte, bool) {
	if vals[0] == nil {
		return nil, false
	}
	e, err := decodeEntry(vals[0], kindRaw)
	if err != nil || !e.current(vals[1:]) {
		return nil, false
	}
	return e.body, true
}

// Set stores value under key for ttl (0 means DefaultTTL; negative is
// ErrInvalidTTL). The value and its TTL are written in one atomic call.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) (err error) {
	defer func() { c.metrics.providerDone(ctx, "set", err) }()
	if c.disabled {
		return nil
	}
	if err := c.checkKey(key); err != nil {
		return err
	}
	ttl, err = c.ttl(ttl)
	if err != nil {
		return err
	}
	keys := c.keys.readKeys(key)
	gens, err := c.read(ctx, keys[1:])
	if err != nil {
		return err
	}
	if _, ok := c.ensureGenerations(ctx, keys[1:], gens, c.generationTTL()); !ok {
		return ErrUnavailable
	}
	return c.set(ctx, keys[0], encodeRaw(gens, time.Now(), ttl, value), ttl)
}

// ttl resolves a provider TTL (0 = DefaultTTL) and notes it, so that the
// generations of the value outlive it.
func (c *Cache) ttl(ttl time.Duration) (time.Duration, error) {
	switch {
	case ttl < 0:
		return 0, fmt.Errorf("%w: got %v", ErrInvalidTTL, ttl)
	case ttl == 0:
		return c.cfg.DefaultTTL, nil
	}
	c.noteTTL(ttl)
	return ttl, nil
}

// Delete removes the given keys. Absent keys are not an error.
func (c *Cache) Delete(ctx context.Context, keys ...string) (err error) {
	defer func() { c.metrics.providerDone(ctx, "delete", err) }()
	if c.disabled || len(keys) == 0 {
		return nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		if err := c.checkKey(k); err != nil {
			return err
		}
		full[i] = c.keys.entry(k)
	}
	return c.calls.delete(ctx, full...)
}

// DeletePattern removes every key of this cache matching the glob pattern
// (Redis syntax: * ? [abc], backslash escapes) and returns how many. Unlike
// FastAPI-boilerplate's delete_pattern, the pattern is used as given: "user:1" matches only "user:1", not
// "user:10". It walks the keyspace (on Redis, a SCAN of every master), so it
// is meant for maintenance; routes invalidate by generation instead. On a
// store that is not a PatternDeleter (Memcached) it returns
// ErrPatternNotSupported.
func (c *Cache) DeletePattern(ctx context.Context, pattern string) (n int, err error) {
	defer func() { c.metrics.providerDone(ctx, "delete_pattern", err) }()
	if c.disabled {
		return 0, nil
	}
	if pattern == "" {
		return 0, errors.New("hoard: empty pattern; use \"*\" to match every key of the cache, or Clear")
	}
	if _, ok := c.store.(PatternDeleter); !ok {
		return 0, ErrPatternNotSupported
	}
	return c.calls.deletePattern(ctx, glob.Escape(c.keys.ns)+pattern)
}

// Exists reports whether key holds a current value.
func (c *Cache) Exists(ctx context.Context, key string) (found bool, err error) {
	defer func() { c.metrics.providerRead(ctx, "exists", found, err) }()
	if c.disabled {
		return false, nil
	}
	if err := c.checkKey(key); err != nil {
		return false, err
	}
	vals, err := c.readEntry(ctx, c.keys.readKeys(key))
	if err != nil {
		return false, err
	}
	_, ok := decodeCurrentRaw(vals)
	return ok, nil
}

// Clear makes every value of this cache (its CACHE_KEY_PREFIX namespace) a
// miss by deleting the namespace's epoch: one write, on every store (on a
// Sharded store, one per shard: the copy of a shard that is down is
// replayed later, and until then the reads of that shard are served
// uncached). It never flushes the server, so other applications' keys are untouched. On
// a store that can walk keys (a PatternDeleter), and when the cache has a KeyPrefix, the stale
// values are also deleted to free memory; elsewhere they expire by TTL.
func (c *Cache) Clear(ctx context.Context) (err error) {
	defer func() { c.metrics.providerDone(ctx, "clear", err) }()
	if c.disabled {
		return nil
	}
	if err := c.invalidate(ctx, c.keys.epochs); err != nil {
		return err
	}
	if _, ok := c.store.(PatternDeleter); ok && c.keys.ns != "" {
		if _, err := c.calls.deletePattern(ctx, glob.Escape(c.keys.ns)+"*"); err != nil {
			c.log.error("hoard: Clear deleted the epoch but could not delete old values; they will expire", err)
		}
	}
	return nil
}

// Ping checks that the store answers.
func (c *Cache) Ping(ctx context.Context) error {
	if c.disabled {
		return nil
	}
	return c.calls.ping(ctx)
}

// Invalidate does what a write route does, for code outside routes: for each
// name it makes every value recorded under that namespace a miss. A name is a
// resource ("widget:42": the key itself, and every query and caller variant a
// route cached for it) or a pattern that a route declared ("alice_posts:*"),
// formatted the way a route formats it (hoard.Key escapes ids). Values are escaped by Key;
// a name passed here is used as is. If the store is down the invalidation is
// kept and replayed before the cache serves hits again, and the error is
// returned.
func (c *Cache) Invalidate(ctx context.Context, names ...string) (err error) {
	defer func() { c.metrics.providerDone(ctx, "invalidate", err) }()
	if c.disabled || len(names) == 0 {
		return nil
	}
	keys := make([]string, 0, 2*len(names))
	for _, n := range names {
		if err := c.checkKey(n); err != nil {
			return err
		}
		keys = c.keys.appendInvalidation(keys, n, strings.ContainsAny(n, "*?["))
	}
	return c.invalidate(ctx, keys)
}
