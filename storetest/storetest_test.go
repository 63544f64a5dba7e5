package storetest_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/storetest"
)

const fakeTimeout = 50 * time.Millisecond

// fakeHarness returns a harness over a fake "network" store with three
// nodes and outage hooks, carrying the given deliberate defects. With
// patterns the store is a fakePatternStore (a hoard.PatternDeleter),
// otherwise a fakeStore (not one).
func fakeHarness(bugs string, patterns bool) storetest.Harness {
	srv := newFakeServer(bugs)
	return storetest.Harness{
		New: func(t *testing.T) hoard.Store {
			s := &fakeStore{srv: srv, timeout: fakeTimeout}
			if patterns {
				return &fakePatternStore{s}
			}
			return s
		},
		Timeout:       fakeTimeout,
		TTLResolution: time.Millisecond,
		Kill:          func(*testing.T) { srv.kill() },
		Restart:       func(*testing.T) { srv.restart() },
		Pause:         func(*testing.T) { srv.pause() },
		Resume:        func(*testing.T) { srv.resume() },
		Nodes:         3,
		Locate:        func(_ *testing.T, key string) string { return srv.locate(key) },
	}
}

// TestFake runs the suite against a correct fake: every check must pass
// (and the outage checks must not be vacuous: the fake fails while down).
func TestFake(t *testing.T) {
	storetest.Run(t, fakeHarness("", true))
}

// TestFakeWithoutPatterns runs the suite against a correct store that
// cannot walk keys (like Memcached: not a hoard.PatternDeleter, so the
// DeletePattern subtests skip) and has no outage hooks (like memory).
func TestFakeWithoutPatterns(t *testing.T) {
	h := fakeHarness("", false)
	h.Kill, h.Restart, h.Pause, h.Resume = nil, nil, nil, nil
	h.Locate, h.Nodes = nil, 0
	storetest.Run(t, h)
}

// TestFakeBroken is run by TestSuiteCatchesBrokenStores in a child process:
// it runs the suite against a fake with the defect named in
// STORETEST_FAKE_BUGS, and is expected to fail.
func TestFakeBroken(t *testing.T) {
	bugs := os.Getenv("STORETEST_FAKE_BUGS")
	if bugs == "" {
		t.Skip("run by TestSuiteCatchesBrokenStores")
	}
	storetest.Run(t, fakeHarness(bugs, true))
}

// TestSuiteCatchesBrokenStores shows that the suite can fail: each
// deliberately broken fake must fail the check that targets its defect.
func TestSuiteCatchesBrokenStores(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child test processes")
	}
	for _, c := range []struct {
		bug  string
		fail string // the subtest (under TestFakeBroken) that must fail
	}{
		{"getmulti-sorted", "GetMulti/Mixed"},
		{"add-not-atomic", "Add/Concurrent"},
		{"add-sees-expired", "TTL/AddAfterExpiry"},
		{"touch-ignored", "TTL/Touch"},
		{"set-keeps-ttl", "TTL/OverwriteShortens"},
		{"ttl-two-steps", "TTL/AtomicWithValue"},
		{"sub-ms-ttl-never-expires", "TTL/SubResolution"},
		{"empty-is-miss", "RoundTrip/Empty"},
		{"keeps-input", "RoundTrip/CopiesInput"},
		{"pattern-appends-star", "DeletePattern/Exact"},
		{"works-after-close", "Closed/Calls"},
		{"ignores-timeout", "Outage/Pause"},
		{"down-is-miss", "Outage/Kill"},
		{"one-node", "Spread"},
		{"cancel-breaks-others", "Concurrency/CancelledNeighbours"},
	} {
		t.Run(c.bug+"/"+c.fail, func(t *testing.T) {
			t.Parallel()
			run := "^TestFakeBroken$"
			for _, part := range strings.Split(c.fail, "/") {
				run += "/^" + regexp.QuoteMeta(part) + "$"
			}
			cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.count=1")
			cmd.Env = append(os.Environ(), "STORETEST_FAKE_BUGS="+c.bug)
			out, err := cmd.CombinedOutput()
			want := "--- FAIL: TestFakeBroken/" + c.fail + " "
			if err == nil || !strings.Contains(string(out), want) {
				t.Errorf("the suite did not catch a store with defect %q: want %q in the output, exit error %v; output:\n%s", c.bug, want, err, out)
			}
		})
	}
}

// TestGlobMatch checks the fake's glob matcher, the oracle of the fake's
// DeletePattern.
func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"a", "a", true},
		{"a", "b", false},
		{"a*", "a", true},
		{"a*", "abc", true},
		{"*", "", true},
		{"*c", "abc", true},
		{"*c", "abd", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"[ab]1", "b1", true},
		{"[ab]1", "c1", false},
		{"[^a]1", "a1", false},
		{"[^a]1", "b1", true},
		{"[a-c]", "b", true},
		{"[c-a]", "b", true},
		{"[a-c]", "d", false},
		{`a\*b`, "a*b", true},
		{`a\*b`, "aXb", false},
		{`a\?b`, "aXb", false},
		{`a\[b\]`, "a[b]", true},
		{`a\[b\]`, "ab", false},
		{`a\\b`, `a\b`, true},
		{`a\\b`, "ab", false},
		{`\\\*`, `\*`, true},
		{`[\]]`, "]", true},
		{"user:1", "user:10", false},
		{"user:1*", "user:10", true},
	} {
		if got := globMatch(c.pattern, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}
