// Package memory is hoard's embedded default store: an in-process cache
// bounded by bytes, with a TTL per entry, built on otter
// (github.com/maypok86/otter/v2, W-TinyLFU eviction).
//
// It implements hoard.Store. Nothing leaves the process, so it suits a
// single instance or entries that may differ between instances; use the
// redis or memcached store to share a cache. Values are kept as given (one
// copy made by Set and Add) and Get returns the stored slice itself, so a
// hit costs no allocation; callers must not modify returned slices, as the
// hoard.Store contract says.
//
// # Size limits
//
// Every entry weighs len(key) + len(value) + EntryOverhead bytes, and
// Options.MaxBytes bounds the total weight: otter evicts entries (the ones
// least likely to be used again first) to stay within it.
//
// Set and Add refuse an entry heavier than Options.MaxValueBytes (MaxBytes/8
// by default, and never more than MaxBytes) with an error that matches
// hoard.ErrValueTooLarge: nothing is stored, and a Set also removes the
// key's former value, so that no stale value outlives a refused overwrite.
// A hoard Cache does not count such a refusal as a store failure; only that
// key goes uncached.
//
// A nil error from Set means the entry was stored, not that it will stay:
// otter's W-TinyLFU policy admits new entries through a window of about 1%
// of MaxBytes. An entry that fits in the window stays until newer entries
// push it out; a heavier one skips it and, when the store is full, competes
// at once with the entries it would displace, and is evicted at otter's
// next maintenance unless it was used more often than they were. In a
// store with room for it, an entry of up to MaxValueBytes is stored and
// readable right after Set, however heavy.
package memory

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/glob"
)

// DefaultMaxBytes is the bound used when Options.MaxBytes is 0: 64 MiB,
// the default of CACHE_MEMORY_MAX_BYTES.
const DefaultMaxBytes = 64 << 20

// EntryOverhead is what the byte bound charges each entry on top of
// len(key)+len(value): otter's node (string and slice headers, the TTL,
// eviction-queue and timer-wheel links, deadline, weight and frequency
// fields), its hash-table slot, its share of the frequency sketch and the
// size-class rounding of the value's copy. The heap grows by about 130 to
// 140 bytes per entry beyond its key and value with otter v2.4.0 on 64-bit
// platforms (TestEntryOverhead measures it). Charging it keeps a cache of
// many tiny entries, such as generation values, within MaxBytes of real
// memory.
const EntryOverhead = 144

// DefaultMaxValueDivisor sets the default of Options.MaxValueBytes:
// MaxBytes/DefaultMaxValueDivisor, 8 MiB for the default 64 MiB.
const DefaultMaxValueDivisor = 8

// Options configures a Store. The zero value is valid: a 64 MiB cache
// whose entries weigh at most 8 MiB.
type Options struct {
	// MaxBytes bounds the weight of all entries, where an entry weighs
	// len(key) + len(value) + EntryOverhead bytes. When a write takes the
	// total over MaxBytes, otter evicts entries (least likely to be used
	// again first) until it fits. 0 means DefaultMaxBytes (64 MiB);
	// negative is an error. CACHE_MEMORY_MAX_BYTES sets it when the store
	// is built from the environment.
	MaxBytes int64

	// MaxValueBytes bounds the weight of one entry, in the unit of
	// MaxBytes: len(key) + len(value) + EntryOverhead. Set and Add of a
	// heavier entry store nothing and return an error that matches
	// hoard.ErrValueTooLarge (see "Size limits" above). 0 means
	// MaxBytes/DefaultMaxValueDivisor (MaxBytes/8: 8 MiB of the default
	// 64 MiB), so that one entry never takes more than an eighth of the
	// cache, and one at the limit fits, without evicting anything, into a
	// store up to 7/8 full: written into an empty store, it is readable
	// right after Set and stays while a few small entries are written
	// after it (a hoard Cache writes a generation and an epoch with a
	// response). A value over MaxBytes means MaxBytes; negative is an
	// error.
	MaxValueBytes int64
}

// Store is an in-process hoard.Store. It is safe for concurrent use. The
// context arguments of its methods are ignored, except that DeletePattern
// stops its walk when ctx is done: every other call finishes in
// microseconds without blocking on I/O. It implements hoard.PatternDeleter
// and hoard.SelfTimed (with a CallTimeout of 0).
type Store struct {
	c        *otter.Cache[string, item]
	maxBytes int64
	maxValue int64 // the heaviest entry Set and Add store
	closed   atomic.Bool
}

// item is what the cache holds for a key: the value and the TTL it was
// written with, from which the expiry calculator sets its deadline.
type item struct {
	value []byte
	ttl   time.Duration
}

// WithDefaults returns o with its zero fields replaced by their defaults:
// MaxBytes by DefaultMaxBytes, MaxValueBytes by MaxBytes/8; a MaxValueBytes
// over MaxBytes becomes MaxBytes. Negative fields are left as they are, for
// Validate to report.
func (o Options) WithDefaults() Options {
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxValueBytes == 0 && o.MaxBytes > 0 {
		o.MaxValueBytes = o.MaxBytes / DefaultMaxValueDivisor
	}
	if o.MaxBytes > 0 && o.MaxValueBytes > o.MaxBytes {
		o.MaxValueBytes = o.MaxBytes
	}
	return o
}

// Validate reports every field of o that New cannot use, each as a
// *hoard.FieldError, joined with errors.Join. Zero fields are valid (they
// mean the defaults).
func (o Options) Validate() error {
	var errs []error
	if o.MaxBytes < 0 {
		errs = append(errs, &hoard.FieldError{Type: "memory.Options", Field: "MaxBytes", Value: o.MaxBytes,
			Want: fmt.Sprintf("must be the most bytes the cache may hold (CACHE_MEMORY_MAX_BYTES), or 0 for the default of %d (64 MiB)", DefaultMaxBytes)})
	}
	if o.MaxValueBytes < 0 {
		errs = append(errs, &hoard.FieldError{Type: "memory.Options", Field: "MaxValueBytes", Value: o.MaxValueBytes,
			Want: fmt.Sprintf("must be the most bytes one entry may weigh (key + value + %d), or 0 for the default of MaxBytes/%d", EntryOverhead, DefaultMaxValueDivisor)})
	}
	return errors.Join(errs...)
}

var (
	_ hoard.Store          = (*Store)(nil)
	_ hoard.PatternDeleter = (*Store)(nil)
	_ hoard.SelfTimed      = (*Store)(nil)
)

// New returns an empty Store bounded by opts.MaxBytes.
func New(opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.WithDefaults()
	maxBytes, maxValue := opts.MaxBytes, opts.MaxValueBytes
	c, err := otter.New(&otter.Options[string, item]{
		MaximumWeight: uint64(maxBytes),
		Weigher:       weigh,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, item]) time.Duration {
			return e.Value.ttl
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	return &Store{c: c, maxBytes: maxBytes, maxValue: maxValue}, nil
}

// weight is the number of bytes an entry counts for against MaxBytes.
func weight(key string, value []byte) int64 {
	return int64(len(key)) + int64(len(value)) + EntryOverhead
}

// tooHeavy returns the error of Set or Add (op) for an entry heavier than
// MaxValueBytes, or nil.
func (s *Store) tooHeavy(op, key string, value []byte) error {
	w := weight(key, value)
	if w <= s.maxValue {
		return nil
	}
	return fmt.Errorf("memory: %s: the entry weighs %d bytes (a %d-byte key, a %d-byte value and %d of overhead), over MaxValueBytes (%d of MaxBytes %d): %w; raise MaxBytes (CACHE_MEMORY_MAX_BYTES) or MaxValueBytes, or cache smaller values",
		op, w, len(key), len(value), EntryOverhead, s.maxValue, s.maxBytes, hoard.ErrValueTooLarge)
}

func weigh(key string, it item) uint32 {
	return uint32(min(weight(key, it.value), math.MaxUint32))
}

// clone copies value into a new slice, non-nil even when value is empty or
// nil, so that an empty value reads back as present.
func clone(value []byte) []byte {
	if len(value) == 0 {
		return []byte{}
	}
	b := make([]byte, len(value))
	copy(b, value)
	return b
}

// Get returns the value stored under key. The slice is the store's own
// copy: read it, never modify it. An absent or expired key is a miss with
// a nil error.
func (s *Store) Get(_ context.Context, key string) (value []byte, found bool, err error) {
	if s.closed.Load() {
		return nil, false, hoard.ErrClosed
	}
	it, ok := s.c.GetIfPresent(key)
	if !ok {
		return nil, false, nil
	}
	return it.value, true, nil
}

// GetMulti returns the values of keys in order: nil for an absent key, a
// non-nil empty slice for a present empty value. Like Get, it returns the
// stored slices themselves; the result slice is its only allocation.
func (s *Store) GetMulti(_ context.Context, keys []string) ([][]byte, error) {
	if s.closed.Load() {
		return nil, hoard.ErrClosed
	}
	values := make([][]byte, len(keys))
	for i, k := range keys {
		if it, ok := s.c.GetIfPresent(k); ok {
			values[i] = it.value
		}
	}
	return values, nil
}

// Set stores a copy of value under key for ttl, replacing any value and
// TTL the key had. ttl must be positive. An entry heavier than
// MaxValueBytes is not stored: the key's former value is removed, and the
// error matches hoard.ErrValueTooLarge.
func (s *Store) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if s.closed.Load() {
		return hoard.ErrClosed
	}
	if ttl <= 0 {
		return hoard.ErrInvalidTTL
	}
	if err := s.tooHeavy("set", key, value); err != nil {
		s.c.Invalidate(key)
		return err
	}
	s.c.Set(key, item{value: clone(value), ttl: ttl})
	return nil
}

// Add stores a copy of value under key for ttl only if key is absent (an
// expired entry is absent), atomically: of concurrent Adds of one key,
// exactly one reports added. An existing entry keeps its value and TTL.
// ttl must be positive. An entry heavier than MaxValueBytes is not stored
// (an existing one is left as it is), and the error matches
// hoard.ErrValueTooLarge.
func (s *Store) Add(_ context.Context, key string, value []byte, ttl time.Duration) (added bool, err error) {
	if s.closed.Load() {
		return false, hoard.ErrClosed
	}
	if ttl <= 0 {
		return false, hoard.ErrInvalidTTL
	}
	if err := s.tooHeavy("add", key, value); err != nil {
		return false, err
	}
	_, added = s.c.SetIfAbsent(key, item{value: clone(value), ttl: ttl})
	return added, nil
}

// Touch sets the TTL of key to ttl, keeping its value, and reports whether
// key was present (and not expired). ttl must be positive.
func (s *Store) Touch(_ context.Context, key string, ttl time.Duration) (found bool, err error) {
	if s.closed.Load() {
		return false, hoard.ErrClosed
	}
	if ttl <= 0 {
		return false, hoard.ErrInvalidTTL
	}
	_, found = s.c.ComputeIfPresent(key, func(old item) (item, otter.ComputeOp) {
		return item{value: old.value, ttl: ttl}, otter.WriteOp
	})
	return found, nil
}

// Delete removes keys; absent keys are ignored.
func (s *Store) Delete(_ context.Context, keys ...string) error {
	if s.closed.Load() {
		return hoard.ErrClosed
	}
	for _, k := range keys {
		s.c.Invalidate(k)
	}
	return nil
}

// DeletePattern removes every key that matches the Redis glob pattern
// (see package internal/glob: the keys Redis KEYS would return) and
// returns how many it removed. It walks all entries, so it costs time in
// proportion to the number of keys; keys written during the walk may
// survive it. When ctx is done the walk stops and DeletePattern returns
// the count so far with ctx's error.
func (s *Store) DeletePattern(ctx context.Context, pattern string) (deleted int, err error) {
	if s.closed.Load() {
		return 0, hoard.ErrClosed
	}
	prefix := glob.LiteralPrefix(pattern)
	walked := 0
	for k := range s.c.Keys() {
		if walked++; walked%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return deleted, err
			}
		}
		if len(k) < len(prefix) || k[:len(prefix)] != prefix || !glob.Match(pattern, k) {
			continue
		}
		if _, ok := s.c.Invalidate(k); ok {
			deleted++
		}
	}
	return deleted, nil
}

// Exists reports whether key is present (and not expired). Unlike Get it
// does not count as a use of the entry for eviction.
func (s *Store) Exists(_ context.Context, key string) (bool, error) {
	if s.closed.Load() {
		return false, hoard.ErrClosed
	}
	_, ok := s.c.GetEntryQuietly(key)
	return ok, nil
}

// CallTimeout returns 0: no call of the store waits on I/O, so a hoard
// Cache puts no deadline on its calls.
func (s *Store) CallTimeout() time.Duration { return 0 }

// ProcessLocal reports that the store lives in this process only
// (hoard.ProcessLocal): a Cache over it takes no miss leases.
func (s *Store) ProcessLocal() bool { return true }

// Ping returns nil, or ErrClosed after Close.
func (s *Store) Ping(context.Context) error {
	if s.closed.Load() {
		return hoard.ErrClosed
	}
	return nil
}

// Close drops every entry and stops otter's clean-up goroutine. Later
// calls return ErrClosed; Close itself may be called again and returns nil.
func (s *Store) Close() error {
	if s.closed.CompareAndSwap(false, true) {
		s.c.InvalidateAll()
		s.c.StopAllGoroutines()
	}
	return nil
}

// Len returns the number of entries held. It first applies the writes,
// evictions and expirations otter has buffered, under its maintenance
// lock: it is meant for tests and statistics, not for every request.
func (s *Store) Len() int {
	s.c.CleanUp()
	return s.c.EstimatedSize()
}

// WeightedSize returns the bytes the entries count for against MaxBytes
// (see Options.MaxBytes). Like Len, it first applies buffered maintenance,
// so that without concurrent writes it is exact and at most MaxBytes.
func (s *Store) WeightedSize() int64 {
	s.c.CleanUp()
	return int64(s.c.WeightedSize())
}

// MaxBytes returns the bound on WeightedSize that the store was built with.
func (s *Store) MaxBytes() int64 { return s.maxBytes }

// MaxValueBytes returns the weight of the heaviest entry Set and Add store
// (Options.MaxValueBytes, or its default).
func (s *Store) MaxValueBytes() int64 { return s.maxValue }
