// Package hoard is HTTP response caching for Go services.
//
// It has three parts, used together or alone:
//
//   - A route middleware (Cache.Handle, Cache.Middleware, configured by a
//     Route) caches GET responses per resource and, when the resource is
//     written (POST, PUT, PATCH, DELETE through the same Route), makes
//     every cached view of it stale — its query and per-caller variants
//     and the listings named by patterns — before the write's status
//     reaches the client.
//   - A provider API on Cache (Get, Set, Fetch, GetJSON, Invalidate,
//     Clear...) serves code that is not a route, with the same
//     invalidation.
//   - A client middleware (ClientCache) sets Cache-Control for browsers.
//
// Entries live in a Store: the in-process memory store, Redis (standalone
// or Cluster) or a Memcached pool, all behind one contract that package
// storetest checks.
//
// # Why it stays correct
//
// Every namespace that a write can invalidate has a generation in the
// store, a random value; an entry records the generations it saw before
// its handler ran, and a read treats an entry whose generations changed or
// are gone as a miss. So an invalidation deletes one key per namespace,
// on every store, however many entries it covers, and a slow reader can
// never put back an answer that a concurrent write made stale. A request
// whose answer is not stored leaves nothing in the store.
//
// # Why it stays up
//
// A store failure is a slowdown, never an error page: every store call has
// a deadline (Config.Timeout), a circuit breaker skips a failing store, a
// read that cannot use the store runs the handler, and an invalidation the
// store did not take is kept and replayed before any read of its
// namespaces is served from the store again. Past their TTL, entries can
// be served while one background run refreshes them
// (Route.StaleWhileRevalidate) or while the handler fails
// (Route.StaleIfError), never once a write has made them stale; and an
// expired key read by several instances runs its handler once across them
// (Config.MissWait).
//
// # What an operator sees
//
// Metrics go through the OpenTelemetry metric API (Config.MeterProvider):
// route requests by result, store call durations, invalidations, the
// breaker. Every decision other than a hit or a plain miss is logged at
// debug level with its reason (Config.Logger). Cache.Inspect shows what
// the store holds under a key; the admin CLI cmd/hoard does that and the
// rest by hand.
//
// The design, with the lifetime of every key hoard writes, is in the
// repository's docs/design.md; the guarantees and the tests that check
// them in docs/reliability.md.
package hoard
