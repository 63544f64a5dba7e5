package hoard

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// breaker skips the store for a while after repeated failures, so that an
// outage costs an atomic load per request instead of a timeout. After the
// cool-down one probe call goes through; its success closes the breaker.
type breaker struct {
	threshold int32
	cooldown  time.Duration

	fails     atomic.Int32
	openUntil atomic.Int64 // unix nanos; 0 = closed
	probing   atomic.Bool
	recovered atomic.Int64 // unix nanos of the last close after being open; 0 = never
}

func newBreaker(threshold int, cooldown time.Duration) *breaker {
	return &breaker{threshold: int32(threshold), cooldown: cooldown}
}

// allow reports whether a store call may go ahead now. probe is true for
// the single call let through a half-open breaker: its outcome must be
// reported.
func (b *breaker) allow() bool {
	until := b.openUntil.Load()
	if until == 0 {
		return true
	}
	if time.Now().UnixNano() < until {
		return false
	}
	return b.probing.CompareAndSwap(false, true)
}

// closed reports whether the breaker is closed, without taking the
// half-open probe: for callers whose failures it does not count each time.
func (b *breaker) closed() bool { return b.openUntil.Load() == 0 }

// success forgives one failure rather than all of them, so that a store
// failing most calls (say every read, while writes go through) still opens
// the breaker; a healthy store costs one atomic load here.
func (b *breaker) success() {
	if n := b.fails.Load(); n > 0 {
		b.fails.CompareAndSwap(n, n-1)
	}
	if b.openUntil.Load() != 0 {
		b.openUntil.Store(0)
		b.probing.Store(false)
		b.recovered.Store(time.Now().UnixNano())
	}
}

// recoveredWithin reports whether the breaker closed after being open less
// than d ago (one atomic load when it never was).
func (b *breaker) recoveredWithin(d time.Duration) bool {
	r := b.recovered.Load()
	return r != 0 && time.Now().UnixNano()-r < int64(d)
}

func (b *breaker) failure() {
	n := b.fails.Add(1)
	if n >= b.threshold || b.probing.Load() {
		b.openUntil.Store(time.Now().Add(b.cooldown).UnixNano())
		b.probing.Store(false)
	}
}

// record reports the outcome of a store call to the breaker. A caller's own
// cancellation says nothing about the store and is not counted; nor is a
// call that a pool store skipped at once because its server is marked
// down (ErrServerDown): it cost no timeout, the store keeps
// skipping that server itself, and the other servers' keys must keep
// hitting. Nor is a refusal of one value (ErrRefused: too large,
// no memory for it): the server answered, and only that key goes uncached,
// so one client asking for oversized pages cannot switch caching off for
// everyone.
func (b *breaker) record(err error) {
	switch {
	case err == nil:
		b.success()
	case errors.Is(err, context.Canceled), errors.Is(err, ErrServerDown), errors.Is(err, ErrRefused):
		if b.probing.Load() {
			b.probing.Store(false)
		}
	default:
		b.failure()
	}
}
