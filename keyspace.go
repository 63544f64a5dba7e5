package hoard

import (
	"strconv"
	"strings"
)

// keyspace lays out every key a Cache writes or reads in its namespace
// (Config.KeyPrefix, ns below); nothing else in the package formats a key.
// Names are what routes and the provider API produce: a resource
// ("widget:42", a provider key), a variant of it (":q=…", ":u=…") and
// patterns ("alice_posts:*"), all already escaped.
//
//	                      one server or Redis          a Sharded store (memcached pool)
//	entry                 ns + resource + variant      ns{resource}variant
//	resource generation   ns#g:resource                ns#g:{resource}
//	pattern generation    ns#g:pattern                 ns#g:pattern{tag of shard i}, one per shard
//	namespace epoch       ns#epoch                     ns#epoch{tag of shard i}, one per shard
//	revalidation lease    ns#l: + entry after ns       the same (the entry's hash tag: its server)
//	miss lease            ns#m:<generations hash>: + entry after ns, the same
//
// On a Sharded store a resource is the hash tag of its entries and its
// generation, so they share a server, and the keys every read needs (the
// epoch, pattern generations) have one copy per server: a read touches
// exactly one server, however many patterns cover its key, and one dead
// server costs only the keys it held. A write deletes every copy. Redis
// Cluster, not Sharded to hoard, keeps the plain layout: a read's keys
// span slots, read in one round trip of parallel MGETs, one per node.
type keyspace struct {
	ns string
	// sharded is the store when the layout uses hash tags: a Sharded
	// store of more than one shard that is not a PatternDeleter (whose
	// globs must match the plain layout), under a prefix without '{'
	// (which would start every key's hash tag). Otherwise nil.
	sharded Sharded
	// epochs holds the epoch key of each shard; one when not sharded.
	epochs []string
}

// genPrefix marks hoard's own keys (generations) inside the namespace. Key
// templates and provider keys may not start with '#', so a user key can
// never collide with one.
const (
	genPrefix   = "#g:"
	epochName   = "#epoch"
	leasePrefix = "#l:"
	missPrefix  = "#m:"
)

func newKeyspace(ns string, store Store) keyspace {
	k := keyspace{ns: ns, epochs: []string{ns + epochName}}
	sh, ok := store.(Sharded)
	_, walks := store.(PatternDeleter)
	if !ok || strings.Contains(ns, "{") || walks || sh.ShardCount() < 2 {
		return k
	}
	k.sharded = sh
	k.epochs = make([]string, sh.ShardCount())
	for i := range k.epochs {
		k.epochs[i] = sh.ShardKey(ns+epochName, i)
	}
	return k
}

// appendEntry appends the store key of the entry of resource's variant
// (empty for a provider key or a resource's plain entry).
func (k *keyspace) appendEntry(dst, resource, variant []byte) []byte {
	dst = append(dst, k.ns...)
	dst = k.appendTagged(dst, resource)
	return append(dst, variant...)
}

// appendGen appends the store key of a resource's generation.
func (k *keyspace) appendGen(dst, resource []byte) []byte {
	dst = append(dst, k.ns...)
	dst = append(dst, genPrefix...)
	return k.appendTagged(dst, resource)
}

// appendTagged appends name, as the hash tag on a Sharded store.
func (k *keyspace) appendTagged(dst, name []byte) []byte {
	if k.sharded == nil {
		return append(dst, name...)
	}
	dst = append(dst, '{')
	dst = append(dst, name...)
	return append(dst, '}')
}

// entry is the store key of a resource's plain entry (or a provider key).
func (k *keyspace) entry(resource string) string {
	return string(k.appendEntry(make([]byte, 0, len(k.ns)+len(resource)+2), []byte(resource), nil))
}

// gen is the store key of a resource's generation.
func (k *keyspace) gen(resource string) string {
	return string(k.appendGen(make([]byte, 0, len(k.ns)+len(genPrefix)+len(resource)+2), []byte(resource)))
}

// shardOf returns the shard of an entry key: the one whose copies of the
// epoch and pattern generations a read of it checks (0 when not sharded).
func (k *keyspace) shardOf(entryKey string) int {
	if k.sharded == nil {
		return 0
	}
	return k.sharded.ShardOf(entryKey)
}

// epoch returns the epoch key a read on shard checks.
func (k *keyspace) epoch(shard int) string { return k.epochs[shard] }

// patternGen returns the generation key of pattern that a read on shard
// checks.
func (k *keyspace) patternGen(pattern string, shard int) string {
	base := k.ns + genPrefix + pattern
	if k.sharded == nil {
		return base
	}
	return k.sharded.ShardKey(base, shard)
}

// appendPatternGens appends every copy of a pattern's generation: what a
// write deletes.
func (k *keyspace) appendPatternGens(dst []string, pattern string) []string {
	for shard := range k.epochs {
		dst = append(dst, k.patternGen(pattern, shard))
	}
	return dst
}

// appendInvalidation appends the keys that invalidate name: a pattern's
// generations, or a resource's generation and plain entry.
func (k *keyspace) appendInvalidation(dst []string, name string, pattern bool) []string {
	if pattern {
		return k.appendPatternGens(dst, name)
	}
	return append(dst, k.gen(name), k.entry(name))
}

// readKeys returns the keys a provider read of key checks: its entry, the
// epoch and its generation.
func (k *keyspace) readKeys(key string) []string {
	entry := k.entry(key)
	return []string{entry, k.epoch(k.shardOf(entry)), k.gen(key)}
}

// lease returns the key of the revalidation lease of the entry entryKey
// (stale.go): in the namespace, beside the entry (on a Sharded store, on
// its server), and never a user key (those may not start with '#').
func (k *keyspace) lease(entryKey string) string {
	return k.ns + leasePrefix + strings.TrimPrefix(entryKey, k.ns)
}

// missLease returns the key of the lease that one instance holds while it
// runs the handler for the entry entryKey under gens (misswait.go). The
// generations are part of it, so that a read after a write (new
// generations) never waits for a run that started before the write.
func (k *keyspace) missLease(entryKey string, gens [][]byte) string {
	// FNV-1a over the generations, each followed by a 0 byte: the same in
	// every process, so every instance names the same lease.
	h := uint64(14695981039346656037)
	for _, g := range gens {
		for _, b := range g {
			h = (h ^ uint64(b)) * 1099511628211
		}
		h *= 1099511628211
	}
	rest := strings.TrimPrefix(entryKey, k.ns)
	b := make([]byte, 0, len(k.ns)+len(missPrefix)+17+len(rest))
	b = append(b, k.ns...)
	b = append(b, missPrefix...)
	b = strconv.AppendUint(b, h, 16)
	b = append(b, ':')
	return string(append(b, rest...))
}
