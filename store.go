package hoard

import (
	"context"
	"time"
)

// Store is the contract between a Cache and the server that holds its bytes.
// The memory, redis and memcached packages implement it, and package storetest
// holds the suite every implementation must pass.
//
// Keys are opaque strings chosen by the Cache (already namespaced and escaped).
// Values are opaque bytes that must round-trip exactly, including empty values.
// A store may keep the slices it returns, and never modifies one after
// returning it: callers treat them as read-only (the route middleware replays
// header strings straight out of them). A store copies the value it is given
// in Set and Add if it keeps it.
//
// Every call takes a context; network stores also bound each call by their own
// timeout so that an unreachable server yields an error promptly, never a hang.
//
// What only some stores can do is an optional interface, declared below and
// detected by type assertion: PatternDeleter (deleting by glob), SelfTimed
// (bounding every call itself) and Sharded (spreading keys over servers by
// hash tag). A store that cannot do something does not implement it; a
// wrapper of a Store implements one only when the store it wraps does.
type Store interface {
	// Get returns the value of key. An absent (or expired) key is the only
	// miss: found is false and err is nil.
	Get(ctx context.Context, key string) (value []byte, found bool, err error)

	// GetMulti returns one value per key, in the order of keys, in as few
	// round trips as the store allows. values[i] is nil when keys[i] is
	// absent; a present empty value is a non-nil empty slice.
	GetMulti(ctx context.Context, keys []string) (values [][]byte, err error)

	// Set stores value under key with the given TTL, atomically: no reader
	// ever sees the key without its TTL. ttl must be positive.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error

	// Add stores value under key only if key is absent, atomically across
	// all clients of the store. added reports whether this call stored it.
	Add(ctx context.Context, key string, value []byte, ttl time.Duration) (added bool, err error)

	// Touch sets the TTL of key to ttl without changing its value, and
	// reports whether key was present. ttl must be positive. A Cache
	// creates a generation for a read with a short TTL and touches it only
	// once a response that depends on it is stored, so that requests whose
	// answers are never stored leave nothing lasting behind.
	Touch(ctx context.Context, key string, ttl time.Duration) (found bool, err error)

	// Delete removes the given keys; absent keys are not an error.
	Delete(ctx context.Context, keys ...string) error

	// Exists reports whether key is present.
	Exists(ctx context.Context, key string) (bool, error)

	// Ping checks that the store answers.
	Ping(ctx context.Context) error

	// Close releases the store's connections. Calls after Close fail.
	Close() error
}

// Sharded is an optional interface of a Store that spreads keys over
// several servers (shards) and honours hash tags: when a key holds a '{'
// followed later by a '}' with at least one byte between them, only the
// bytes between the first '{' and the next '}' choose its shard (Redis
// Cluster's rule); other keys are placed by the whole key. The memcached
// store implements it.
//
// On a Sharded store with more than one shard, a Cache lays out its keys so
// that a read touches exactly one server: a resource's entries (every query
// and caller variant) and its generation carry the resource as their hash
// tag, and the keys every read of a shard needs (the namespace epoch, the
// generations of registered patterns) have one copy per shard; a read
// checks the copies on its entry's shard, and Clear and writes delete every
// copy. So no single server holds a key that every read needs (see
// keyspace.go). Other stores keep one copy and untagged keys.
//
// Writes made under one layout do not invalidate entries stored under the
// other, and, as with every key of a memcached pool, a server taken out of
// the pool's configuration misses the invalidations made meanwhile: when a
// pool changes between one server and several, or a server is put back
// with its old data, flush the servers it concerns. Likewise, processes
// that share a pool must use the same layout: when upgrading from a hoard
// without it, give the new processes a new KeyPrefix (or flush the pool).
type Sharded interface {
	// ShardCount returns the number of shards (servers).
	ShardCount() int
	// ShardOf returns the shard, from 0 to ShardCount()-1, that holds key.
	ShardOf(key string) int
	// ShardKey returns base followed by a hash tag that places the key on
	// shard. base must not contain '{'.
	ShardKey(base string, shard int) string
}

// PatternDeleter is an optional interface of a Store that can walk its keys
// and so delete them by pattern. The memory and redis stores implement it;
// the memcached store cannot list its keys and does not.
//
// On a store without it, Cache.DeletePattern returns ErrPatternNotSupported
// and Cache.Clear leaves the stale values of the namespace to expire by TTL
// (the namespace's epoch, which Clear deletes, is what makes them misses).
// A store that implements it keeps the plain (untagged) key layout even if
// it is also Sharded, so that its globs match the keys a Cache writes.
type PatternDeleter interface {
	// DeletePattern removes every key matching the glob pattern (Redis
	// syntax: * ? [abc] [^a] [a-z], backslash escapes) and returns how many
	// it removed. A pattern without metacharacters names one key.
	DeletePattern(ctx context.Context, pattern string) (deleted int, err error)
}

// Describer is an optional interface of a Store that can say what it
// holds, for operators (cmd/hoard stats). The redis and memcached stores
// implement it.
type Describer interface {
	// Describe counts the keys under prefix and the bytes they take, where
	// the store can tell (-1 where it cannot: Memcached cannot list its
	// keys), and returns the servers' own figures.
	Describe(ctx context.Context, prefix string) (StoreDescription, error)
}

// StoreDescription is what a Describer reports.
type StoreDescription struct {
	// Keys and Bytes are the keys under the prefix asked and their size in
	// the store; -1 when the store cannot tell.
	Keys, Bytes int64
	// Servers holds each server's own figures (Redis INFO fields,
	// Memcached stats), by server address, then by the server's name for
	// the figure.
	Servers map[string]map[string]string
}

// ProcessLocal is an optional interface of a Store whose data lives in
// this process only (the memory store): no other instance reads or writes
// it, so a Cache skips what only matters across instances (the miss lease
// of Config.MissWait, whose waits singleflight already gives a process).
// A wrapper of such a store that is shared some other way must not
// forward it.
type ProcessLocal interface {
	// ProcessLocal reports whether the store is local to this process.
	ProcessLocal() bool
}

// SelfTimed is an optional interface of a Store that bounds every call
// itself, so that an unreachable or frozen server yields an error within
// that bound whatever the call's context. A Cache over a SelfTimed store
// puts no deadline of its own on the contexts of its calls; a Store without
// it gets Config.Timeout on each call's context. The redis and memcached
// stores (bounded by their Options.Timeout) and the memory store implement
// it.
type SelfTimed interface {
	// CallTimeout returns the longest a call of the store waits on its
	// server before it fails. 0 means the store never blocks: no call waits
	// on I/O (the memory store).
	CallTimeout() time.Duration
}

// isSelfTimed reports whether store bounds every call itself (implements
// SelfTimed), so that the Cache need not put a deadline on each call.
func isSelfTimed(store Store) bool {
	_, ok := store.(SelfTimed)
	return ok
}
