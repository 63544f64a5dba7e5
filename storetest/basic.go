package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
)

// testRoundTrip protects users from corrupted responses: every byte value,
// binary data, protocol look-alikes and large bodies come back exactly, an
// empty body is a hit (not a miss), and a miss is not an error.
func (s *suite) testRoundTrip(t *testing.T) {
	t.Run("Values", func(t *testing.T) {
		e := s.open(t)
		rng := rand.New(rand.NewPCG(1, 2))
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		random := func(n int) []byte {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.UintN(256))
			}
			return b
		}
		cases := []struct {
			name  string
			value []byte
		}{
			{"all256", all},
			{"all256reversed", bytes.Clone(all)},
			{"random1", random(1)},
			{"random100", random(100)},
			{"random4096", random(4096)},
			{"random65537", random(65537)},
			{"nul", []byte{0}},
			{"nuls", make([]byte, 300)},
			{"crlf", []byte("\r\n")},
			{"memcachedEND", []byte("VALUE x 0 3\r\nabc\r\nEND\r\n")},
			{"redisReply", []byte("$-1\r\n*2\r\n+OK\r\n-ERR x\r\n")},
			{"number", []byte("12345")},
			{"json", []byte(`{"a":[1,"x"],"b":null}`)},
			{"invalidUTF8", []byte{0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1}},
			{"leadingTrailingSpace", []byte("  x \t\n")},
			{"1MiB", random(1 << 20)},
		}
		for i, j := 0, len(cases[1].value)-1; i < j; i, j = i+1, j-1 {
			cases[1].value[i], cases[1].value[j] = cases[1].value[j], cases[1].value[i]
		}
		keys := make([]string, len(cases))
		for i, c := range cases {
			keys[i] = e.key("v", c.name)
			e.set(keys[i], c.value, longTTL)
		}
		for i, c := range cases {
			e.wantValue(keys[i], c.value)
		}
		for i, got := range e.getMulti(keys) {
			if msg := diff(got, cases[i].value); msg != "" {
				t.Errorf("GetMulti: %s: %s", cases[i].name, msg)
			}
		}
	})

	t.Run("EveryByte", func(t *testing.T) {
		// One key per single-byte value: a store that trims, maps or
		// drops a particular byte is caught on that byte.
		e := s.open(t)
		keys := e.keys("b", 256)
		e.fill(keys, func(i int) []byte { return []byte{byte(i)} }, longTTL)
		for i, got := range e.getAll(keys) {
			if msg := diff(got, []byte{byte(i)}); msg != "" {
				t.Errorf("GetMulti: value %#x: %s", i, msg)
			}
		}
	})

	t.Run("Empty", func(t *testing.T) {
		// Empty bodies ([] and {} too) are hits: a store that turns an
		// empty value into a miss makes the handler run on every request.
		e := s.open(t)
		k := e.key("empty")
		e.set(k, []byte{}, longTTL)
		v, found := e.get(k)
		if !found || v == nil || len(v) != 0 {
			t.Errorf("Get of an empty value = %s, found=%v; want a non-nil empty slice, found=true", show(v), found)
		}
		k2 := e.key("emptyFromNil")
		e.set(k2, nil, longTTL)
		if v, found := e.get(k2); !found || v == nil || len(v) != 0 {
			t.Errorf("Get of a value Set as nil = %s, found=%v; want a non-nil empty slice, found=true", show(v), found)
		}
		if !e.exists(k) {
			t.Errorf("Exists of an empty value = false, want true")
		}
	})

	t.Run("Absent", func(t *testing.T) {
		// A miss is found=false with a nil error, never an error: callers
		// tell "absent" from "store broken" by the error alone.
		e := s.open(t)
		v, found, err := e.st.Get(e.ctx, e.key("never"))
		if err != nil || found || v != nil {
			t.Errorf("Get(absent) = %s, %v, %v; want nil, false, nil", show(v), found, err)
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		e := s.open(t)
		k := e.key("o")
		e.set(k, []byte("first value, longer"), longTTL)
		e.set(k, []byte("second"), longTTL)
		e.wantValue(k, []byte("second"))
		e.set(k, []byte{}, longTTL)
		e.wantValue(k, []byte{})
	})

	t.Run("CopiesInput", func(t *testing.T) {
		// The caller may reuse its buffer after Set or Add returns; a
		// store that keeps the slice would serve the later contents.
		e := s.open(t)
		buf := []byte("original")
		k, k2 := e.key("c1"), e.key("c2")
		e.set(k, buf, longTTL)
		if added, err := e.st.Add(e.ctx, k2, buf, longTTL); err != nil || !added {
			t.Fatalf("Add(%q) = %v, %v; want true, nil", k2, added, err)
		}
		copy(buf, "XXXXXXXX")
		e.wantValue(k, []byte("original"))
		e.wantValue(k2, []byte("original"))
	})
}

// testKeys protects users from key collisions and refused keys: long keys
// (query strings), keys that share a long prefix, and keys with bytes some
// protocols forbid must all be distinct, usable keys.
func (s *suite) testKeys(t *testing.T) {
	e := s.open(t)
	long := strings.Repeat("k", 300)
	names := []string{
		"plain",
		"with space",
		"tab\there",
		"newline\nhere",
		"crlf\r\nhere",
		"nul\x00here",
		"del\x7fhere",
		"ключ-ü-日本",
		"%20percent%2A",
		long,
		long + "1",
		long + "2",
		strings.Repeat("x", 249),
		strings.Repeat("x", 250),
		strings.Repeat("x", 251),
		strings.Repeat("é", 200),
		strings.Repeat("z", 4096),
	}
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = e.key(n)
		e.set(keys[i], []byte(fmt.Sprintf("value %d", i)), longTTL)
	}
	for i, k := range keys {
		e.wantValue(k, []byte(fmt.Sprintf("value %d", i)))
	}
	for i, got := range e.getMulti(keys) {
		if msg := diff(got, []byte(fmt.Sprintf("value %d", i))); msg != "" {
			t.Errorf("GetMulti: key %d (%q…): %s", i, show([]byte(names[i])), msg)
		}
	}
	// Deleting one of two keys that share 300 bytes leaves the other.
	e.del(keys[10])
	e.wantAbsent(keys[10])
	e.wantValue(keys[11], []byte("value 11"))
	if !e.exists(keys[11]) || e.exists(keys[10]) {
		t.Errorf("Exists after deleting %q…1: want the sibling key present and the deleted one absent", long[:10])
	}
}

// testGetMulti protects users from serving one resource's response for
// another: GetMulti keeps the order of its keys across nodes, reports absent
// keys as nil and empty values as non-nil empty.
func (s *suite) testGetMulti(t *testing.T) {
	t.Run("Mixed", func(t *testing.T) {
		e := s.open(t)
		keys := e.keys("m", 100)
		want := make([][]byte, len(keys))
		var present []string
		for i, k := range keys {
			switch i % 4 {
			case 0, 1:
				want[i] = []byte(fmt.Sprintf("value of %d", i))
			case 2:
				if i%8 == 2 {
					want[i] = []byte{}
				}
			}
			if want[i] != nil {
				present = append(present, k)
				e.set(k, want[i], longTTL)
			}
		}
		s.requireSpread(e, present)
		got := e.getMulti(keys)
		for i := range keys {
			if msg := diff(got[i], want[i]); msg != "" {
				t.Errorf("GetMulti: key %d of %d: %s", i, len(keys), msg)
			}
		}
		// Reversed order, to catch a store that returns values sorted by
		// key or grouped by node.
		rev := make([]string, len(keys))
		for i := range keys {
			rev[i] = keys[len(keys)-1-i]
		}
		got = e.getMulti(rev)
		for i := range rev {
			if msg := diff(got[i], want[len(keys)-1-i]); msg != "" {
				t.Errorf("GetMulti(reversed): key %d of %d: %s", i, len(keys), msg)
			}
		}
	})

	t.Run("Duplicates", func(t *testing.T) {
		// A key asked for twice yields its value twice.
		e := s.open(t)
		a, b, c := e.key("a"), e.key("b"), e.key("c")
		e.set(a, []byte("A"), longTTL)
		e.set(b, []byte{}, longTTL)
		got := e.getMulti([]string{a, c, a, b, c, b})
		want := [][]byte{[]byte("A"), nil, []byte("A"), {}, nil, {}}
		for i := range want {
			if msg := diff(got[i], want[i]); msg != "" {
				t.Errorf("GetMulti with repeated keys: position %d: %s", i, msg)
			}
		}
	})

	t.Run("NoKeys", func(t *testing.T) {
		e := s.open(t)
		got, err := e.st.GetMulti(e.ctx, nil)
		if err != nil || len(got) != 0 {
			t.Errorf("GetMulti(no keys) = %d values, %v; want 0 values, nil", len(got), err)
		}
	})

	t.Run("AllAbsent", func(t *testing.T) {
		e := s.open(t)
		for i, v := range e.getMulti(e.keys("none", 10)) {
			if v != nil {
				t.Errorf("GetMulti(absent keys)[%d] = %s, want nil", i, show(v))
			}
		}
	})
}

// testAdd protects the generation scheme and any "create if missing" user:
// Add never overwrites, treats an absent key as absent, and admits exactly
// one winner among concurrent callers, whose value is the one stored.
func (s *suite) testAdd(t *testing.T) {
	t.Run("Absent", func(t *testing.T) {
		e := s.open(t)
		k := e.key("a")
		added, err := e.st.Add(e.ctx, k, []byte("v1"), longTTL)
		if err != nil || !added {
			t.Fatalf("Add(absent) = %v, %v; want true, nil", added, err)
		}
		e.wantValue(k, []byte("v1"))
		k2 := e.key("empty")
		if added, err := e.st.Add(e.ctx, k2, []byte{}, longTTL); err != nil || !added {
			t.Fatalf("Add(absent, empty value) = %v, %v; want true, nil", added, err)
		}
		e.wantValue(k2, []byte{})
	})

	t.Run("Present", func(t *testing.T) {
		e := s.open(t)
		k := e.key("p")
		e.set(k, []byte("kept"), longTTL)
		added, err := e.st.Add(e.ctx, k, []byte("lost"), longTTL)
		if err != nil || added {
			t.Errorf("Add(present) = %v, %v; want false, nil", added, err)
		}
		e.wantValue(k, []byte("kept"))
		// An empty value is present too.
		k2 := e.key("pe")
		e.set(k2, []byte{}, longTTL)
		if added, err := e.st.Add(e.ctx, k2, []byte("lost"), longTTL); err != nil || added {
			t.Errorf("Add(present empty value) = %v, %v; want false, nil", added, err)
		}
		e.wantValue(k2, []byte{})
	})

	t.Run("AfterDelete", func(t *testing.T) {
		e := s.open(t)
		k := e.key("d")
		e.set(k, []byte("old"), longTTL)
		e.del(k)
		if added, err := e.st.Add(e.ctx, k, []byte("new"), longTTL); err != nil || !added {
			t.Errorf("Add(deleted key) = %v, %v; want true, nil", added, err)
		}
		e.wantValue(k, []byte("new"))
	})

	t.Run("Concurrent", func(t *testing.T) {
		// 50 callers race on each key; the store must pick one.
		e := s.open(t)
		const callers = 50
		for round := range 5 {
			k := e.key("race", fmt.Sprint(round))
			var wins atomic.Int32
			winner := make(chan int, callers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() {
					<-start
					added, err := e.st.Add(e.ctx, k, []byte(fmt.Sprintf("caller %d", i)), longTTL)
					if err != nil {
						t.Errorf("Add: %v", err)
						return
					}
					if added {
						wins.Add(1)
						winner <- i
					}
				})
			}
			close(start)
			wg.Wait()
			close(winner)
			if n := wins.Load(); n != 1 {
				t.Errorf("round %d: %d of %d concurrent Adds on one key reported added; want exactly 1", round, n, callers)
				continue
			}
			e.wantValue(k, []byte(fmt.Sprintf("caller %d", <-winner)))
		}
	})
}

// testDelete protects invalidation: every named key goes, on every node,
// absent keys are no error, and other keys stay.
func (s *suite) testDelete(t *testing.T) {
	t.Run("Many", func(t *testing.T) {
		e := s.open(t)
		keys := e.keys("d", 100)
		keep := e.keys("keep", 20)
		e.fill(keys, func(i int) []byte { return []byte(fmt.Sprint(i)) }, longTTL)
		e.fill(keep, func(i int) []byte { return []byte(fmt.Sprint(i)) }, longTTL)
		s.requireSpread(e, keys)
		// Absent keys mixed in, and one key named twice.
		arg := append(append(append([]string{}, keys...), e.keys("absent", 20)...), keys[0])
		e.del(arg...)
		for i, v := range e.getMulti(keys) {
			if v != nil {
				t.Errorf("after Delete, key %d = %s, want absent", i, show(v))
			}
		}
		for i, v := range e.getMulti(keep) {
			if msg := diff(v, []byte(fmt.Sprint(i))); msg != "" {
				t.Errorf("Delete touched a key it was not given: %q: %s", keep[i], msg)
			}
		}
	})

	t.Run("One", func(t *testing.T) {
		e := s.open(t)
		k := e.key("one")
		e.set(k, []byte("x"), longTTL)
		e.del(k)
		e.wantAbsent(k)
		e.del(k) // already gone: fine
	})

	t.Run("NoKeys", func(t *testing.T) {
		e := s.open(t)
		if err := e.st.Delete(e.ctx); err != nil {
			t.Errorf("Delete() with no keys = %v, want nil", err)
		}
	})
}

// testExists protects health checks and callers that probe before they
// load: Exists agrees with Get.
func (s *suite) testExists(t *testing.T) {
	e := s.open(t)
	k := e.key("e")
	if e.exists(k) {
		t.Errorf("Exists(absent) = true")
	}
	e.set(k, []byte("v"), longTTL)
	if !e.exists(k) {
		t.Errorf("Exists(present) = false")
	}
	e.del(k)
	if e.exists(k) {
		t.Errorf("Exists(deleted) = true")
	}
}

// testPing protects readiness probes: a healthy store answers Ping.
func (s *suite) testPing(t *testing.T) {
	e := s.open(t)
	if err := e.st.Ping(e.ctx); err != nil {
		t.Errorf("Ping = %v, want nil", err)
	}
}

// testConcurrency protects users from data races, buffer reuse and one
// caller's trouble spreading to others: a parallel mix of every call never
// fails and never returns one key's value for another (run under -race),
// and callers whose contexts end mid-call do not make the calls of other
// callers fail.
func (s *suite) testConcurrency(t *testing.T) {
	t.Run("Mix", s.testMix)
	t.Run("CancelledNeighbours", s.testCancelledNeighbours)
}

func (s *suite) testMix(t *testing.T) {
	e := s.open(t)
	keys := e.keys("c", 16)
	const workers, ops = 8, 250
	check := func(key string, v []byte) {
		if v != nil && !bytes.HasPrefix(v, []byte(key+"#")) {
			t.Errorf("value of %q is %s, which was never written to it", key, show(v))
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range ops {
				k := keys[rng.IntN(len(keys))]
				val := []byte(fmt.Sprintf("%s#%d.%d%s", k, w, i, strings.Repeat("p", rng.IntN(200))))
				var err error
				switch rng.IntN(7) {
				case 0, 1:
					err = e.st.Set(e.ctx, k, val, longTTL)
				case 2:
					var v []byte
					v, _, err = e.st.Get(e.ctx, k)
					check(k, v)
				case 3:
					ks := []string{k, keys[rng.IntN(len(keys))], keys[rng.IntN(len(keys))]}
					var vs [][]byte
					vs, err = e.st.GetMulti(e.ctx, ks)
					for j := range vs {
						check(ks[j], vs[j])
					}
				case 4:
					err = e.st.Delete(e.ctx, k)
				case 5:
					_, err = e.st.Add(e.ctx, k, val, longTTL)
				case 6:
					_, err = e.st.Exists(e.ctx, k)
				}
				if err != nil {
					t.Errorf("concurrent call on %q: %v", k, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, k := range keys {
		e.set(k, []byte(k+"#final"), longTTL)
		e.wantValue(k, []byte(k+"#final"))
	}
}

// testCancelledNeighbours: in a service, request contexts end all the time
// (client gone, handler deadline), often in the middle of a cache call. A
// store whose reaction to that is to tear down a connection it shares with
// other callers turns one impatient client into errors for everyone, and
// soon into an open circuit breaker. Callers with live contexts must not
// see errors while others' deadlines and cancellations hit mid-call.
func (s *suite) testCancelledNeighbours(t *testing.T) {
	e := s.open(t)
	keys := e.keys("n", 16)
	e.fill(keys, func(int) []byte { return []byte("v") }, longTTL)
	const live, cut, ops = 4, 4, 250
	var failed, cutDone atomic.Int32
	var wg sync.WaitGroup
	for w := range live + cut {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 17))
			if w >= live {
				defer cutDone.Add(1)
			}
			// Live callers go on until the cut ones are done, so that
			// calls with live contexts follow every cut call even when
			// the scheduler runs the workers one after another.
			for i := 0; i < ops || w < live && cutDone.Load() < cut; i++ {
				ctx, cancel := e.ctx, context.CancelFunc(func() {})
				if w >= live {
					// One call in ten starts with its context already
					// ended: a store must fail that call alone.
					d := time.Duration(rng.IntN(300)) * time.Microsecond
					if rng.IntN(10) == 0 {
						d = 0
					}
					if rng.IntN(2) == 0 {
						ctx, cancel = context.WithTimeout(e.ctx, d)
					} else {
						ctx, cancel = context.WithCancel(e.ctx)
						time.AfterFunc(d, cancel)
					}
				}
				k := keys[rng.IntN(len(keys))]
				var err error
				switch rng.IntN(3) {
				case 0:
					err = e.st.Set(ctx, k, []byte("v"), longTTL)
				case 1:
					_, _, err = e.st.Get(ctx, k)
				case 2:
					_, err = e.st.GetMulti(ctx, keys[:4])
				}
				cancel()
				if err != nil && w < live && failed.Add(1) <= 5 {
					t.Errorf("a call with a live context failed while other callers' contexts ended mid-call: %v; one caller's deadline or cancellation must not break other callers' calls", err)
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 5 {
		t.Errorf("%d calls with live contexts failed in all", n)
	}
}

// testSpread protects users of a multi-node store from one overloaded node
// (and the suite from checks that never crossed nodes): keys land on every
// node. It runs only when the harness sets Nodes > 1 and Locate.
func (s *suite) testSpread(t *testing.T) {
	if s.h.Locate == nil || s.h.Nodes <= 1 {
		t.Skip("single node, or Harness.Locate not set")
	}
	e := s.open(t)
	keys := e.keys("spread", 100)
	e.fill(keys, func(i int) []byte { return []byte("x") }, longTTL)
	s.requireSpread(e, keys)
}

// testClosed protects users from a store that silently keeps working (or
// hangs, or panics) after Close: every call fails with hoard.ErrClosed,
// promptly, and Close is idempotent, even while other goroutines are busy.
func (s *suite) testClosed(t *testing.T) {
	t.Run("Calls", func(t *testing.T) {
		e := s.open(t)
		k := e.key("k")
		e.set(k, []byte("v"), longTTL)
		if err := e.st.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
		if err := e.st.Close(); err != nil {
			t.Errorf("second Close = %v; Close must be idempotent", err)
		}
		for _, c := range s.calls(e.ctx, e, k) {
			start := time.Now()
			err := c.call()
			took := time.Since(start)
			if !errors.Is(err, hoard.ErrClosed) {
				t.Errorf("%s after Close = %v; want an error matching hoard.ErrClosed", c.name, err)
			}
			if took > s.h.Timeout+Slack {
				t.Errorf("%s after Close took %v; want an error within %v", c.name, took, s.h.Timeout+Slack)
			}
		}
	})

	t.Run("WhileBusy", func(t *testing.T) {
		// Calls in flight when Close runs may succeed or fail, but must not
		// panic or race; calls that start after Close returns fail.
		e := s.open(t)
		keys := e.keys("busy", 8)
		var closed atomic.Bool
		var ops atomic.Int64
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Go(func() {
				for i := 0; ; i++ {
					after := closed.Load()
					k := keys[(w+i)%len(keys)]
					var err error
					switch i % 3 {
					case 0:
						err = e.st.Set(e.ctx, k, []byte("v"), longTTL)
					case 1:
						_, _, err = e.st.Get(e.ctx, k)
					case 2:
						_, err = e.st.GetMulti(e.ctx, keys[:3])
					}
					ops.Add(1)
					if after {
						if !errors.Is(err, hoard.ErrClosed) {
							t.Errorf("call started after Close returned: %v; want hoard.ErrClosed", err)
						}
						return
					}
				}
			})
		}
		if !eventually(10*time.Second, time.Millisecond, func() bool { return ops.Load() >= 60 }) {
			t.Errorf("concurrent calls made only %d calls in 10s", ops.Load())
		}
		var cwg sync.WaitGroup
		for range 2 {
			cwg.Go(func() {
				if err := e.st.Close(); err != nil {
					t.Errorf("concurrent Close = %v", err)
				}
			})
		}
		cwg.Wait()
		closed.Store(true)
		wg.Wait()
	})
}

// call is one store call, named for messages.
type call struct {
	name string
	call func() error
}

// calls returns one call of each store method on key (and its neighbours),
// made with ctx: the methods of hoard.Store, and DeletePattern when the
// store implements hoard.PatternDeleter.
func (s *suite) calls(ctx context.Context, e *env, key string) []call {
	cs := []call{
		{"Get", func() error { _, _, err := e.st.Get(ctx, key); return err }},
		{"GetMulti", func() error { _, err := e.st.GetMulti(ctx, []string{key, key + ":2", key + ":3"}); return err }},
		{"Set", func() error { return e.st.Set(ctx, key, []byte("v2"), longTTL) }},
		{"Add", func() error { _, err := e.st.Add(ctx, key+":add", []byte("v"), longTTL); return err }},
		{"Touch", func() error { _, err := e.st.Touch(ctx, key, longTTL); return err }},
		{"Delete", func() error { return e.st.Delete(ctx, key+":del", key+":del2") }},
		{"Exists", func() error { _, err := e.st.Exists(ctx, key); return err }},
		{"Ping", func() error { return e.st.Ping(ctx) }},
	}
	if pd, ok := e.st.(hoard.PatternDeleter); ok {
		cs = append(cs, call{"DeletePattern", func() error { _, err := pd.DeletePattern(ctx, key+":pat:*"); return err }})
	}
	return cs
}
