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
