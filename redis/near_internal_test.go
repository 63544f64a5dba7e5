package redis

import (
	"testing"
	"time"
)

// TestNearLive: copies are usable only while an answer was read to a
// request sent less than the window ago; the window is NearMaxLag, capped
// by Timeout; a late answer to an older request does not move it back.
func TestNearLive(t *testing.T) {
	n := newNear(Options{NearMaxLag: 10 * time.Millisecond, Timeout: time.Second, NearMaxBytes: 1 << 20})
	now := time.Now()
	if n.live(now) {
		t.Fatal("live before any answer")
	}
	n.answered(now)
	if !n.live(now.Add(9*time.Millisecond)) || n.live(now.Add(10*time.Millisecond)) {
		t.Fatal("liveness does not last exactly the window (10ms)")
	}
	n.answered(now.Add(-time.Second)) // an old request answered late
	if !n.live(now.Add(9 * time.Millisecond)) {
		t.Fatal("an older answer moved liveness back")
	}
	if w := newNear(Options{NearMaxLag: time.Second, Timeout: 50 * time.Millisecond}).window; w != 50*time.Millisecond {
		t.Fatalf("window = %v, want Timeout (50ms) when NearMaxLag is larger", w)
	}
	if _, _, held := n.peek("k", now.Add(time.Second)); held {
		t.Fatal("peek used copies while not live")
	}
}
