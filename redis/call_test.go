package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

type testKey struct{}

func newCall(t *testing.T, caller context.Context, timeout time.Duration) *call {
	t.Helper()
	s := &Store{timeout: timeout}
	c, err := s.begin(caller)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.end)
	return c
}

// waitDone waits (boundedly) for the call's context to end.
func waitDone(t *testing.T, c *call) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the call was not cancelled when its caller's context ended")
	}
}

func TestCallFollowsCaller(t *testing.T) {
	t.Run("cancel", func(t *testing.T) {
		caller, cancel := context.WithCancel(context.WithValue(context.Background(), testKey{}, "v"))
		c := newCall(t, caller, time.Hour)
		if dl, ok := c.Deadline(); !ok || time.Until(dl) < 59*time.Minute {
			t.Errorf("call deadline = %v, %v; want the store's Timeout from now", dl, ok)
		}
		if got := c.Value(testKey{}); got != "v" {
			t.Errorf("call Value = %v; want the caller's values", got)
		}
		cancel()
		waitDone(t, c)
		if err := c.err(c.Err()); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v; want context.Canceled", err)
		}
		if c.pin() {
			t.Error("pin succeeded on an abandoned call")
		}
	})
	t.Run("caller deadline", func(t *testing.T) {
		caller, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		c := newCall(t, caller, time.Hour)
		waitDone(t, c)
		// rueidis sees Canceled; the caller is told its deadline passed.
		if err := c.err(fmt.Errorf("wrapped: %w", c.Err())); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v; want context.DeadlineExceeded", err)
		}
	})
	t.Run("store timeout", func(t *testing.T) {
		c := newCall(t, context.Background(), time.Millisecond)
		waitDone(t, c)
		if err := c.err(c.Err()); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v; want context.DeadlineExceeded", err)
		}
	})
	t.Run("ended before", func(t *testing.T) {
		caller, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := (&Store{timeout: time.Hour}).begin(caller); !errors.Is(err, context.Canceled) {
			t.Errorf("begin with an ended context = %v; want context.Canceled", err)
		}
	})
}

func TestCallPinned(t *testing.T) {
	caller, cancel := context.WithCancel(context.Background())
	c := newCall(t, caller, time.Hour)
	if !c.pin() || !c.pin() {
		t.Fatal("pin of a live call failed")
	}
	cancel()
	c.abandon() // what the caller's context ending runs; it may have run already
	if err := c.Err(); err != nil {
		t.Fatalf("a pinned call was cancelled by its caller: %v", err)
	}
	// A context rueidis derives from the call still leads to it.
	derived, dcancel := context.WithTimeout(c, time.Minute)
	defer dcancel()
	if got, _ := derived.Value(callKey{}).(*call); got != c {
		t.Fatal("a derived context does not find its call")
	}
	c.end()
	if c.Err() == nil {
		t.Error("end did not release the call")
	}
}

func TestDialPins(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := &net.Dialer{Timeout: time.Second}

	caller, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newCall(t, caller, time.Hour)
	conn, err := dial(c, l.Addr().String(), d, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	cancel()
	c.abandon()
	if c.Err() != nil {
		t.Error("the caller's context ending cancelled a call that dialled")
	}

	// An abandoned call does not start a dial.
	caller2, cancel2 := context.WithCancel(context.Background())
	c2 := newCall(t, caller2, time.Hour)
	cancel2()
	waitDone(t, c2)
	if conn, err := dial(c2, l.Addr().String(), d, nil); !errors.Is(err, context.Canceled) {
		if conn != nil {
			conn.Close()
		}
		t.Errorf("dial for an abandoned call = %v; want context.Canceled", err)
	}

	// Dials rueidis makes on its own (no call) work as usual.
	conn, err = dial(context.Background(), l.Addr().String(), d, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

func TestNeighbourFailure(t *testing.T) {
	live := func(t *testing.T) *call { return newCall(t, context.Background(), time.Hour) }
	ended := func(t *testing.T) *call {
		caller, cancel := context.WithCancel(context.Background())
		c := newCall(t, caller, time.Hour)
		cancel()
		waitDone(t, c)
		return c
	}
	expired := func(t *testing.T) *call {
		c := newCall(t, context.Background(), time.Nanosecond)
		time.Sleep(time.Millisecond)
		return c
	}
	dialCanceled := &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("operation was canceled: %w", context.Canceled)}
	tests := []struct {
		name string
		call func(*testing.T) *call
		err  error
		want bool
	}{
		{"no error", live, nil, false},
		{"canceled, live call", live, context.Canceled, true},
		{"deadline, live call", live, context.DeadlineExceeded, true},
		{"dial canceled, live call", live, dialCanceled, true},
		{"socket timeout", live, os.ErrDeadlineExceeded, false},
		{"connection error", live, errors.New("EOF"), false},
		{"client closing", live, rueidis.ErrClosing, false},
		{"own caller ended", ended, context.Canceled, false},
		{"own timeout passed", expired, context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.call(t).neighbourFailure(tt.err); got != tt.want {
				t.Errorf("neighbourFailure(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
