// Package faultstore wraps a hoard.Store for tests: chosen calls fail,
// wait, block until released, or answer misses, and every call is counted
// and can be watched.
//
//	s := faultstore.New(m)
//	c, _ := hoard.New(s, hoard.Config{})
//	s.Inject(faultstore.Fault{Methods: []faultstore.Method{faultstore.Set}, Err: errDown})
//	... // every Set fails with errDown
//	s.Inject() // healthy again
//
// A Store forwards every method of hoard.Store to the store it wraps (it
// does not embed it, so that a method added to the interface cannot bypass
// the faults). Of the optional interfaces of a hoard.Store it keeps only
// what the wrapped store can do, and never claims more:
//
//   - hoard.PatternDeleter: New returns a Store of one of two types, one
//     with DeletePattern (for a wrapped store that has it) and one without,
//     so that a Cache over it detects the same capability as over the
//     wrapped store. (A DeletePattern that only answered
//     hoard.ErrPatternNotSupported would claim the capability: a Cache
//     would then pick the key layout of a store that walks keys, and call
//     it from Clear.)
//   - hoard.Sharded is not forwarded: a Cache over a Store uses the
//     single-server key layout whatever the wrapped store is.
//   - hoard.SelfTimed is not forwarded: a Cache puts its Config.Timeout on
//     the context of each call it makes through a Store, which also ends a
//     fault's Delay or Gate.
package faultstore

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hoardcache/hoard"
)

// Method names a method of hoard.Store or hoard.PatternDeleter.
type Method string

// The methods of hoard.Store, and DeletePattern of hoard.PatternDeleter
// (called only on a Store whose wrapped store implements it).
const (
	Get           Method = "Get"
	GetMulti      Method = "GetMulti"
	Set           Method = "Set"
	Add           Method = "Add"
	Touch         Method = "Touch"
	Delete        Method = "Delete"
	DeletePattern Method = "DeletePattern"
	Exists        Method = "Exists"
	Ping          Method = "Ping"
	Close         Method = "Close"
)

var methods = []Method{Get, GetMulti, Set, Add, Touch, Delete, DeletePattern, Exists, Ping, Close}

// Fault says what the calls it matches do. A call matches when its method
// is one of Methods (any method when Methods is empty) and, when Keys is
// set, Keys reports true for at least one of the call's keys: the keys of
// Get, GetMulti, Set, Add, Touch, Delete and Exists, the pattern of
// DeletePattern; Ping has none. Close takes no fault: it is only counted
// and forwarded.
//
// A matching fault acts in the order of its fields: Observe, Delay, Gate,
// then Err or Miss. A call that several faults match goes through each in
// the order given to Inject, up to the first error.
type Fault struct {
	Methods []Method
	Keys    func(key string) bool

	// Observe, when set, is called with the method and the keys of the
	// call (it must be safe for concurrent use).
	Observe func(m Method, keys []string)
	// Delay makes the call wait that long before it goes on; if its context
	// ends first, the call returns the context's error.
	Delay time.Duration
	// Gate, when set, makes the call wait until Gate is closed; if its
	// context ends first, the call returns the context's error.
	Gate <-chan struct{}
	// Err, when set, is returned by the call, which does not reach the
	// wrapped store.
	Err error
	// Miss makes Get and GetMulti answer the keys Keys matches (every key
	// when Keys is nil) as absent, as a pool answers the keys of a dead
	// server. The wrapped store is asked all the same and keeps them.
	Miss bool
}

// Store is a hoard.Store that applies the injected faults to the calls it
// forwards, made by New. It implements hoard.PatternDeleter exactly when
// the store it wraps does (see the package documentation). It is safe for
// concurrent use; Inject may be called at any time.
type Store interface {
	hoard.Store

	// Inject replaces the faults of the Store with faults (none: every
	// call is forwarded as it is). It affects the calls that arrive
	// afterwards: a call already waiting on a Delay or a Gate keeps
	// waiting (close the Gate to release it).
	Inject(faults ...Fault)

	// Calls returns how many calls of the given methods (of every method
	// when none is given) the Store has received, failed ones included.
	Calls(ms ...Method) int64

	// InFlight returns how many calls have been received and have not
	// returned yet. A call is counted in flight before Calls counts it.
	InFlight() int64
}

// store is the Store of a wrapped store that is not a
// hoard.PatternDeleter.
type store struct {
	next     hoard.Store
	faults   atomic.Pointer[[]Fault]
	calls    map[Method]*atomic.Int64 // fixed by New
	inFlight atomic.Int64
}

// patternStore is the Store of a wrapped store that is a
// hoard.PatternDeleter: a store with DeletePattern.
type patternStore struct {
	*store
	deleter hoard.PatternDeleter // the wrapped store
}

var (
	_ Store                = (*store)(nil)
	_ Store                = (*patternStore)(nil)
	_ hoard.PatternDeleter = (*patternStore)(nil)
)

// New wraps s, with no fault. The Store it returns implements
// hoard.PatternDeleter if and only if s does.
func New(s hoard.Store) Store {
	fs := &store{next: s, calls: map[Method]*atomic.Int64{}}
	for _, m := range methods {
		fs.calls[m] = &atomic.Int64{}
	}
	if pd, ok := s.(hoard.PatternDeleter); ok {
		return &patternStore{store: fs, deleter: pd}
	}
	return fs
}

func (s *store) Inject(faults ...Fault) {
	fs := slices.Clone(faults)
	s.faults.Store(&fs)
}

func (s *store) Calls(ms ...Method) int64 {
	if len(ms) == 0 {
		ms = methods
	}
	var n int64
	for _, m := range ms {
		n += s.calls[m].Load()
	}
	return n
}

func (s *store) InFlight() int64 { return s.inFlight.Load() }

// enter counts a call of m on keys and applies the faults that match it.
// It returns the first fault error and the matching faults with Miss set.
// The caller must call exit when the call returns.
func (s *store) enter(ctx context.Context, m Method, keys ...string) (misses []Fault, err error) {
	s.inFlight.Add(1)
	s.calls[m].Add(1)
	if m == Close {
		return nil, nil
	}
	var faults []Fault
	if p := s.faults.Load(); p != nil {
		faults = *p
	}
	for _, f := range faults {
		if !f.matches(m, keys) {
			continue
		}
		if f.Observe != nil {
			f.Observe(m, keys)
		}
		if err := wait(ctx, f.Delay, f.Gate); err != nil {
			return nil, err
		}
		if f.Err != nil {
			return nil, f.Err
		}
		if f.Miss {
			misses = append(misses, f)
		}
	}
	return misses, nil
}

func (s *store) exit() { s.inFlight.Add(-1) }

func (f *Fault) matches(m Method, keys []string) bool {
	if len(f.Methods) > 0 && !slices.Contains(f.Methods, m) {
		return false
	}
	return f.Keys == nil || slices.ContainsFunc(keys, f.Keys)
}

// wait waits for d, then for gate to close (nil: no gate), or until ctx
// ends.
func wait(ctx context.Context, d time.Duration, gate <-chan struct{}) error {
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// missing reports whether one of the Miss faults misses makes key absent.
func missing(misses []Fault, key string) bool {
	return slices.ContainsFunc(misses, func(f Fault) bool { return f.Keys == nil || f.Keys(key) })
}

// The methods of hoard.Store (and DeletePattern, on a patternStore): each
// goes through the matching faults, then to the wrapped store.

func (s *store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	misses, err := s.enter(ctx, Get, key)
	defer s.exit()
	if err != nil {
		return nil, false, err
	}
	v, found, err := s.next.Get(ctx, key)
	if err == nil && missing(misses, key) {
		return nil, false, nil
	}
	return v, found, err
}

func (s *store) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	misses, err := s.enter(ctx, GetMulti, keys...)
	defer s.exit()
	if err != nil {
		return nil, err
	}
	vals, err := s.next.GetMulti(ctx, keys)
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		if missing(misses, k) {
			vals[i] = nil
		}
	}
	return vals, nil
}

func (s *store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := s.enter(ctx, Set, key)
	defer s.exit()
	if err != nil {
		return err
	}
	return s.next.Set(ctx, key, value, ttl)
}

func (s *store) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	_, err := s.enter(ctx, Add, key)
	defer s.exit()
	if err != nil {
		return false, err
	}
	return s.next.Add(ctx, key, value, ttl)
}

func (s *store) Touch(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	_, err := s.enter(ctx, Touch, key)
	defer s.exit()
	if err != nil {
		return false, err
	}
	return s.next.Touch(ctx, key, ttl)
}

func (s *store) Delete(ctx context.Context, keys ...string) error {
	_, err := s.enter(ctx, Delete, keys...)
	defer s.exit()
	if err != nil {
		return err
	}
	return s.next.Delete(ctx, keys...)
}

func (s *patternStore) DeletePattern(ctx context.Context, pattern string) (int, error) {
	_, err := s.enter(ctx, DeletePattern, pattern)
	defer s.exit()
	if err != nil {
		return 0, err
	}
	return s.deleter.DeletePattern(ctx, pattern)
}

func (s *store) Exists(ctx context.Context, key string) (bool, error) {
	_, err := s.enter(ctx, Exists, key)
	defer s.exit()
	if err != nil {
		return false, err
	}
	return s.next.Exists(ctx, key)
}

func (s *store) Ping(ctx context.Context) error {
	_, err := s.enter(ctx, Ping)
	defer s.exit()
	if err != nil {
		return err
	}
	return s.next.Ping(ctx)
}

func (s *store) Close() error {
	s.enter(context.Background(), Close)
	defer s.exit()
	return s.next.Close()
}
