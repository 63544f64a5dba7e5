package redis

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// The near cache (Options.NearCache) is rueidis' client-side cache over
// the store's own copy store (nearcache.go): reads that miss the copies go
// through DoCache/DoMultiCache, which keep the reply, and Redis (CLIENT
// TRACKING, default mode, OPTIN: only the store's cached reads are
// tracked) pushes an invalidation on the connection that read a key when
// anyone changes it, on which the copy is dropped. When a connection
// breaks, its copies are dropped, since invalidations may have been
// missed.
//
// The store's own writes are the exception: Redis sends the invalidation
// of a key to the connection that changed it only after the reply (it
// defers it to the end of the command), so a read right after the write
// could find the old copy. The store drops its copies of the keys it
// wrote once the write returns (dropWritten). No older copy can come back:
// the store uses one connection per server, and a cached read sent before
// the write was answered, and its copy stored, before the write's reply.

// near is the state of a store's near cache.
type near struct {
	ttl    time.Duration // Options.NearTTL
	window time.Duration // min(Options.NearMaxLag, Options.Timeout): see Lag
	copies *nearCache

	// alive is when (Unix nanoseconds) the last request was sent that
	// every server has answered (see live).
	alive atomic.Int64
}

func newNear(o Options) *near {
	return &near{
		ttl:    o.NearTTL,
		window: min(o.NearMaxLag, o.Timeout),
		copies: newNearCache(o.NearMaxBytes),
	}
}

// Lag. Redis queues a key's invalidation on every tracking connection
// before it answers the command that changed the key, but a process reads
// the push when its connection's reader gets to it, which on a loaded
// machine may be milliseconds later, or never when the server stops
// answering without closing the connection (frozen, a network dropping
// packets): meanwhile it would serve its old copy. So a copy is used only
// while an answer has been read to a request sent less than window
// (Options.NearMaxLag, at most Timeout) ago on every server's connection
// (live): that answer came after any push queued before the request
// arrived. The store pings every server every window/4 (heartbeat), so
// that an idle or all-hits process stays live; on a standalone server,
// where one connection carries everything, every answered read counts too.
// And Delete returns window after Redis answered it (awaitLag): by then
// every process has read the push, or is not live and reads from Redis.
// The same bound covers a frozen server: another instance's write, unable
// to invalidate, is acknowledged no sooner than Timeout after the server
// stopped.

// live reports whether every server answered a request sent less than
// window before now.
func (n *near) live(now time.Time) bool {
	return now.UnixNano()-n.alive.Load() < int64(n.window)
}

// answered records that every server answered a request sent at sent.
func (n *near) answered(sent time.Time) {
	t := sent.UnixNano()
	for {
		old := n.alive.Load()
		if t <= old || n.alive.CompareAndSwap(old, t) {
			return
		}
	}
}

// heartbeat keeps the near cache live (see Lag) while the servers answer:
// it pings every server every window/4, until ctx ends. On Cluster these
// are the masters rueidis routes to (its Nodes lists no replica unless
// reads are sent to replicas, which the store does not do), so a dead
// replica does not stop the near cache (TestNearCacheClusterReplicaDown).
func (s *Store) heartbeat(ctx context.Context) {
	t := time.NewTicker(max(s.near.window/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l := s.link.Load()
		if l == nil || !l.near {
			continue
		}
		sent := time.Now()
		if s.pingNodes(ctx, l.c) {
			s.near.answered(sent)
		}
	}
}

// pingNodes pings every server rc routes to, one after the other, and
// reports whether all answered.
func (s *Store) pingNodes(ctx context.Context, rc rueidis.Client) bool {
	c, err := s.begin(ctx)
	if err != nil {
		return false
	}
	defer c.end()
	for _, node := range rc.Nodes() {
		if c.do(node, node.B().Ping().Build()).Error() != nil {
			return false
		}
	}
	return true
}

// peek returns key's value from the copies, without a network call: found
// reports a value (a copy of a missing key says not found), held whether
// a copy could be used at all (held and live).
func (n *near) peek(key string, now time.Time) (value []byte, found, held bool) {
	if !n.live(now) {
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
	Hits    int64 // reads answered from a copy since New
	Evicted int64 // copies evicted since New to stay within NearMaxBytes
	// Dropped counts the copies removed since New because their key
	// changed (the server's invalidation), was written by this process, or
	// their connection broke.
	Dropped int64
}

// NearStats returns the near cache's figures: all zero when
// Options.NearCache is off.
func (s *Store) NearStats() NearStats {
	if s.near == nil {
		return NearStats{}
	}
	copies, bytes := s.near.copies.size()
	cc := s.near.copies
	return NearStats{Copies: copies, Bytes: bytes, Hits: cc.hits.Load(), Evicted: cc.evicted.Load(), Dropped: cc.dropped.Load()}
}

// nearOn reports whether the store's reads go through the near cache.
func (s *Store) nearOn() bool {
	l := s.link.Load()
	return s.near != nil && l != nil && l.near && !s.closed.Load()
}

// awaitLag waits until window has passed since sent, when the near cache
// is on, or until ctx ends: see Lag.
func (s *Store) awaitLag(ctx context.Context, sent time.Time) {
	if !s.nearOn() {
		return
	}
	d := time.Until(sent.Add(s.near.window))
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// dropWritten drops the copies of keys the store has just written (see
// the top of this file).
func (s *Store) dropWritten(keys ...string) {
	if s.near != nil {
		s.near.copies.drop(keys)
	}
}

// getNear is Get through the near cache, for a key peek did not find: a
// cached GET while the process is live, else a plain one.
func (s *Store) getNear(c *call, rc rueidis.Client, key string) rueidis.RedisResult {
	sent := time.Now()
	var r rueidis.RedisResult
	if s.near.live(sent) {
		r = c.doCache(rc, rc.B().Get().Key(key).Cache(), s.near.ttl)
	} else {
		r = c.do(rc, rc.B().Get().Key(key).Build())
	}
	if r.NonRedisError() == nil && !r.IsCacheHit() {
		s.readAnswered(sent)
	}
	return r
}

// readAnswered records that a read sent at sent was answered, when the
// near cache is on, on a standalone server: its one connection carries the
// invalidations too (see Lag). On Cluster only the heartbeat counts, since
// one node's answer says nothing of the others'.
func (s *Store) readAnswered(sent time.Time) {
	if s.near != nil && !s.cluster {
		s.near.answered(sent)
	}
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
// key (rueidis does not cache MGET), pipelined (per node on Cluster).
func (s *Store) getMultiNear(c *call, rc rueidis.Client, keys []string, values [][]byte, sent time.Time) ([][]byte, error) {
	cmds := make([]rueidis.CacheableTTL, len(keys))
	for i, k := range keys {
		cmds[i] = rueidis.CT(rc.B().Get().Key(k).Cache(), s.near.ttl)
	}
	if err := s.fillGets(c, c.doMultiCache(rc, cmds), values); err != nil {
		return nil, err
	}
	s.readAnswered(sent)
	return values, nil
}
