package hoard

import (
	"errors"
	"fmt"
)

// ErrUnavailable is returned by the provider API while the circuit breaker
// skips a store that failed repeatedly. The route middleware never returns it:
// it serves the handler's answer instead (fail-open).
var ErrUnavailable = errors.New("hoard: cache store unavailable after repeated failures; calls are skipped for a moment (check the store server and CACHE_TIMEOUT)")

// errPending is the read's answer for keys that include one whose
// invalidation failed and has not been replayed yet.
var errPending = fmt.Errorf("%w: an invalidation of this namespace failed and is waiting to be replayed; it is served uncached until the store takes it", ErrUnavailable)

// ErrReservedKey is returned for a key that starts with '#', the prefix hoard
// keeps for its generation keys.
var ErrReservedKey = errors.New("hoard: keys starting with '#' are reserved for hoard's generation keys; choose another key")

// ErrEmptyKey is returned for an empty key.
var ErrEmptyKey = errors.New("hoard: empty key")

// ErrKeyTooLong is returned for a key longer than Config.MaxKeyBytes
// (CACHE_MAX_KEY_BYTES). Routes serve such requests uncached instead.
var ErrKeyTooLong = errors.New("hoard: key longer than CACHE_MAX_KEY_BYTES (Config.MaxKeyBytes); use a shorter key, such as a hash of the long one, or raise the limit")

// Sentinel errors of the Store contract, usable with errors.Is. The store
// packages (memory, redis, memcached) return these values, wrapped.
var (
	// ErrPatternNotSupported is returned by Cache.DeletePattern on a store
	// that cannot walk its keys (it is not a PatternDeleter), such as
	// Memcached.
	ErrPatternNotSupported = errors.New("hoard: this store cannot delete by pattern (Memcached has no key walk); delete keys by name or invalidate by generation with Cache.Invalidate")
	// ErrClosed is returned by a store or Cache used after Close.
	ErrClosed = errors.New("hoard: store is closed")
	// ErrInvalidTTL is returned by a store's Set, Add and Touch for a TTL
	// that is not positive.
	ErrInvalidTTL = errors.New("hoard: TTL must be positive (0 means the default TTL only at the Cache level)")
	// ErrRefused is wrapped by a store's error for one value it would not
	// take while the server itself is healthy (too large for it, or no
	// memory left for it). Only that key goes uncached: a Cache's circuit
	// breaker does not count it, and other keys keep hitting.
	ErrRefused = errors.New("hoard: the store refused this value")
	// ErrValueTooLarge is the ErrRefused of a value over the store's size
	// limit (each store documents its own, as Options.MaxValueBytes).
	ErrValueTooLarge = fmt.Errorf("%w: value too large for the store", ErrRefused)
	// ErrServerDown is wrapped by the error of a store on a pool of servers
	// for a call it skipped at once because the server it needs is marked
	// down (memcached.ErrServerDown is this value). Such a call cost
	// nothing, and the pool's other servers may be fine, so a Cache's
	// circuit breaker does not count it.
	ErrServerDown = errors.New("memcached: server marked down")
)
