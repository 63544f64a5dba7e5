package hoard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SetJSON stores v encoded as JSON. Strings, booleans, numbers and null
// round-trip through GetJSON with their types (the Python layer hoard was modelled on stored some as bare
// text).
func (c *Cache) SetJSON(ctx context.Context, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("hoard: SetJSON %q: %w", key, err)
	}
	return c.Set(ctx, key, b, ttl)
}

// GetJSON reads a value stored by SetJSON into a T. A value that does not
// decode into T is an error (found is true), so a type change between
// releases is visible rather than silently zero.
func GetJSON[T any](ctx context.Context, c *Cache, key string) (v T, found bool, err error) {
	b, found, err := c.Get(ctx, key)
	if err != nil || !found {
		return v, found, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, true, fmt.Errorf("hoard: GetJSON %q into %T: %w", key, v, err)
	}
	return v, true, nil
}

// Fetch is cache-aside get-or-load: it returns the value under key, or runs
// load, stores its result for ttl (0 = DefaultTTL) and returns it. Concurrent
// Fetches of one missing key in this process run load once and share its
// result. Fetch fails open: if the store is down it returns load's result
// and the store's error is only logged. A load error is returned and nothing
// is stored. A value loaded before a concurrent Invalidate of key is not
// served after it.
func (c *Cache) Fetch(ctx context.Context, key string, ttl time.Duration, load func(ctx context.Context) ([]byte, error)) (value []byte, err error) {
	hit := false
	defer func() { c.metrics.providerRead(ctx, "fetch", hit, err) }()
	if c.disabled {
		return load(ctx)
	}
	if err := c.checkKey(key); err != nil {
		return nil, err
	}
	ttl, err = c.ttl(ttl)
	if err != nil {
		return nil, err
	}
	keys := c.keys.readKeys(key)
	vals, err := c.readEntry(ctx, keys)
	if err != nil {
		// ErrUnavailable (breaker open, or an invalidation of this key
		// pending) is an expected state, logged when it began.
		if !errors.Is(err, ErrUnavailable) {
			c.log.error("hoard: Fetch could not read the store; loading directly", err, keyAttr(key))
		}
		return load(ctx)
	}
	if v, ok := decodeCurrentRaw(vals); ok {
		hit = true
		return append(make([]byte, 0, len(v)), v...), nil
	}
	gens := vals[1:]
	created, ok := c.ensureGenerations(ctx, keys[1:], gens, provisionalGenerationTTL)
	if !ok {
		return load(ctx)
	}
	// Keyed by the generations seen (appendFlightKey).
	flight := string(appendFlightKey(make([]byte, 0, len(key)+24), key, gens))
	v, err, _ := c.fetches.Do(flight, func() (any, error) {
		b, err := load(ctx)
		if err != nil {
			return nil, err
		}
		if err := c.set(ctx, keys[0], encodeRaw(gens, time.Now(), ttl, b), ttl); err != nil {
			c.log.error("hoard: Fetch could not store the loaded value", err, keyAttr(key))
			return fetched{b, false}, nil
		}
		return fetched{b, true}, nil
	})
	f, _ := v.(fetched)
	c.settleGenerations(ctx, keys[1:], created, f.stored)
	if err != nil {
		return nil, err
	}
	return append(make([]byte, 0, len(f.value)), f.value...), nil
}

// fetched is the result a Fetch load shares with the Fetches that waited
// for it: the value, and whether it was stored.
type fetched struct {
	value  []byte
	stored bool
}

// FetchJSON is Fetch for a JSON-encoded T.
func FetchJSON[T any](ctx context.Context, c *Cache, key string, ttl time.Duration, load func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	b, err := c.Fetch(ctx, key, ttl, func(ctx context.Context) ([]byte, error) {
		v, err := load(ctx)
		if err != nil {
			return nil, err
		}
		return json.Marshal(v)
	})
	if err != nil {
		return zero, err
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return zero, fmt.Errorf("hoard: FetchJSON %q into %T: %w", key, v, err)
	}
	return v, nil
}
