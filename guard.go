package hoard

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoardcache/hoard/internal/storeerr"
)

// ErrUnavailable is returned by the provider API while the circuit breaker
// skips a store that failed repeatedly. The route middleware never returns it:
// it serves the handler's answer instead (fail-open).
var ErrUnavailable = errors.New("hoard: cache store unavailable after repeated failures; calls are skipped for a moment (check the store server and CACHE_TIMEOUT)")

// breaker skips the store for a while after repeated failures, so that an
// outage costs an atomic load per request instead of a timeout. After the
// cool-down one probe call goes through; its success closes the breaker.
type breaker struct {
	threshold int32
	cooldown  time.Duration

	fails     atomic.Int32
	openUntil atomic.Int64 // unix nanos; 0 = closed
	probing   atomic.Bool
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
	}
}

func (b *breaker) failure() {
	n := b.fails.Add(1)
	if n >= b.threshold || b.probing.Load() {
		b.openUntil.Store(time.Now().Add(b.cooldown).UnixNano())
		b.probing.Store(false)
	}
}

// abandon is called by a caller that allow let through but that makes no
// store call after all (its keys are blocked by pending invalidations): if
// the breaker is half-open, the probe slot is released so that another
// call can probe.
func (b *breaker) abandon() {
	if b.openUntil.Load() != 0 {
		b.probing.Store(false)
	}
}

// record reports the outcome of a store call to the breaker. A caller's own
// cancellation says nothing about the store and is not counted; nor is a
// call that a pool store skipped at once because its server is marked
// down (storeerr.ErrServerDown): it cost no timeout, the store keeps
// skipping that server itself, and the other servers' keys must keep
// hitting.
func (b *breaker) record(err error) {
	switch {
	case err == nil:
		b.success()
	case errors.Is(err, context.Canceled), errors.Is(err, storeerr.ErrServerDown):
		if b.probing.Load() {
			b.probing.Store(false)
		}
	default:
		b.failure()
	}
}

// pendingSet remembers invalidations that could not be written (store down),
// so that they are replayed before the store serves hits of the namespaces
// they name. A pending generation blocks every read that checks it, and a
// pending delete every read of that entry (blocks); the other namespaces
// keep hitting during a partial outage (one memcached server of a pool
// down). An entry leaves the set only when a replay that started after it
// was added has written it, so a failure during a replay is never lost; and
// it blocks reads for the whole replay.
type pendingSet struct {
	n      atomic.Int32 // entries, read without the lock on the hot path
	replay sync.Mutex   // one replayer at a time (TryLock)
	// retryAt (unix nanos) is when a full replay may be tried again after
	// a failed one, so that a server that stays down costs one failing call
	// per replayInterval, not one per request; see also failedAt.
	retryAt atomic.Int64
	mu      sync.Mutex
	seq     uint64
	gens    map[string]uint64 // generation keys to bump → seq when added
	keys    map[string]uint64 // entry keys to delete → seq when added
}

// replayInterval is the least time between a failed replay and the next.
const replayInterval = 100 * time.Millisecond

func (p *pendingSet) empty() bool { return p.n.Load() == 0 }

func (p *pendingSet) add(genKeys, delKeys []string) {
	if len(genKeys)+len(delKeys) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gens == nil {
		p.gens = map[string]uint64{}
		p.keys = map[string]uint64{}
	}
	p.seq++
	for _, k := range genKeys {
		p.gens[k] = p.seq
	}
	for _, k := range delKeys {
		p.keys[k] = p.seq
	}
	p.n.Store(int32(len(p.gens) + len(p.keys)))
}

// blocks reports whether any of keys is pending (a generation to replace or
// an entry to delete): a read that checks it must not be served from the
// store.
func (p *pendingSet) blocks(keys []string) bool {
	if p.empty() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		if _, ok := p.gens[k]; ok {
			return true
		}
		if _, ok := p.keys[k]; ok {
			return true
		}
	}
	return false
}

// pendingAmong returns those of keys that are pending, and the sequence
// number to pass to forgetKeys once they have been written.
func (p *pendingSet) pendingAmong(keys []string) (genKeys, delKeys []string, seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		if _, ok := p.gens[k]; ok && !slices.Contains(genKeys, k) {
			genKeys = append(genKeys, k)
		}
		if _, ok := p.keys[k]; ok && !slices.Contains(delKeys, k) {
			delKeys = append(delKeys, k)
		}
	}
	return genKeys, delKeys, p.seq
}

// failedAt notes a failed replay; it reports whether this is the first
// failure of the current replayInterval, the only one a replay reports to
// the breaker (a server that stays down must not open the breaker for the
// servers that answer).
func (p *pendingSet) failedAt(now time.Time) bool {
	for {
		r := p.retryAt.Load()
		if now.UnixNano() < r {
			return false
		}
		if p.retryAt.CompareAndSwap(r, now.Add(replayInterval).UnixNano()) {
			return true
		}
	}
}

// snapshot returns everything pending and the sequence number to pass to
// forget once it has been written.
func (p *pendingSet) snapshot() (genKeys, delKeys []string, seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.gens {
		genKeys = append(genKeys, k)
	}
	for k := range p.keys {
		delKeys = append(delKeys, k)
	}
	return genKeys, delKeys, p.seq
}

// forget drops the entries added up to seq (written by a replay); entries
// added again since then stay.
func (p *pendingSet) forget(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range []map[string]uint64{p.gens, p.keys} {
		for k, s := range m {
			if s <= seq {
				delete(m, k)
			}
		}
	}
	p.n.Store(int32(len(p.gens) + len(p.keys)))
}

// forgetKeys drops the given generation and entry keys if they were added
// up to seq (written by a replay that snapshot seq).
func (p *pendingSet) forgetKeys(genKeys, delKeys []string, seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forgetLocked(p.gens, genKeys, seq)
	p.forgetLocked(p.keys, delKeys, seq)
}

// forgetLocked drops from m those of keys added up to seq.
func (p *pendingSet) forgetLocked(m map[string]uint64, keys []string, seq uint64) {
	for _, k := range keys {
		if s, ok := m[k]; ok && s <= seq {
			delete(m, k)
		}
	}
	p.n.Store(int32(len(p.gens) + len(p.keys)))
}

// rateLimitedLog writes at most one line per interval and counts the rest,
// so that an outage does not flood the log with one line per request.
type rateLimitedLog struct {
	logger     *slog.Logger
	interval   time.Duration
	last       atomic.Int64
	suppressed atomic.Int64
}

func (l *rateLimitedLog) error(msg string, err error, attrs ...any) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(l.interval) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	if n := l.suppressed.Swap(0); n > 0 {
		attrs = append(attrs, slog.Int64("suppressed", n))
	}
	attrs = append(attrs, slog.Any("error", err))
	l.logger.Warn(msg, attrs...)
}
