// Package redis is a hoard store on Redis, standalone or Redis Cluster,
// built on github.com/redis/rueidis.
//
// Values are plain Redis strings written with SET … PX, so the value and its
// TTL are set atomically. Calls are pipelined by rueidis over a few shared
// connections per server. Every call is bounded by Options.Timeout, so a
// dead or frozen server costs one timeout per call, never a hang.
//
// A call returns as soon as its context ends, and that never affects other
// calls: the abandoned command stays in the pipeline (its reply is
// discarded) and no shared connection is closed. The exception is a call
// that is (re)connecting one of the shared connections when its context
// ends: it finishes connecting, within Timeout, for the calls waiting on
// that connection. Like any write that times out, an abandoned Set or
// Delete may still be applied by the server.
//
// On Redis Cluster, multi-key operations (GetMulti, Delete) are split per
// node by rueidis and sent in parallel, one round trip per node; there are
// never CROSSSLOT errors. DeletePattern (hoard.PatternDeleter) walks every
// master with SCAN.
//
// An application must start even while Redis is down: when nothing answers
// at the address, New returns a Store that connects in the background and
// fails every call at once, saying so, until it has (see New).
//
// A key that holds another type than a string (a list someone pushed to)
// reads as a miss and is overwritten by Set. A value the server cannot take
// (over Options.MaxValueBytes, or refused by a server out of memory under
// maxmemory) fails with an error wrapping hoard.ErrRefused: that value goes
// uncached, the server is not counted as failing.
//
// Client-side caching (RESP3 tracking) is off unless Options.NearCache
// turns on the near cache (see near.go).
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/redis/rueidis"

	"github.com/hoardcache/hoard"
)

// deleteBatch is the number of keys per UNLINK (standalone) and per pipeline
// of single-key UNLINKs (Cluster), and the SCAN COUNT hint of DeletePattern.
const deleteBatch = 1000

// Store is a hoard store on a Redis server or Redis Cluster. It is safe for
// concurrent use. Create it with New and release it with Close.
type Store struct {
	link     atomic.Pointer[link] // the client, or why there is none yet (connect.go)
	cluster  bool
	timeout  time.Duration
	maxValue int
	addrs    string // for error messages
	tls      bool
	near     *near               // nil unless Options.NearCache (near.go)
	logger   *slog.Logger        // Options.Logger or slog.Default()
	metrics  metric.Registration // the near cache's gauges and counters; nil without it

	mu     sync.Mutex // orders Close against publishing a client connected in the background
	closed atomic.Bool
	stop   context.CancelFunc // stops the background goroutines: connection, heartbeat
}

var (
	_ hoard.Store          = (*Store)(nil)
	_ hoard.PatternDeleter = (*Store)(nil)
	_ hoard.SelfTimed      = (*Store)(nil)
)

// fail wraps a client error with the operation that failed.
func (s *Store) fail(op string, err error) error {
	if errors.Is(err, rueidis.ErrClosing) || s.closed.Load() {
		return hoard.ErrClosed
	}
	return fmt.Errorf("redis: %s: %w", op, err)
}

// bytesOf returns the value of a string reply; a present empty value is a
// non-nil empty slice.
func bytesOf(m *rueidis.RedisMessage) ([]byte, error) {
	b, err := m.AsBytes()
	if err == nil && b == nil {
		b = []byte{}
	}
	return b, err
}

// pxMillis is ttl in whole milliseconds, rounded up so that a sub-millisecond
// TTL still expires rather than being rejected by Redis.
func pxMillis(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}

// isReply reports whether err is a Redis error reply with the given code
// (its first word, such as WRONGTYPE or OOM).
func isReply(err error, code string) bool {
	re, ok := rueidis.IsRedisErr(err)
	return ok && strings.HasPrefix(re.Error(), code+" ")
}

// isWrongType reports whether err is Redis's answer to a string command on
// a key that holds another type (a list, a hash, ...): someone else wrote
// that key. The store reads such a key as a miss, so that the Cache
// overwrites it with SET (which replaces any type) instead of counting a
// store failure on every read of it.
func isWrongType(err error) bool { return isReply(err, "WRONGTYPE") }

// refused returns the error of a write that Redis refused for lack of
// memory (OOM under maxmemory with the noeviction policy): a refusal of
// this one value, wrapping hoard.ErrRefused, since the server is healthy
// and reads still work. It returns nil for any other error.
func refused(op string, err error) error {
	if !isReply(err, "OOM") {
		return nil
	}
	return fmt.Errorf("redis: %s: %w: %s; Redis is full under maxmemory and its policy evicts nothing: raise maxmemory or set an eviction policy such as allkeys-lru (maxmemory-policy)", op, hoard.ErrRefused, strings.TrimSuffix(err.Error(), "."))
}

// tooLarge returns the error of a value over Options.MaxValueBytes, or nil.
func (s *Store) tooLarge(op string, value []byte) error {
	if len(value) <= s.maxValue {
		return nil
	}
	return fmt.Errorf("redis: %s: %w: %d bytes, over MaxValueBytes (%d); cache smaller responses or raise MaxValueBytes (and the server's proto-max-bulk-len beyond 512 MiB)", op, hoard.ErrValueTooLarge, len(value), s.maxValue)
}

// Get returns the value of key; found is false when the key is absent or
// holds something other than a string (see isWrongType).
func (s *Store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if s.nearOn() {
		if v, found, held := s.near.peek(key, time.Now()); held {
			return v, found, nil
		}
	}
	rc, err := s.client()
	if err != nil {
		return nil, false, err
	}
	c, err := s.begin(ctx)
	if err != nil {
		return nil, false, s.fail("GET", err)
	}
	defer c.end()
	var r rueidis.RedisResult
	if s.nearOn() {
		r = s.getNear(c, rc, key)
	} else {
		r = c.do(rc, rc.B().Get().Key(key).Build())
	}
	msg, err := r.ToMessage()
	if err != nil {
		if rueidis.IsRedisNil(err) || isWrongType(err) {
			return nil, false, nil
		}
		return nil, false, s.fail("GET", c.err(err))
	}
	b, err := bytesOf(&msg)
	if err != nil {
		return nil, false, s.fail("GET", err)
	}
	return b, true, nil
}

// GetMulti returns the values of keys in order, nil for absent keys and for
// keys that hold something other than a string. On a standalone server it is
// one MGET; on Cluster it is one pipeline of GETs per node, sent to the
// nodes in parallel.
func (s *Store) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	rc, err := s.client()
	if err != nil {
		return nil, err
	}
	values := make([][]byte, len(keys))
	if len(keys) == 0 || s.nearOn() && s.peekMulti(keys, values) {
		return values, nil
	}
	c, err := s.begin(ctx)
	if err != nil {
		return nil, s.fail("GET", err)
	}
	defer c.end()
	sent := time.Now()
	if s.nearOn() && s.near.live(sent) {
		return s.getMultiNear(c, rc, keys, values, sent)
	}
	if !s.cluster {
		if values, err = s.mget(c, rc, keys, values); err == nil {
			s.readAnswered(sent)
		}
		return values, err
	}
	cmds := make(rueidis.Commands, len(keys))
	for i, k := range keys {
		cmds[i] = rc.B().Get().Key(k).Build()
	}
	if err := s.fillGets(c, c.doMulti(rc, cmds), values); err != nil {
		return nil, err
	}
	return values, nil
}

// fillGets sets values[i] to the value in the reply rs[i] to a GET,
// leaving nil for absent keys and keys of another type.
func (s *Store) fillGets(c *call, rs []rueidis.RedisResult, values [][]byte) error {
	for i, r := range rs {
		msg, err := r.ToMessage()
		if err != nil {
			if rueidis.IsRedisNil(err) || isWrongType(err) {
				continue
			}
			return s.fail("GET", c.err(err))
		}
		if values[i], err = bytesOf(&msg); err != nil {
			return s.fail("GET", err)
		}
	}
	return nil
}

// mget fills values with one MGET, which answers nil for absent keys and
// for keys of another type alike.
func (s *Store) mget(c *call, rc rueidis.Client, keys []string, values [][]byte) ([][]byte, error) {
	arr, err := c.do(rc, rc.B().Mget().Key(keys...).Build()).ToArray()
	if err != nil {
		return nil, s.fail("MGET", c.err(err))
	}
	if len(arr) != len(keys) {
		return nil, s.fail("MGET", fmt.Errorf("got %d values for %d keys", len(arr), len(keys)))
	}
	for i := range arr {
		if arr[i].IsNil() {
			continue
		}
		if values[i], err = bytesOf(&arr[i]); err != nil {
			return nil, s.fail("MGET", err)
		}
	}
	return values, nil
}

// Set stores value under key with SET key value PX ttl, replacing whatever
// key held, whatever its type. A value over Options.MaxValueBytes is not
// sent: the error wraps hoard.ErrValueTooLarge. A server out of memory
// under maxmemory refuses it with an error wrapping hoard.ErrRefused.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	rc, err := s.client()
	if err != nil {
		return err
	}
	if ttl <= 0 {
		return hoard.ErrInvalidTTL
	}
	if err := s.tooLarge("SET", value); err != nil {
		return err
	}
	c, err := s.begin(ctx)
	if err != nil {
		return s.fail("SET", err)
	}
	defer c.end()
	defer s.dropWritten(key)
	// string(value) copies: if the call times out, rueidis may still write
	// the queued command after we return and the caller reuses value.
	err = c.do(rc, rc.B().Set().Key(key).Value(string(value)).PxMilliseconds(pxMillis(ttl)).Build()).Error()
	if err != nil {
		if r := refused("SET", err); r != nil {
			return r
		}
		return s.fail("SET", c.err(err))
	}
	return nil
}

// Add stores value under key only if key is absent, with
// SET key value NX PX ttl. A key of another type is present: Add reports
// false (the Cache then reads it as a miss and overwrites it with Set).
// Refusals are as for Set.
func (s *Store) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	rc, err := s.client()
	if err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, hoard.ErrInvalidTTL
	}
	if err := s.tooLarge("SET NX", value); err != nil {
		return false, err
	}
	c, err := s.begin(ctx)
	if err != nil {
		return false, s.fail("SET NX", err)
	}
	defer c.end()
	defer s.dropWritten(key)
	err = c.do(rc, rc.B().Set().Key(key).Value(string(value)).Nx().PxMilliseconds(pxMillis(ttl)).Build()).Error()
	if err != nil {
		if rueidis.IsRedisNil(err) {
			return false, nil
		}
		if r := refused("SET NX", err); r != nil {
			return false, r
		}
		return false, s.fail("SET NX", c.err(err))
	}
	return true, nil
}

// Touch sets the TTL of key with PEXPIRE key ttl, keeping its value, and
// reports whether key was present (of any type). A server out of memory
// under maxmemory refuses it with an error wrapping hoard.ErrRefused.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	rc, err := s.client()
	if err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, hoard.ErrInvalidTTL
	}
	c, err := s.begin(ctx)
	if err != nil {
		return false, s.fail("PEXPIRE", err)
	}
	defer c.end()
	defer s.dropWritten(key)
	n, err := c.do(rc, rc.B().Pexpire().Key(key).Milliseconds(pxMillis(ttl)).Build()).AsInt64()
	if err != nil {
		if r := refused("PEXPIRE", err); r != nil {
			return false, r
		}
		return false, s.fail("PEXPIRE", c.err(err))
	}
	return n == 1, nil
}

// Delete removes keys with UNLINK (the memory is freed in the background).
// On Cluster each key is routed to its own slot, so keys may span nodes.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	rc, err := s.client()
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	c, err := s.begin(ctx)
	if err != nil {
		return s.fail("UNLINK", err)
	}
	defer c.end()
	_, err = s.unlink(c, rc, keys)
	s.dropWritten(keys...)
	if err != nil {
		return err
	}
	s.awaitLag(ctx, time.Now()) // see Options.NearMaxLag
	return nil
}

// unlink removes keys in one pipeline and returns how many existed.
// Standalone: one UNLINK per deleteBatch keys; Cluster: one single-key
// UNLINK per key, which rueidis groups per node.
func (s *Store) unlink(c *call, rc rueidis.Client, keys []string) (int, error) {
	var cmds rueidis.Commands
	if s.cluster {
		cmds = make(rueidis.Commands, len(keys))
		for i, k := range keys {
			cmds[i] = rc.B().Unlink().Key(k).Build()
		}
	} else {
		cmds = make(rueidis.Commands, 0, (len(keys)+deleteBatch-1)/deleteBatch)
		for i := 0; i < len(keys); i += deleteBatch {
			cmds = append(cmds, rc.B().Unlink().Key(keys[i:min(i+deleteBatch, len(keys))]...).Build())
		}
	}
	n := 0
	var firstErr error
	for _, r := range c.doMulti(rc, cmds) {
		d, err := r.AsInt64()
		if err != nil {
			if firstErr == nil {
				firstErr = s.fail("UNLINK", c.err(err))
			}
			continue
		}
		n += int(d)
	}
	return n, firstErr
}

// Exists reports whether key is present. A key that holds something other
// than a string is present (true), although Get reads it as a miss: it
// exists, and Add will not replace it.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	rc, err := s.client()
	if err != nil {
		return false, err
	}
	c, err := s.begin(ctx)
	if err != nil {
		return false, s.fail("EXISTS", err)
	}
	defer c.end()
	n, err := c.do(rc, rc.B().Exists().Key(key).Build()).AsInt64()
	if err != nil {
		return false, s.fail("EXISTS", c.err(err))
	}
	return n > 0, nil
}

// CallTimeout returns Options.Timeout (or its default): the store bounds
// every call by it, so a hoard Cache adds no deadline of its own.
func (s *Store) CallTimeout() time.Duration { return s.timeout }

// Ping checks that the server answers; on Cluster, that every master does.
// Before the Store has connected (see New), it returns why not.
func (s *Store) Ping(ctx context.Context) error {
	rc, err := s.client()
	if err != nil {
		return err
	}
	c, err := s.begin(ctx)
	if err != nil {
		return s.fail("PING", err)
	}
	defer c.end()
	if s.cluster {
		return s.pingCluster(c, rc)
	}
	if err := c.do(rc, rc.B().Ping().Build()).Error(); err != nil {
		return s.fail("PING", c.err(err))
	}
	return nil
}
