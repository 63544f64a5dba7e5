package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
)

// recoverBound is how long a store may take to answer again after its
// servers are back: reconnect back-off and Cluster topology refresh.
const recoverBound = 15 * time.Second

// testOutage protects the fail-open promise: while the servers are dead or
// frozen, every call returns an error within Timeout+Slack (a read never
// reports a miss, a write never reports success, nothing hangs for a TCP
// timeout), and once they are back the same store works again without being
// rebuilt. It runs only with the harness's outage hooks.
func (s *suite) testOutage(t *testing.T) {
	t.Run("Kill", func(t *testing.T) {
		if s.h.Kill == nil {
			t.Skip("Harness.Kill not set (in-process store)")
		}
		s.outage(t, "killed", s.h.Kill, s.h.Restart)
	})
	t.Run("Pause", func(t *testing.T) {
		if s.h.Pause == nil {
			t.Skip("Harness.Pause not set (in-process store)")
		}
		s.outage(t, "paused", s.h.Pause, s.h.Resume)
	})
}

// outage takes the servers down, checks that every call fails promptly,
// brings them back and checks that the store recovers.
func (s *suite) outage(t *testing.T, state string, down, up func(*testing.T)) {
	e := s.open(t)
	k := e.key("k")
	// Warm up: connections to every node exist before the outage.
	warm := e.keys("warm", 30)
	e.fill(warm, func(int) []byte { return []byte("v") }, longTTL)
	e.getMulti(warm)
	e.set(k, []byte("v"), longTTL)
	e.wantValue(k, []byte("v"))

	down(t)
	isUp := false
	defer func() {
		if !isUp {
			up(t)
		}
	}()
	time.Sleep(s.h.Lag)
	limit := s.h.Timeout + Slack
	// The context bounds a store that hangs, so that the check fails with a
	// message instead of hanging; the store's own deadline must come first.
	ctx, cancel := context.WithTimeout(e.ctx, limit+2*time.Second)
	defer cancel()
	// Twice: the first calls find broken connections, the next ones try to
	// reconnect.
	for round := 1; round <= 2; round++ {
		slow := false
		for _, c := range s.calls(ctx, e, k) {
			start := time.Now()
			err := c.call()
			took := time.Since(start)
			if err == nil {
				t.Errorf("%s while the server is %s (round %d) returned no error; a store that is down must say so, not report a miss or success", c.name, state, round)
			} else if errors.Is(err, hoard.ErrClosed) {
				t.Errorf("%s while the server is %s (round %d) = %v; the store was not closed", c.name, state, round, err)
			}
			if took > limit {
				slow = true
				t.Errorf("%s while the server is %s (round %d) took %v; want an error within Timeout+Slack = %v", c.name, state, round, took.Round(time.Millisecond), limit)
			}
		}
		if slow {
			break
		}
	}
	up(t)
	isUp = true

	// Recovered means every node answers again: keys spread over all of
	// them can be written and read back.
	probe := func() error {
		for _, w := range warm {
			if err := e.st.Set(e.ctx, w, []byte("again"), longTTL); err != nil {
				return err
			}
		}
		vs, err := e.st.GetMulti(e.ctx, warm)
		if err != nil {
			return err
		}
		for i, v := range vs {
			if string(v) != "again" {
				return fmt.Errorf("%q = %s right after it was set to \"again\"", warm[i], show(v))
			}
		}
		return nil
	}
	start := time.Now()
	var last error
	if !eventually(recoverBound, 50*time.Millisecond, func() bool { last = probe(); return last == nil }) {
		t.Fatalf("the store did not work again within %v after the servers came back; last error: %v", recoverBound, last)
	}
	t.Logf("recovered %v after the servers came back", time.Since(start).Round(time.Millisecond))
	for _, c := range s.calls(e.ctx, e, k) {
		if err := c.call(); err != nil {
			t.Errorf("%s after the servers came back = %v", c.name, err)
		}
	}
}
