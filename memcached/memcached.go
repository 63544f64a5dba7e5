// Package memcached is a hoard store on a pool of Memcached servers, built
// on github.com/bradfitz/gomemcache.
//
// Keys are spread over the servers with consistent hashing (a ketama-style
// ring of 160 virtual nodes per server on XXH64): adding a server to a pool
// of N moves about 1/(N+1) of the keys, all to the new server, and every
// client configured with the same servers, in any order, agrees on where
// each key lives.
//
// # Hash tags
//
// A key that holds a '{' followed later by a '}' with at least one byte
// between them is placed by those bytes only (the tag: from the first '{'
// to the next '}', as in Redis Cluster), so keys with the same tag live on
// the same server; other keys are placed by the whole key, and a long key
// stored under its hashed form (below) is placed by the tag of the key as
// given. The Store implements hoard.Sharded: a hoard Cache on a pool of
// more than one server tags a resource's entries and generation with the
// resource, and keeps one copy of its epoch on each server (ShardKey), so
// that a hit reads one server, and no server holds a key that every read
// needs.
//
// # Server failures
//
// One server of the pool going down makes its own keys miss; the other
// servers' keys keep working. A call on one server ends in one of three ways:
//
//   - The server answered: a value, a miss, STORED, NOT_STORED, or an error
//     reply about the item (SERVER_ERROR, e.g. "object too large for cache",
//     CLIENT_ERROR, or a reply line the client does not expect). That is the
//     result of the call, and the server counts as up. In particular a value
//     the server refuses (see "Value size" below) is not a server failure.
//   - The connect was refused, or failed at once (host or network
//     unreachable, DNS error): a server failure that marks the server down
//     at once.
//   - The connect or a read or write timed out, or the connection was reset
//     or closed: a server failure. These mark the server down only once it
//     has not answered for a whole back-off and failed at least three calls
//     in a row: after a restart every idle connection fails once, and a busy
//     host stalls calls, or connects, past their Timeout in bursts while the
//     server keeps answering others. So a frozen server, or a host that
//     stopped answering, costs its calls a Timeout each for about one
//     back-off, then nothing.
//
// A server marked down is skipped for Options.Backoff (1s by default) and
// its idle connections are closed: its calls cost no dial and no Timeout.
// Then the next call that needs it tries it again (one call at a time: the
// others keep skipping it until that call ends); an answer marks it up, a
// failure keeps it down for another back-off.
//
// What each call does with a server that fails, or is marked down:
//
//   - GetMulti treats that server's keys (and those of a server that
//     answered its request with an error) as misses (nil) and returns the
//     values of the servers that answered, with no error. It fails only when
//     none of the servers it needed answered (so a pool of one server, or a
//     call whose keys all live on the failed server, still reports the
//     outage). This is safe under a hoard Cache: a missing generation key is
//     created again only with Add, which fails on a down server, and an
//     entry whose recorded generations are not all present is a miss. A
//     Cache reads an entry, its generation and its epoch copy from one
//     server, so while that server is down its values miss (or, on the
//     route, are served uncached) and the other servers' values keep
//     hitting.
//   - Get and Exists fail: a single-key read has no other server to answer
//     for it, and a miss would claim the key is absent.
//   - Set, Add and Delete fail (Delete after deleting the keys of the other
//     servers), so that the caller knows the write was not done: hoard's
//     Cache keeps a failed invalidation and replays it.
//   - Ping fails if any server fails or is marked down.
//
// A call that waited Timeout for one of the server's PoolSize connections
// to come free fails the same way (GetMulti: that server's keys miss), but
// does not count as a server failure.
//
// Errors for a server marked down match ErrServerDown. As with any network
// store, a write that timed out may still be applied: a frozen server runs
// the commands it received once it resumes.
//
// Keys memcached cannot take — empty, over 250 bytes, or containing
// control characters, spaces or DEL — are stored under a hashed form that
// keeps a readable prefix: the first 150 bytes with illegal bytes replaced
// by '_', then "#h:" and the hex SHA-256 of the whole key. A legal key that
// already ends that way is hashed too, so two keys never share a slot.
//
// TTLs: memcached counts whole seconds on a clock that ticks once a second,
// so an item stored for n seconds can expire up to a second early. The store
// therefore sends the TTL rounded up to a whole second, plus one second: an
// entry lives at least its TTL and at most two seconds longer. TTLs over 30
// days are sent as an absolute Unix time, as the protocol requires (and
// capped at 2038-01-19, the largest time it can carry).
//
// # Value size
//
// Memcached refuses an item larger than its item size limit (-I, 1 MiB by
// default), and the item holds more than the value: the key (up to 250
// bytes), its terminating NUL, a 48-byte header, an 8-byte CAS, the CRLF
// after the value, and 4 bytes of flags when they are not 0. So a default
// memcached (1.6 on a 64-bit host) stores a value of at most 1 MiB - 309
// bytes under a 250-byte key (1 MiB - 60 under a 1-byte key).
//
// Set and Add refuse a value longer than Options.MaxValueBytes without
// contacting the server, with an error that matches hoard.ErrValueTooLarge.
// Its default, DefaultMaxValueBytes (1 MiB - 512 bytes), is what a default
// memcached always stores, whatever the key; for servers started with a
// larger limit, e.g. `memcached -I 2m`, raise MaxValueBytes to match (the
// -I size minus 512 bytes). A value under MaxValueBytes that the server
// still refuses gets an error too:
//
//   - "SERVER_ERROR object too large for cache" (MaxValueBytes is over the
//     servers' -I): an error that matches hoard.ErrValueTooLarge and
//     advises a larger -I;
//   - "SERVER_ERROR out of memory storing object" (a server that may not
//     evict, memcached -M, or none of whose items of that size class could
//     be evicted): an error that matches hoard.ErrRefused.
//
// These are refusals of one value by a healthy server, not server
// failures: the server is not marked down, its other keys keep working,
// and a hoard Cache's circuit breaker does not count them; only that key
// goes uncached. A Set the server refuses also drops the key's former
// value (memcached removes it), while one refused for MaxValueBytes leaves
// the server, and so the key's former value, untouched.
//
// gomemcache takes no context: every call checks its context before it
// starts, and Options.Timeout bounds each network step (connect, write,
// each read), so a dead server fails a call at once and a frozen one within
// about Timeout.
//
// Exists fetches the value, as the text protocol has no cheaper check. The
// store cannot list keys, so it has no DeletePattern (it is not a
// hoard.PatternDeleter): a hoard Cache's DeletePattern returns
// hoard.ErrPatternNotSupported on it.
package memcached

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/addr"
)

// Defaults of Options.
const (
	// DefaultServer is the pool used when Options.Servers is empty. Its
	// port is also the one stores.FromEnv gives CACHE_MEMCACHED_HOST
	// without CACHE_MEMCACHED_PORT.
	DefaultServer   = "localhost:11211"
	DefaultPoolSize = 10
	// DefaultTimeout is hoard's CACHE_TIMEOUT default.
	DefaultTimeout = hoard.DefaultTimeout
	DefaultBackoff = time.Second
	// DefaultMaxValueBytes is 1 MiB - 512 bytes (1048064): every value up
	// to it, under any key, fits in the item size of a memcached started
	// with its default -I 1m (see "Value size" above; the largest item
	// overhead, with a 250-byte key and flags, is 313 bytes).
	DefaultMaxValueBytes = 1<<20 - 512
)

// Options configures New. The zero value is a pool of one server on
// localhost:11211 with the defaults below.
type Options struct {
	// Servers are the "host:port" addresses of every server of the pool
	// (CACHE_MEMCACHED_SERVERS). Empty means ["localhost:11211"]. Hosts
	// are resolved on each new connection, so DNS changes are followed.
	Servers []string

	// PoolSize is the number of connections kept open to each server
	// (CACHE_MEMCACHED_POOL_SIZE), and the most calls one server gets at
	// once: a call that finds them all busy waits for one, up to Timeout
	// (or its context), rather than opening a connection that would be
	// closed again right after (on a loopback pool at 64 concurrent
	// requests, that churn cost about 15 % of the CPU of a hit). Zero
	// means 10.
	PoolSize int

	// Timeout bounds each network step of a call: connecting, writing the
	// request, and reading each reply (CACHE_TIMEOUT). Zero means 50ms.
	Timeout time.Duration

	// Backoff is how long a server that failed is skipped before a call
	// tries it again (see "Server failures" above). Zero means 1s.
	Backoff time.Duration

	// MaxValueBytes is the longest value Set and Add send: a longer one
	// is refused at once, without contacting the server, with an error
	// that matches hoard.ErrValueTooLarge (see "Value size" above). Zero
	// means DefaultMaxValueBytes (1 MiB - 512 bytes), which fits a
	// memcached started with its default item size (-I 1m); for servers
	// started with a larger -I, set it to that size minus 512 bytes, e.g.
	// 2<<20 - 512 for -I 2m. Negative is an error.
	MaxValueBytes int
}

// Store is a hoard store on a pool of memcached servers. It is safe for
// concurrent use. Create it with New and release it with Close.
type Store struct {
	nodes    []*node // one per server, in the order of ring.addrs
	ring     *ring
	poolSize int
	timeout  time.Duration
	maxValue int // Options.MaxValueBytes, or its default
	closed   atomic.Bool
	// shardTags[i] is a hash tag the ring places on nodes[i] (ShardKey).
	shardTags []string
}

var (
	_ hoard.Store     = (*Store)(nil)
	_ hoard.SelfTimed = (*Store)(nil)
	_ hoard.Sharded   = (*Store)(nil)
)

// WithDefaults returns o with its zero fields replaced by their defaults
// (Servers, PoolSize, Timeout, Backoff, MaxValueBytes). Negative values,
// which Validate reports, are left as they are.
func (o Options) WithDefaults() Options {
	if len(o.Servers) == 0 {
		o.Servers = []string{DefaultServer}
	}
	o.PoolSize = cmp.Or(o.PoolSize, DefaultPoolSize)
	o.Timeout = cmp.Or(o.Timeout, DefaultTimeout)
	o.Backoff = cmp.Or(o.Backoff, DefaultBackoff)
	o.MaxValueBytes = cmp.Or(o.MaxValueBytes, DefaultMaxValueBytes)
	return o
}

// Validate reports every field of o that New cannot use, each as a
// *hoard.FieldError, joined with errors.Join: a server that is not
// host:port or is listed twice, a negative number. Zero fields are valid
// (they mean the defaults).
func (o Options) Validate() error {
	var errs []error
	bad := func(field string, value any, want string) {
		errs = append(errs, &hoard.FieldError{Type: "memcached.Options", Field: field, Value: value, Want: want})
	}
	seen := make(map[string]bool, len(o.Servers))
	for _, s := range o.Servers {
		switch {
		case addr.CheckHostPort(s) != "":
			bad("Servers", s, addr.WantHostPort+", e.g. localhost:11211 or [::1]:11211")
		case seen[s]:
			bad("Servers", s, "is listed twice; list each server once")
		}
		seen[s] = true
	}
	if o.PoolSize < 0 {
		bad("PoolSize", o.PoolSize, fmt.Sprintf("must not be negative: a number of connections per server, or 0 for the default (%d)", DefaultPoolSize))
	}
	if o.Timeout < 0 {
		bad("Timeout", o.Timeout, fmt.Sprintf("must not be negative (0 means the default, %v)", DefaultTimeout))
	}
	if o.Backoff < 0 {
		bad("Backoff", o.Backoff, fmt.Sprintf("must not be negative (0 means the default, %v)", DefaultBackoff))
	}
	if o.MaxValueBytes < 0 {
		bad("MaxValueBytes", o.MaxValueBytes, fmt.Sprintf("must not be negative: the servers' item size (-I) minus 512 bytes, or 0 for the default (%d, for memcached's default -I 1m)", DefaultMaxValueBytes))
	}
	return errors.Join(errs...)
}

// New returns a Store on the servers of opts. It checks the options and the
// form of every address but does not connect: use Ping to check that the
// servers answer.
func New(opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.WithDefaults()
	nodes := make([]*node, len(o.Servers))
	for i, addr := range o.Servers {
		nodes[i] = newNode(addr, o.PoolSize, o.Timeout, o.Backoff)
	}
	r := newRing(o.Servers)
	return &Store{
		nodes:     nodes,
		ring:      r,
		poolSize:  o.PoolSize,
		timeout:   o.Timeout,
		maxValue:  o.MaxValueBytes,
		shardTags: r.shardTags(),
	}, nil
}

// CallTimeout returns Options.Timeout (or its default): the store bounds
// each network step of a call by it, so a hoard Cache adds no deadline of
// its own.
func (s *Store) CallTimeout() time.Duration { return s.timeout }

// begin checks that a call may start.
func (s *Store) begin(ctx context.Context) error {
	if s.closed.Load() {
		return hoard.ErrClosed
	}
	return ctx.Err()
}

// end runs after every call that used the client. gomemcache returns a
// connection to its idle pool when a call ends, so a call that was running
// while Close ran may have put one back after Close emptied the pool; close
// it now. (Close sets closed before it empties the pool, so either Close
// sees the connection or the call sees closed.)
func (s *Store) end() {
	if s.closed.Load() {
		s.closeIdle()
	}
}

// closeIdle closes the idle connections to every server.
func (s *Store) closeIdle() error {
	var errs []error
	for _, n := range s.nodes {
		if err := n.client.Close(); err != nil {
			errs = append(errs, fmt.Errorf("memcached %s: close: %w", n.addr, err))
		}
	}
	return errors.Join(errs...)
}

// node returns the server that holds key, stored as skey.
func (s *Store) node(key, skey string) *node { return s.nodes[s.ring.locate(key, skey)] }

// ShardCount returns the number of servers. With ShardOf and ShardKey it
// implements hoard.Sharded, through which a hoard Cache places a read's
// keys on one server (see "Hash tags" in the package documentation).
func (s *Store) ShardCount() int { return len(s.nodes) }

// ShardOf returns the index in Options.Servers of the server that holds
// key.
func (s *Store) ShardOf(key string) int {
	if tag, ok := hashTag(key); ok {
		return s.ring.index(tag)
	}
	return s.ring.index(storedKey(key))
}

// ShardKey returns base followed by a hash tag ("{" + tag + "}") that
// places the key on the server of index shard in Options.Servers. The tag
// of a server depends only on the set of servers, not on their order.
// base must hold no '{', or the key is placed by base's own tag.
func (s *Store) ShardKey(base string, shard int) string {
	return base + "{" + s.shardTags[shard] + "}"
}

// call runs f on n unless n is marked down, and records the outcome.
func (n *node) call(ctx context.Context, f func(c *memcache.Client) error) error {
	if err := n.start(ctx); err != nil {
		return err
	}
	err := f(n.client)
	n.finish(err)
	return err
}

// fail wraps err, returned by a call on server n, with what the store was
// doing and on which server.
func (s *Store) fail(op string, n *node, err error) error {
	if errors.Is(err, hoard.ErrClosed) {
		return err
	}
	if s.closed.Load() {
		return fmt.Errorf("memcached: %s failed while the store was closed: %w", op, hoard.ErrClosed)
	}
	return fmt.Errorf("memcached %s: %s: %w", n.addr, op, err)
}

// expiration converts ttl to memcached's expiration field, relative to now.
func expiration(ttl time.Duration, now time.Time) (int32, error) {
	if ttl <= 0 {
		return 0, hoard.ErrInvalidTTL
	}
	// Whole seconds, rounded up, plus one: memcached's clock ticks once a
	// second, and an item set just before a tick loses up to a second.
	secs := int64(ttl / time.Second)
	if ttl%time.Second != 0 {
		secs++
	}
	secs++
	const maxRelative = 30 * 24 * 60 * 60 // beyond, memcached reads a Unix time
	if secs <= maxRelative {
		return int32(secs), nil
	}
	if secs > math.MaxInt32-now.Unix() {
		return math.MaxInt32, nil
	}
	return int32(now.Unix() + secs), nil
}

// Get returns the value of key; found is false when key is absent or
// expired. It fails when the key's server fails or is marked down.
func (s *Store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := s.begin(ctx); err != nil {
		return nil, false, err
	}
	defer s.end()
	skey := storedKey(key)
	n := s.node(key, skey)
	if err := n.start(ctx); err != nil {
		return nil, false, s.fail("get", n, err)
	}
	it, err := n.client.Get(skey)
	n.finish(err)
	switch {
	case err == nil:
		return it.Value, true, nil
	case errors.Is(err, memcache.ErrCacheMiss):
		return nil, false, nil
	}
	return nil, false, s.fail("get", n, err)
}

// batch is the keys of one GetMulti that live on one server.
type batch struct {
	node *node
	n    int      // number of keys
	keys []string // stored keys
	pos  []int    // pos[i] is the index of keys[i] in the caller's keys
	err  error
}

// GetMulti returns the values of keys, in order, nil for the absent ones.
// It asks every server involved at once, each for all of its keys in one
// request. The keys of a server that fails, or is marked down, are nil; it
// fails only when no server it asked answered.
func (s *Store) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	values := make([][]byte, len(keys))
	if len(keys) == 0 {
		return values, nil
	}
	defer s.end()
	// Group the keys by server, servers in the order they first appear.
	// Two allocations hold every key list: strs (the stored keys, then the
	// same grouped by batch) and ints (each key's batch, then the caller's
	// index of each grouped key).
	n := len(keys)
	strs := make([]string, 2*n)
	ints := make([]int, 2*n)
	skeys, grouped := strs[:n], strs[n:]
	where, pos := ints[:n], ints[n:]
	batches := make([]batch, 0, min(n, len(s.nodes)))
	for i, k := range keys {
		sk := storedKey(k)
		skeys[i] = sk
		nd := s.node(k, sk)
		j := 0
		for j < len(batches) && batches[j].node != nd {
			j++
		}
		if j == len(batches) {
			batches = append(batches, batch{node: nd})
		}
		batches[j].n++
		where[i] = j
	}
	off := 0
	for j := range batches {
		b := &batches[j]
		b.keys, b.pos = grouped[off:off:off+b.n], pos[off:off:off+b.n]
		off += b.n
	}
	for i, j := range where {
		b := &batches[j]
		b.keys = append(b.keys, skeys[i]) // within capacity: no allocation
		b.pos = append(b.pos, i)
	}
	if len(batches) == 1 {
		s.getBatch(ctx, &batches[0], values)
	} else {
		var wg sync.WaitGroup
		for i := 1; i < len(batches); i++ {
			b := &batches[i]
			wg.Go(func() { s.getBatch(ctx, b, values) })
		}
		s.getBatch(ctx, &batches[0], values)
		wg.Wait()
	}
	var errs []error
	for i := range batches {
		if err := batches[i].err; err != nil {
			errs = append(errs, fmt.Errorf("memcached %s: %w", batches[i].node.addr, err))
		}
	}
	if len(errs) > 0 && ctx.Err() != nil {
		// A server's keys were not read because the caller gave up, which
		// says nothing about that server: report it rather than misses.
		return nil, fmt.Errorf("memcached: get of %d keys: %w", len(keys), ctx.Err())
	}
	if len(errs) < len(batches) {
		return values, nil
	}
	if s.closed.Load() {
		return nil, fmt.Errorf("memcached: get of %d keys failed while the store was closed: %w", len(keys), hoard.ErrClosed)
	}
	return nil, fmt.Errorf("memcached: get of %d keys: no server answered: %w", len(keys), errors.Join(errs...))
}

// getBatch reads b's keys from its server into values, or sets b.err.
func (s *Store) getBatch(ctx context.Context, b *batch, values [][]byte) {
	n := b.node
	if err := n.start(ctx); err != nil {
		b.err = err
		return
	}
	if len(b.keys) == 1 {
		// gomemcache's Get runs in this goroutine; its GetMulti starts one
		// per server.
		it, err := n.client.Get(b.keys[0])
		n.finish(err)
		switch {
		case err == nil:
			values[b.pos[0]] = it.Value
		case !errors.Is(err, memcache.ErrCacheMiss):
			b.err = err
		}
		return
	}
	items, err := n.client.GetMulti(b.keys)
	n.finish(err)
	if err != nil {
		b.err = err
		return
	}
	for i, sk := range b.keys {
		if it := items[sk]; it != nil {
			values[b.pos[i]] = it.Value
		}
	}
}

// Set stores value under key for ttl, which must be positive. A value
// longer than MaxValueBytes, or one the server refuses, is not stored and
// the error matches hoard.ErrRefused (hoard.ErrValueTooLarge for its size;
// see "Value size" in the package documentation).
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	exp, err := expiration(ttl, time.Now())
	if err != nil {
		return err
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	if err := s.checkSize("set", value); err != nil {
		return err
	}
	defer s.end()
	skey := storedKey(key)
	n := s.node(key, skey)
	item := &memcache.Item{Key: skey, Value: value, Expiration: exp}
	if err := n.call(ctx, func(c *memcache.Client) error { return c.Set(item) }); err != nil {
		return s.failStore("set", n, len(value), err)
	}
	return nil
}

// Add stores value under key for ttl only if key is absent, and reports
// whether it did. Memcached decides atomically, across all clients. A
// value refused for its size, or by the server, is an error, as for Set.
func (s *Store) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	exp, err := expiration(ttl, time.Now())
	if err != nil {
		return false, err
	}
	if err := s.begin(ctx); err != nil {
		return false, err
	}
	if err := s.checkSize("add", value); err != nil {
		return false, err
	}
	defer s.end()
	skey := storedKey(key)
	n := s.node(key, skey)
	item := &memcache.Item{Key: skey, Value: value, Expiration: exp}
	err = n.call(ctx, func(c *memcache.Client) error { return c.Add(item) })
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, memcache.ErrNotStored):
		return false, nil
	}
	return false, s.failStore("add", n, len(value), err)
}

// Touch sets the TTL of key, keeping its value, and reports whether key was
// present. ttl must be positive.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	exp, err := expiration(ttl, time.Now())
	if err != nil {
		return false, err
	}
	if err := s.begin(ctx); err != nil {
		return false, err
	}
	defer s.end()
	skey := storedKey(key)
	n := s.node(key, skey)
	err = n.call(ctx, func(c *memcache.Client) error { return c.Touch(skey, exp) })
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, memcache.ErrCacheMiss):
		return false, nil
	}
	return false, s.fail("touch", n, err)
}

// Replies of memcached that refuse one value (gomemcache returns them
// inside an "unexpected response line" error).
const (
	replyTooLarge   = "SERVER_ERROR object too large for cache"
	replyOutOfSpace = "SERVER_ERROR out of memory storing object"
)

// checkSize refuses, before any contact with a server, a value longer
// than MaxValueBytes.
func (s *Store) checkSize(op string, value []byte) error {
	if len(value) <= s.maxValue {
		return nil
	}
	return fmt.Errorf("memcached: %s: the %d-byte value is over MaxValueBytes (%d), so it was not sent: %w; for larger values start memcached with a larger -I (e.g. -I 2m) and raise MaxValueBytes to match (the -I size minus 512 bytes), or cache smaller values",
		op, len(value), s.maxValue, hoard.ErrValueTooLarge)
}

// failStore is fail for set and add. A reply that refuses the value (too
// large for the server's item size, or no memory for it) becomes an error
// that matches hoard.ErrValueTooLarge or hoard.ErrRefused, with advice;
// node.report has already counted it as an answer, not a server failure.
func (s *Store) failStore(op string, n *node, size int, err error) error {
	switch msg := err.Error(); {
	case strings.Contains(msg, replyTooLarge):
		err = fmt.Errorf("%w: %w; the %d-byte value is over the server's item size limit: start memcached with a larger -I (e.g. -I 2m) or cache smaller values (and keep Options.MaxValueBytes at most the -I size minus 512 bytes, so that such values are refused without a round trip)", hoard.ErrValueTooLarge, err, size)
	case strings.Contains(msg, replyOutOfSpace):
		err = fmt.Errorf("%w: %w; the server has no memory for the %d-byte value and could not evict an item of its size (is memcached running with -M?); only this key goes uncached", hoard.ErrRefused, err, size)
	}
	return s.fail(op, n, err)
}

// Delete removes keys; absent keys are not an error. Keys on different
// servers, and up to PoolSize keys of one server, are deleted concurrently.
// A server that fails stops being asked for its remaining keys, so a dead
// or frozen server costs one Timeout, not one per key; the other servers'
// keys are still deleted, and the error names the failed server.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	defer s.end()
	if len(keys) == 1 {
		return s.delete(ctx, keys[0])
	}
	groups := make([][]string, len(s.nodes))
	for _, k := range keys {
		i := s.ring.locate(k, storedKey(k))
		groups[i] = append(groups[i], k)
	}
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for g, group := range groups {
		if len(group) == 0 {
			continue
		}
		var next atomic.Int64
		var failed atomic.Bool
		var mu sync.Mutex
		for range min(len(group), s.poolSize) {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(len(group)) || failed.Load() {
						return
					}
					err := ctx.Err()
					if err == nil {
						err = s.delete(ctx, group[i])
					}
					if err != nil {
						failed.Store(true)
						mu.Lock()
						if errs[g] == nil {
							errs[g] = err
						}
						mu.Unlock()
						return
					}
				}
			})
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Store) delete(ctx context.Context, key string) error {
	skey := storedKey(key)
	n := s.node(key, skey)
	err := n.call(ctx, func(c *memcache.Client) error { return c.Delete(skey) })
	if err == nil || errors.Is(err, memcache.ErrCacheMiss) {
		return nil
	}
	return s.fail("delete", n, err)
}

// Exists reports whether key is present. It fetches the value.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	_, found, err := s.Get(ctx, key)
	return found, err
}

// Ping checks that every server of the pool answers; it stops at the first
// that fails or is marked down.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	for _, n := range s.nodes {
		if err := n.call(ctx, (*memcache.Client).Ping); err != nil {
			if s.closed.Load() {
				return fmt.Errorf("memcached: ping failed while the store was closed: %w", hoard.ErrClosed)
			}
			return fmt.Errorf("memcached %s: ping: %w", n.addr, err)
		}
	}
	return nil
}

// MaxValueBytes returns the longest value Set and Add send (see
// Options.MaxValueBytes).
func (s *Store) MaxValueBytes() int { return s.maxValue }

// Close closes the idle connections. It is idempotent; other calls made
// after Close return hoard.ErrClosed. Calls running meanwhile finish and
// close their connections.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.closeIdle()
}
