package memcached_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/memcached"
)

// wantServerUp fails t if the server of key is marked down or has server
// failures counted against it, and unless small keys of that server can be
// written and read right away.
func wantServerUp(t *testing.T, s *memcached.Store, key string, small []string) {
	t.Helper()
	if down, fails := memcached.NodeHealth(s, key); down || fails != 0 {
		t.Errorf("after a refused value the server is marked down: %v, with %d failures counted; a refusal is an answer", down, fails)
	}
	for _, k := range small {
		if err := s.Set(bg, k, []byte(k), time.Minute); err != nil {
			t.Errorf("Set(%q) right after a refused value: %v", k, err)
		}
		if v, found, err := s.Get(bg, k); err != nil || !found || string(v) != k {
			t.Errorf("Get(%q) right after a refused value = %q, %v, %v; want %q", k, v, found, err, k)
		}
	}
}

// TestValueOverMaxValueBytes: a value over MaxValueBytes is refused with
// ErrValueTooLarge before anything is sent, and a value of exactly
// MaxValueBytes is stored.
func TestValueOverMaxValueBytes(t *testing.T) {
	m := testserver.MemcachedT(t, testserver.MemcachedOptions{})
	const limit = 1000
	s := NewStore(t, []*testserver.Memcached{m}, memcached.Options{MaxValueBytes: limit})
	if got := s.MaxValueBytes(); got != limit {
		t.Errorf("MaxValueBytes() = %d, want %d", got, limit)
	}
	if err := s.Set(bg, "k", []byte("old"), time.Minute); err != nil {
		t.Fatal(err)
	}
	sets := func() string {
		st, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st["cmd_set"]
	}
	before := sets()
	err := s.Set(bg, "k", make([]byte, limit+1), time.Minute)
	if !errors.Is(err, hoard.ErrValueTooLarge) || !errors.Is(err, hoard.ErrRefused) || !strings.Contains(err.Error(), "MaxValueBytes") {
		t.Errorf("Set of %d bytes with MaxValueBytes %d = %v; want an error matching hoard.ErrValueTooLarge that names MaxValueBytes", limit+1, limit, err)
	}
	added, err := s.Add(bg, "new", make([]byte, limit+1), time.Minute)
	if added || !errors.Is(err, hoard.ErrValueTooLarge) {
		t.Errorf("Add of %d bytes with MaxValueBytes %d = %v, %v; want false and an error matching hoard.ErrValueTooLarge", limit+1, limit, added, err)
	}
	if after := sets(); after != before {
		t.Errorf("cmd_set went from %s to %s: a value over MaxValueBytes was sent to the server", before, after)
	}
	// Nothing was sent, so the key keeps its value (the server was not asked
	// to drop it).
	if v, _, err := s.Get(bg, "k"); err != nil || string(v) != "old" {
		t.Errorf("Get after a refused Set = %d bytes, %v; want the untouched \"old\"", len(v), err)
	}
	exact := bytes.Repeat([]byte("x"), limit)
	if err := s.Set(bg, "k", exact, time.Minute); err != nil {
		t.Fatalf("Set of exactly MaxValueBytes (%d): %v", limit, err)
	}
	if added, err := s.Add(bg, "new", exact, time.Minute); err != nil || !added {
		t.Fatalf("Add of exactly MaxValueBytes (%d) = %v, %v; want true, nil", limit, added, err)
	}
	for _, k := range []string{"k", "new"} {
		if v, _, err := s.Get(bg, k); err != nil || !bytes.Equal(v, exact) {
			t.Errorf("Get(%q) = %d bytes, %v; want the %d bytes set", k, len(v), err, limit)
		}
	}
}

// TestServerRefusesTooLargeValue: a server with a small item size (-I 64k)
// refuses a value that MaxValueBytes lets through. That refusal matches
// hoard.ErrValueTooLarge, keeps the -I advice, does not mark the server
// down or count as its failure (even repeated past ioFailuresToMarkDown,
// with a back-off far shorter than the test), and the server's other keys
// keep working at once.
func TestServerRefusesTooLargeValue(t *testing.T) {
	m := testserver.MemcachedT(t, testserver.MemcachedOptions{MaxItemSize: "64k"})
	s := NewStore(t, []*testserver.Memcached{m}, memcached.Options{
		MaxValueBytes: memcached.DefaultMaxValueBytes, // far above -I 64k
		Backoff:       time.Millisecond,
	})
	small := []string{"small:1", "small:2"}
	wantServerUp(t, s, "big", small)
	if err := s.Set(bg, "big", []byte("old"), time.Minute); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 100<<10)
	for i := range 5 {
		err := s.Set(bg, "big", big, time.Minute)
		if !errors.Is(err, hoard.ErrValueTooLarge) || !errors.Is(err, hoard.ErrRefused) {
			t.Fatalf("Set of %d bytes on a server with -I 64k (try %d) = %v; want an error matching hoard.ErrValueTooLarge", len(big), i, err)
		}
		if errors.Is(err, memcached.ErrServerDown) || !strings.Contains(err.Error(), "-I") || !strings.Contains(err.Error(), "object too large") {
			t.Errorf("Set of %d bytes on a server with -I 64k: %v; want the server's reply and advice about -I, not ErrServerDown", len(big), err)
		}
		added, err := s.Add(bg, fmt.Sprint("big:add:", i), big, time.Minute)
		if added || !errors.Is(err, hoard.ErrValueTooLarge) {
			t.Errorf("Add of %d bytes on a server with -I 64k = %v, %v; want false and an error matching hoard.ErrValueTooLarge", len(big), added, err)
		}
		// Longer than the back-off: had the refusals counted as failures,
		// the server would now qualify for being marked down.
		time.Sleep(2 * time.Millisecond)
	}
	wantServerUp(t, s, "big", small)
	// memcached drops the former value of a key whose Set it refuses, so
	// that no stale value survives the overwrite.
	if v, found, err := s.Get(bg, "big"); err != nil || found {
		t.Errorf("Get of a key whose Set the server refused = %q, %v, %v; want a miss", v, found, err)
	}
}

// TestServerOutOfMemoryIsRefused: a server that may not evict (-M) and is
// full answers "out of memory storing object"; that is ErrRefused (not
// ErrValueTooLarge), and not a server failure.
func TestServerOutOfMemoryIsRefused(t *testing.T) {
	m := testserver.MemcachedT(t, testserver.MemcachedOptions{MemoryMB: 1, MaxItemSize: "64k", Args: []string{"-M"}})
	s := NewStore(t, []*testserver.Memcached{m}, memcached.Options{Backoff: time.Millisecond})
	// Written before the server fills up, so that their size class has
	// room for them again.
	small := []string{"small:1", "small:2"}
	wantServerUp(t, s, "k0", small)
	value := make([]byte, 30000)
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		err = s.Set(bg, fmt.Sprint("k", i), value, time.Minute)
	}
	if !errors.Is(err, hoard.ErrRefused) || errors.Is(err, hoard.ErrValueTooLarge) || !strings.Contains(err.Error(), "out of memory") {
		t.Fatalf("Set on a full server started with -M -m 1 = %v; want an error matching hoard.ErrRefused (not ErrValueTooLarge) with the server's reply", err)
	}
	for i := range 4 {
		if added, err := s.Add(bg, fmt.Sprint("add:", i), value, time.Minute); added || !errors.Is(err, hoard.ErrRefused) {
			t.Errorf("Add on a full server = %v, %v; want false and an error matching hoard.ErrRefused", added, err)
		}
		time.Sleep(2 * time.Millisecond) // past the back-off, as above
	}
	wantServerUp(t, s, "k0", small)
}

// TestDefaultMaxValueBytesFitsDefaultServer: a value of exactly
// DefaultMaxValueBytes is stored by a memcached with its default item size
// (-I 1m) under the longest key memcached takes, under a key the store
// hashes and under a short one; one byte more is refused by the store.
func TestDefaultMaxValueBytesFitsDefaultServer(t *testing.T) {
	m := testserver.MemcachedT(t, testserver.MemcachedOptions{MaxItemSize: "1m"})
	if st, err := m.Stats("settings"); err != nil || st["item_size_max"] != "1048576" {
		t.Fatalf("item_size_max = %q, %v; want memcached's default 1048576", st["item_size_max"], err)
	}
	s := NewStore(t, []*testserver.Memcached{m}, memcached.Options{})
	if got := s.MaxValueBytes(); got != memcached.DefaultMaxValueBytes {
		t.Errorf("MaxValueBytes() with the zero Options = %d, want DefaultMaxValueBytes %d", got, memcached.DefaultMaxValueBytes)
	}
	value := randomBytes(memcached.DefaultMaxValueBytes)
	for _, key := range []string{
		strings.Repeat("k", 250),         // the longest key memcached takes as it is
		strings.Repeat("with space", 40), // stored under its hashed form
		"k",
	} {
		if sk := memcached.StoredKey(key); len(sk) > 250 {
			t.Fatalf("stored key of %d bytes", len(sk))
		}
		if err := s.Set(bg, key, value, time.Minute); err != nil {
			t.Fatalf("Set of DefaultMaxValueBytes (%d) under a %d-byte key on a default memcached: %v", len(value), len(key), err)
		}
		if v, _, err := s.Get(bg, key); err != nil || !bytes.Equal(v, value) {
			t.Fatalf("Get of the %d-byte value = %d bytes, %v", len(value), len(v), err)
		}
		if err := s.Delete(bg, key); err != nil {
			t.Fatal(err)
		}
		if added, err := s.Add(bg, key, value, time.Minute); err != nil || !added {
			t.Fatalf("Add of DefaultMaxValueBytes under a %d-byte key = %v, %v; want true, nil", len(key), added, err)
		}
		if err := s.Set(bg, key, value[:0:0], time.Minute); err != nil { // free the memory
			t.Fatal(err)
		}
	}
	over := make([]byte, memcached.DefaultMaxValueBytes+1)
	if err := s.Set(bg, "k", over, time.Minute); !errors.Is(err, hoard.ErrValueTooLarge) {
		t.Errorf("Set of DefaultMaxValueBytes+1 = %v; want an error matching hoard.ErrValueTooLarge", err)
	}
}
