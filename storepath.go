package hoard

import (
	"context"
	"time"
)

// storePath is the one way a Cache calls its store: every call is admitted
// (or refused with ErrUnavailable without touching the store), bounded by
// the deadline, and its outcome recorded. A Cache has two, built in New:
// calls, admitted and recorded by the circuit breaker, and replayCalls,
// which the background replay of failed invalidations uses (admitted only
// while the breaker is closed, and recorded sparingly: see there).
type storePath struct {
	store Store
	// timeout bounds each call; 0 when the store bounds its calls itself
	// (it is SelfTimed, as hoard's own stores are: by CACHE_TIMEOUT;
	// memory never blocks).
	timeout time.Duration
	admit   func() bool
	record  func(error)
	metrics *metrics // records each call's duration (hoard.store.duration)
}

// do runs call, a store call of operation op, under the path's
// admission, deadline and recording.
func (p *storePath) do(ctx context.Context, op storeOp, call func(ctx context.Context) error) error {
	if !p.admit() {
		return ErrUnavailable
	}
	start := time.Now()
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	err := call(ctx)
	p.record(err)
	p.metrics.storeCall(ctx, op, start, err)
	return err
}

func (p *storePath) get(ctx context.Context, key string) (v []byte, found bool, err error) {
	err = p.do(ctx, opGet, func(ctx context.Context) (err error) {
		v, found, err = p.store.Get(ctx, key)
		return err
	})
	return v, found, err
}

func (p *storePath) getMulti(ctx context.Context, keys []string) (vals [][]byte, err error) {
	err = p.do(ctx, opGetMulti, func(ctx context.Context) (err error) {
		vals, err = p.store.GetMulti(ctx, keys)
		return err
	})
	return vals, err
}

func (p *storePath) set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return p.do(ctx, opSet, func(ctx context.Context) error { return p.store.Set(ctx, key, val, ttl) })
}

func (p *storePath) add(ctx context.Context, key string, val []byte, ttl time.Duration) (added bool, err error) {
	err = p.do(ctx, opAdd, func(ctx context.Context) (err error) {
		added, err = p.store.Add(ctx, key, val, ttl)
		return err
	})
	return added, err
}

func (p *storePath) touch(ctx context.Context, key string, ttl time.Duration) error {
	return p.do(ctx, opTouch, func(ctx context.Context) error {
		_, err := p.store.Touch(ctx, key, ttl)
		return err
	})
}

func (p *storePath) delete(ctx context.Context, keys ...string) error {
	return p.do(ctx, opDelete, func(ctx context.Context) error { return p.store.Delete(ctx, keys...) })
}

// deletePattern calls the store's DeletePattern; the caller checks first
// that the store is a PatternDeleter.
func (p *storePath) deletePattern(ctx context.Context, pattern string) (n int, err error) {
	pd, ok := p.store.(PatternDeleter)
	if !ok {
		return 0, ErrPatternNotSupported
	}
	err = p.do(ctx, opDeletePattern, func(ctx context.Context) (err error) {
		n, err = pd.DeletePattern(ctx, pattern)
		return err
	})
	return n, err
}

func (p *storePath) ping(ctx context.Context) error {
	return p.do(ctx, opPing, p.store.Ping)
}
