package hoard

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// maxPending bounds the invalidations a Cache remembers while the store
// does not take them. Past it, one namespace-wide invalidation (deleting the
// epoch keys, which every read checks) replaces them all: safe, since it
// makes every entry a miss, and it keeps the memory of an outage bounded
// (at most maxPending keys of at most Config.MaxKeyBytes each) however many
// writes it sees, and the replay after it one call per shard.
const maxPending = 4096

// replayInterval is the least time between a failed replay and the next.
const replayInterval = 100 * time.Millisecond

// pendingSet remembers the keys of invalidations that could not be written
// (store down), so that they are deleted before the store serves hits of
// the namespaces they name. A pending generation blocks every read that
// checks it, and a pending entry key every read of that entry (blocks); the
// other namespaces keep hitting during a partial outage (one memcached
// server of a pool down). A key leaves the set only when a replay that
// started after it was added has deleted it, so a failure during a replay
// is never lost; and it blocks reads for the whole replay.
type pendingSet struct {
	n         atomic.Int32 // keys, read without the lock on the hot path
	replaying atomic.Bool  // a background replay is running
	// replay admits one replayer at a time (a buffered channel of one, so
	// that a read can wait for it with a deadline).
	replay chan struct{}
	// retryAt (unix nanos) is when a full replay may be tried again after
	// a failed one, so that a server that stays down costs one failing call
	// per replayInterval, not one per request; see also failedAt.
	retryAt atomic.Int64

	mu   sync.Mutex
	seq  uint64
	keys map[string]uint64 // keys to delete → seq when added
	// epochKeys replace every pending key when there are more than
	// maxPending; collapsed says they have.
	epochKeys []string
	collapsed bool
}

func newPendingSet(epochKeys []string) *pendingSet {
	return &pendingSet{epochKeys: epochKeys, replay: make(chan struct{}, 1)}
}

func (p *pendingSet) empty() bool { return p.n.Load() == 0 }

// lockReplay waits for the replay lock until ctx is done, and reports
// whether it got it; unlockReplay releases it.
func (p *pendingSet) lockReplay(ctx context.Context) bool {
	select {
	case p.replay <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (p *pendingSet) unlockReplay() { <-p.replay }

// size returns how many keys wait to be deleted.
func (p *pendingSet) size() int { return int(p.n.Load()) }

// add remembers keys to delete. It reports whether the set collapsed into
// the namespace-wide invalidation (now or before).
func (p *pendingSet) add(keys []string) (collapsed bool) {
	if len(keys) == 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keys == nil {
		p.keys = map[string]uint64{}
	}
	p.seq++
	if !p.collapsed {
		for _, k := range keys {
			p.keys[k] = p.seq
		}
	}
	if p.collapsed || len(p.keys) > maxPending {
		// The epoch keys, added at this seq, cover every key added before.
		clear(p.keys)
		for _, k := range p.epochKeys {
			p.keys[k] = p.seq
		}
		p.collapsed = true
	}
	p.n.Store(int32(len(p.keys)))
	return p.collapsed
}

// blocks reports whether any of keys is pending: a read that checks it
// must not be served from the store.
func (p *pendingSet) blocks(keys []string) bool {
	if p.empty() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		if _, ok := p.keys[k]; ok {
			return true
		}
	}
	return false
}

// pendingAmong returns those of keys that are pending, and the sequence
// number to pass to forget once they have been deleted.
func (p *pendingSet) pendingAmong(keys []string) (pending []string, seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		if _, ok := p.keys[k]; ok && !slices.Contains(pending, k) {
			pending = append(pending, k)
		}
	}
	return pending, p.seq
}

// snapshot returns every pending key and the sequence number to pass to
// forget once they have been deleted.
func (p *pendingSet) snapshot() (keys []string, seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys = make([]string, 0, len(p.keys))
	for k := range p.keys {
		keys = append(keys, k)
	}
	return keys, p.seq
}

// forget drops the given keys if they were added up to seq (deleted by a
// replay that snapshot seq); keys added again since then stay.
func (p *pendingSet) forget(keys []string, seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		if s, ok := p.keys[k]; ok && s <= seq {
			delete(p.keys, k)
		}
	}
	if len(p.keys) == 0 {
		p.collapsed = false
	}
	p.n.Store(int32(len(p.keys)))
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
