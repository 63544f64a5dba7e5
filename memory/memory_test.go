package memory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/memory"
)

var _ hoard.Store = (*memory.Store)(nil)

var ctx = context.Background()

const hour = time.Hour

func newStore(t testing.TB, opts memory.Options) *memory.Store {
	t.Helper()
	s, err := memory.New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func set(t testing.TB, s *memory.Store, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Set(ctx, key, value, ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func get(t testing.TB, s *memory.Store, key string) ([]byte, bool) {
	t.Helper()
	v, found, err := s.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v, found
}

// wantValue fails unless key holds exactly want (a non-nil empty slice for
// an empty want).
func wantValue(t testing.TB, s *memory.Store, key string, want []byte) {
	t.Helper()
	v, found := get(t, s, key)
	if !found || v == nil || !bytes.Equal(v, want) {
		t.Errorf("Get(%q) = %q (nil=%v), found=%v; want %q, found=true", key, v, v == nil, found, want)
	}
}

func wantAbsent(t testing.TB, s *memory.Store, key string) {
	t.Helper()
	if v, found := get(t, s, key); found || v != nil {
		t.Errorf("Get(%q) = %q, found=%v; want a miss", key, v, found)
	}
}

func TestNew(t *testing.T) {
	s := newStore(t, memory.Options{})
	if got := s.MaxBytes(); got != 67108864 {
		t.Errorf("zero Options: MaxBytes() = %d, want 67108864", got)
	}
	s = newStore(t, memory.Options{MaxBytes: 12345})
	if got := s.MaxBytes(); got != 12345 {
		t.Errorf("MaxBytes() = %d, want 12345", got)
	}
	_, err := memory.New(memory.Options{MaxBytes: -1})
	if err == nil || !strings.Contains(err.Error(), "MaxBytes") || !strings.Contains(err.Error(), "CACHE_MEMORY_MAX_BYTES") {
		t.Errorf("New(MaxBytes: -1) error = %v; want one naming MaxBytes and CACHE_MEMORY_MAX_BYTES", err)
	}
	for _, c := range []struct {
		opts memory.Options
		want int64
	}{
		{memory.Options{}, 8 << 20},                                    // MaxBytes/8 of the default 64 MiB
		{memory.Options{MaxBytes: 12345}, 12345 / 8},                   // MaxBytes/8
		{memory.Options{MaxBytes: 12345, MaxValueBytes: 1000}, 1000},   // as given
		{memory.Options{MaxBytes: 12345, MaxValueBytes: 99999}, 12345}, // at most MaxBytes
	} {
		if got := newStore(t, c.opts).MaxValueBytes(); got != c.want {
			t.Errorf("New(%+v): MaxValueBytes() = %d, want %d", c.opts, got, c.want)
		}
	}
	_, err = memory.New(memory.Options{MaxValueBytes: -1})
	if err == nil || !strings.Contains(err.Error(), "MaxValueBytes") {
		t.Errorf("New(MaxValueBytes: -1) error = %v; want one naming MaxValueBytes", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping = %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	s := newStore(t, memory.Options{})
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	cases := []struct {
		key   string
		value []byte
	}{
		{"bytes", all},
		{"text", []byte("hello")},
		{"", []byte("empty key")},
		{"key with\x00nul and ключ", []byte{0}},
		{"big", bytes.Repeat([]byte("x"), 1<<20)},
	}
	for _, c := range cases {
		set(t, s, c.key, c.value, hour)
	}
	for _, c := range cases {
		wantValue(t, s, c.key, c.value)
	}

	// Empty values are hits, whether Set as empty or as nil.
	set(t, s, "empty", []byte{}, hour)
	set(t, s, "nil", nil, hour)
	wantValue(t, s, "empty", []byte{})
	wantValue(t, s, "nil", []byte{})

	// Absent: nil, false, nil.
	v, found, err := s.Get(ctx, "absent")
	if v != nil || found || err != nil {
		t.Errorf("Get(absent) = %q, %v, %v; want nil, false, nil", v, found, err)
	}

	// Overwrite, also with a shorter and an empty value.
	set(t, s, "o", []byte("first, longer value"), hour)
	set(t, s, "o", []byte("second"), hour)
	wantValue(t, s, "o", []byte("second"))
	set(t, s, "o", nil, hour)
	wantValue(t, s, "o", []byte{})
}

func TestSetAndAddCopyTheValue(t *testing.T) {
	s := newStore(t, memory.Options{})
	buf := []byte("original")
	set(t, s, "set", buf, hour)
	if added, err := s.Add(ctx, "add", buf, hour); err != nil || !added {
		t.Fatalf("Add = %v, %v", added, err)
	}
	copy(buf, "XXXXXXXX")
	wantValue(t, s, "set", []byte("original"))
	wantValue(t, s, "add", []byte("original"))
}

func TestGetReturnsTheStoredSlice(t *testing.T) {
	// Documented: Get does not copy. Two reads share the backing array.
	s := newStore(t, memory.Options{})
	set(t, s, "k", []byte("value"), hour)
	a, _ := get(t, s, "k")
	b, _ := get(t, s, "k")
	m, err := s.GetMulti(ctx, []string{"k"})
	if err != nil {
		t.Fatal(err)
	}
	if &a[0] != &b[0] || &a[0] != &m[0][0] {
		t.Error("Get and GetMulti return copies; want the stored slice")
	}
}

func TestGetMulti(t *testing.T) {
	s := newStore(t, memory.Options{})
	set(t, s, "a", []byte("A"), hour)
	set(t, s, "b", []byte{}, hour)
	set(t, s, "c", []byte("C"), hour)
	cases := []struct {
		keys []string
		want [][]byte
	}{
		{[]string{"a", "b", "c"}, [][]byte{[]byte("A"), {}, []byte("C")}},
		{[]string{"c", "x", "a"}, [][]byte{[]byte("C"), nil, []byte("A")}},
		{[]string{"a", "x", "a", "b", "x", "b"}, [][]byte{[]byte("A"), nil, []byte("A"), {}, nil, {}}},
		{[]string{"x", "y"}, [][]byte{nil, nil}},
		{nil, [][]byte{}},
	}
	for _, c := range cases {
		got, err := s.GetMulti(ctx, c.keys)
		if err != nil {
			t.Fatalf("GetMulti(%q): %v", c.keys, err)
		}
		if len(got) != len(c.want) {
			t.Fatalf("GetMulti(%q) returned %d values, want %d", c.keys, len(got), len(c.want))
		}
		for i := range got {
			if (got[i] == nil) != (c.want[i] == nil) || !bytes.Equal(got[i], c.want[i]) {
				t.Errorf("GetMulti(%q)[%d] = %q (nil=%v), want %q (nil=%v)", c.keys, i, got[i], got[i] == nil, c.want[i], c.want[i] == nil)
			}
		}
	}
}

func TestInvalidTTL(t *testing.T) {
	s := newStore(t, memory.Options{})
	for _, ttl := range []time.Duration{0, -1, -time.Hour} {
		if err := s.Set(ctx, "k", []byte("v"), ttl); !errors.Is(err, hoard.ErrInvalidTTL) {
			t.Errorf("Set(ttl=%v) = %v, want ErrInvalidTTL", ttl, err)
		}
		if added, err := s.Add(ctx, "k", []byte("v"), ttl); added || !errors.Is(err, hoard.ErrInvalidTTL) {
			t.Errorf("Add(ttl=%v) = %v, %v; want false, ErrInvalidTTL", ttl, added, err)
		}
		if found, err := s.Touch(ctx, "k", ttl); found || !errors.Is(err, hoard.ErrInvalidTTL) {
			t.Errorf("Touch(ttl=%v) = %v, %v; want false, ErrInvalidTTL", ttl, found, err)
		}
	}
	wantAbsent(t, s, "k")
}

func TestTTL(t *testing.T) {
	const short = 200 * time.Millisecond // long enough for a loaded machine to make the calls before it
	s := newStore(t, memory.Options{})
	set(t, s, "expires", []byte("v"), short)
	set(t, s, "refreshed", []byte("v"), short)
	set(t, s, "shortened", []byte("v"), hour)
	set(t, s, "kept", []byte("v"), hour)
	set(t, s, "addedTo", []byte("v"), short)
	set(t, s, "pattern:expires", []byte("v"), short)

	set(t, s, "refreshed", []byte("v2"), hour) // Set replaces the TTL
	set(t, s, "shortened", []byte("v2"), short)
	if added, err := s.Add(ctx, "addedTo", []byte("lost"), hour); err != nil || added {
		t.Fatalf("Add(present) = %v, %v; want false, nil", added, err)
	}
	wantValue(t, s, "expires", []byte("v"))
	if ok, _ := s.Exists(ctx, "expires"); !ok {
		t.Error("Exists before the TTL = false")
	}

	time.Sleep(2 * short)

	for _, k := range []string{"expires", "shortened", "addedTo", "pattern:expires"} {
		wantAbsent(t, s, k)
		if ok, err := s.Exists(ctx, k); ok || err != nil {
			t.Errorf("Exists(%q) after its TTL = %v, %v; want false, nil", k, ok, err)
		}
	}
	wantValue(t, s, "refreshed", []byte("v2"))
	wantValue(t, s, "kept", []byte("v"))
	if got, _ := s.GetMulti(ctx, []string{"expires", "kept"}); got[0] != nil || got[1] == nil {
		t.Errorf("GetMulti after the TTL = %q; want [nil, v]", got)
	}
	if n, err := s.DeletePattern(ctx, "pattern:*"); n != 0 || err != nil {
		t.Errorf("DeletePattern of expired keys only = %d, %v; want 0, nil", n, err)
	}
	// An expired key is absent for Add.
	if added, err := s.Add(ctx, "expires", []byte("new"), hour); err != nil || !added {
		t.Errorf("Add(expired) = %v, %v; want true, nil", added, err)
	}
	wantValue(t, s, "expires", []byte("new"))
}

// TestTouch: Touch moves otter's own deadline of the entry (Get, which
// trusts otter's expiry, misses a key touched shorter once that TTL is
// over, and finds one touched longer after its first TTL), keeps the value
// and its weight, and reports and creates nothing for an absent or expired
// key.
func TestTouch(t *testing.T) {
	const short = 200 * time.Millisecond // long enough for a loaded machine to make the calls before it
	s := newStore(t, memory.Options{})
	set(t, s, "longer", []byte("kept"), short)
	set(t, s, "shorter", []byte("short"), hour)
	weighed := s.WeightedSize()
	start := time.Now()
	for _, c := range []struct {
		key  string
		ttl  time.Duration
		want bool
	}{{"longer", hour, true}, {"shorter", short, true}, {"absent", hour, false}} {
		if found, err := s.Touch(ctx, c.key, c.ttl); err != nil || found != c.want {
			t.Fatalf("Touch(%q, %v) = %v, %v; want %v, nil", c.key, c.ttl, found, err, c.want)
		}
	}
	wantValue(t, s, "longer", []byte("kept"))
	if v, found := get(t, s, "shorter"); time.Since(start) < short/2 && (!found || string(v) != "short") {
		t.Errorf("Get of a key touched with TTL %v right after = %q, %v; want \"short\"", short, v, found)
	}
	wantAbsent(t, s, "absent")
	if ws := s.WeightedSize(); ws != weighed {
		t.Errorf("WeightedSize after Touch = %d, want %d (unchanged)", ws, weighed)
	}
	set(t, s, "expired", []byte("v"), time.Millisecond)
	time.Sleep(2 * time.Millisecond)
	if found, err := s.Touch(ctx, "expired", hour); err != nil || found {
		t.Errorf("Touch of an expired key = %v, %v; want false, nil", found, err)
	}
	wantAbsent(t, s, "expired")

	time.Sleep(2 * short)
	wantAbsent(t, s, "shorter")
	if ok, err := s.Exists(ctx, "shorter"); ok || err != nil {
		t.Errorf("Exists of a key touched with TTL %v, %v later = %v, %v; want false", short, 2*short, ok, err)
	}
	wantValue(t, s, "longer", []byte("kept"))
	if found, err := s.Touch(ctx, "shorter", hour); err != nil || found {
		t.Errorf("Touch of a key whose touched TTL ran out = %v, %v; want false, nil", found, err)
	}
	wantAbsent(t, s, "shorter")
}

func TestAdd(t *testing.T) {
	s := newStore(t, memory.Options{})
	if added, err := s.Add(ctx, "k", []byte("v1"), hour); err != nil || !added {
		t.Fatalf("Add(absent) = %v, %v; want true, nil", added, err)
	}
	if added, err := s.Add(ctx, "k", []byte("v2"), hour); err != nil || added {
		t.Fatalf("Add(present) = %v, %v; want false, nil", added, err)
	}
	wantValue(t, s, "k", []byte("v1"))
	set(t, s, "empty", nil, hour)
	if added, _ := s.Add(ctx, "empty", []byte("x"), hour); added {
		t.Error("Add over a present empty value reported added")
	}
	wantValue(t, s, "empty", []byte{})
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if added, err := s.Add(ctx, "k", []byte{}, hour); err != nil || !added {
		t.Fatalf("Add(deleted) = %v, %v; want true, nil", added, err)
	}
	wantValue(t, s, "k", []byte{})
}

func TestAddConcurrent(t *testing.T) {
	s := newStore(t, memory.Options{})
	const callers = 50
	for round := range 20 {
		key := fmt.Sprint("race", round)
		var wins atomic.Int32
		winner := make(chan int, callers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				<-start
				added, err := s.Add(ctx, key, []byte(fmt.Sprint("caller ", i)), hour)
				if err != nil {
					t.Errorf("Add: %v", err)
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
			t.Fatalf("round %d: %d of %d concurrent Adds reported added, want exactly 1", round, n, callers)
		}
		wantValue(t, s, key, []byte(fmt.Sprint("caller ", <-winner)))
	}
}

func TestDelete(t *testing.T) {
	s := newStore(t, memory.Options{})
	for i := range 10 {
		set(t, s, fmt.Sprint("k", i), []byte("v"), hour)
	}
	if err := s.Delete(ctx, "k0", "k1", "absent", "k2", "k2"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.Delete(ctx); err != nil {
		t.Fatalf("Delete(no keys): %v", err)
	}
	for i := range 10 {
		k := fmt.Sprint("k", i)
		if ok, _ := s.Exists(ctx, k); ok != (i > 2) {
			t.Errorf("Exists(%q) = %v, want %v", k, ok, i > 2)
		}
	}
}

func TestDeletePattern(t *testing.T) {
	keys := []string{
		"user:1", "user:10", "user:2", "user:1:posts",
		"alice_posts:page_1:items_per_page:10", "alice_posts:page_2:items_per_page:10",
		"alice_post_cache:7", "bob_posts:page_1:items_per_page:10",
		"lit*eral", "literal", "lit?eral", "", "widget:42", "widgets:page_1",
	}
	cases := []struct {
		pattern string
		want    []string
	}{
		{"user:1", []string{"user:1"}}, // a real glob: no implicit '*'
		{"user:1*", []string{"user:1", "user:10", "user:1:posts"}},
		{"user:?", []string{"user:1", "user:2"}},
		{"user:[12]", []string{"user:1", "user:2"}},
		{"user:[^1]", []string{"user:2"}},
		{"alice_posts:*", []string{"alice_posts:page_1:items_per_page:10", "alice_posts:page_2:items_per_page:10"}},
		{"*_posts:page_1:*", []string{"alice_posts:page_1:items_per_page:10", "bob_posts:page_1:items_per_page:10"}},
		{"lit\\*eral", []string{"lit*eral"}},
		{"lit*eral", []string{"lit*eral", "literal", "lit?eral"}},
		{"widget:*", []string{"widget:42"}},
		{"nothing:*", nil},
		{"", []string{""}},
		{"*", keys},
	}
	for _, c := range cases {
		t.Run(c.pattern, func(t *testing.T) {
			s := newStore(t, memory.Options{})
			for _, k := range keys {
				set(t, s, k, []byte("v"), hour)
			}
			n, err := s.DeletePattern(ctx, c.pattern)
			if err != nil || n != len(c.want) {
				t.Errorf("DeletePattern(%q) = %d, %v; want %d, nil", c.pattern, n, err, len(c.want))
			}
			for _, k := range keys {
				ok, _ := s.Exists(ctx, k)
				if deleted := slices.Contains(c.want, k); ok == deleted {
					t.Errorf("after DeletePattern(%q): Exists(%q) = %v, want %v", c.pattern, k, ok, !deleted)
				}
			}
		})
	}
}

func TestDeletePatternStopsWithContext(t *testing.T) {
	s := newStore(t, memory.Options{})
	for i := range 5000 {
		set(t, s, fmt.Sprint("k", i), []byte("v"), hour)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	n, err := s.DeletePattern(cctx, "k*")
	if !errors.Is(err, context.Canceled) || n >= 5000 {
		t.Errorf("DeletePattern(canceled ctx) = %d, %v; want fewer than 5000, context.Canceled", n, err)
	}
}

// TestByteBound writes three times MaxBytes and checks the bound, and that
// WeightedSize is exactly the weight of the entries that remain.
func TestByteBound(t *testing.T) {
	const maxBytes = 256 << 10
	s := newStore(t, memory.Options{MaxBytes: maxBytes})
	value := bytes.Repeat([]byte("v"), 1000)
	var keys []string
	written := int64(0)
	for i := 0; written < 3*maxBytes; i++ {
		k := fmt.Sprintf("key:%06d", i)
		keys = append(keys, k)
		set(t, s, k, value, hour)
		written += int64(len(k) + len(value))
		// Read some keys often so that eviction has a frequency signal.
		get(t, s, keys[i%10])
	}
	ws := s.WeightedSize()
	if ws > maxBytes {
		t.Errorf("after writing %d bytes: WeightedSize = %d, want <= MaxBytes %d", written, ws, maxBytes)
	}
	var sum int64
	present := 0
	for _, k := range keys {
		if ok, _ := s.Exists(ctx, k); ok {
			present++
			sum += int64(len(k)+len(value)) + memory.EntryOverhead
		}
	}
	if present == 0 || present == len(keys) {
		t.Fatalf("%d of %d entries present; want eviction to keep some", present, len(keys))
	}
	if sum != ws {
		t.Errorf("WeightedSize = %d, but the %d present entries weigh %d (len(key)+len(value)+EntryOverhead)", ws, present, sum)
	}
	if max := maxBytes / (len("key:000000") + len(value) + memory.EntryOverhead); present > max {
		t.Errorf("%d entries present, more than the %d that fit", present, max)
	}

	// Tiny entries are charged their overhead: at most MaxBytes/EntryOverhead.
	s2 := newStore(t, memory.Options{MaxBytes: 64 << 10})
	for i := range 10000 {
		set(t, s2, fmt.Sprint(i), []byte{1}, hour)
	}
	if ws := s2.WeightedSize(); ws > 64<<10 {
		t.Errorf("tiny entries: WeightedSize = %d, want <= %d", ws, 64<<10)
	}
	if n := s2.Len(); n > (64<<10)/memory.EntryOverhead {
		t.Errorf("tiny entries: Len = %d, want <= %d (MaxBytes/EntryOverhead)", n, (64<<10)/memory.EntryOverhead)
	}
}

func TestValueLargerThanMaxBytes(t *testing.T) {
	s := newStore(t, memory.Options{MaxBytes: 4096, MaxValueBytes: 4096})
	set(t, s, "k", []byte("old"), hour)
	if err := s.Set(ctx, "k", make([]byte, 4096), hour); !errors.Is(err, hoard.ErrValueTooLarge) {
		t.Errorf("Set of an entry heavier than MaxBytes = %v; want an error matching hoard.ErrValueTooLarge", err)
	}
	wantAbsent(t, s, "k") // not kept, and the old value is gone too
	if added, err := s.Add(ctx, "k", make([]byte, 4096), hour); added || !errors.Is(err, hoard.ErrValueTooLarge) {
		t.Errorf("Add of an entry heavier than MaxBytes = %v, %v; want false and an error matching hoard.ErrValueTooLarge", added, err)
	}
	wantAbsent(t, s, "k")
	if ws := s.WeightedSize(); ws != 0 {
		t.Errorf("WeightedSize = %d, want 0", ws)
	}
}

// TestTinyMaxBytes is CACHE_MEMORY_MAX_BYTES=300: no response fits, and
// Set and Add say so instead of reporting a value stored that is not.
func TestTinyMaxBytes(t *testing.T) {
	s := newStore(t, memory.Options{MaxBytes: 300})
	value := bytes.Repeat([]byte("v"), 500)
	err := s.Set(ctx, "page", value, hour)
	if !errors.Is(err, hoard.ErrValueTooLarge) || !errors.Is(err, hoard.ErrRefused) || !strings.Contains(err.Error(), "MaxValueBytes") {
		t.Errorf("Set of 500 bytes with MaxBytes 300 = %v; want an error matching hoard.ErrValueTooLarge that names MaxValueBytes", err)
	}
	if added, err := s.Add(ctx, "page", value, hour); added || !errors.Is(err, hoard.ErrValueTooLarge) {
		t.Errorf("Add of 500 bytes with MaxBytes 300 = %v, %v; want false and an error matching hoard.ErrValueTooLarge", added, err)
	}
	wantAbsent(t, s, "page")
	if n := s.Len(); n != 0 {
		t.Errorf("Len = %d, want 0", n)
	}
}

// TestMaxValueBytes: an entry of exactly MaxValueBytes is stored, one byte
// more is refused by Set (which also drops the key's former value) and by
// Add (which leaves an existing value alone).
func TestMaxValueBytes(t *testing.T) {
	const limit = 1000
	s := newStore(t, memory.Options{MaxBytes: 64 << 10, MaxValueBytes: limit})
	fits := make([]byte, limit-memory.EntryOverhead-len("k"))
	set(t, s, "k", fits, hour)
	wantValue(t, s, "k", fits)
	if added, err := s.Add(ctx, "a", fits, hour); err != nil || !added {
		t.Fatalf("Add of an entry of exactly MaxValueBytes = %v, %v; want true, nil", added, err)
	}
	over := make([]byte, len(fits)+1)
	if added, err := s.Add(ctx, "a", over, hour); added || !errors.Is(err, hoard.ErrValueTooLarge) {
		t.Errorf("Add of an entry of MaxValueBytes+1 over a present key = %v, %v; want false and an error matching hoard.ErrValueTooLarge", added, err)
	}
	wantValue(t, s, "a", fits) // Add refused: the present value stays
	if err := s.Set(ctx, "k", over, hour); !errors.Is(err, hoard.ErrValueTooLarge) {
		t.Errorf("Set of an entry of MaxValueBytes+1 = %v; want an error matching hoard.ErrValueTooLarge", err)
	}
	wantAbsent(t, s, "k") // no old value survives a refused overwrite
	if added, err := s.Add(ctx, "new", over, hour); added || !errors.Is(err, hoard.ErrValueTooLarge) {
		t.Errorf("Add of an entry of MaxValueBytes+1 = %v, %v; want false and an error matching hoard.ErrValueTooLarge", added, err)
	}
	wantAbsent(t, s, "new")
	if ws, want := s.WeightedSize(), int64(limit); ws != want {
		t.Errorf("WeightedSize = %d, want %d (only \"a\")", ws, want)
	}
}

// TestValueAtLimitIsKept: with the default MaxValueBytes, an entry of
// exactly that weight is readable right after Set, and after otter's
// maintenance has run, whatever MaxBytes:
//
//   - written into an empty store, and then followed by a few small
//     entries (as a Cache writes a generation and an epoch with a
//     response), which stay too;
//   - written into a store three quarters full of entries read twice each,
//     and then without evicting any of them.
//
// Otter never admits such an entry through its window (about 1% of
// MaxBytes): once the store must evict for it, it competes with the
// entries it would displace on how often they were used, and may lose.
// MaxBytes/8 leaves room for it in any store up to 7/8 full, so there it
// is kept without that competition; with a default of MaxBytes, the small
// entries written after it evict it, and with MaxBytes/2 the store three
// quarters full must evict for it.
func TestValueAtLimitIsKept(t *testing.T) {
	const key = "resource:{widgets}:entry"
	atLimit := func(s *memory.Store, fill byte) []byte {
		return bytes.Repeat([]byte{fill}, int(s.MaxValueBytes())-memory.EntryOverhead-len(key))
	}
	for _, maxBytes := range []int64{4096, 64 << 10, 1 << 20, 0} {
		for try := range 10 {
			s := newStore(t, memory.Options{MaxBytes: maxBytes})
			value := atLimit(s, byte(try))
			set(t, s, key, value, hour)
			wantValue(t, s, key, value)
			s.Len() // otter's maintenance: the policy sees the write
			wantValue(t, s, key, value)
			for i := range 3 {
				k := fmt.Sprintf("resource:{widgets}:gen:%d", i)
				if added, err := s.Add(ctx, k, []byte("12345678"), hour); err != nil || !added {
					t.Fatalf("Add(%q) = %v, %v", k, added, err)
				}
			}
			s.Len()
			if _, found := get(t, s, key); !found {
				t.Fatalf("MaxBytes %d (try %d): an entry of MaxValueBytes %d was evicted by 3 small writes into an otherwise empty store", s.MaxBytes(), try, s.MaxValueBytes())
			}
			for i := range 3 {
				if _, found := get(t, s, fmt.Sprintf("resource:{widgets}:gen:%d", i)); !found {
					t.Fatalf("MaxBytes %d (try %d): small entry %d evicted next to an entry of MaxValueBytes", s.MaxBytes(), try, i)
				}
			}
			s.Close()
		}
		for try := range 3 {
			s := newStore(t, memory.Options{MaxBytes: maxBytes})
			other := make([]byte, max(100, s.MaxBytes()/2000))
			n := 0
			for ; s.WeightedSize() < s.MaxBytes()*3/4-int64(len(other))-memory.EntryOverhead-16; n++ {
				k := fmt.Sprint("other:", n)
				set(t, s, k, other, hour)
				get(t, s, k)
				get(t, s, k)
			}
			value := atLimit(s, byte(try))
			set(t, s, key, value, hour)
			if got := s.Len(); got != n+1 {
				t.Errorf("MaxBytes %d (try %d): %d entries left of the %d written; an entry of MaxValueBytes %d into a store three quarters full must not need an eviction", s.MaxBytes(), try, got, n+1, s.MaxValueBytes())
			}
			if _, found := get(t, s, key); !found {
				t.Fatalf("MaxBytes %d (try %d): an entry of MaxValueBytes %d written into a store three quarters full was evicted at once", s.MaxBytes(), try, s.MaxValueBytes())
			}
			s.Close()
		}
	}
}

// TestEntryOverhead checks that EntryOverhead is an honest estimate: the
// heap grows by about that much per entry beyond its key and value.
func TestEntryOverhead(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap over 20,000 entries")
	}
	const n = 20000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%012d", i) // 16 bytes
	}
	value := make([]byte, 16)
	s := newStore(t, memory.Options{MaxBytes: n * (16 + 16 + memory.EntryOverhead) * 11 / 10})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, k := range keys {
		set(t, s, k, value, hour)
	}
	s.WeightedSize() // apply buffered writes
	runtime.GC()
	runtime.ReadMemStats(&after)
	if s.Len() != n {
		t.Fatalf("Len = %d, want all %d entries kept", s.Len(), n)
	}
	perEntry := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n - 16 // the key was allocated before
	overhead := perEntry - float64(len(value))
	t.Logf("heap per entry beyond key and value: %.0f bytes (EntryOverhead = %d)", overhead, memory.EntryOverhead)
	if overhead < memory.EntryOverhead/2 || overhead > memory.EntryOverhead*3/2 {
		t.Errorf("measured overhead %.0f bytes per entry, EntryOverhead = %d: update the constant", overhead, memory.EntryOverhead)
	}
	runtime.KeepAlive(keys)
}

func TestClosed(t *testing.T) {
	s := newStore(t, memory.Options{})
	set(t, s, "k", []byte("v"), hour)
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	calls := map[string]error{}
	_, _, calls["Get"] = s.Get(ctx, "k")
	_, calls["GetMulti"] = s.GetMulti(ctx, []string{"k"})
	calls["Set"] = s.Set(ctx, "k", []byte("v"), hour)
	_, calls["Add"] = s.Add(ctx, "new", []byte("v"), hour)
	_, calls["Touch"] = s.Touch(ctx, "k", hour)
	calls["Delete"] = s.Delete(ctx, "k")
	_, calls["DeletePattern"] = s.DeletePattern(ctx, "*")
	_, calls["Exists"] = s.Exists(ctx, "k")
	calls["Ping"] = s.Ping(ctx)
	for name, err := range calls {
		if !errors.Is(err, hoard.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if s.Len() != 0 {
		t.Errorf("Len after Close = %d, want 0 (Close drops the entries)", s.Len())
	}
}

// TestConcurrentUse runs every operation from several goroutines while
// Close happens, for the race detector: calls in flight may succeed or fail
// with ErrClosed, nothing else.
func TestConcurrentUse(t *testing.T) {
	s := newStore(t, memory.Options{MaxBytes: 64 << 10})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Go(func() {
			buf := make([]byte, 100)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("g%d:%d", g, i%200)
				buf[0] = byte(i)
				var err error
				switch i % 8 {
				case 0, 1:
					err = s.Set(ctx, k, buf, time.Duration(1+i%5)*time.Millisecond)
				case 2:
					var v []byte
					if v, _, err = s.Get(ctx, k); len(v) > 0 && len(v) != 100 {
						t.Errorf("Get returned %d bytes, want 100", len(v))
					}
				case 3:
					_, err = s.GetMulti(ctx, []string{k, "a", k})
				case 4:
					_, err = s.Add(ctx, k, buf, hour)
				case 5:
					err = s.Delete(ctx, k)
				case 6:
					if i%70 == 6 {
						_, err = s.DeletePattern(ctx, fmt.Sprintf("g%d:1*", g))
					} else {
						_, err = s.Exists(ctx, k)
					}
				case 7:
					_, err = s.Touch(ctx, k, time.Duration(1+i%5)*time.Millisecond)
				}
				if err != nil && !errors.Is(err, hoard.ErrClosed) {
					t.Errorf("op %d: %v", i%8, err)
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	s.Close()
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
}

// TestHitPathDoesNotAllocate: Get allocates nothing, GetMulti only its
// result slice.
func TestHitPathDoesNotAllocate(t *testing.T) {
	s := newStore(t, memory.Options{})
	keys := []string{"a", "b", "c", "d"}
	for _, k := range keys {
		set(t, s, k, []byte("value of "+k), hour)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if _, found, _ := s.Get(ctx, "b"); !found {
			t.Fatal("miss")
		}
	}); n != 0 {
		t.Errorf("Get allocates %v times per hit, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if v, _ := s.GetMulti(ctx, keys); v[3] == nil {
			t.Fatal("miss")
		}
	}); n > 1 {
		t.Errorf("GetMulti allocates %v times per call, want 1 (the result)", n)
	}
}
