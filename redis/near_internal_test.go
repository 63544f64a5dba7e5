package redis

import (
	"strconv"
	"testing"
	"time"
)

// TestNearMarks: a written key is read plain while its write is in flight
// and after it until an invalidation arrives or the bound passes; an
// invalidation during the write does not end the mark.
func TestNearMarks(t *testing.T) {
	n := newNear(Options{NearTTL: 50 * time.Millisecond, Timeout: time.Hour, NearMaxBytes: 1 << 20})
	n.answered(time.Now())
	inval := func(k string) { n.invalidatedKeys([]string{k}) }
	if n.plain("k", time.Now()) {
		t.Fatal("unwritten key read plain")
	}
	done := n.writing("k")
	inval("k") // during the write: ignored
	if !n.plain("k", time.Now()) {
		t.Fatal("key in flight not read plain")
	}
	done()
	if !n.plain("k", time.Now()) {
		t.Fatal("written key not read plain before its invalidation")
	}
	n.invalidated(nil) // a connection's flush says nothing of k
	n.invalidatedKeys(nil)
	if !n.plain("k", time.Now()) {
		t.Fatal("flush-all ended the mark")
	}
	inval("k")
	if n.plain("k", time.Now()) {
		t.Fatal("invalidation after the write did not end the mark")
	}
	n.writing("j")()
	if !n.plain("j", time.Now()) || n.plain("j", time.Now().Add(60*time.Millisecond)) {
		t.Fatal("mark without invalidation does not end at the bound (50ms)")
	}
	if n.bound != 50*time.Millisecond || newNear(Options{NearTTL: time.Hour}).bound != writtenBound {
		t.Fatal("bound is not min(writtenBound, NearTTL)")
	}
}

// TestNearMarksBounded: past maxRecent marks, every key is read plain
// until the bound passes, and the set does not grow.
func TestNearMarksBounded(t *testing.T) {
	n := newNear(Options{NearTTL: 50 * time.Millisecond, Timeout: time.Hour, NearMaxBytes: 1 << 20})
	n.answered(time.Now())
	keys := make([]string, maxRecent)
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}
	done := n.writing(keys...)
	done2 := n.writing("one-more")
	if len(n.recent) > maxRecent {
		t.Fatalf("%d marks, bound %d", len(n.recent), maxRecent)
	}
	if !n.plain("never-written", time.Now()) {
		t.Fatal("overflow: unwritten key not read plain")
	}
	done2()
	done()
	later := time.Now().Add(60 * time.Millisecond)
	if n.plain("never-written", later) || n.plain("0", later) {
		t.Fatal("marks outlived the bound")
	}
	n.writing("fresh")()
	if len(n.recent) > maxRecent {
		t.Fatal("expired marks were not swept")
	}
}
