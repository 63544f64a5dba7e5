package hoard

import "sync/atomic"

// Stats are a Cache's counters since it was built, for health checks and
// dashboards.
type Stats struct {
	// PendingInvalidations is the number of keys whose invalidation failed
	// (store down) and waits to be replayed; the namespaces they name are
	// served uncached meanwhile. It never exceeds 4096: past that, one
	// namespace-wide invalidation replaces them.
	PendingInvalidations int
	// KeysTooLong counts requests served uncached, and provider calls
	// refused with ErrKeyTooLong, because their key was longer than
	// Config.MaxKeyBytes.
	KeysTooLong uint64
	// ValuesRefused counts values the store refused (ErrRefused: too large
	// for it, or no memory left for it); each was served uncached.
	ValuesRefused uint64
	// MissWaits counts misses that found another instance running the
	// handler for their entry (its lease: Config.MissWait) and waited for
	// it; MissWaitsServed those of them answered from the entry it stored.
	// The others ran the handler themselves after the wait.
	MissWaits, MissWaitsServed uint64
}

// counters are the atomic counters behind Stats.
type counters struct {
	keysTooLong   atomic.Uint64
	valuesRefused atomic.Uint64
	missWaits     atomic.Uint64
	missServed    atomic.Uint64
}

// Stats returns the Cache's counters.
func (c *Cache) Stats() Stats {
	return Stats{
		PendingInvalidations: c.pending.size(),
		KeysTooLong:          c.stats.keysTooLong.Load(),
		ValuesRefused:        c.stats.valuesRefused.Load(),
		MissWaits:            c.stats.missWaits.Load(),
		MissWaitsServed:      c.stats.missServed.Load(),
	}
}
