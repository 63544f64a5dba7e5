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
// never CROSSSLOT errors. DeletePattern walks every master with SCAN.
//
// Client-side caching (RESP3 tracking) is off.
package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/hoardcache/hoard/internal/storeerr"
)

// deleteBatch is the number of keys per UNLINK (standalone) and per pipeline
// of single-key UNLINKs (Cluster), and the SCAN COUNT hint of DeletePattern.
const deleteBatch = 1000

// Store is a hoard store on a Redis server or Redis Cluster. It is safe for
// concurrent use. Create it with New and release it with Close.
type Store struct {
	c       rueidis.Client
	cluster bool
	timeout time.Duration
	addrs   string // for error messages
	tls     bool
	closed  atomic.Bool
}

// New connects to Redis as opts describe and checks that the server answers
// with the given credentials. The error of a failed connection names the
// address and what to check. ctx bounds the checks made after connecting.
func New(ctx context.Context, opts Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{
		cluster: o.Cluster,
		timeout: o.Timeout,
		addrs:   strings.Join(o.Addrs, ","),
		tls:     o.TLSConfig != nil,
	}
	co := rueidis.ClientOption{
		InitAddress:       append([]string(nil), o.Addrs...),
		Username:          o.Username,
		Password:          o.Password,
		SelectDB:          o.DB,
		TLSConfig:         o.TLSConfig,
		DisableCache:      true,
		ForceSingleClient: !o.Cluster,
		BlockingPoolSize:  o.PoolSize,
		PipelineMultiplex: pipelineMultiplex(o.PoolSize),
		ConnWriteTimeout:  max(o.Timeout, minConnTimeout),
		// Pipeline even a lone call, and dial with the store's dialer:
		// see call.go for why (one caller's context must not break other
		// callers' calls).
		AlwaysPipelining: true,
		DialCtxFn:        dial,
	}
	co.Dialer.Timeout = max(o.Timeout, minConnTimeout)
	c, err := rueidis.NewClient(co)
	if err != nil {
		return nil, s.connectError(err)
	}
	s.c = c

	// Refuse a client of the wrong kind: a standalone client on a cluster
	// node gets MOVED for most keys, and rueidis silently falls back to a
	// standalone client when a single Cluster seed is not a cluster node.
	cc, err := s.beginFor(ctx, co.Dialer.Timeout)
	if err != nil {
		c.Close()
		return nil, s.connectError(err)
	}
	defer cc.end()
	if o.Cluster {
		if c.Mode() != rueidis.ClientModeCluster {
			c.Close()
			return nil, fmt.Errorf("redis: Cluster is set but %s is not a Redis Cluster node (cluster_enabled:0); unset Cluster (CACHE_REDIS_CLUSTER=false) for a standalone server", s.addrs)
		}
		if err := s.pingCluster(cc); err != nil {
			c.Close()
			return nil, s.connectError(err)
		}
		return s, nil
	}
	info, err := cc.do(c, c.B().Info().Section("cluster").Build()).ToString()
	if err != nil {
		c.Close()
		return nil, s.connectError(cc.err(err))
	}
	if strings.Contains(info, "cluster_enabled:1") {
		c.Close()
		return nil, fmt.Errorf("redis: %s is a Redis Cluster node; set Cluster (CACHE_REDIS_CLUSTER=true or ?cluster=true in the URL) to use it", s.addrs)
	}
	return s, nil
}

// connectError explains a failure to connect or authenticate.
func (s *Store) connectError(err error) error {
	hint := "check that Redis runs there and is reachable (CACHE_REDIS_URL or CACHE_REDIS_HOST/CACHE_REDIS_PORT)"
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "NOAUTH"), strings.Contains(msg, "AUTH"):
		hint = "check Username and Password (CACHE_REDIS_PASSWORD or the URL's user:password)"
	case strings.Contains(msg, "NOPERM"):
		hint = "the user lacks an ACL permission; allow it the string, keyspace and connection commands"
	case strings.Contains(msg, "DB index"), strings.Contains(msg, "SELECT"):
		hint = "check DB (CACHE_REDIS_DB or the URL path): it must be below the server's 'databases' setting"
	case strings.Contains(msg, "tls:"), strings.Contains(msg, "x509:"), strings.Contains(msg, "EOF"),
		strings.Contains(msg, "connection reset"):
		if s.tls {
			hint = "check that the server speaks TLS on this port and that its certificate is trusted (rediss:// needs a TLS port)"
		} else {
			hint = "if the server requires TLS, use rediss:// (Options.TLSConfig); otherwise " + hint
		}
	}
	return fmt.Errorf("redis: cannot connect to %s: %w; %s", s.addrs, err, hint)
}

// fail wraps a client error with the operation that failed.
func (s *Store) fail(op string, err error) error {
	if errors.Is(err, rueidis.ErrClosing) || s.closed.Load() {
		return storeerr.ErrClosed
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

// Get returns the value of key; found is false only when the key is absent.
func (s *Store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if s.closed.Load() {
		return nil, false, storeerr.ErrClosed
	}
	c, err := s.begin(ctx)
	if err != nil {
		return nil, false, s.fail("GET", err)
	}
	defer c.end()
	msg, err := c.do(s.c, s.c.B().Get().Key(key).Build()).ToMessage()
	if err != nil {
		if rueidis.IsRedisNil(err) {
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

// GetMulti returns the values of keys in order, nil for absent keys. On a
// standalone server it is one MGET; on Cluster it is one pipeline of GETs per
// node, sent to the nodes in parallel.
func (s *Store) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	if s.closed.Load() {
		return nil, storeerr.ErrClosed
	}
	values := make([][]byte, len(keys))
	if len(keys) == 0 {
		return values, nil
	}
	c, err := s.begin(ctx)
	if err != nil {
		return nil, s.fail("GET", err)
	}
	defer c.end()
	if !s.cluster {
		arr, err := c.do(s.c, s.c.B().Mget().Key(keys...).Build()).ToArray()
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
	cmds := make(rueidis.Commands, len(keys))
	for i, k := range keys {
		cmds[i] = s.c.B().Get().Key(k).Build()
	}
	for i, r := range c.doMulti(s.c, cmds) {
		msg, err := r.ToMessage()
		if err != nil {
			if rueidis.IsRedisNil(err) {
				continue
			}
			return nil, s.fail("GET", c.err(err))
		}
		if values[i], err = bytesOf(&msg); err != nil {
			return nil, s.fail("GET", err)
		}
	}
	return values, nil
}

// Set stores value under key with SET key value PX ttl.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.closed.Load() {
		return storeerr.ErrClosed
	}
	if ttl <= 0 {
		return storeerr.ErrInvalidTTL
	}
	c, err := s.begin(ctx)
	if err != nil {
		return s.fail("SET", err)
	}
	defer c.end()
	// string(value) copies: if the call times out, rueidis may still write
	// the queued command after we return and the caller reuses value.
	err = c.do(s.c, s.c.B().Set().Key(key).Value(string(value)).PxMilliseconds(pxMillis(ttl)).Build()).Error()
	if err != nil {
		return s.fail("SET", c.err(err))
	}
	return nil
}

// Add stores value under key only if key is absent, with
// SET key value NX PX ttl.
func (s *Store) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if s.closed.Load() {
		return false, storeerr.ErrClosed
	}
	if ttl <= 0 {
		return false, storeerr.ErrInvalidTTL
	}
	c, err := s.begin(ctx)
	if err != nil {
		return false, s.fail("SET NX", err)
	}
	defer c.end()
	err = c.do(s.c, s.c.B().Set().Key(key).Value(string(value)).Nx().PxMilliseconds(pxMillis(ttl)).Build()).Error()
	if err != nil {
		if rueidis.IsRedisNil(err) {
			return false, nil
		}
		return false, s.fail("SET NX", c.err(err))
	}
	return true, nil
}

// Touch sets the TTL of key with PEXPIRE key ttl, keeping its value, and
// reports whether key was present.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if s.closed.Load() {
		return false, storeerr.ErrClosed
	}
	if ttl <= 0 {
		return false, storeerr.ErrInvalidTTL
	}
	c, err := s.begin(ctx)
	if err != nil {
		return false, s.fail("PEXPIRE", err)
	}
	defer c.end()
	n, err := c.do(s.c, s.c.B().Pexpire().Key(key).Milliseconds(pxMillis(ttl)).Build()).AsInt64()
	if err != nil {
		return false, s.fail("PEXPIRE", c.err(err))
	}
	return n == 1, nil
}

// Delete removes keys with UNLINK (the memory is freed in the background).
// On Cluster each key is routed to its own slot, so keys may span nodes.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	if s.closed.Load() {
		return storeerr.ErrClosed
	}
	if len(keys) == 0 {
		return nil
	}
	c, err := s.begin(ctx)
	if err != nil {
		return s.fail("UNLINK", err)
	}
	defer c.end()
	_, err = s.unlink(c, keys)
	return err
}

// unlink removes keys in one pipeline and returns how many existed.
// Standalone: one UNLINK per deleteBatch keys; Cluster: one single-key
// UNLINK per key, which rueidis groups per node.
func (s *Store) unlink(c *call, keys []string) (int, error) {
	var cmds rueidis.Commands
	if s.cluster {
		cmds = make(rueidis.Commands, len(keys))
		for i, k := range keys {
			cmds[i] = s.c.B().Unlink().Key(k).Build()
		}
	} else {
		cmds = make(rueidis.Commands, 0, (len(keys)+deleteBatch-1)/deleteBatch)
		for i := 0; i < len(keys); i += deleteBatch {
			cmds = append(cmds, s.c.B().Unlink().Key(keys[i:min(i+deleteBatch, len(keys))]...).Build())
		}
	}
	n := 0
	var firstErr error
	for _, r := range c.doMulti(s.c, cmds) {
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

// Exists reports whether key is present.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	if s.closed.Load() {
		return false, storeerr.ErrClosed
	}
	c, err := s.begin(ctx)
	if err != nil {
		return false, s.fail("EXISTS", err)
	}
	defer c.end()
	n, err := c.do(s.c, s.c.B().Exists().Key(key).Build()).AsInt64()
	if err != nil {
		return false, s.fail("EXISTS", c.err(err))
	}
	return n > 0, nil
}

// Ping checks that the server answers; on Cluster, that every master does.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return storeerr.ErrClosed
	}
	c, err := s.begin(ctx)
	if err != nil {
		return s.fail("PING", err)
	}
	defer c.end()
	if s.cluster {
		return s.pingCluster(c)
	}
	if err := c.do(s.c, s.c.B().Ping().Build()).Error(); err != nil {
		return s.fail("PING", c.err(err))
	}
	return nil
}

// SupportsPatterns reports true: Redis can walk its keys with SCAN.
func (s *Store) SupportsPatterns() bool { return true }

// Close closes the connections. It is idempotent; other calls made after
// Close return storeerr.ErrClosed.
func (s *Store) Close() error {
	if s.closed.CompareAndSwap(false, true) {
		s.c.Close()
	}
	return nil
}
