// Package storetest is the contract every hoard.Store must pass: exact byte
// round-trips, TTLs that are atomic with the value and neither too short nor
// too long, atomic Add, ordered multi-gets, real glob deletes (on stores that
// implement hoard.PatternDeleter), errors after Close and prompt errors
// (never hangs) while the server is down or frozen.
//
// The memory, redis and memcached stores run it from their own tests, and so
// can the author of any other store:
//
//	func TestStoreContract(t *testing.T) {
//		storetest.Run(t, storetest.Harness{
//			New: func(t *testing.T) hoard.Store { return mystore.New(...) },
//			TTLResolution: time.Millisecond,
//		})
//	}
//
// Run with -race: several checks only find their bug under the race detector.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
)

// Slack is how much longer than Harness.Timeout a call may take to fail
// while the server is down or frozen, and how long any call may take to fail
// after Close. It absorbs goroutine scheduling and timer latency on a loaded
// two-core machine under -race while other test packages run in parallel
// (a Cluster Delete with Timeout 250 ms once took 729 ms to fail there;
// 250 ms of slack was not enough), yet it is far below what users are
// protected from: the OS TCP timeouts (seconds to minutes) a store without
// its own deadline waits for, and retry loops that multiply the deadline.
// The memcached package's own outage tests use the same margin.
const Slack = 600 * time.Millisecond

// Harness describes a store under test.
type Harness struct {
	// New returns a new store connected to the server(s) under test. Run
	// calls it once per subtest and closes the store when the subtest ends
	// (Close must be idempotent). Every subtest uses keys under its own
	// random prefix, so stores may share servers with each other and with
	// other tests; nothing outside that prefix is written or deleted.
	New func(t *testing.T) hoard.Store

	// Timeout is the per-call deadline the store was configured with. While
	// the server is down or frozen, every call must fail within
	// Timeout+Slack. Required when outage hooks are set.
	Timeout time.Duration

	// TTLResolution is the smallest TTL step the store honours: a key
	// expires no later than TTLResolution after its TTL, and the store
	// rounds a shorter TTL up rather than down (Memcached: time.Second; the
	// memory and Redis stores: time.Millisecond). Zero means a millisecond.
	TTLResolution time.Duration

	// Kill makes every server of the store unreachable (the process dies and
	// connections are refused); Restart brings them back on the same
	// addresses, answering, though possibly without the data. Both nil for
	// in-process stores, which skips the Outage/Kill subtest.
	Kill, Restart func(t *testing.T)

	// Pause freezes every server of the store (SIGSTOP: connections stay
	// open, nothing answers); Resume unfreezes them. Both nil for in-process
	// stores, which skips the Outage/Pause subtest.
	Pause, Resume func(t *testing.T)

	// Lag is how long after its servers stop answering the store may
	// still answer reads from local copies (a near cache that stops using
	// them after a bound); the Outage subtests wait that long before
	// expecting every call to fail. Zero for a store without local copies.
	Lag time.Duration

	// Nodes is the number of servers the store spreads keys over: Cluster
	// masters, pool members. 0 or 1 for a single server.
	Nodes int

	// Locate, when set and Nodes > 1, reports which server holds key (any
	// stable name, such as its address), or "" when none does. The suite then
	// checks that the keys it uses for multi-key calls land on all Nodes
	// servers, so that a store routing every key to one node, or a test that
	// never crossed nodes, cannot pass unnoticed.
	Locate func(t *testing.T, key string) string
}

// Run runs the contract suite against the store described by h, as
// subtests of t: RoundTrip, Keys, GetMulti, Add, Delete, DeletePattern,
// Exists, Ping, TTL, Concurrency, Spread, Closed and Outage, each with its
// own subtests (select them with go test -run, e.g.
// -run 'TestStoreContract/redis/TTL'). It stops servers only through h's
// outage hooks and only in the Outage subtests, which run last.
//
// Optional capabilities are checked when the store has them: the
// DeletePattern subtests run only on a store that implements
// hoard.PatternDeleter (and are skipped otherwise), and the Closed and
// Outage subtests call DeletePattern only on such a store.
//
// Most of its time is spent waiting for keys to expire: about 3 seconds
// for an in-process store, 15 for one whose TTLResolution is a second.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("storetest: Harness.New is nil; set it to a func that returns a connected store")
	}
	if (h.Kill == nil) != (h.Restart == nil) {
		t.Fatal("storetest: set both Harness.Kill and Harness.Restart, or neither")
	}
	if (h.Pause == nil) != (h.Resume == nil) {
		t.Fatal("storetest: set both Harness.Pause and Harness.Resume, or neither")
	}
	if (h.Kill != nil || h.Pause != nil) && h.Timeout <= 0 {
		t.Fatal("storetest: Harness.Timeout must be the store's per-call timeout when outage hooks are set")
	}
	if h.TTLResolution <= 0 {
		h.TTLResolution = time.Millisecond
	}
	s := &suite{h: h}
	t.Run("RoundTrip", s.testRoundTrip)
	t.Run("Keys", s.testKeys)
	t.Run("GetMulti", s.testGetMulti)
	t.Run("Add", s.testAdd)
	t.Run("Delete", s.testDelete)
	t.Run("DeletePattern", s.testDeletePattern)
	t.Run("Exists", s.testExists)
	t.Run("Ping", s.testPing)
	t.Run("TTL", s.testTTL)
	t.Run("Concurrency", s.testConcurrency)
	t.Run("Spread", s.testSpread)
	t.Run("Closed", s.testClosed)
	t.Run("Outage", s.testOutage)
}

// suite is one Run: the harness with defaults filled in.
type suite struct {
	h Harness
}

// unit is the TTL step of the suite's expiry checks: at least 100ms, at
// least the store's resolution.
func (s *suite) unit() time.Duration { return max(s.h.TTLResolution, 100*time.Millisecond) }

// shortTTL is a TTL the store must still honour when a check runs right
// after the write, and which expires quickly.
func (s *suite) shortTTL() time.Duration { return 2 * s.unit() }

// expireBound is how long after a write with ttl the key must be gone:
// the TTL, the store's resolution and a second for scheduling.
func (s *suite) expireBound(ttl time.Duration) time.Duration {
	return ttl + s.h.TTLResolution + time.Second
}

// pollEvery is the pause between checks of a key expected to expire.
func (s *suite) pollEvery() time.Duration {
	return min(max(s.unit()/20, 5*time.Millisecond), 50*time.Millisecond)
}

// longTTL is the TTL of keys that must not expire during a subtest; it is
// short enough that anything left behind on a shared server goes away.
const longTTL = 2 * time.Minute

// env is the state of one subtest: a fresh store and a random key prefix.
type env struct {
	t      *testing.T
	st     hoard.Store
	ctx    context.Context
	prefix string
}

// open returns a new store for the running subtest, closed when it ends.
func (s *suite) open(t *testing.T) *env {
	t.Helper()
	st := s.h.New(t)
	if st == nil {
		t.Fatal("storetest: Harness.New returned a nil store")
	}
	t.Cleanup(func() { _ = st.Close() })
	return &env{t: t, st: st, ctx: t.Context(), prefix: newPrefix()}
}

// newPrefix returns a random key prefix free of glob metacharacters and of
// Redis Cluster hash tags, so that the keys under it spread over all slots.
func newPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "storetest:" + hex.EncodeToString(b[:]) + ":"
}

// key returns the prefixed key made of parts joined by ':'.
func (e *env) key(parts ...string) string { return e.prefix + strings.Join(parts, ":") }

// keys returns n prefixed keys name:0 … name:n-1.
func (e *env) keys(name string, n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("%s%s:%d", e.prefix, name, i)
	}
	return ks
}

func (e *env) set(key string, value []byte, ttl time.Duration) {
	e.t.Helper()
	if err := e.st.Set(e.ctx, key, value, ttl); err != nil {
		e.t.Fatalf("Set(%q, %s, %v): %v", key, show(value), ttl, err)
	}
}

func (e *env) get(key string) ([]byte, bool) {
	e.t.Helper()
	v, found, err := e.st.Get(e.ctx, key)
	if err != nil {
		e.t.Fatalf("Get(%q): %v", key, err)
	}
	if !found && v != nil {
		e.t.Errorf("Get(%q) = %s with found=false; an absent key must return a nil value", key, show(v))
	}
	return v, found
}

func (e *env) getMulti(keys []string) [][]byte {
	e.t.Helper()
	vs, err := e.st.GetMulti(e.ctx, keys)
	if err != nil {
		e.t.Fatalf("GetMulti(%d keys): %v", len(keys), err)
	}
	if len(vs) != len(keys) {
		e.t.Fatalf("GetMulti(%d keys) returned %d values; it must return one per key", len(keys), len(vs))
	}
	return vs
}

func (e *env) exists(key string) bool {
	e.t.Helper()
	ok, err := e.st.Exists(e.ctx, key)
	if err != nil {
		e.t.Fatalf("Exists(%q): %v", key, err)
	}
	return ok
}

func (e *env) del(keys ...string) {
	e.t.Helper()
	if err := e.st.Delete(e.ctx, keys...); err != nil {
		e.t.Fatalf("Delete(%d keys): %v", len(keys), err)
	}
}

// wantValue checks that key holds exactly want.
func (e *env) wantValue(key string, want []byte) {
	e.t.Helper()
	got, found := e.get(key)
	if !found {
		e.t.Errorf("Get(%q): not found, want %s", key, show(want))
		return
	}
	if msg := diff(got, want); msg != "" {
		e.t.Errorf("Get(%q): %s", key, msg)
	}
}

// wantAbsent checks that key is absent.
func (e *env) wantAbsent(key string) {
	e.t.Helper()
	if got, found := e.get(key); found {
		e.t.Errorf("Get(%q) = %s, want absent", key, show(got))
	}
}

// fill sets keys[i] to value(i) with ttl, from a pool of workers so that a
// network store pipelines the writes.
func (e *env) fill(keys []string, value func(i int) []byte, ttl time.Duration) {
	e.t.Helper()
	const workers = 32
	idx := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range workers {
		wg.Go(func() {
			for i := range idx {
				if err := e.st.Set(e.ctx, keys[i], value(i), ttl); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("Set(%q): %w", keys[i], err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range keys {
		idx <- i
	}
	close(idx)
	wg.Wait()
	if firstErr != nil {
		e.t.Fatalf("filling %d keys: %v", len(keys), firstErr)
	}
}

// getAll reads keys with GetMulti in batches of 500.
func (e *env) getAll(keys []string) [][]byte {
	e.t.Helper()
	out := make([][]byte, 0, len(keys))
	for i := 0; i < len(keys); i += 500 {
		out = append(out, e.getMulti(keys[i:min(i+500, len(keys))])...)
	}
	return out
}

// requireSpread checks, when the harness can locate keys, that keys land on
// every node of a multi-node store.
func (s *suite) requireSpread(e *env, keys []string) {
	e.t.Helper()
	if s.h.Locate == nil || s.h.Nodes <= 1 {
		return
	}
	nodes := map[string]int{}
	for _, k := range keys {
		n := s.h.Locate(e.t, k)
		if n == "" {
			e.t.Errorf("Locate(%q): the key the store just wrote is on no node", k)
			continue
		}
		nodes[n]++
	}
	if len(nodes) != s.h.Nodes {
		e.t.Errorf("%d keys landed on %d node(s) %v, want all %d: the store does not spread keys over its servers",
			len(keys), len(nodes), nodes, s.h.Nodes)
	}
}

// eventually calls check every interval until it returns true or bound
// passes, and reports whether it did.
func eventually(bound, interval time.Duration, check func() bool) bool {
	deadline := time.Now().Add(bound)
	for {
		if check() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// show formats a value for a failure message, shortened when long.
func show(b []byte) string {
	switch {
	case b == nil:
		return "nil"
	case len(b) <= 48:
		return fmt.Sprintf("%q", b)
	default:
		return fmt.Sprintf("%q… (%d bytes)", b[:32], len(b))
	}
}

// diff describes how got differs from want, "" when they are equal
// (including nil vs non-nil empty, which is a difference).
func diff(got, want []byte) string {
	if (got == nil) != (want == nil) {
		return fmt.Sprintf("got %s, want %s", show(got), show(want))
	}
	if len(got) != len(want) {
		return fmt.Sprintf("got %d bytes, want %d (got %s, want %s)", len(got), len(want), show(got), show(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("byte %d of %d differs: got %#x, want %#x (got %s, want %s)", i, len(got), got[i], want[i], show(got), show(want))
		}
	}
	return ""
}
