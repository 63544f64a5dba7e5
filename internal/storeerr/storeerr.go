// Package storeerr holds the sentinel errors shared by package hoard and the
// store packages. It is a leaf so that the store packages need not import
// hoard (which imports them to build the configured store); hoard re-exports
// each value, so errors.Is works with either name.
package storeerr

import (
	"errors"
	"fmt"
)

// ErrPatternNotSupported is returned by DeletePattern on stores that cannot
// walk their keyspace (Memcached).
var ErrPatternNotSupported = errors.New("hoard: this store cannot delete by pattern (Memcached has no key walk); delete keys by name or invalidate by generation with Cache.Invalidate")

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("hoard: store is closed")

// ErrInvalidTTL is returned by Set and Add for a TTL that is not positive.
var ErrInvalidTTL = errors.New("hoard: TTL must be positive (0 means the default TTL only at the Cache level)")

// ErrServerDown is returned (wrapped) by a store on a pool of servers for a
// call it skipped at once because the server it needs is marked down (the
// memcached store's ErrServerDown is this value). Such a call cost nothing,
// and the pool's other servers may be fine, so a Cache's circuit breaker
// does not count it.
var ErrServerDown = errors.New("memcached: server marked down")

// ErrRefused is wrapped by a store's error for one value it would not take
// while the server itself is healthy: too large for it, or no memory left
// for it (Redis's OOM under maxmemory with noeviction, memcached's "out of
// memory storing object"). Such a refusal is not a store failure: a Cache's
// circuit breaker does not count it, and only that key goes uncached.
var ErrRefused = errors.New("hoard: the store refused this value")

// ErrValueTooLarge is the ErrRefused of a value over the store's size limit.
var ErrValueTooLarge = fmt.Errorf("%w: value too large for the store", ErrRefused)
