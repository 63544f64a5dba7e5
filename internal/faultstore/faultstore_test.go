package faultstore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/faultstore"
	"github.com/hoardcache/hoard/memory"
)

var errBoom = errors.New("boom")

func newStore(t *testing.T) faultstore.Store {
	t.Helper()
	m, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return faultstore.New(m)
}

// call runs method m on s with key "k" (pattern "k*") and returns its error.
func call(ctx context.Context, s faultstore.Store, m faultstore.Method) error {
	var err error
	switch m {
	case faultstore.Get:
		_, _, err = s.Get(ctx, "k")
	case faultstore.GetMulti:
		_, err = s.GetMulti(ctx, []string{"k"})
	case faultstore.Set:
		err = s.Set(ctx, "k", []byte("v"), time.Minute)
	case faultstore.Add:
		_, err = s.Add(ctx, "k", []byte("v"), time.Minute)
	case faultstore.Touch:
		_, err = s.Touch(ctx, "k", time.Minute)
	case faultstore.Delete:
		err = s.Delete(ctx, "k")
	case faultstore.DeletePattern:
		pd, ok := s.(hoard.PatternDeleter)
		if !ok {
			return errors.New("the Store is not a hoard.PatternDeleter")
		}
		_, err = pd.DeletePattern(ctx, "k*")
	case faultstore.Exists:
		_, err = s.Exists(ctx, "k")
	case faultstore.Ping:
		err = s.Ping(ctx)
	case faultstore.Close:
		err = s.Close()
	}
	return err
}

var all = []faultstore.Method{faultstore.Get, faultstore.GetMulti, faultstore.Set, faultstore.Add, faultstore.Touch,
	faultstore.Delete, faultstore.DeletePattern, faultstore.Exists, faultstore.Ping, faultstore.Close}

// TestForwardsAndCounts: without faults every method reaches the wrapped
// store (the values round-trip) and is counted under its own name.
func TestForwardsAndCounts(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if err := s.Set(ctx, "a", []byte("1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if added, err := s.Add(ctx, "a", []byte("2"), time.Minute); added || err != nil {
		t.Fatalf("Add of a present key: %v %v", added, err)
	}
	if v, found, err := s.Get(ctx, "a"); string(v) != "1" || !found || err != nil {
		t.Fatalf("Get: %q %v %v", v, found, err)
	}
	if vs, err := s.GetMulti(ctx, []string{"a", "b"}); err != nil || string(vs[0]) != "1" || vs[1] != nil {
		t.Fatalf("GetMulti: %q %v", vs, err)
	}
	if found, err := s.Touch(ctx, "a", time.Minute); !found || err != nil {
		t.Fatalf("Touch: %v %v", found, err)
	}
	if ok, err := s.Exists(ctx, "a"); !ok || err != nil {
		t.Fatalf("Exists: %v %v", ok, err)
	}
	if n, err := s.(hoard.PatternDeleter).DeletePattern(ctx, "a*"); n != 1 || err != nil {
		t.Fatalf("DeletePattern: %d %v", n, err)
	}
	if err := s.Delete(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping after Close reached no closed store")
	}
	for _, m := range all {
		want := int64(1)
		if m == faultstore.Ping {
			want = 2
		}
		if n := s.Calls(m); n != want {
			t.Errorf("Calls(%s) = %d, want %d", m, n, want)
		}
	}
	if n := s.Calls(); n != int64(len(all)+1) {
		t.Errorf("Calls() = %d, want %d", n, len(all)+1)
	}
	if n := s.Calls(faultstore.Get, faultstore.Ping); n != 3 {
		t.Errorf("Calls(Get, Ping) = %d, want 3", n)
	}
	if n := s.InFlight(); n != 0 {
		t.Errorf("InFlight() = %d after every call returned", n)
	}
}

// TestCapabilities: a Store is a hoard.PatternDeleter exactly when the
// store it wraps is one, and never Sharded or SelfTimed (the Cache uses
// the single-server layout and its own deadline over it).
func TestCapabilities(t *testing.T) {
	ctx := context.Background()
	mem, err := memory.New(memory.Options{}) // a PatternDeleter
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	m := faultstore.New(mem)
	if _, ok := m.(hoard.PatternDeleter); !ok {
		t.Errorf("a Store over a PatternDeleter (%T) is not one", m)
	}
	// plain hides every method of the memory store but hoard.Store's.
	type plain struct{ hoard.Store }
	p := faultstore.New(plain{mem})
	if _, ok := p.(hoard.PatternDeleter); ok {
		t.Errorf("a Store over a store without DeletePattern (%T) claims to be a PatternDeleter", p)
	}
	for _, s := range []faultstore.Store{m, p} {
		if _, ok := s.(hoard.Sharded); ok {
			t.Errorf("%T is hoard.Sharded", s)
		}
		if _, ok := s.(hoard.SelfTimed); ok {
			t.Errorf("%T is hoard.SelfTimed", s)
		}
	}
	// The one without DeletePattern still forwards and counts the rest.
	if err := p.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, found, err := p.Get(ctx, "k"); string(v) != "v" || !found || err != nil {
		t.Fatalf("Get: %q %v %v", v, found, err)
	}
	if n := p.Calls(); n != 2 {
		t.Errorf("Calls() = %d, want 2", n)
	}
}

// TestErrByMethod: a fault fails exactly its methods (all but Close when
// none is named), before the wrapped
// store; Inject() heals.
func TestErrByMethod(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	s.Inject(faultstore.Fault{Methods: []faultstore.Method{faultstore.Set, faultstore.Delete}, Err: errBoom})
	for _, m := range all[:len(all)-1] { // Close last
		if err := call(ctx, s, m); errors.Is(err, errBoom) != (m == faultstore.Set || m == faultstore.Delete) {
			t.Errorf("%s: %v", m, err)
		}
	}
	if ok, _ := s.Exists(ctx, "k"); ok {
		t.Error("a failed Set reached the store")
	}
	s.Inject(faultstore.Fault{Err: errBoom})
	for _, m := range all[:len(all)-1] {
		if err := call(ctx, s, m); !errors.Is(err, errBoom) {
			t.Errorf("a fault of every method, %s: %v", m, err)
		}
	}
	s.Inject()
	for _, m := range all {
		if err := call(ctx, s, m); err != nil {
			t.Errorf("%s after Inject(): %v", m, err)
		}
	}
}

// TestKeysAndMiss: Keys limits a fault to the calls with a matching key;
// Miss answers the matching keys as absent while the others hit.
func TestKeysAndMiss(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, k := range []string{"down:1", "up:1"} {
		if err := s.Set(ctx, k, []byte(k), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	down := func(k string) bool { return strings.HasPrefix(k, "down:") }
	s.Inject(
		faultstore.Fault{Methods: []faultstore.Method{faultstore.Get, faultstore.GetMulti}, Keys: down, Miss: true},
		faultstore.Fault{Methods: []faultstore.Method{faultstore.Delete}, Keys: down, Err: errBoom},
	)
	vs, err := s.GetMulti(ctx, []string{"down:1", "up:1", "down:2"})
	if err != nil || vs[0] != nil || string(vs[1]) != "up:1" || vs[2] != nil {
		t.Errorf("GetMulti with down keys: %q %v", vs, err)
	}
	if v, found, err := s.Get(ctx, "down:1"); found || v != nil || err != nil {
		t.Errorf("Get of a down key: %q %v %v", v, found, err)
	}
	if v, found, err := s.Get(ctx, "up:1"); !found || string(v) != "up:1" || err != nil {
		t.Errorf("Get of an up key: %q %v %v", v, found, err)
	}
	if err := s.Delete(ctx, "up:1", "down:1"); !errors.Is(err, errBoom) {
		t.Errorf("Delete with one down key: %v", err)
	}
	if err := s.Delete(ctx, "up:2"); err != nil {
		t.Errorf("Delete of up keys only: %v", err)
	}
	s.Inject(faultstore.Fault{Methods: []faultstore.Method{faultstore.Get}, Miss: true})
	if _, found, _ := s.Get(ctx, "up:1"); found {
		t.Error("Miss without Keys left a key present")
	}
	s.Inject()
	if v, found, _ := s.Get(ctx, "down:1"); !found || string(v) != "down:1" {
		t.Errorf("Miss lost the value in the wrapped store: %q %v", v, found)
	}
}

// TestObserve: Observe sees the method and keys of each call it matches.
func TestObserve(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	var (
		mu   sync.Mutex
		seen []string
	)
	s.Inject(faultstore.Fault{Observe: func(m faultstore.Method, keys []string) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, string(m)+" "+strings.Join(keys, ","))
	}})
	s.GetMulti(ctx, []string{"a", "b"})
	s.(hoard.PatternDeleter).DeletePattern(ctx, "p*")
	s.Ping(ctx)
	s.Close()
	want := []string{"GetMulti a,b", "DeletePattern p*", "Ping "}
	if !slices.Equal(seen, want) {
		t.Errorf("observed %q, want %q", seen, want)
	}
}

// TestDelay: a delayed call waits, then fails with Err; one whose
// context ends first returns the context's error at once.
func TestDelay(t *testing.T) {
	s := newStore(t)
	const d = 50 * time.Millisecond
	s.Inject(faultstore.Fault{Methods: []faultstore.Method{faultstore.Get}, Delay: d, Err: errBoom})
	start := time.Now()
	if err := call(context.Background(), s, faultstore.Get); !errors.Is(err, errBoom) || time.Since(start) < d {
		t.Errorf("delayed Get: %v after %v, want errBoom after %v", err, time.Since(start), d)
	}
	s.Inject(faultstore.Fault{Methods: []faultstore.Method{faultstore.Get}, Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := call(ctx, s, faultstore.Get); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get delayed past its deadline: %v", err)
	}
	if err := call(context.Background(), s, faultstore.Set); err != nil {
		t.Errorf("Set, not delayed: %v", err)
	}
}

// TestGate: a gated call is in flight until the gate closes, then reaches
// the store; a gated call whose context ends returns its error.
func TestGate(t *testing.T) {
	s := newStore(t)
	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	s.Inject(faultstore.Fault{Methods: []faultstore.Method{faultstore.Set}, Gate: gate,
		Observe: func(faultstore.Method, []string) { entered <- struct{}{} }})
	done := make(chan error, 1)
	go func() { done <- call(context.Background(), s, faultstore.Set) }()
	<-entered
	select {
	case err := <-done:
		t.Fatalf("gated Set returned before the gate closed: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	if n := s.InFlight(); n != 1 {
		t.Errorf("InFlight() = %d during the gated Set, want 1", n)
	}
	close(gate)
	if err := <-done; err != nil {
		t.Errorf("Set after the gate closed: %v", err)
	}
	if ok, _ := s.Exists(context.Background(), "k"); !ok {
		t.Error("the released Set did not reach the store")
	}

	s.Inject(faultstore.Fault{Methods: []faultstore.Method{faultstore.Set}, Gate: make(chan struct{})})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := call(ctx, s, faultstore.Set); !errors.Is(err, context.Canceled) {
		t.Errorf("gated Set with a cancelled context: %v", err)
	}
}
