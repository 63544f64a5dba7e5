package storetest_test

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/storetest"
)

// fakeServer is the shared state of fake stores: a keyspace split over
// three "nodes", and an outage switch.
type fakeServer struct {
	mu      sync.Mutex
	nodes   [3]map[string]fakeEntry
	down    bool
	resumed chan struct{} // non-nil while paused; closed by resume
	bugs    string        // comma-separated deliberate defects of its stores
	broken  time.Time     // with bug "cancel-breaks-others": calls fail until then
}

type fakeEntry struct {
	value   []byte
	expires time.Time // zero: never
}

func newFakeServer(bugs string) *fakeServer {
	srv := &fakeServer{bugs: bugs}
	for i := range srv.nodes {
		srv.nodes[i] = map[string]fakeEntry{}
	}
	return srv
}

func (srv *fakeServer) bug(name string) bool {
	return slices.Contains(strings.Split(srv.bugs, ","), name)
}

func (srv *fakeServer) node(key string) map[string]fakeEntry {
	if srv.bug("one-node") {
		return srv.nodes[0]
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return srv.nodes[h.Sum32()%3]
}

// locate names the node holding key, "" if none (the harness's Locate).
func (srv *fakeServer) locate(key string) string {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for i, n := range srv.nodes {
		if _, ok := n[key]; ok {
			return string(rune('a' + i))
		}
	}
	return ""
}

func (srv *fakeServer) kill() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.down = true
}

func (srv *fakeServer) restart() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.down = false
	for i := range srv.nodes {
		srv.nodes[i] = map[string]fakeEntry{} // nothing persisted
	}
}

func (srv *fakeServer) pause() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.resumed = make(chan struct{})
}

func (srv *fakeServer) resume() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	close(srv.resumed)
	srv.resumed = nil
}

// fakeStore is a hoard.Store over a fakeServer, like a network client: it
// bounds each call by its timeout. It cannot delete by pattern (like
// Memcached); fakePatternStore can.
type fakeStore struct {
	srv     *fakeServer
	timeout time.Duration
	closed  atomic.Bool
}

// fakePatternStore is a fakeStore that also implements
// hoard.PatternDeleter.
type fakePatternStore struct {
	*fakeStore
}

var (
	_ hoard.Store          = (*fakeStore)(nil)
	_ hoard.PatternDeleter = (*fakePatternStore)(nil)
)

var errRefused = errors.New("fake: connection refused")

// do runs fn with the server locked, failing like a network client would
// while the server is down or paused.
func (s *fakeStore) do(ctx context.Context, fn func(now time.Time)) error {
	if s.closed.Load() && !s.srv.bug("works-after-close") {
		return hoard.ErrClosed
	}
	s.srv.mu.Lock()
	down, resumed := s.srv.down, s.srv.resumed
	s.srv.mu.Unlock()
	if down {
		if s.srv.bug("down-is-miss") {
			return nil
		}
		return errRefused
	}
	if resumed != nil {
		timeout := s.timeout
		if s.srv.bug("ignores-timeout") {
			timeout = fakeTimeout + 2*storetest.Slack // fails, but far too late
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-resumed:
		}
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	now := time.Now()
	if s.srv.bug("cancel-breaks-others") {
		// Like a client that closes its shared connection when one
		// caller's context ends mid-call: calls fail for a while after
		// (long enough that live callers are scheduled in it).
		if now.Before(s.srv.broken) {
			return errors.New("fake: connection closed")
		}
		if ctx.Err() != nil {
			s.srv.broken = now.Add(50 * time.Millisecond)
			return ctx.Err()
		}
	}
	fn(now)
	return nil
}

// live returns key's entry if present and not expired.
func (s *fakeStore) live(key string, now time.Time) (fakeEntry, bool) {
	n := s.srv.node(key)
	e, ok := n[key]
	if ok && !e.expires.IsZero() && !now.Before(e.expires) {
		delete(n, key)
		return fakeEntry{}, false
	}
	return e, ok
}

func (s *fakeStore) expiry(now time.Time, ttl time.Duration) time.Time {
	if s.srv.bug("sub-ms-ttl-never-expires") {
		ttl = ttl.Truncate(time.Millisecond)
		if ttl == 0 {
			return time.Time{}
		}
	}
	return now.Add(ttl)
}

func (s *fakeStore) Get(ctx context.Context, key string) (v []byte, found bool, err error) {
	err = s.do(ctx, func(now time.Time) {
		var e fakeEntry
		if e, found = s.live(key, now); found {
			v = e.value
		}
		if found && len(v) == 0 && s.srv.bug("empty-is-miss") {
			v, found = nil, false
		}
	})
	return v, found, err
}

func (s *fakeStore) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	vs := make([][]byte, len(keys))
	err := s.do(ctx, func(now time.Time) {
		ks := keys
		if s.srv.bug("getmulti-sorted") {
			ks = slices.Sorted(slices.Values(keys))
		}
		for i, k := range ks {
			if e, ok := s.live(k, now); ok {
				vs[i] = e.value
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return vs, nil
}

func (s *fakeStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.closed.Load() && !s.srv.bug("works-after-close") {
		return hoard.ErrClosed
	}
	if ttl <= 0 {
		return hoard.ErrInvalidTTL
	}
	if !s.srv.bug("keeps-input") {
		value = append([]byte{}, value...)
	}
	if s.srv.bug("ttl-two-steps") {
		// Like SET then PEXPIRE without MULTI: a cancelled call leaves
		// the value without its TTL.
		if err := s.do(ctx, func(time.Time) { s.srv.node(key)[key] = fakeEntry{value: value} }); err != nil {
			return err
		}
		// Longer than the suite's cut contexts live, so that every cut
		// call ends in between (the bug is then caught on every run).
		time.Sleep(time.Millisecond)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return s.do(ctx, func(now time.Time) {
		exp := s.expiry(now, ttl)
		if old, ok := s.live(key, now); ok && s.srv.bug("set-keeps-ttl") && !old.expires.IsZero() {
			exp = old.expires
		}
		s.srv.node(key)[key] = fakeEntry{value: value, expires: exp}
	})
}

func (s *fakeStore) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (added bool, err error) {
	if s.closed.Load() && !s.srv.bug("works-after-close") {
		return false, hoard.ErrClosed
	}
	if ttl <= 0 {
		return false, hoard.ErrInvalidTTL
	}
	value = append([]byte{}, value...)
	if s.srv.bug("add-not-atomic") {
		var present bool
		if err := s.do(ctx, func(now time.Time) { _, present = s.live(key, now) }); err != nil || present {
			return false, err
		}
		time.Sleep(time.Millisecond)
		err := s.do(ctx, func(now time.Time) { s.srv.node(key)[key] = fakeEntry{value: value, expires: s.expiry(now, ttl)} })
		return err == nil, err
	}
	err = s.do(ctx, func(now time.Time) {
		present := false
		if s.srv.bug("add-sees-expired") {
			_, present = s.srv.node(key)[key]
		} else {
			_, present = s.live(key, now)
		}
		if !present {
			s.srv.node(key)[key] = fakeEntry{value: value, expires: s.expiry(now, ttl)}
			added = true
		}
	})
	return added, err
}

func (s *fakeStore) Touch(ctx context.Context, key string, ttl time.Duration) (found bool, err error) {
	if ttl <= 0 {
		return false, hoard.ErrInvalidTTL
	}
	err = s.do(ctx, func(now time.Time) {
		var e fakeEntry
		if e, found = s.live(key, now); found && !s.srv.bug("touch-ignored") {
			e.expires = s.expiry(now, ttl)
			s.srv.node(key)[key] = e
		}
	})
	return found, err
}

func (s *fakeStore) Delete(ctx context.Context, keys ...string) error {
	return s.do(ctx, func(time.Time) {
		for _, k := range keys {
			delete(s.srv.node(k), k)
		}
	})
}

func (s *fakePatternStore) DeletePattern(ctx context.Context, pattern string) (n int, err error) {
	if s.srv.bug("pattern-appends-star") {
		pattern += "*"
	}
	err = s.do(ctx, func(now time.Time) {
		for _, node := range s.srv.nodes {
			for k := range node {
				if _, ok := s.live(k, now); ok && globMatch(pattern, k) {
					delete(node, k)
					n++
				}
			}
		}
	})
	return n, err
}

func (s *fakeStore) Exists(ctx context.Context, key string) (found bool, err error) {
	err = s.do(ctx, func(now time.Time) { _, found = s.live(key, now) })
	return found, err
}

func (s *fakeStore) Ping(ctx context.Context) error { return s.do(ctx, func(time.Time) {}) }

func (s *fakeStore) Close() error {
	s.closed.Store(true)
	return nil
}

// globMatch reports whether s matches the Redis glob pattern: * ? [abc]
// [^a] [a-z] and backslash escapes, byte-wise.
func globMatch(pattern, s string) bool {
	for len(pattern) > 0 {
		switch c := pattern[0]; c {
		case '*':
			for len(pattern) > 0 && pattern[0] == '*' {
				pattern = pattern[1:]
			}
			for i := 0; i <= len(s); i++ {
				if globMatch(pattern, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if len(s) == 0 {
				return false
			}
		case '[':
			if len(s) == 0 {
				return false
			}
			p := pattern[1:]
			not := len(p) > 0 && p[0] == '^'
			if not {
				p = p[1:]
			}
			match := false
			for len(p) > 0 && p[0] != ']' {
				switch {
				case p[0] == '\\' && len(p) >= 2:
					p = p[1:]
					match = match || p[0] == s[0]
				case len(p) >= 3 && p[1] == '-' && p[2] != ']':
					lo, hi := min(p[0], p[2]), max(p[0], p[2])
					match = match || (s[0] >= lo && s[0] <= hi)
					p = p[2:]
				default:
					match = match || p[0] == s[0]
				}
				p = p[1:]
			}
			if match == not {
				return false
			}
			if len(p) == 0 { // unterminated class ends the pattern
				return len(s) == 1
			}
			pattern = p // at ']'
		case '\\':
			if len(pattern) >= 2 {
				pattern = pattern[1:]
			}
			fallthrough
		default:
			if len(s) == 0 || pattern[0] != s[0] {
				return false
			}
		}
		pattern, s = pattern[1:], s[1:]
	}
	return len(s) == 0
}
