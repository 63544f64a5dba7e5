package hoard

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestBreakerOpensAfterThresholdAndProbes(t *testing.T) {
	b := newBreaker(3, 40*time.Millisecond)
	boom := errors.New("boom")
	for i := 0; i < 2; i++ {
		if !b.allow() {
			t.Fatalf("closed breaker refused call %d", i)
		}
		b.record(boom)
	}
	if !b.allow() {
		t.Fatal("breaker opened before the threshold")
	}
	b.record(boom)
	if b.allow() {
		t.Fatal("breaker did not open at the threshold")
	}
	time.Sleep(50 * time.Millisecond)
	if !b.allow() {
		t.Fatal("no probe after the cool-down")
	}
	if b.allow() {
		t.Fatal("a second probe went through while the first is out")
	}
	b.record(boom) // the probe failed: open again at once
	if b.allow() {
		t.Fatal("failed probe did not reopen the breaker")
	}
	time.Sleep(50 * time.Millisecond)
	if !b.allow() {
		t.Fatal("no probe after the second cool-down")
	}
	b.record(nil)
	for i := 0; i < 5; i++ {
		if !b.allow() {
			t.Fatal("successful probe did not close the breaker")
		}
	}
}

func TestBreakerIgnoresCallerCancellation(t *testing.T) {
	b := newBreaker(1, time.Hour)
	b.record(context.Canceled)
	if !b.allow() {
		t.Fatal("a caller's cancellation opened the breaker")
	}
	b.record(context.DeadlineExceeded)
	if b.allow() {
		t.Fatal("a store timeout did not count as a failure")
	}
}

// TestBreakerIgnoresServerDown: a call a pool store skipped at once because
// its server is marked down (ErrServerDown, also when joined with
// other servers' errors) is not counted: with one memcached server of three
// down, a third of the reads fail that way, and counting them opened the
// breaker for the keys of the live servers too.
func TestBreakerIgnoresServerDown(t *testing.T) {
	b := newBreaker(3, time.Hour)
	down := fmt.Errorf("memcached 127.0.0.1:1: get: %w", errors.Join(fmt.Errorf("%w after: refused", ErrServerDown)))
	for i := range 10 {
		if !b.allow() {
			t.Fatalf("breaker opened after %d calls skipped for a server marked down", i)
		}
		b.record(down)
	}
	for range 3 {
		b.record(errors.New("i/o timeout"))
	}
	if b.allow() {
		t.Fatal("breaker still closed after 3 real failures")
	}
}

func TestBreakerOpensWhenMostCallsFail(t *testing.T) {
	b := newBreaker(5, time.Hour)
	boom := errors.New("boom")
	// Every read fails while one write in three succeeds.
	for i := 0; i < 30 && b.allow(); i++ {
		b.record(boom)
		if i%3 == 0 {
			b.record(nil)
		}
	}
	if b.allow() {
		t.Fatal("breaker stayed closed while most calls failed")
	}
}

// TestBreakerIgnoresRefusals (regression): a store's refusal of one value
// (too large for memcached's item size, Redis OOM) is not a store failure:
// a client that keeps asking for oversized pages must not open the breaker
// and turn every other key's hits into bypasses.
func TestBreakerIgnoresRefusals(t *testing.T) {
	b := newBreaker(2, time.Hour)
	refusal := fmt.Errorf("memcached 127.0.0.1:1: set: SERVER_ERROR object too large for cache: %w", ErrValueTooLarge)
	for range 100 {
		b.record(refusal)
	}
	if !b.allow() {
		t.Fatal("breaker opened on refusals of single values")
	}
}
