package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
)

// testTTL protects users from stale responses and from a cache that
// forgets too early: keys expire on time whichever call reads them, a
// rewrite replaces the TTL, TTLs below the store's resolution round up
// (never to "no expiry"), TTLs beyond 30 days stay TTLs, Add treats an
// expired key as absent, and no key ever outlives its TTL because a Set was
// interrupted between writing the value and its TTL. The subtests run in
// parallel because most of their time is waiting for keys to expire.
func (s *suite) testTTL(t *testing.T) {
	short := s.shortTTL()

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		e := s.open(t)
		for _, ttl := range []time.Duration{0, -1, -time.Hour} {
			k := e.key("invalid", fmt.Sprint(int64(ttl)))
			if err := e.st.Set(e.ctx, k, []byte("v"), ttl); !errors.Is(err, hoard.ErrInvalidTTL) {
				t.Errorf("Set with TTL %v = %v; want an error matching hoard.ErrInvalidTTL", ttl, err)
			}
			added, err := e.st.Add(e.ctx, k, []byte("v"), ttl)
			if !errors.Is(err, hoard.ErrInvalidTTL) || added {
				t.Errorf("Add with TTL %v = %v, %v; want false and an error matching hoard.ErrInvalidTTL", ttl, added, err)
			}
			e.wantAbsent(k)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		// One key per reading call, so that one call's lazy expiry cannot
		// hide another's stale read.
		t.Parallel()
		e := s.open(t)
		kGet, kExists, kMulti, kAdd := e.key("get"), e.key("exists"), e.key("multi"), e.key("add")
		start := time.Now()
		e.set(kGet, []byte("v"), short)
		e.set(kExists, []byte("v"), short)
		e.set(kMulti, []byte{}, short)
		if added, err := e.st.Add(e.ctx, kAdd, []byte("v"), short); err != nil || !added {
			t.Fatalf("Add = %v, %v; want true, nil", added, err)
		}
		// Read back while still well within the TTL (unless the machine
		// was too slow to tell): everything must be there.
		vs := e.getMulti([]string{kGet, kExists, kMulti, kAdd})
		if took := time.Since(start); took < short-s.h.TTLResolution {
			for i, v := range vs {
				if v == nil {
					t.Errorf("key %d of 4 was gone %v after it was written with TTL %v", i, took.Round(time.Millisecond), short)
				}
			}
		}
		bound := s.expireBound(short)
		checks := []struct {
			name  string
			check func() bool
		}{
			{"Get", func() bool { _, found := e.get(kGet); return !found }},
			{"Exists", func() bool { return !e.exists(kExists) }},
			{"GetMulti", func() bool { return e.getMulti([]string{kMulti})[0] == nil }},
			{"Get of an Added key", func() bool { _, found := e.get(kAdd); return !found }},
		}
		for _, c := range checks {
			if !eventually(bound-time.Since(start), s.pollEvery(), c.check) {
				t.Errorf("%s still finds a key %v after it was written with TTL %v", c.name, time.Since(start).Round(time.Millisecond), short)
			}
		}
	})

	t.Run("OverwriteShortens", func(t *testing.T) {
		// Set replaces the TTL with its own, even a shorter one.
		t.Parallel()
		e := s.open(t)
		k := e.key("k")
		e.set(k, []byte("long"), longTTL)
		start := time.Now()
		e.set(k, []byte("short"), short)
		e.wantValue(k, []byte("short"))
		if !eventually(s.expireBound(short), s.pollEvery(), func() bool { _, found := e.get(k); return !found }) {
			t.Errorf("a key rewritten with TTL %v is still there after %v: Set kept the old TTL", short, time.Since(start).Round(time.Millisecond))
		}
	})

	t.Run("OverwriteExtends", func(t *testing.T) {
		// Set refreshes the TTL: rewriting a key that was about to expire
		// keeps it for the new TTL.
		t.Parallel()
		e := s.open(t)
		k := e.key("k")
		e.set(k, []byte("short"), short)
		e.set(k, []byte("long"), longTTL)
		// Past the first TTL (a store that kept it would have dropped the
		// key by now), though not by the full expireBound: a store that
		// expires late can only make this check pass, never fail.
		time.Sleep(short + s.h.TTLResolution + s.unit()/2)
		e.wantValue(k, []byte("long"))
	})

	t.Run("Touch", func(t *testing.T) {
		// Touch replaces the TTL and keeps the value: a key written with a
		// short TTL and touched with a long one outlives its first TTL,
		// and one touched with a short TTL expires on it. Touch of an
		// absent key reports false and creates nothing.
		t.Parallel()
		e := s.open(t)
		extended, shortened, absent := e.key("extended"), e.key("shortened"), e.key("absent")
		e.set(extended, []byte("kept"), short)
		e.set(shortened, []byte("short"), longTTL)
		for _, c := range []struct {
			key  string
			ttl  time.Duration
			want bool
		}{{extended, longTTL, true}, {shortened, short, true}, {absent, longTTL, false}} {
			found, err := e.st.Touch(e.ctx, c.key, c.ttl)
			if err != nil || found != c.want {
				t.Fatalf("Touch(%q, %v) = %v, %v; want %v, nil", c.key, c.ttl, found, err, c.want)
			}
		}
		e.wantAbsent(absent)
		start := time.Now()
		if !eventually(s.expireBound(short), s.pollEvery(), func() bool { _, found := e.get(shortened); return !found }) {
			t.Errorf("a key touched with TTL %v is still there after %v: Touch kept the old TTL", short, time.Since(start).Round(time.Millisecond))
		}
		e.wantValue(extended, []byte("kept"))
		for _, ttl := range []time.Duration{0, -time.Second} {
			if found, err := e.st.Touch(e.ctx, extended, ttl); !errors.Is(err, hoard.ErrInvalidTTL) || found {
				t.Errorf("Touch with TTL %v = %v, %v; want false and an error matching hoard.ErrInvalidTTL", ttl, found, err)
			}
		}
		e.wantValue(extended, []byte("kept"))
	})

	t.Run("SubResolution", func(t *testing.T) {
		// A TTL below the resolution is rounded up: it must neither be
		// rejected nor become "never expires" (Memcached's 0).
		t.Parallel()
		e := s.open(t)
		k := e.key("k")
		ttl := max(s.h.TTLResolution/2, time.Nanosecond)
		if err := e.st.Set(e.ctx, k, []byte("v"), ttl); err != nil {
			t.Fatalf("Set with TTL %v = %v; a positive TTL below the resolution must be rounded up", ttl, err)
		}
		k2 := e.key("add")
		if _, err := e.st.Add(e.ctx, k2, []byte("v"), time.Nanosecond); err != nil {
			t.Fatalf("Add with TTL 1ns = %v; a positive TTL below the resolution must be rounded up", err)
		}
		bound := s.expireBound(2 * s.h.TTLResolution)
		for _, k := range []string{k, k2} {
			if !eventually(bound, s.pollEvery(), func() bool { _, found := e.get(k); return !found }) {
				t.Errorf("a key written with a TTL below the resolution %v is still there after %v", s.h.TTLResolution, bound)
			}
		}
	})

	t.Run("Long", func(t *testing.T) {
		// TTLs of more than 30 days are TTLs, not Memcached Unix times in
		// 1970 that expire at once.
		t.Parallel()
		e := s.open(t)
		for _, ttl := range []time.Duration{30*24*time.Hour - time.Second, 30*24*time.Hour + time.Second, 400 * 24 * time.Hour} {
			k := e.key("long", fmt.Sprint(int64(ttl)))
			e.set(k, []byte("v"), ttl)
			e.wantValue(k, []byte("v"))
			k2 := e.key("longadd", fmt.Sprint(int64(ttl)))
			if added, err := e.st.Add(e.ctx, k2, []byte("v"), ttl); err != nil || !added {
				t.Errorf("Add with TTL %v = %v, %v; want true, nil", ttl, added, err)
			}
			e.wantValue(k2, []byte("v"))
			e.del(k, k2)
		}
	})

	t.Run("AddAfterExpiry", func(t *testing.T) {
		// An expired key is absent for Add, even if the store has not
		// purged it yet. Add itself is the probe: reading the key first
		// could purge it and hide the bug.
		t.Parallel()
		e := s.open(t)
		k := e.key("k")
		start := time.Now()
		e.set(k, []byte("old"), short)
		time.Sleep(short)
		var last error
		if !eventually(s.expireBound(short)-time.Since(start), s.pollEvery(), func() bool {
			added, err := e.st.Add(e.ctx, k, []byte("new"), longTTL)
			last = err
			return err == nil && added
		}) {
			t.Fatalf("Add on a key whose TTL of %v ran out %v ago did not add it (last error %v)", short, time.Since(start)-short, last)
		}
		e.wantValue(k, []byte("new"))
	})

	t.Run("AtomicWithValue", func(t *testing.T) {
		// Writers hammer a few keys with Set/Add (TTL short) and Delete,
		// many with contexts that are cancelled mid-call, and end with one
		// cut Set on every key, so that each key's last write is one that
		// may be interrupted. A store that writes the value and then the
		// TTL in two steps leaves keys without a TTL when a call is cut
		// between them; those keys would then never expire. After the
		// writers stop, every key must expire.
		t.Parallel()
		e := s.open(t)
		keys := e.keys("a", 32)
		const writers, ops = 8, 300
		write := func(rng *rand.Rand, k string, cut bool, op int) {
			ctx, cancel := e.ctx, context.CancelFunc(func() {})
			if cut {
				ctx, cancel = context.WithTimeout(e.ctx, time.Duration(rng.IntN(300))*time.Microsecond)
			}
			defer cancel()
			// Errors are not this check's business (Concurrency checks
			// that live calls succeed); whatever was written must expire.
			switch op {
			case 0:
				_ = e.st.Delete(ctx, k)
			case 1:
				_, _ = e.st.Add(ctx, k, []byte("add"), short)
			default:
				_ = e.st.Set(ctx, k, []byte("set"), short)
			}
		}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 11))
				for range ops {
					write(rng, keys[rng.IntN(len(keys))], rng.IntN(2) == 0, rng.IntN(8))
				}
			})
		}
		wg.Wait()
		for w := range writers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 13))
				for i := w; i < len(keys); i += writers {
					write(rng, keys[i], true, 2)
				}
			})
		}
		wg.Wait()
		stop := time.Now()
		var left []string
		if !eventually(s.expireBound(short), s.pollEvery(), func() bool {
			left = left[:0]
			for i, v := range e.getMulti(keys) {
				if v != nil {
					left = append(left, keys[i])
				}
			}
			return len(left) == 0
		}) {
			t.Errorf("%d keys written with TTL %v still exist %v after the last write: the value was stored without its TTL: %q",
				len(left), short, time.Since(stop).Round(time.Millisecond), left)
		}
	})
}
