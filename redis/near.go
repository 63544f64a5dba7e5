package redis

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// The near cache (Options.NearCache) is rueidis' client-side cache: reads
// go through DoCache/DoMultiCache, rueidis keeps each reply in a cache of
// the connection that read it, and Redis (CLIENT TRACKING, default mode,
// OPTIN: only the store's cached reads are tracked) pushes an invalidation
// on that connection when the key changes, on which rueidis drops the copy
// before calling OnInvalidations. When a connection breaks, rueidis drops
// its whole cache (and calls OnInvalidations(nil)), since invalidations
// may have been missed.
//
// What the server's push does not cover is the store's own writes: the
// write's reply may come back on one connection before the invalidation
// reaches the connection holding the copy, and a read made right after
// the write would then be served the old copy. So every key the store
// writes is recorded in a "written recently" set (near.recent) from before
// the write is sent until the first invalidation of that key received
// after the write returned, or writtenBound (capped by NearTTL) after it
// returned; meanwhile it is read with a plain GET. The set is bounded by
// maxRecent: past it, every read is plain until the marks expire.
//
// One narrow window remains: an invalidation caused by an earlier change
// of a key, delivered after the store's write of that key returned, ends
// the write's mark early; a cached read of the key still in flight from
// before the write could then be served until the write's own
// invalidation arrives (microseconds later, on the same connection).

// writtenBound is the longest a key written by the store is read uncached
// when no invalidation for it arrives (none comes for a key the
// connection does not hold).
const writtenBound = time.Second

// maxRecent bounds the written-recently set.
const maxRecent = 1 << 16

// near is the state of a store's near cache.
type near struct {
	ttl    time.Duration // Options.NearTTL
	bound  time.Duration // min(writtenBound, ttl)
	window time.Duration // Options.Timeout: see live
	copies *nearCache

	// alive is when (Unix nanoseconds) the last request was sent that
	// the server has answered (see live).
	alive atomic.Int64

	mu       sync.Mutex
	recent   map[string]*mark
	marked   atomic.Int64 // len(recent), read without mu
	overflow atomic.Int64 // until then (Unix nanoseconds), every read is plain (recent was full)
}

// mark is a key written by the store: writes in flight, and until when
// the key is read uncached once none is.
type mark struct {
	writing int
	until   time.Time
}

func newNear(o Options) *near {
	return &near{
		ttl:    o.NearTTL,
		bound:  min(writtenBound, o.NearTTL),
		window: o.Timeout,
		copies: newNearCache(o.NearMaxBytes),
		recent: make(map[string]*mark),
	}
}

// Liveness. A copy stays in memory until the server's push drops it, or
// until the connection breaks. A server that stops answering without
// breaking the connection (frozen, overloaded, a network that drops
// packets) pushes nothing: another instance's write meanwhile fails to
// invalidate Redis, and is acknowledged once its store call times out, at
// least Options.Timeout after the server stopped. So a copy is used only
// while the server answered a request sent less than Options.Timeout ago
// (live); the store pings every server every Timeout/4 (heartbeat) so that
// an idle or all-hits process stays live, and every answered read counts
// too. A process that is not live reads uncached.

// live reports whether the server answered a request sent after now minus
// Options.Timeout.
func (n *near) live(now time.Time) bool {
	return now.UnixNano()-n.alive.Load() < int64(n.window)
}

// answered records that the server answered a request sent at sent.
func (n *near) answered(sent time.Time) {
	t := sent.UnixNano()
	for {
		old := n.alive.Load()
		if t <= old || n.alive.CompareAndSwap(old, t) {
			return
		}
	}
}

// peek returns key's value from the copies, without a network call: found
// reports a value (a copy of a missing key says not found), held whether
// the copy could be used at all (held, live, not written recently).
func (n *near) peek(key string, now time.Time) (value []byte, found, held bool) {
	if n.plain(key, now) {
		return nil, false, false
	}
	m, ok := n.copies.peek(key, now.UnixMilli())
	if !ok {
		return nil, false, false
	}
	if err := m.Error(); err != nil {
		// A cached WRONGTYPE reads as a miss, as an uncached one does.
		return nil, false, rueidis.IsRedisNil(err) || isWrongType(err)
	}
	b, err := bytesOf(&m)
	return b, err == nil, err == nil
}

// writing marks keys as being written; done must be called when the write
// returns, whatever its outcome.
func (n *near) writing(keys ...string) (done func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	if len(n.recent)+len(keys) > maxRecent {
		n.sweep(now)
	}
	if len(n.recent)+len(keys) > maxRecent {
		// Too many marks: read everything uncached until these writes
		// are surely visible.
		n.overflow.Store(now.Add(n.bound).UnixNano())
		return func() {
			n.overflow.Store(time.Now().Add(n.bound).UnixNano())
		}
	}
	for _, k := range keys {
		m := n.recent[k]
		if m == nil {
			m = &mark{}
			n.recent[k] = m
		}
		m.writing++
	}
	n.marked.Store(int64(len(n.recent)))
	return func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		until := time.Now().Add(n.bound)
		for _, k := range keys {
			if m := n.recent[k]; m != nil {
				m.writing--
				m.until = until
			}
		}
	}
}

// sweep drops the expired marks; n.mu is held.
func (n *near) sweep(now time.Time) {
	for k, m := range n.recent {
		if m.writing == 0 && now.After(m.until) {
			delete(n.recent, k)
		}
	}
	n.marked.Store(int64(len(n.recent)))
}

// plain reports whether key must be read uncached now: the store wrote it
// recently, or the process is not live.
func (n *near) plain(key string, now time.Time) bool {
	if now.UnixNano() < n.overflow.Load() || !n.live(now) {
		return true
	}
	if n.marked.Load() == 0 {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.recent[key]
	if m == nil {
		return false
	}
	if m.writing == 0 && now.After(m.until) {
		delete(n.recent, key)
		n.marked.Store(int64(len(n.recent)))
		return false
	}
	return true
}

// invalidated is rueidis' OnInvalidations: the keys whose local copies
// were just dropped (nil: all of a connection's, which says nothing of any
// key). A key with no write in flight is readable through the cache again.
func (n *near) invalidated(msgs []rueidis.RedisMessage) {
	if len(msgs) == 0 {
		return
	}
	keys := make([]string, 0, len(msgs))
	for i := range msgs {
		if k, err := msgs[i].ToString(); err == nil {
			keys = append(keys, k)
		}
	}
	n.invalidatedKeys(keys)
}

// invalidatedKeys is invalidated for the keys named.
func (n *near) invalidatedKeys(keys []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, k := range keys {
		if m := n.recent[k]; m != nil && m.writing == 0 {
			delete(n.recent, k)
		}
	}
	n.marked.Store(int64(len(n.recent)))
}

// refusesTracking reports whether err, from rueidis.NewClient with the
// client-side cache on, means that the server does not allow it: a RESP2
// server (rueidis.ErrNoCache), or CLIENT TRACKING refused (denied by an
// ACL: rueidis wraps the error with ErrNoCache too).
func refusesTracking(err error) bool {
	if errors.Is(err, rueidis.ErrNoCache) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "noperm") && strings.Contains(msg, "client")
}

// trackingRefusal is the server's reason in err (see refusesTracking),
// without the advice of connectError and rueidis, for the log.
func trackingRefusal(err error) string {
	msg := err.Error()
	if first, _, ok := strings.Cut(msg, "\n"); ok {
		return first // the reply to CLIENT TRACKING
	}
	if errors.Is(err, rueidis.ErrNoCache) {
		return "the server does not speak RESP3 (HELLO 3 failed)"
	}
	return msg
}

// NearStats describes the near cache's memory at one moment.
type NearStats struct {
	Copies  int   // values held
	Bytes   int64 // what they count against Options.NearMaxBytes
	Evicted int64 // copies evicted since New to stay within NearMaxBytes
}

// NearStats returns the near cache's figures: all zero when
// Options.NearCache is off.
func (s *Store) NearStats() NearStats {
	if s.near == nil {
		return NearStats{}
	}
	copies, bytes := s.near.copies.size()
	return NearStats{Copies: copies, Bytes: bytes, Evicted: s.near.copies.evicted.Load()}
}

// nearOn reports whether the store's reads go through the near cache.
func (s *Store) nearOn() bool {
	l := s.link.Load()
	return s.near != nil && l != nil && l.near && !s.closed.Load()
}

// written marks keys as being written by the store when the near cache
// is on (see near.writing); call the result when the write returns.
func (s *Store) written(keys ...string) func() {
	if !s.nearOn() {
		return func() {}
	}
	return s.near.writing(keys...)
}

// getNear is Get through the near cache, for a key peek did not find.
func (s *Store) getNear(c *call, rc rueidis.Client, key string) rueidis.RedisResult {
	sent := time.Now()
	var r rueidis.RedisResult
	if s.near.plain(key, sent) {
		r = c.do(rc, rc.B().Get().Key(key).Build())
	} else {
		r = c.doCache(rc, rc.B().Get().Key(key).Cache(), s.near.ttl)
	}
	if r.NonRedisError() == nil && !r.IsCacheHit() {
		s.near.answered(sent)
	}
	return r
}

// peekMulti fills values from the near cache's copies and reports whether
// it held them all.
func (s *Store) peekMulti(keys []string, values [][]byte) bool {
	now := time.Now()
	for i, k := range keys {
		v, _, held := s.near.peek(k, now)
		if !held {
			clear(values[:i])
			return false
		}
		values[i] = v
	}
	return true
}

// getMultiNear fills values through the near cache: one cached GET per
// key (rueidis does not cache MGET), pipelined (per node on Cluster), and
// a plain GET for the keys the store wrote recently.
func (s *Store) getMultiNear(c *call, rc rueidis.Client, keys []string, values [][]byte) (_ [][]byte, err error) {
	now := time.Now()
	defer func() {
		if err == nil {
			s.near.answered(now)
		}
	}()
	var (
		cached   []rueidis.CacheableTTL
		cachedAt []int
		plain    rueidis.Commands
		plainAt  []int
	)
	for i, k := range keys {
		if s.near.plain(k, now) {
			plain = append(plain, rc.B().Get().Key(k).Build())
			plainAt = append(plainAt, i)
		} else {
			cached = append(cached, rueidis.CT(rc.B().Get().Key(k).Cache(), s.near.ttl))
			cachedAt = append(cachedAt, i)
		}
	}
	fill := func(rs []rueidis.RedisResult, at []int) error {
		for j, r := range rs {
			msg, err := r.ToMessage()
			if err != nil {
				if rueidis.IsRedisNil(err) || isWrongType(err) {
					continue
				}
				return s.fail("GET", c.err(err))
			}
			if values[at[j]], err = bytesOf(&msg); err != nil {
				return s.fail("GET", err)
			}
		}
		return nil
	}
	if len(cached) > 0 {
		if err := fill(c.doMultiCache(rc, cached), cachedAt); err != nil {
			return nil, err
		}
	}
	if len(plain) > 0 {
		if err := fill(c.doMulti(rc, plain), plainAt); err != nil {
			return nil, err
		}
	}
	return values, nil
}
