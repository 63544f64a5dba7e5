package hoard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/hoardcache/hoard/internal/keys"
)

// Cache is the provider API (Get, Set, Fetch, Invalidate, Clear...) and the
// home of the route middleware. It is safe for concurrent use.
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
	store    Store
	cfg      Config
	disabled bool
	keys     keyspace
	maxKey   int // Config.MaxKeyBytes

	// calls is the path of every store call; replayCalls that of the
	// background replay (replay.go). Both are admitted by the breaker.
	calls, replayCalls storePath
	breaker            *breaker
	quietFor           time.Duration // see recovery.go

	// longestTTL (nanoseconds) is the longest TTL of an entry this Cache
	// stores: DefaultTTL, every route's TTL, every provider TTL used. A
	// generation an entry depends on lives generationTTL, twice that: about
	// as long as the longest-lived entry that can depend on it.
	longestTTL atomic.Int64

	pending     *pendingSet
	pendingFile *pendingFile // nil without Config.PendingFile
	log         rateLimitedLog
	// flights share one handler run among concurrent route misses;
	// fetches one load among concurrent Fetch misses. Two groups, since a
	// route key and a provider key can be equal.
	flights, fetches singleflight.Group
	// revalidating holds the entry keys a background revalidation is
	// running for (stale.go).
	revalidating sync.Map
	// leases says whether misses take a lease (misswait.go): MissWait on,
	// and a store other instances share.
	leases  bool
	stats   counters
	metrics *metrics

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
	breakerThreshold = 5
	breakerCooldown  = time.Second
)

// New returns a Cache over store, configured by cfg (zero values are the
// defaults; only the cache-wide fields are used: Disabled, KeyPrefix,
// DefaultTTL, Timeout, MaxKeyBytes, Logger). The Cache owns the store:
// Close closes it. With cfg.Disabled the store may be nil and is never
// called.
func New(store Store, cfg Config) (*Cache, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil && !cfg.Disabled {
		return nil, errors.New("hoard: New needs a Store (memory.New, redis.New, memcached.New) or use stores.Open to build the configured one")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	c := &Cache{
		store:    store,
		cfg:      cfg,
		disabled: cfg.Disabled,
		maxKey:   cfg.MaxKeyBytes,
		breaker:  newBreaker(breakerThreshold, breakerCooldown),
		log:      rateLimitedLog{logger: logger.With(slog.String("component", "hoard")), interval: time.Second},
	}
	c.longestTTL.Store(int64(cfg.DefaultTTL))
	local, _ := store.(ProcessLocal)
	c.leases = cfg.MissWait > 0 && (local == nil || !local.ProcessLocal())
	c.bgCtx, c.bgCancel = context.WithCancel(context.Background())
	c.keys = keyspace{ns: cfg.KeyPrefix, epochs: []string{cfg.KeyPrefix + epochName}}
	if !cfg.Disabled {
		c.keys = newKeyspace(cfg.KeyPrefix, store)
	}
	c.pending = newPendingSet(c.keys.epochs)
	if cfg.PendingFile != "" && !cfg.Disabled {
		pf, keys, err := openPendingFile(cfg.PendingFile)
		if err != nil {
			return nil, err
		}
		c.pendingFile = pf
		c.pending.add(keys) // replayed by replayLoop once the store answers
	}
	// After every way New can fail: the gauges' callback registered here
	// is unregistered by Close.
	c.metrics = newMetrics(cfg.MeterProvider, c)
	timeout := cfg.Timeout
	if isSelfTimed(store) {
		timeout = 0
	}
	c.calls = storePath{store: store, timeout: timeout, admit: c.breaker.allow, record: c.breaker.record, metrics: c.metrics}
	// The background replay's failures reach the breaker at most once per
	// replayInterval (replayRecord), so it runs only while the breaker is
	// closed: it never takes the half-open probe, whose failure must reopen
	// the breaker. A request's probe, or replayLoop's, closes it when the
	// store is back.
	c.replayCalls = storePath{store: store, timeout: timeout, admit: c.breaker.closed, record: c.replayRecord, metrics: c.metrics}
	callTimeout := cfg.Timeout
	if st, ok := store.(SelfTimed); ok {
		callTimeout = max(callTimeout, st.CallTimeout())
	}
	c.quietFor = quietPeriod(callTimeout)
	if !cfg.Disabled {
		c.bg.Add(1)
		go c.replayLoop()
	}
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
		c.metrics.close()
		if c.store != nil {
			c.closeErr = c.store.Close()
		}
		c.pendingFile.close()
	})
	return c.closeErr
}

// checkKey validates a provider key.
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

// read reads keys in one round trip. If any of them is pending (its
// invalidation failed and is not replayed yet) it first deletes those,
// within one Timeout, and if that fails it returns errPending without
// reading: the entry it would check could be one the failed invalidation
// was meant to make stale. The check comes before the read, so that a
// replay that ends while the read runs cannot let the read use a
// generation from before the replay.
func (c *Cache) read(ctx context.Context, keys []string) ([][]byte, error) {
	c.replayIfDue()
	if c.pending.blocks(keys) && !c.replayOwn(ctx, keys) {
		return nil, errPending
	}
	return c.calls.getMulti(ctx, keys)
}

// set stores one value. A value the store refuses (ErrRefused) is counted,
// and the key's former value is deleted, as every store's refusal does not
// (a store that checks the size itself never calls its server): a refused
// provider Set must not leave the old value readable.
func (c *Cache) set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	err := c.calls.set(ctx, key, val, ttl)
	if err == nil {
		c.metrics.entrySize.Record(ctx, int64(len(val)))
	}
	if errors.Is(err, ErrRefused) {
		c.stats.valuesRefused.Add(1)
		c.calls.delete(ctx, key)
	}
	return err
}

// appendFlightKey builds a singleflight key from a cache key and the
// generations it was read under, so that a read that starts after a write
// never joins a load that started before it.
func appendFlightKey(dst []byte, key string, gens [][]byte) []byte {
	dst = append(dst, key...)
	for _, g := range gens {
		dst = append(dst, 0)
		dst = append(dst, g...)
	}
	return dst
}
