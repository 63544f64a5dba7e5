package redis

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// nearCache holds the near cache's copies: one map for the whole store,
// shared by the client-side caches of all its connections (rueidis calls a
// CacheStore per connection: nearConn). Sharing it is what lets
// NearMaxBytes bound the store's memory as a whole, and lets a hit be read
// without rueidis (peek): no command built, no context, no pipe.
//
// rueidis owns the protocol: it sends each cached GET with PTTL in a
// MULTI, calls Update with the reply (or Cancel), and calls Delete when the
// server pushes an invalidation on a connection and Close when a
// connection breaks. Only GET is cached (the store sends no other cached
// command), so a copy is named by its key alone.
type nearCache struct {
	max int64 // NearMaxBytes

	mu      sync.RWMutex
	copies  map[string]*nearCopy
	bytes   int64        // sum of the copies' size
	hits    atomic.Int64 // reads answered from a copy
	evicted atomic.Int64 // copies removed to stay within max
	dropped atomic.Int64 // copies removed because the key changed, was written here, or their connection broke
}

// nearCopy is one key's reply as the server sent it.
type nearCopy struct {
	msg   rueidis.RedisMessage
	xat   int64     // Unix milliseconds from which the copy is not used: min(server expiry, NearTTL)
	owner *nearConn // the connection whose tracking covers it
	size  int64
	used  atomic.Bool // read since eviction last looked at it (a CLOCK bit)
}

// copyOverhead is what a copy costs besides its key and value: the map
// slot, the nearCopy and the message header (measured with 100,000 copies,
// see TestNearCacheMemoryBound).
const copyOverhead = 200

// evictSample is how many copies eviction looks at to choose one.
const evictSample = 8

func newNearCache(maxBytes int64) *nearCache {
	return &nearCache{max: maxBytes, copies: make(map[string]*nearCopy)}
}

// conn returns the CacheStore of a new connection (ClientOption's
// NewCacheStoreFn). rueidis's own size per connection is ignored: the
// bound is the store's.
func (c *nearCache) conn(rueidis.CacheStoreOption) rueidis.CacheStore {
	return &nearConn{cache: c, flights: make(map[string]*nearFlight)}
}

// peek returns key's copy when one is held and not expired at now.
func (c *nearCache) peek(key string, now int64) (rueidis.RedisMessage, bool) {
	c.mu.RLock()
	e := c.copies[key]
	c.mu.RUnlock()
	if e == nil || e.xat <= now {
		return rueidis.RedisMessage{}, false
	}
	if !e.used.Load() {
		e.used.Store(true)
	}
	c.hits.Add(1)
	return e.msg, true
}

// drop removes the copies of keys.
func (c *nearCache) drop(keys []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		c.drop1(k)
	}
}

// size returns the number of copies and the bytes they are counted for.
func (c *nearCache) size() (copies int, bytes int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.copies), c.bytes
}

// put stores a copy, evicting others past the bound; c.mu is held.
func (c *nearCache) put(key string, e *nearCopy) {
	e.size = int64(len(key)) + messageBytes(&e.msg) + copyOverhead
	if e.size > c.max {
		c.remove(key)
		return
	}
	if old := c.copies[key]; old != nil {
		c.bytes -= old.size
	}
	c.copies[key] = e
	c.bytes += e.size
	for c.bytes > c.max {
		c.evictOne(key)
	}
}

// evictOne removes one copy other than keep: the first of a few copies
// (the map's order is random) not read since eviction last looked at it,
// or an expired one; else the first seen. c.mu is held.
func (c *nearCache) evictOne(keep string) {
	now := time.Now().UnixMilli()
	victim, n := "", 0
	for k, e := range c.copies {
		if k == keep {
			continue
		}
		if victim == "" {
			victim = k
		}
		if e.xat <= now || !e.used.Load() {
			victim = k
			break
		}
		e.used.Store(false)
		if n++; n == evictSample {
			break
		}
	}
	if victim == "" { // keep is the only copy; put checked it fits
		return
	}
	c.remove(victim)
	c.evicted.Add(1)
}

// remove drops key's copy and reports whether there was one; c.mu is held.
func (c *nearCache) remove(key string) bool {
	e := c.copies[key]
	if e == nil {
		return false
	}
	c.bytes -= e.size
	delete(c.copies, key)
	return true
}

// drop1 drops key's copy, counting it as dropped; c.mu is held.
func (c *nearCache) drop1(key string) {
	if c.remove(key) {
		c.dropped.Add(1)
	}
}

// messageBytes is the size of a reply's value.
func messageBytes(m *rueidis.RedisMessage) int64 {
	if s, err := m.ToString(); err == nil {
		return int64(len(s))
	}
	return 0
}

// nearConn is one connection's rueidis.CacheStore over the shared copies:
// its flights (cached GETs sent and not yet answered) are its own, and
// so is what it drops when the connection breaks.
type nearConn struct {
	cache   *nearCache
	flights map[string]*nearFlight // guarded by cache.mu; nil once closed
}

// nearFlight is a cached GET sent on the connection; other reads of the
// key wait for its reply instead of sending their own.
type nearFlight struct {
	done chan struct{}
	msg  rueidis.RedisMessage
	err  error
	xat  int64 // the NearTTL limit of the copy, from when it was sent
}

// Wait returns the reply (rueidis.CacheEntry).
func (f *nearFlight) Wait(ctx context.Context) (rueidis.RedisMessage, error) {
	select {
	case <-ctx.Done():
		return rueidis.RedisMessage{}, ctx.Err()
	case <-f.done:
		return f.msg, f.err
	}
}

// Flight returns a held copy, or the flight to wait for, or neither: the
// caller then sends the GET, and its reply comes to Update or Cancel.
func (n *nearConn) Flight(key, _ string, ttl time.Duration, now time.Time) (rueidis.RedisMessage, rueidis.CacheEntry) {
	if m, ok := n.cache.peek(key, now.UnixMilli()); ok {
		return m, nil
	}
	c := n.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if n.flights == nil { // closed: the caller sends an uncached read
		return rueidis.RedisMessage{}, nil
	}
	if f := n.flights[key]; f != nil {
		return rueidis.RedisMessage{}, f
	}
	n.flights[key] = &nearFlight{done: make(chan struct{}), xat: now.Add(ttl).UnixMilli()}
	return rueidis.RedisMessage{}, nil
}

// Update keeps the reply to a flight until the earlier of the key's own
// expiry and NearTTL, and hands it to the reads waiting for it.
func (n *nearConn) Update(key, _ string, msg rueidis.RedisMessage) int64 {
	c := n.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	f := n.flights[key]
	if f == nil {
		return 0
	}
	delete(n.flights, key)
	xat := f.xat
	if sx := msg.CachePXAT(); sx > 0 && sx < xat {
		xat = sx
	}
	c.put(key, &nearCopy{msg: msg, xat: xat, owner: n})
	f.msg = msg
	close(f.done)
	return xat
}

// Cancel fails a flight's waiting reads with the error of its GET.
func (n *nearConn) Cancel(key, _ string, err error) {
	c := n.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := n.flights[key]; f != nil {
		delete(n.flights, key)
		f.err = err
		close(f.done)
	}
}

// Delete drops the copies of keys, on the server's push; nil keys (the
// server flushed, or tracking was reset) drop all the connection's copies.
// Flights are left alone: their replies, read after the change, are newer.
func (n *nearConn) Delete(keys []rueidis.RedisMessage) {
	c := n.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if keys == nil {
		n.dropOwn()
		return
	}
	for i := range keys {
		if k, err := keys[i].ToString(); err == nil {
			c.drop1(k)
		}
	}
}

// Close drops the connection's copies (it may have missed invalidations)
// and fails its flights with err.
func (n *nearConn) Close(err error) {
	c := n.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	n.dropOwn()
	for _, f := range n.flights {
		f.err = err
		close(f.done)
	}
	n.flights = nil
}

// dropOwn removes the copies the connection holds; cache.mu is held.
func (n *nearConn) dropOwn() {
	c := n.cache
	for k, e := range c.copies {
		if e.owner == n {
			c.drop1(k)
		}
	}
}
