package hoard

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/hoardcache/hoard/internal/glob"
	"github.com/hoardcache/hoard/internal/keys"
)

// Cache is the provider API (upstream's get/set/delete/delete_pattern/exists/
// clear) and the home of the route middleware. It is safe for concurrent use.
//
// Every value a Cache stores is wrapped in an envelope that records the
// generations it was produced under (docs/design.md): the namespace's
// epoch, which Clear deletes, and the key's own generation, which
// Invalidate deletes. A read fetches the value and the current generations
// in one round trip and treats a value whose recorded generations differ,
// or are gone, as a miss; a miss creates the missing generations with fresh
// random values before it loads. That makes Clear and Invalidate O(1) on
// every store, including Memcached, and stops a slow reader from putting
// back a value that a concurrent write invalidated.
type Cache struct {
	store     Store
	cfg       Config
	disabled  bool
	selfTimed bool // the store bounds every call by its own timeout

	ns       string // CACHE_KEY_PREFIX, prepended to every key
	epochKey string // generation of the whole namespace (Clear)
	maxKey   int    // Config.MaxKeyBytes

	// longestTTL (nanoseconds) is the longest TTL of an entry this Cache
	// stores: DefaultTTL, every route's TTL, every provider TTL used. A
	// generation lives generationTTL, so no longer than the entries that
	// depend on it.
	longestTTL atomic.Int64

	// sharded is the store when it is Sharded over more than one shard
	// (and the prefix holds no '{'): keys then carry hash tags, so that a
	// read touches one shard, and the epoch has one copy per shard,
	// epochKeys[i] on shard i. Otherwise sharded is nil and epochKeys is
	// just epochKey.
	sharded   Sharded
	epochKeys []string

	breaker *breaker
	pending pendingSet
	log     rateLimitedLog
	flights singleflight.Group
	stats   counters

	// The background replay of pending invalidations runs under bgCtx,
	// cancelled by Close, which waits for it (bg).
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bgMu     sync.Mutex
	bg       sync.WaitGroup
	closed   bool

	// patterns are the InvalidatePatterns templates of every route built
	// on this Cache; a GET records the generation of each instance that
	// covers its key. Copy-on-write: read lock-free on every GET.
	patternsMu sync.Mutex
	patterns   atomic.Pointer[[]*keys.Template]

	closeOnce sync.Once
	closeErr  error
}

const (
	// genPrefix marks hoard's own keys (generations) inside the namespace.
	// Key templates and provider keys may not start with '#', so a user key
	// can never collide with one.
	genPrefix = "#g:"
	epochName = "#epoch"

	// epochTTL is the lifetime of the namespace epoch (one key, or one
	// per shard). Its expiry would make every entry a miss at once, so it
	// outlives any entry; a lost epoch only costs misses.
	epochTTL = 30 * 24 * time.Hour

	// provisionalGenerationTTL is the lifetime of a generation that a read
	// creates before it runs the handler, until the answer is known (see
	// settleGenerations): long enough for the handler to answer, short
	// enough that a process dying mid-request leaves nothing lasting. A
	// handler slower than this still answers correctly; its entry is just
	// a miss sooner.
	provisionalGenerationTTL = 10 * time.Second

	breakerThreshold = 5
	breakerCooldown  = time.Second
)

// ErrReservedKey is returned for a key that starts with '#', the prefix hoard
// keeps for its generation keys.
var ErrReservedKey = errors.New("hoard: keys starting with '#' are reserved for hoard's generation keys; choose another key")

// ErrEmptyKey is returned for an empty key.
var ErrEmptyKey = errors.New("hoard: empty key")

// ErrKeyTooLong is returned for a key longer than Config.MaxKeyBytes
// (CACHE_MAX_KEY_BYTES). Routes serve such requests uncached instead.
var ErrKeyTooLong = errors.New("hoard: key longer than CACHE_MAX_KEY_BYTES (Config.MaxKeyBytes); use a shorter key, such as a hash of the long one, or raise the limit")

// New returns a Cache over store, configured by cfg (zero values are the
// defaults of spec §5; only the cache-wide fields are used: Disabled,
// KeyPrefix, DefaultTTL). The Cache owns the store: Close closes it. With
// cfg.Disabled the store may be nil and is never called.
func New(store Store, cfg Config) (*Cache, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil && !cfg.Disabled {
		return nil, errors.New("hoard: New needs a Store (memory.New, redis.New, memcached.New) or use Open to build the configured one")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	c := &Cache{
		store:     store,
		cfg:       cfg,
		disabled:  cfg.Disabled,
		ns:        cfg.KeyPrefix,
		epochKey:  cfg.KeyPrefix + epochName,
		maxKey:    cfg.MaxKeyBytes,
		breaker:   newBreaker(breakerThreshold, breakerCooldown),
		selfTimed: isSelfTimed(store),
		log:       rateLimitedLog{logger: logger.With(slog.String("component", "hoard")), interval: time.Second},
	}
	c.longestTTL.Store(int64(cfg.DefaultTTL))
	c.bgCtx, c.bgCancel = context.WithCancel(context.Background())
	c.epochKeys = []string{c.epochKey}
	// A '{' in the prefix would be read as the start of every key's hash
	// tag, and DeletePattern's globs match the plain layout: such caches
	// keep it.
	if sh, ok := store.(Sharded); ok && !cfg.Disabled && !strings.Contains(c.ns, "{") && !store.SupportsPatterns() {
		if n := sh.ShardCount(); n > 1 {
			c.sharded = sh
			c.epochKeys = make([]string, n)
			for i := range n {
				c.epochKeys[i] = sh.ShardKey(c.epochKey, i)
			}
		}
	}
	c.pending.epochKeys = c.epochKeys
	return c, nil
}

// Config returns the configuration the Cache runs with, defaults filled in.
func (c *Cache) Config() Config { return c.cfg }

// Store returns the underlying store (nil when the cache is disabled and was
// built without one).
func (c *Cache) Store() Store { return c.store }

// Enabled reports whether the cache is on (CACHE_ENABLED).
func (c *Cache) Enabled() bool { return !c.disabled }

// Close stops the background replay of failed invalidations and closes the
// store. It is safe to call more than once.
func (c *Cache) Close() error {
	c.closeOnce.Do(func() {
		c.bgMu.Lock()
		c.closed = true
		c.bgMu.Unlock()
		c.bgCancel()
		c.bg.Wait()
		if c.store != nil {
			c.closeErr = c.store.Close()
		}
	})
	return c.closeErr
}

// newGeneration returns a fresh generation value. Values are random, never
// counters, so a generation key that is evicted and created again cannot
// collide with a value an old entry recorded.
func newGeneration() []byte {
	return binary.LittleEndian.AppendUint64(make([]byte, 0, 8), rand.Uint64())
}

// genKey is the store key of the generation of namespace name (a resource
// such as "widget:42" or a pattern such as "alice_posts:*"). On a Sharded
// store the name is its hash tag, so it lives with the entries of name.
func (c *Cache) genKey(name string) string {
	if c.sharded != nil {
		return c.ns + genPrefix + "{" + name + "}"
	}
	return c.ns + genPrefix + name
}

// entryKey is the store key of the value of key (a provider key or a
// route's resource with no variant). On a Sharded store the key is its
// hash tag, as in genKey.
func (c *Cache) entryKey(key string) string {
	if c.sharded != nil {
		return c.ns + "{" + key + "}"
	}
	return c.ns + key
}

// epochFor returns the epoch key that a read of the entry stored under
// entryKey checks: the namespace's one epoch, or on a Sharded store the
// copy on the entry's shard. Clear deletes every copy.
func (c *Cache) epochFor(entryKey string) string {
	if c.sharded == nil {
		return c.epochKey
	}
	return c.epochKeys[c.sharded.ShardOf(entryKey)]
}

func (c *Cache) checkKey(key string) error {
	switch {
	case key == "":
		return ErrEmptyKey
	case len(key) > c.maxKey:
		c.stats.keysTooLong.Add(1)
		return fmt.Errorf("%w: %d bytes, limit %d: %q", ErrKeyTooLong, len(key), c.maxKey, clip(key))
	case key[0] == '#':
		return fmt.Errorf("%w: %q", ErrReservedKey, clip(key))
	}
	return nil
}

// noteTTL raises longestTTL to ttl.
func (c *Cache) noteTTL(ttl time.Duration) {
	for {
		cur := c.longestTTL.Load()
		if int64(ttl) <= cur || c.longestTTL.CompareAndSwap(cur, int64(ttl)) {
			return
		}
	}
}

// generationTTL is the lifetime of a generation that an entry depends on:
// twice the longest entry TTL, so that an entry stored while its
// generation is young expires before the generation does.
func (c *Cache) generationTTL() time.Duration { return 2 * time.Duration(c.longestTTL.Load()) }

// --- store calls through the breaker -------------------------------------

// usable reports whether the store may be called now: the breaker is
// closed (or lets a probe through). If invalidations failed earlier, it
// starts their replay in the background (at most once per replayInterval
// after a failed one), so that no request waits for it. The reads they
// concern are not served from the store until their own keys are deleted
// (getMulti), so an invalidation lost to an outage never lets a stale entry
// be served, while the namespaces it does not name keep hitting.
func (c *Cache) usable(ctx context.Context) bool {
	if !c.breaker.allow() {
		return false
	}
	if !c.pending.empty() && time.Now().UnixNano() >= c.pending.retryAt.Load() {
		c.startReplay()
	}
	return true
}

// startReplay runs replayPending in a goroutine of its own, unless one is
// running or the Cache is closed. Close waits for it.
func (c *Cache) startReplay() {
	if !c.pending.replaying.CompareAndSwap(false, true) {
		return
	}
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.closed {
		c.pending.replaying.Store(false)
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer c.pending.replaying.Store(false)
		c.replayPending(c.bgCtx)
	}()
}

// replayPending deletes the pending keys, as far as the store takes them.
// Reads that check a pending key replay it themselves (getMulti); the
// replay lock keeps two replays from deleting one key twice for one
// failure (each deletion is a miss for the entries stored since the last).
func (c *Cache) replayPending(ctx context.Context) {
	c.pending.replay.Lock()
	defer c.pending.replay.Unlock()
	keys, seq := c.pending.snapshot()
	if len(keys) == 0 {
		return
	}
	// In random order: keys the store takes are deleted even when another
	// one keeps failing (its server of a pool is down) and stops the replay.
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	if failed, err := c.replay(ctx, keys, seq); err != nil {
		c.log.error("hoard: replaying invalidations failed; the namespaces they name are served uncached until the store takes them", err,
			slog.Int("pending", failed))
	}
}

// replay deletes pending keys snapshot at seq (one call per key, so that the
// keys of a server that answers are deleted when another server's are not)
// and forgets those deleted. It returns how many it could not delete. Its
// failures reach the breaker at most once per replayInterval.
func (c *Cache) replay(ctx context.Context, keys []string, seq uint64) (failed int, err error) {
	notDeleted, err := c.deleteEach(ctx, keys, false)
	c.pending.forget(without(keys, notDeleted), seq)
	switch {
	case err == nil:
		c.breaker.record(nil)
	case c.pending.failedAt(time.Now()):
		c.breaker.record(err)
	}
	return len(notDeleted), err
}

// without returns the keys not in drop.
func without(keys, drop []string) []string {
	if len(drop) == 0 {
		return keys
	}
	return slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return slices.Contains(drop, k) })
}

// callContext bounds one store call by CACHE_TIMEOUT, unless the store
// bounds its calls itself (hoard's own stores do).
func (c *Cache) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.selfTimed {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

// errPending is getMulti's answer for keys that include a generation whose
// invalidation failed and has not been replayed yet.
var errPending = fmt.Errorf("%w: an invalidation of this namespace failed and is waiting to be replayed; it is served uncached until the store takes it", ErrUnavailable)

// getMulti reads keys in one round trip. If any of them is pending (its
// invalidation failed and is not replayed yet) it first deletes those,
// within one Timeout, and if that fails it returns errPending without
// reading: the entry it would check could be one the failed invalidation
// was meant to make stale. The check comes before the read, so that a
// replay that ends while the read runs cannot let the read use a
// generation from before the replay.
func (c *Cache) getMulti(ctx context.Context, keys []string) ([][]byte, error) {
	if c.pending.blocks(keys) {
		// Delete this read's own pending keys; the other pending ones (their
		// server may still be down) are the background replay's business.
		if c.pending.replay.TryLock() {
			if own, seq := c.pending.pendingAmong(keys); len(own) > 0 {
				rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
				c.replay(rctx, own, seq)
				cancel()
			}
			c.pending.replay.Unlock()
		}
		if c.pending.blocks(keys) {
			c.breaker.abandon() // a probe that did not get through must not keep the slot
			return nil, errPending
		}
	}
	if !c.selfTimed {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	vals, err := c.store.GetMulti(ctx, keys)
	c.breaker.record(err)
	return vals, err
}

// set stores one value. A value the store refuses (ErrRefused) is counted,
// and the key's former value is deleted, as every store's refusal does not
// (a store that checks the size itself never calls its server): a refused
// provider Set must not leave the old value readable.
func (c *Cache) set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	cctx, cancel := c.callContext(ctx)
	err := c.store.Set(cctx, key, val, ttl)
	cancel()
	c.breaker.record(err)
	if errors.Is(err, ErrRefused) {
		c.stats.valuesRefused.Add(1)
		cctx, cancel := c.callContext(ctx)
		c.breaker.record(c.store.Delete(cctx, key))
		cancel()
	}
	return err
}

// maxInvalidationFanout bounds the concurrent store calls of one
// invalidation (a replay after an outage may hold many keys).
const maxInvalidationFanout = 8

// deleteEach deletes keys, one call per key. The calls run concurrently,
// so an invalidation costs one round trip (and a frozen store one
// timeout), however many keys it names; after the first failure no new
// call is started. It returns the keys it did not delete (failed or not
// tried); record says whether its outcome goes to the breaker.
func (c *Cache) deleteEach(ctx context.Context, keys []string, record bool) (notDeleted []string, err error) {
	call := func(i int) error {
		ctx, cancel := c.callContext(ctx)
		defer cancel()
		return c.store.Delete(ctx, keys[i])
	}
	done := make([]bool, len(keys))
	if len(keys) == 1 {
		err = call(0)
		done[0] = err == nil
	} else {
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			errs   []error
			failed atomic.Bool
			sem    = make(chan struct{}, maxInvalidationFanout)
		)
		for i := 0; i < len(keys) && !failed.Load(); i++ {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if failed.Load() {
					return
				}
				err := call(i)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed.Store(true)
					errs = append(errs, err)
					return
				}
				done[i] = true
			}()
		}
		wg.Wait()
		err = errors.Join(errs...)
	}
	if record {
		c.breaker.record(err)
	}
	for i, ok := range done {
		if !ok {
			notDeleted = append(notDeleted, keys[i])
		}
	}
	return notDeleted, err
}

// invalidate deletes the generation and entry keys of an invalidation, or,
// if the store fails, keeps those it could not delete to be replayed before
// the store serves hits of their namespaces again.
func (c *Cache) invalidate(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	notDeleted, err := keys, ErrUnavailable
	if c.breaker.allow() {
		notDeleted, err = c.deleteEach(ctx, keys, true)
	}
	if err != nil {
		attrs := []any{slog.Int("keys", len(notDeleted))}
		if c.pending.add(notDeleted) {
			attrs = append(attrs, slog.Bool("namespace_wide", true))
		}
		c.log.error("hoard: invalidation failed; it will be replayed before the cache serves hits of its namespaces again", err, attrs...)
	}
	return err
}

// ensureGenerations fills in missing generations (nil in gens; genKeys[0]
// is the namespace epoch) by creating them with a fresh random value,
// atomically: if another client created one first, its value is read back.
// The epoch is created for epochTTL; the others for ttl: a read that may
// not store anything passes provisionalGenerationTTL, and touches the ones
// it created (created, a bit per index) once it has stored an entry. A key
// that Add finds present but Get finds absent (deleted in between, or a
// value of a type the store does not read, such as a Redis list) is
// overwritten: replacing a generation is an invalidation, always safe. ok
// is false if any generation stays unknown.
func (c *Cache) ensureGenerations(ctx context.Context, genKeys []string, gens [][]byte, ttl time.Duration) (created uint32, ok bool) {
	for i, g := range gens {
		if g != nil {
			continue
		}
		keyTTL := ttl
		if i == 0 {
			keyTTL = epochTTL
		}
		fresh := newGeneration()
		cctx, cancel := c.callContext(ctx)
		added, err := c.store.Add(cctx, genKeys[i], fresh, keyTTL)
		cancel()
		c.breaker.record(err)
		if err != nil {
			return created, false
		}
		if !added {
			cctx, cancel = c.callContext(ctx)
			v, found, err := c.store.Get(cctx, genKeys[i])
			cancel()
			c.breaker.record(err)
			if err != nil {
				return created, false
			}
			if found {
				gens[i] = v
				continue
			}
			if err := c.set(ctx, genKeys[i], fresh, keyTTL); err != nil {
				c.log.error("hoard: a generation key holds a value the store cannot read and cannot be replaced; its namespace is served uncached", err, keyAttr(genKeys[i]))
				return created, false
			}
		}
		gens[i] = fresh
		created |= 1 << i
	}
	return created, true
}

// settleGenerations decides the lifetime of the generations a read created
// (created, as ensureGenerations returns it) once it knows whether an entry
// that depends on them was stored: if so they get generationTTL; if not,
// nothing depends on them and they are deleted (an invalidation, always
// safe), so that a request whose answer is not stored leaves nothing
// behind. The epoch (bit 0) keeps the lifetime it was created with.
func (c *Cache) settleGenerations(ctx context.Context, genKeys []string, created uint32, stored bool) {
	for i := 1; i < len(genKeys) && created>>i != 0; i++ {
		if created&(1<<i) == 0 {
			continue
		}
		cctx, cancel := c.callContext(ctx)
		var err error
		if stored {
			_, err = c.store.Touch(cctx, genKeys[i], c.generationTTL())
		} else {
			err = c.store.Delete(cctx, genKeys[i])
		}
		cancel()
		c.breaker.record(err)
		if err != nil {
			// A stored entry then turns into a miss when the generation
			// expires; an unstored one's generation expires on its own.
			c.log.error("hoard: setting a new generation's lifetime failed; it expires within seconds", err, keyAttr(genKeys[i]))
			return
		}
	}
}

// --- provider API ----------------------------------------------------------

// providerKeys are the keys a provider value is read with: the value, the
// namespace epoch and the key's own generation.
func (c *Cache) providerKeys(key string) []string {
	entry := c.entryKey(key)
	return []string{entry, c.epochFor(entry), c.genKey(key)}
}

// Get returns the value stored under key. found is false for an absent,
// expired, cleared or invalidated key; err reports a store failure. The
// returned slice is the caller's to keep.
func (c *Cache) Get(ctx context.Context, key string) (value []byte, found bool, err error) {
	if c.disabled {
		return nil, false, nil
	}
	if err := c.checkKey(key); err != nil {
		return nil, false, err
	}
	if !c.usable(ctx) {
		return nil, false, ErrUnavailable
	}
	vals, err := c.getMulti(ctx, c.providerKeys(key))
	if err != nil {
		return nil, false, err
	}
	v, ok := decodeCurrentRaw(vals)
	if !ok {
		return nil, false, nil
	}
	return append(make([]byte, 0, len(v)), v...), true, nil
}

// decodeCurrentRaw returns the payload of vals[0] if it is a raw envelope
// whose generations equal vals[1:].
func decodeCurrentRaw(vals [][]byte) ([]byte, bool) {
	if vals[0] == nil {
		return nil, false
	}
	e, err := decodeEntry(vals[0], kindRaw)
	if err != nil || !e.current(vals[1:]) {
		return nil, false
	}
	return e.body, true
}

// Set stores value under key for ttl (0 means DefaultTTL; negative is
// ErrInvalidTTL). The value and its TTL are written in one atomic call.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if c.disabled {
		return nil
	}
	if err := c.checkKey(key); err != nil {
		return err
	}
	ttl, err := c.ttl(ttl)
	if err != nil {
		return err
	}
	if !c.usable(ctx) {
		return ErrUnavailable
	}
	keys := c.providerKeys(key)
	gens, err := c.getMulti(ctx, keys[1:])
	if err != nil {
		return err
	}
	if _, ok := c.ensureGenerations(ctx, keys[1:], gens, c.generationTTL()); !ok {
		return ErrUnavailable
	}
	return c.set(ctx, keys[0], encodeRaw(gens, time.Now(), ttl, value), ttl)
}

// ttl resolves a provider TTL (0 = DefaultTTL) and notes it, so that the
// generations of the value outlive it.
func (c *Cache) ttl(ttl time.Duration) (time.Duration, error) {
	switch {
	case ttl < 0:
		return 0, fmt.Errorf("%w: got %v", ErrInvalidTTL, ttl)
	case ttl == 0:
		return c.cfg.DefaultTTL, nil
	}
	c.noteTTL(ttl)
	return ttl, nil
}

// Delete removes the given keys. Absent keys are not an error.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	if c.disabled || len(keys) == 0 {
		return nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		if err := c.checkKey(k); err != nil {
			return err
		}
		full[i] = c.entryKey(k)
	}
	err := c.store.Delete(ctx, full...)
	c.breaker.record(err)
	return err
}

// DeletePattern removes every key of this cache matching the glob pattern
// (Redis syntax: * ? [abc], backslash escapes) and returns how many. Unlike
// upstream, the pattern is used as given: "user:1" matches only "user:1", not
// "user:10". It walks the keyspace (on Redis, a SCAN of every master), so it
// is meant for maintenance; routes invalidate by generation instead. On
// Memcached it returns ErrPatternNotSupported.
func (c *Cache) DeletePattern(ctx context.Context, pattern string) (int, error) {
	if c.disabled {
		return 0, nil
	}
	if pattern == "" {
		return 0, errors.New("hoard: empty pattern; use \"*\" to match every key of the cache, or Clear")
	}
	if !c.store.SupportsPatterns() {
		return 0, ErrPatternNotSupported
	}
	n, err := c.store.DeletePattern(ctx, glob.Escape(c.ns)+pattern)
	c.breaker.record(err)
	return n, err
}

// Exists reports whether key holds a current value.
func (c *Cache) Exists(ctx context.Context, key string) (bool, error) {
	if c.disabled {
		return false, nil
	}
	if err := c.checkKey(key); err != nil {
		return false, err
	}
	if !c.usable(ctx) {
		return false, ErrUnavailable
	}
	vals, err := c.getMulti(ctx, c.providerKeys(key))
	if err != nil {
		return false, err
	}
	_, ok := decodeCurrentRaw(vals)
	return ok, nil
}

// Clear makes every value of this cache (its CACHE_KEY_PREFIX namespace) a
// miss by deleting the namespace's epoch: one write, on every store (on a
// Sharded store, one per shard: the copy of a shard that is down is
// replayed later, and until then the reads of that shard are served
// uncached). It never flushes the server, so other applications' keys are untouched. On
// stores that can walk keys, and when the cache has a KeyPrefix, the stale
// values are also deleted to free memory; elsewhere they expire by TTL.
func (c *Cache) Clear(ctx context.Context) error {
	if c.disabled {
		return nil
	}
	if err := c.invalidate(ctx, c.epochKeys); err != nil {
		return err
	}
	if c.ns != "" && c.store.SupportsPatterns() {
		if _, err := c.store.DeletePattern(ctx, glob.Escape(c.ns)+"*"); err != nil {
			c.log.error("hoard: Clear deleted the epoch but could not delete old values; they will expire", err)
		}
	}
	return nil
}

// Ping checks that the store answers.
func (c *Cache) Ping(ctx context.Context) error {
	if c.disabled {
		return nil
	}
	err := c.store.Ping(ctx)
	c.breaker.record(err)
	return err
}

// Invalidate does what a write route does, for code outside routes: for each
// name it makes every value recorded under that namespace a miss. A name is a
// resource ("widget:42": the key itself, and every query and caller variant a
// route cached for it) or a pattern that a route declared ("alice_posts:*"),
// formatted the way a route formats it (hoard.Key escapes ids). Values are escaped by Key;
// a name passed here is used as is. If the store is down the invalidation is
// kept and replayed before the cache serves hits again, and the error is
// returned.
func (c *Cache) Invalidate(ctx context.Context, names ...string) error {
	if c.disabled || len(names) == 0 {
		return nil
	}
	keys := make([]string, 0, 2*len(names))
	for _, n := range names {
		if err := c.checkKey(n); err != nil {
			return err
		}
		keys = append(keys, c.genKey(n))
		if !strings.ContainsAny(n, "*?[") {
			keys = append(keys, c.entryKey(n))
		}
	}
	return c.invalidate(ctx, keys)
}

// SetJSON stores v encoded as JSON. Strings, booleans, numbers and null
// round-trip through GetJSON with their types (upstream stored some as bare
// text).
func (c *Cache) SetJSON(ctx context.Context, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("hoard: SetJSON %q: %w", key, err)
	}
	return c.Set(ctx, key, b, ttl)
}

// GetJSON reads a value stored by SetJSON into a T. A value that does not
// decode into T is an error (found is true), so a type change between
// releases is visible rather than silently zero.
func GetJSON[T any](ctx context.Context, c *Cache, key string) (v T, found bool, err error) {
	b, found, err := c.Get(ctx, key)
	if err != nil || !found {
		return v, found, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, true, fmt.Errorf("hoard: GetJSON %q into %T: %w", key, v, err)
	}
	return v, true, nil
}

// Fetch is cache-aside get-or-load: it returns the value under key, or runs
// load, stores its result for ttl (0 = DefaultTTL) and returns it. Concurrent
// Fetches of one missing key in this process run load once and share its
// result. Fetch fails open: if the store is down it returns load's result
// and the store's error is only logged. A load error is returned and nothing
// is stored. A value loaded before a concurrent Invalidate of key is not
// served after it.
func (c *Cache) Fetch(ctx context.Context, key string, ttl time.Duration, load func(ctx context.Context) ([]byte, error)) ([]byte, error) {
	if c.disabled {
		return load(ctx)
	}
	if err := c.checkKey(key); err != nil {
		return nil, err
	}
	ttl, err := c.ttl(ttl)
	if err != nil {
		return nil, err
	}
	if !c.usable(ctx) {
		return load(ctx)
	}
	keys := c.providerKeys(key)
	vals, err := c.getMulti(ctx, keys)
	if err != nil {
		if !errors.Is(err, errPending) {
			c.log.error("hoard: Fetch could not read the store; loading directly", err, keyAttr(key))
		}
		return load(ctx)
	}
	if v, ok := decodeCurrentRaw(vals); ok {
		return append(make([]byte, 0, len(v)), v...), nil
	}
	gens := vals[1:]
	created, ok := c.ensureGenerations(ctx, keys[1:], gens, provisionalGenerationTTL)
	if !ok {
		return load(ctx)
	}
	// Keyed by the generations seen, so that a Fetch that starts after an
	// Invalidate never joins a load that started before it.
	flight := string(appendFlightKey(make([]byte, 0, len(key)+24), key, gens))
	v, err, _ := c.flights.Do(flight, func() (any, error) {
		b, err := load(ctx)
		if err != nil {
			return nil, err
		}
		if err := c.set(ctx, keys[0], encodeRaw(gens, time.Now(), ttl, b), ttl); err != nil {
			c.log.error("hoard: Fetch could not store the loaded value", err, keyAttr(key))
			return fetched{b, false}, nil
		}
		return fetched{b, true}, nil
	})
	f, _ := v.(fetched)
	c.settleGenerations(ctx, keys[1:], created, f.stored)
	if err != nil {
		return nil, err
	}
	return append(make([]byte, 0, len(f.value)), f.value...), nil
}

// fetched is the result a Fetch load shares with the Fetches that waited
// for it: the value, and whether it was stored.
type fetched struct {
	value  []byte
	stored bool
}

// appendFlightKey builds a singleflight key from a cache key and the
// generations it was read under.
func appendFlightKey(dst []byte, key string, gens [][]byte) []byte {
	dst = append(dst, key...)
	for _, g := range gens {
		dst = append(dst, 0)
		dst = append(dst, g...)
	}
	return dst
}

// FetchJSON is Fetch for a JSON-encoded T.
func FetchJSON[T any](ctx context.Context, c *Cache, key string, ttl time.Duration, load func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	b, err := c.Fetch(ctx, key, ttl, func(ctx context.Context) ([]byte, error) {
		v, err := load(ctx)
		if err != nil {
			return nil, err
		}
		return json.Marshal(v)
	})
	if err != nil {
		return zero, err
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return zero, fmt.Errorf("hoard: FetchJSON %q into %T: %w", key, v, err)
	}
	return v, nil
}
