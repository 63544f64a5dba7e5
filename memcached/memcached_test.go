package memcached_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/memcached"
)

func TestNewChecksOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    memcached.Options
		wantErr string // substring; "" means New must succeed
	}{
		{"defaults", memcached.Options{}, ""},
		{"pool", memcached.Options{Servers: []string{"10.0.0.1:11211", "cache-b:11212", "[::1]:11211"}}, ""},
		{"no port", memcached.Options{Servers: []string{"localhost:11211", "cache-b"}}, `"cache-b"`},
		{"no host", memcached.Options{Servers: []string{":11211"}}, `":11211"`},
		{"bad port", memcached.Options{Servers: []string{"cache:memcache"}}, `"cache:memcache"`},
		{"port out of range", memcached.Options{Servers: []string{"cache:70000"}}, `"cache:70000"`},
		{"port zero", memcached.Options{Servers: []string{"cache:0"}}, `"cache:0"`},
		{"url", memcached.Options{Servers: []string{"memcached://cache:11211"}}, `"memcached://cache:11211"`},
		{"duplicate", memcached.Options{Servers: []string{"a:1", "b:1", "a:1"}}, `"a:1": is listed twice`},
		{"negative pool size", memcached.Options{PoolSize: -1}, "PoolSize = -1"},
		{"negative timeout", memcached.Options{Timeout: -time.Second}, "Timeout = -1s"},
		{"negative backoff", memcached.Options{Backoff: -time.Second}, "Backoff = -1s"},
		{"negative max value", memcached.Options{MaxValueBytes: -1}, "MaxValueBytes = -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := memcached.New(tt.opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New(%+v): %v", tt.opts, err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("New(%+v) succeeded, want an error naming %s", tt.opts, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New(%+v) error %q does not name %s", tt.opts, err, tt.wantErr)
			}
		})
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestRoundTrip(t *testing.T) {
	// The shared servers run with -I 2m: a 1 MiB value fits once
	// MaxValueBytes is raised to match.
	s := NewPoolStore(t, memcached.Options{MaxValueBytes: 2<<20 - 512})
	p := prefix(t)
	tests := []struct {
		name  string
		value []byte
	}{
		{"empty", []byte{}},
		{"nil is empty", nil},
		{"text", []byte("hello")},
		{"protocol bytes", []byte("END\r\nVALUE x 0 1\r\n\x00\xff")},
		{"1 MiB", randomBytes(1 << 20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := p + tt.name
			if err := s.Set(bg, key, tt.value, time.Minute); err != nil {
				t.Fatalf("Set %d bytes: %v", len(tt.value), err)
			}
			got, found, err := s.Get(bg, key)
			if err != nil || !found {
				t.Fatalf("Get = found %v, err %v; want the value", found, err)
			}
			if got == nil || !bytes.Equal(got, tt.value) {
				t.Fatalf("Get returned %d bytes (nil %v), want the %d bytes set", len(got), got == nil, len(tt.value))
			}
			multi, err := s.GetMulti(bg, []string{key})
			if err != nil {
				t.Fatalf("GetMulti: %v", err)
			}
			if multi[0] == nil || !bytes.Equal(multi[0], tt.value) {
				t.Fatalf("GetMulti returned %d bytes (nil %v), want the %d bytes set", len(multi[0]), multi[0] == nil, len(tt.value))
			}
			if ok, err := s.Exists(bg, key); !ok || err != nil {
				t.Fatalf("Exists = %v, %v; want true", ok, err)
			}
		})
	}
	if _, found, err := s.Get(bg, p+"absent"); found || err != nil {
		t.Errorf("Get of an absent key: found %v, err %v; want a miss", found, err)
	}
	if ok, err := s.Exists(bg, p+"absent"); ok || err != nil {
		t.Errorf("Exists of an absent key = %v, %v; want false", ok, err)
	}
}

func TestTooLargeValueSaysWhatToDo(t *testing.T) {
	m := testserver.MemcachedT(t, testserver.MemcachedOptions{MaxItemSize: "1m"})
	// Refused by the store (over the default MaxValueBytes)...
	s := NewStore(t, []*testserver.Memcached{m}, memcached.Options{})
	err := s.Set(bg, "big", make([]byte, 1<<20), time.Minute)
	if !errors.Is(err, hoard.ErrValueTooLarge) || !strings.Contains(err.Error(), "-I") || !strings.Contains(err.Error(), "MaxValueBytes") {
		t.Fatalf("Set of 1 MiB with the default MaxValueBytes: %v; want hoard.ErrValueTooLarge and advice about -I and MaxValueBytes", err)
	}
	// ...or by the server, when MaxValueBytes is over its -I.
	s = NewStore(t, []*testserver.Memcached{m}, memcached.Options{MaxValueBytes: 2 << 20})
	err = s.Set(bg, "big", make([]byte, 1<<20), time.Minute)
	if !errors.Is(err, hoard.ErrValueTooLarge) || !strings.Contains(err.Error(), "-I") {
		t.Fatalf("Set of 1 MiB on a server with -I 1m: %v; want hoard.ErrValueTooLarge and an error that advises -I", err)
	}
	// The connection was dropped cleanly: the next call works.
	if err := s.Set(bg, "small", []byte("x"), time.Minute); err != nil {
		t.Fatalf("Set after a refused value: %v", err)
	}
}

// oddKeys are keys memcached cannot take as they are, and keys close to them.
func oddKeys(p string) []string {
	long := p + strings.Repeat("long/", 60)
	return []string{
		p + "plain",
		p + "with space",
		p + "with_space",
		p + "tab\tnewline\r\nnul\x00del\x7f",
		p + "ünïcode/日本語",
		long,
		long + "x",
		p + strings.Repeat("k", 250-len(p)),
		p + strings.Repeat("k", 251-len(p)),
		memcached.StoredKey(p + "with space"), // what "with space" is stored as
		"",
		" ",
		"_",
	}
}

func TestOddKeysRoundTrip(t *testing.T) {
	pool := SharedPool(t)
	s := NewPoolStore(t, memcached.Options{})
	// Keys are placed by hash: pick a prefix whose keys reach every
	// server (13 random keys miss one about once in fifty).
	var keys []string
	for try := 0; ; try++ {
		keys = oddKeys(prefix(t) + strconv.Itoa(try) + ":")
		shards := map[int]bool{}
		for _, k := range keys {
			shards[s.ShardOf(k)] = true
		}
		if len(shards) == len(pool) || try == 100 {
			break
		}
	}
	for i, k := range keys {
		if err := s.Set(bg, k, []byte(strconv.Itoa(i)), time.Minute); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
	}
	servers := make(map[string]bool)
	for i, k := range keys {
		v, found, err := s.Get(bg, k)
		if err != nil || !found || string(v) != strconv.Itoa(i) {
			t.Errorf("Get(%q) = %q, %v, %v; want %q", k, v, found, err, strconv.Itoa(i))
		}
		servers[Locate(t, pool, k)] = true
	}
	if len(servers) != len(pool) {
		t.Errorf("%d keys landed on %d servers, want all %d", len(keys), len(servers), len(pool))
	}
	values, err := s.GetMulti(bg, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		if string(v) != strconv.Itoa(i) {
			t.Errorf("GetMulti[%d] (%q) = %q, want %q", i, keys[i], v, strconv.Itoa(i))
		}
	}
	if err := s.Delete(bg, keys...); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if ok, err := s.Exists(bg, k); ok || err != nil {
			t.Errorf("Exists(%q) after Delete = %v, %v; want false", k, ok, err)
		}
	}
}

func TestKeysSpreadOverAllServers(t *testing.T) {
	pool := SharedPool(t)
	s := NewPoolStore(t, memcached.Options{})
	p := prefix(t)
	const n = 300
	count := make(map[string]int)
	for i := range n {
		k := p + strconv.Itoa(i)
		if err := s.Set(bg, k, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		addr := Locate(t, pool, k)
		if addr == "" {
			t.Fatalf("key %q was set but no server holds it", k)
		}
		count[addr]++
	}
	for _, m := range pool {
		// An even share is 100; the ring keeps every server well within ±50.
		if c := count[m.Addr]; c < n/3/2 {
			t.Errorf("server %s holds %d of %d keys, want about a third: %v", m.Addr, c, n, count)
		}
	}
}

// ttlOnServer returns the remaining TTL, in seconds, that the server
// holding key reports for it (meta get with the t flag).
func ttlOnServer(t *testing.T, pool []*testserver.Memcached, key string) int {
	t.Helper()
	addr := Locate(t, pool, key)
	if addr == "" {
		t.Fatalf("no server holds %q", key)
	}
	reply, err := serverOf(t, pool, addr).Do("mg " + memcached.StoredKey(key) + " t")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(reply)
	if len(f) != 2 || f[0] != "HD" || !strings.HasPrefix(f[1], "t") {
		t.Fatalf("mg %s t answered %q", key, reply)
	}
	secs, err := strconv.Atoi(f[1][1:])
	if err != nil {
		t.Fatalf("mg %s t answered %q", key, reply)
	}
	return secs
}

func TestTTLOnServer(t *testing.T) {
	pool := SharedPool(t)
	s := NewPoolStore(t, memcached.Options{})
	p := prefix(t)
	const day = 24 * time.Hour
	tests := []struct {
		ttl      time.Duration
		min, max int // remaining seconds the server may report right after the write
	}{
		// Rounded up to whole seconds, plus one for memcached's clock tick.
		{time.Nanosecond, 1, 2},
		{time.Second, 1, 2},
		{1500 * time.Millisecond, 2, 3},
		{time.Hour, 3600, 3601},
		// From 30 days (plus the tick second) on: sent as a Unix time, which
		// must not read as "now". memcached's clock, whole seconds behind the
		// wall clock, adds a second or two.
		{30 * day, 30 * 86400, 30*86400 + 4},
		{40 * day, 40 * 86400, 40*86400 + 4},
		{365 * day, 365 * 86400, 365*86400 + 4},
	}
	for _, tt := range tests {
		t.Run(tt.ttl.String(), func(t *testing.T) {
			for _, op := range []string{"set", "add"} {
				key := p + tt.ttl.String() + ":" + op
				var err error
				if op == "set" {
					err = s.Set(bg, key, []byte("v"), tt.ttl)
				} else {
					_, err = s.Add(bg, key, []byte("v"), tt.ttl)
				}
				if err != nil {
					t.Fatalf("%s with TTL %v: %v", op, tt.ttl, err)
				}
				if _, found, err := s.Get(bg, key); !found || err != nil {
					t.Fatalf("Get right after %s with TTL %v: found %v, err %v; want the value", op, tt.ttl, found, err)
				}
				if got := ttlOnServer(t, pool, key); got < tt.min || got > tt.max {
					t.Errorf("%s with TTL %v: the server holds it for %ds more, want %d..%d", op, tt.ttl, got, tt.min, tt.max)
				}
			}
		})
	}
}

func TestTTLRoundsUpAndExpires(t *testing.T) {
	s := NewPoolStore(t, memcached.Options{})
	key := prefix(t) + "k"
	start := time.Now()
	if err := s.Set(bg, key, []byte("v"), 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// Truncated to 1 s, or rounded to 2 s without the tick allowance, the
	// key could be gone by now; rounded up it lives over 2 s.
	time.Sleep(time.Until(start.Add(1600 * time.Millisecond)))
	if _, found, err := s.Get(bg, key); !found || err != nil {
		t.Fatalf("Get %v after a write with TTL 1.5s: found %v, err %v; want the value", time.Since(start), found, err)
	}
	// Sent as 3 s, it expires 2 to 3 s after the write.
	deadline := start.Add(3*time.Second + 700*time.Millisecond)
	for {
		_, found, err := s.Get(bg, key)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key with TTL 1.5s still there %v after the write", time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestInvalidTTL(t *testing.T) {
	s := NewPoolStore(t, memcached.Options{})
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := s.Set(bg, "k", []byte("v"), ttl); !errors.Is(err, hoard.ErrInvalidTTL) {
			t.Errorf("Set with TTL %v: %v, want ErrInvalidTTL", ttl, err)
		}
		if _, err := s.Add(bg, "k", []byte("v"), ttl); !errors.Is(err, hoard.ErrInvalidTTL) {
			t.Errorf("Add with TTL %v: %v, want ErrInvalidTTL", ttl, err)
		}
	}
}

func TestAddRace(t *testing.T) {
	s := NewPoolStore(t, memcached.Options{})
	key := prefix(t) + "k"
	const n = 50
	added := make([]bool, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			ok, err := s.Add(bg, key, []byte(strconv.Itoa(i)), time.Minute)
			if err != nil {
				t.Errorf("Add: %v", err)
			}
			added[i] = ok
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, ok := range added {
		if ok {
			if winner >= 0 {
				t.Fatalf("both Add %d and Add %d report that they stored the key", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no Add reports that it stored the key")
	}
	if v, _, _ := s.Get(bg, key); string(v) != strconv.Itoa(winner) {
		t.Errorf("key holds %q, but Add %d won", v, winner)
	}
	if ok, err := s.Add(bg, key, []byte("late"), time.Minute); ok || err != nil {
		t.Errorf("Add of a present key = %v, %v; want false", ok, err)
	}
}

func TestGetMultiAcrossServers(t *testing.T) {
	pool := SharedPool(t)
	s := NewPoolStore(t, memcached.Options{})
	p := prefix(t)
	var keys []string
	servers := make(map[string]bool)
	for i := range 30 {
		k := p + strconv.Itoa(i)
		keys = append(keys, k)
		if i%3 == 2 {
			continue // absent
		}
		if err := s.Set(bg, k, []byte("v"+strconv.Itoa(i)), time.Minute); err != nil {
			t.Fatal(err)
		}
		servers[Locate(t, pool, k)] = true
	}
	if len(servers) != len(pool) {
		t.Fatalf("the present keys are on %d servers, want all %d", len(servers), len(pool))
	}
	keys = append(keys, keys[0], keys[2]) // duplicates, present and absent
	values, err := s.GetMulti(bg, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(values) != len(keys) {
		t.Fatalf("GetMulti returned %d values for %d keys", len(values), len(keys))
	}
	for i, v := range values {
		j, _ := strconv.Atoi(strings.TrimPrefix(keys[i], p))
		if j%3 == 2 {
			if v != nil {
				t.Errorf("GetMulti[%d] (absent %q) = %q, want nil", i, keys[i], v)
			}
		} else if string(v) != "v"+strconv.Itoa(j) {
			t.Errorf("GetMulti[%d] (%q) = %q, want %q", i, keys[i], v, "v"+strconv.Itoa(j))
		}
	}
	if values, err := s.GetMulti(bg, nil); err != nil || values == nil || len(values) != 0 {
		t.Errorf("GetMulti of no keys = %v, %v; want an empty slice", values, err)
	}
}

func TestDelete(t *testing.T) {
	s := NewPoolStore(t, memcached.Options{PoolSize: 2})
	p := prefix(t)
	var keys []string
	for i := range 40 {
		k := p + strconv.Itoa(i)
		keys = append(keys, k)
		if err := s.Set(bg, k, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	keep := p + "keep"
	if err := s.Set(bg, keep, []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(bg); err != nil {
		t.Errorf("Delete of no keys: %v", err)
	}
	if err := s.Delete(bg, keys[0]); err != nil {
		t.Errorf("Delete of one key: %v", err)
	}
	// keys[0] is now absent, p+"never" always was: misses are ignored.
	if err := s.Delete(bg, append(keys, p+"never")...); err != nil {
		t.Errorf("Delete of %d keys: %v", len(keys)+1, err)
	}
	values, err := s.GetMulti(bg, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		if v != nil {
			t.Errorf("%q still there after Delete", keys[i])
		}
	}
	if _, found, _ := s.Get(bg, keep); !found {
		t.Errorf("Delete removed %q, which it was not given", keep)
	}
}

// TestNotAPatternDeleter: memcached cannot list its keys, so the store
// does not claim it can (a hoard Cache's DeletePattern then returns
// hoard.ErrPatternNotSupported without calling the store).
func TestNotAPatternDeleter(t *testing.T) {
	var s hoard.Store = (*memcached.Store)(nil)
	if _, ok := s.(hoard.PatternDeleter); ok {
		t.Error("*memcached.Store implements hoard.PatternDeleter")
	}
}

func TestPing(t *testing.T) {
	if err := NewPoolStore(t, memcached.Options{}).Ping(bg); err != nil {
		t.Errorf("Ping of a running pool: %v", err)
	}
}

// calls returns one call of every Store method, by name.
func calls(s *memcached.Store, ctx context.Context) map[string]func() error {
	return map[string]func() error{
		"Get":      func() error { _, _, err := s.Get(ctx, "k"); return err },
		"GetMulti": func() error { _, err := s.GetMulti(ctx, []string{"k", "l"}); return err },
		"Set":      func() error { return s.Set(ctx, "k", []byte("v"), time.Minute) },
		"Add":      func() error { _, err := s.Add(ctx, "k", []byte("v"), time.Minute); return err },
		"Touch":    func() error { _, err := s.Touch(ctx, "k", time.Minute); return err },
		"Delete":   func() error { return s.Delete(ctx, "k", "l") },
		"Exists":   func() error { _, err := s.Exists(ctx, "k"); return err },
		"Ping":     func() error { return s.Ping(ctx) },
	}
}

func TestCanceledContext(t *testing.T) {
	s := NewPoolStore(t, memcached.Options{})
	ctx, cancel := context.WithCancel(bg)
	cancel()
	for name, call := range calls(s, ctx) {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want context.Canceled", name, err)
		}
	}
}

func TestClose(t *testing.T) {
	m := testserver.MemcachedT(t, testserver.MemcachedOptions{})
	conns := func() int {
		st, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(st["curr_connections"])
		return n
	}
	idle := conns()
	s := NewStore(t, []*testserver.Memcached{m}, memcached.Options{})
	// Calls race with Close: afterwards they fail with ErrClosed, and no
	// connection they used stays open.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := s.Set(bg, "k"+strconv.Itoa(i), []byte("v"), time.Minute)
				if err != nil && !errors.Is(err, hoard.ErrClosed) {
					t.Errorf("Set during Close: %v, want nil or ErrClosed", err)
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	close(stop)
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for name, call := range calls(s, bg) {
		if err := call(); !errors.Is(err, hoard.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	// The server sees the connections close shortly after.
	deadline := time.Now().Add(5 * time.Second)
	for conns() > idle {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after Close, %d before the store", conns(), idle)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keysByServer sets n keys per server of pool, each holding its own name,
// and returns them grouped by the address of the server that holds them.
func keysByServer(t *testing.T, pool []*testserver.Memcached, n int) map[string][]string {
	t.Helper()
	s := NewStore(t, pool, memcached.Options{})
	p := prefix(t)
	byServer := make(map[string][]string)
	for i := 0; ; i++ {
		done := true
		for _, m := range pool {
			done = done && len(byServer[m.Addr]) >= n
		}
		if done {
			return byServer
		}
		if i > 1000*n {
			t.Fatalf("after %d keys, some server has fewer than %d: %v", i, n, byServer)
		}
		k := p + strconv.Itoa(i)
		if err := s.Set(bg, k, []byte(k), time.Minute); err != nil {
			t.Fatal(err)
		}
		addr := Locate(t, pool, k)
		if len(byServer[addr]) < n {
			byServer[addr] = append(byServer[addr], k)
		}
	}
}

// outageTimeout is the Timeout of the stores of the outage tests: short,
// yet long enough that the healthy servers answer in time on a loaded
// 2-core host under -race.
const outageTimeout = 400 * time.Millisecond

// outageSlack is how much longer than outageTimeout a call may take to fail
// while a server is down or frozen: scheduling and timer latency.
const outageSlack = 600 * time.Millisecond

// within runs call and fails t unless it returns an error within limit.
// A call that took too long is run once more before failing t: a store that
// waits too long does it every time, while a loaded host can stall one call.
func within(t *testing.T, what string, limit time.Duration, call func() error) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := call()
		elapsed := time.Since(start)
		if err == nil {
			t.Errorf("%s succeeded, want an error", what)
			return
		}
		if elapsed <= limit {
			return
		}
		if attempt == 2 {
			t.Errorf("%s failed after %v, want within %v: %v", what, elapsed, limit, err)
			return
		}
		t.Logf("%s failed after %v, over %v; trying again", what, elapsed, limit)
	}
}

// stillWorks fails t unless the keys, which hold their own names, can be
// read and written.
func stillWorks(t *testing.T, s *memcached.Store, keys []string) {
	t.Helper()
	values, err := s.GetMulti(bg, keys)
	if err != nil {
		t.Fatalf("GetMulti of the healthy servers' keys: %v", err)
	}
	for i, k := range keys {
		if string(values[i]) != k {
			t.Errorf("GetMulti: %q = %q, want %q", k, values[i], k)
		}
		if v, _, err := s.Get(bg, k); err != nil || string(v) != k {
			t.Errorf("Get(%q) = %q, %v; want %q", k, v, err, k)
		}
		if err := s.Set(bg, k, []byte(k), time.Minute); err != nil {
			t.Errorf("Set(%q): %v", k, err)
		}
	}
}

// recovers fails t unless a Set of key succeeds within 5s.
func recovers(t *testing.T, s *memcached.Store, key string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.Set(bg, key, []byte(key), time.Minute)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Set(%q) still fails 5s after the server came back: %v", key, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v, _, err := s.Get(bg, key); err != nil || string(v) != key {
		t.Fatalf("Get(%q) after recovery = %q, %v", key, v, err)
	}
}

// partial fails t unless GetMulti of live and dead keys (which hold their
// own names) returns without an error, every live key's value, and nil for
// every dead key; and unless GetMulti of the dead keys alone fails.
func partial(t *testing.T, s *memcached.Store, live, dead []string) {
	t.Helper()
	keys := append(append([]string(nil), live...), dead...)
	values, err := s.GetMulti(bg, keys)
	if err != nil {
		t.Fatalf("GetMulti of %d live and %d dead keys: %v; want the live values and misses for the rest", len(live), len(dead), err)
	}
	for i, k := range keys {
		want := k
		if i >= len(live) {
			want = ""
		}
		if (values[i] == nil) != (want == "") || string(values[i]) != want {
			t.Errorf("GetMulti: %q = %q, want %q", k, values[i], want)
		}
	}
	if _, err := s.GetMulti(bg, dead); err == nil {
		t.Errorf("GetMulti of only the dead server's keys succeeded; want an error (no server answered)")
	}
}

// testBackoff is the Backoff of the outage tests' stores.
const testBackoff = 300 * time.Millisecond

func TestKilledServer(t *testing.T) {
	pool := testserver.MemcachedPoolT(t, 3, testserver.MemcachedOptions{})
	byServer := keysByServer(t, pool, 5)
	s := NewStore(t, pool, memcached.Options{Timeout: outageTimeout, Backoff: testBackoff})
	dead := pool[0]
	var healthy []string
	for _, m := range pool[1:] {
		healthy = append(healthy, byServer[m.Addr]...)
	}
	deadKeys := byServer[dead.Addr]
	// Idle connections to every server exist before the kill.
	stillWorks(t, s, append(append([]string(nil), healthy...), deadKeys...))
	if err := dead.Kill(); err != nil {
		t.Fatal(err)
	}
	limit := outageTimeout + outageSlack
	for _, k := range deadKeys {
		within(t, "Get of a killed server's key", limit, func() error { _, _, err := s.Get(bg, k); return err })
		within(t, "Set of a killed server's key", limit, func() error { return s.Set(bg, k, []byte("v"), time.Minute) })
	}
	within(t, "Add of a killed server's key", limit, func() error { _, err := s.Add(bg, deadKeys[0], []byte("v"), time.Minute); return err })
	within(t, "Touch of a killed server's key", limit, func() error { _, err := s.Touch(bg, deadKeys[1], time.Minute); return err })
	within(t, "Delete including a killed server", limit, func() error { return s.Delete(bg, append(deadKeys, healthy[0])...) })
	if _, found, err := s.Get(bg, healthy[0]); err != nil || found {
		t.Errorf("Get(%q) after a Delete that failed on another server = found %v, %v; want deleted", healthy[0], found, err)
	}
	if err := s.Set(bg, healthy[0], []byte(healthy[0]), time.Minute); err != nil {
		t.Fatal(err)
	}
	within(t, "Ping with a killed server", limit, func() error { return s.Ping(bg) })
	partial(t, s, healthy, deadKeys)
	stillWorks(t, s, healthy)

	// By now a connect has been refused: the server is marked down, and
	// its calls fail without trying it.
	calls := map[string]func() error{
		"Get":    func() error { _, _, err := s.Get(bg, deadKeys[0]); return err },
		"Set":    func() error { return s.Set(bg, deadKeys[0], []byte("v"), time.Minute) },
		"Add":    func() error { _, err := s.Add(bg, deadKeys[0], []byte("v"), time.Minute); return err },
		"Touch":  func() error { _, err := s.Touch(bg, deadKeys[0], time.Minute); return err },
		"Delete": func() error { return s.Delete(bg, deadKeys[0]) },
		"Ping":   func() error { return s.Ping(bg) },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, memcached.ErrServerDown) {
			// The back-off may just have ended: this call retried it.
			err = call()
		}
		if !errors.Is(err, memcached.ErrServerDown) || !strings.Contains(err.Error(), dead.Addr) {
			t.Errorf("%s of a key of the killed server, after a refused connect: %v; want ErrServerDown naming %s", name, err, dead.Addr)
		}
	}

	if err := dead.Restart(); err != nil {
		t.Fatal(err)
	}
	// Within about one back-off, the server is tried again and works.
	recovers(t, s, deadKeys[0])
	values, err := s.GetMulti(bg, append(healthy, deadKeys[0]))
	if err != nil || string(values[len(healthy)]) != deadKeys[0] {
		t.Fatalf("GetMulti after the restart: %v; the restarted server's key = %q, want %q", err, values[len(healthy)], deadKeys[0])
	}
	stillWorks(t, s, healthy)
}

// TestKilledServerUnderLoad kills a server while many goroutines read and
// write: reads of the other servers' keys never fail or miss, and once the
// server is marked down, its calls stop costing connects.
func TestKilledServerUnderLoad(t *testing.T) {
	pool := testserver.MemcachedPoolT(t, 3, testserver.MemcachedOptions{})
	byServer := keysByServer(t, pool, 4)
	// A killed server refuses connects at once: the long test Timeout only
	// keeps a stalled host from failing the live servers' calls.
	s := NewStore(t, pool, memcached.Options{Timeout: testTimeout, Backoff: testBackoff, PoolSize: 2})
	dead := pool[2]
	var healthy []string
	for _, m := range pool[:2] {
		healthy = append(healthy, byServer[m.Addr]...)
	}
	deadKeys := byServer[dead.Addr]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, downErrs atomic.Int64
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				live := healthy[(w+i)%len(healthy)]
				keys := []string{live, deadKeys[(w+i)%len(deadKeys)], healthy[(w+i+1)%len(healthy)]}
				values, err := s.GetMulti(bg, keys)
				reads.Add(1)
				if err != nil {
					t.Errorf("GetMulti(%q) with one server killed: %v", keys, err)
					return
				}
				if string(values[0]) != keys[0] || string(values[2]) != keys[2] {
					t.Errorf("GetMulti(%q) = %q; the live servers' keys must still hit", keys, values)
					return
				}
				err = s.Set(bg, keys[1], []byte(keys[1]), time.Minute)
				if errors.Is(err, memcached.ErrServerDown) {
					downErrs.Add(1)
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if err := dead.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d reads, %d writes skipped as the server was down", reads.Load(), downErrs.Load())
	if downErrs.Load() == 0 {
		t.Errorf("no write failed with ErrServerDown during 1s after the kill; a killed server must be marked down")
	}
}

// pause freezes m and waits until it stops answering: SIGSTOP takes effect
// on each thread of the server a little after kill(2) returns, and on a
// loaded host a request can be served in between.
func pause(t *testing.T, m *testserver.Memcached) {
	t.Helper()
	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", m.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(100 * time.Millisecond))
		_, err = c.Write([]byte("version\r\n"))
		if err == nil {
			_, err = bufio.NewReader(c).ReadString('\n')
		}
		c.Close()
		if err != nil {
			return // no answer: frozen
		}
		if time.Now().After(deadline) {
			t.Fatalf("memcached %s still answers 5s after SIGSTOP", m.Addr)
		}
	}
}

func TestPausedServer(t *testing.T) {
	pool := testserver.MemcachedPoolT(t, 3, testserver.MemcachedOptions{})
	// Two idle connections per server: Delete of many keys runs two at a
	// time, and must still fail after one Timeout, not one per key.
	byServer := keysByServer(t, pool, 16)
	s := NewStore(t, pool, memcached.Options{Timeout: outageTimeout, PoolSize: 2, Backoff: testBackoff})
	frozen := pool[1]
	var healthy []string
	for _, m := range []*testserver.Memcached{pool[0], pool[2]} {
		healthy = append(healthy, byServer[m.Addr]...)
	}
	frozenKeys := byServer[frozen.Addr]
	pause(t, frozen)
	resumed := false
	defer func() {
		if !resumed {
			frozen.Resume()
		}
	}()
	limit := outageTimeout + outageSlack
	within(t, "Get of a frozen server's key", limit, func() error { _, _, err := s.Get(bg, frozenKeys[0]); return err })
	within(t, "Set of a frozen server's key", limit, func() error { return s.Set(bg, frozenKeys[1], []byte("v"), time.Minute) })
	within(t, "Exists of a frozen server's key", limit, func() error { _, err := s.Exists(bg, frozenKeys[2]); return err })
	within(t, "Touch of a frozen server's key", limit, func() error { _, err := s.Touch(bg, frozenKeys[2], time.Minute); return err })
	within(t, fmt.Sprintf("Delete of %d keys of a frozen server", len(frozenKeys)), limit, func() error { return s.Delete(bg, frozenKeys...) })
	within(t, "Ping with a frozen server", limit, func() error { return s.Ping(bg) })
	// By now the server has failed calls for longer than Backoff without
	// answering one: it is marked down, and its calls fail at once.
	err := func() error { _, _, err := s.Get(bg, frozenKeys[0]); return err }()
	if !errors.Is(err, memcached.ErrServerDown) {
		err = func() error { _, _, err := s.Get(bg, frozenKeys[0]); return err }() // the back-off may just have ended
	}
	if !errors.Is(err, memcached.ErrServerDown) {
		t.Errorf("Get of a frozen server's key after %v of timeouts: %v; want ErrServerDown", testBackoff, err)
	}
	partial(t, s, healthy, frozenKeys[3:])
	stillWorks(t, s, healthy)

	if err := frozen.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	// The server now runs the commands it received while frozen, the
	// timed-out writes included; keys 3 and up were only read.
	recovers(t, s, frozenKeys[3])
	stillWorks(t, s, frozenKeys[4:])
}

// TestPoolSizeBoundsConnections runs many more concurrent calls than
// PoolSize on one server: they share PoolSize connections (waiting for a
// free one) instead of opening extra connections that are closed again at
// once.
func TestPoolSizeBoundsConnections(t *testing.T) {
	m := testserver.MemcachedT(t, testserver.MemcachedOptions{})
	total := func() int {
		st, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(st["total_connections"])
		if err != nil {
			t.Fatalf("total_connections = %q: %v", st["total_connections"], err)
		}
		return n
	}
	const poolSize = 2
	s := NewStore(t, []*testserver.Memcached{m}, memcached.Options{PoolSize: poolSize})
	before := total()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 50 {
				k := "k" + strconv.Itoa(w) + ":" + strconv.Itoa(i)
				if err := s.Set(bg, k, []byte("v"), time.Minute); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.GetMulti(bg, []string{k, "absent"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Each Stats call opens one connection of its own.
	if opened := total() - before - 1; opened > poolSize {
		t.Errorf("16 goroutines × 100 calls opened %d connections with PoolSize %d; want at most %d", opened, poolSize, poolSize)
	}
}

// TestKilledServerFewFailures: after a server is killed, its idle
// connections are not each tried in turn (every one of them fails, and
// each failure would count toward a Cache's circuit breaker): the first
// reset drops them, the next call dials, is refused and marks the server
// down, and the calls after that are skipped with ErrServerDown.
func TestKilledServerFewFailures(t *testing.T) {
	pool := testserver.MemcachedPoolT(t, 1, testserver.MemcachedOptions{})
	s := NewStore(t, pool, memcached.Options{Timeout: testTimeout, Backoff: time.Minute, PoolSize: 8})
	ctx := context.Background()
	// Eight idle connections: eight calls at once, each holding one.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := s.Set(ctx, fmt.Sprintf("idle%d", i), bytes.Repeat([]byte("v"), 1<<16), time.Minute); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := pool[0].Kill(); err != nil {
		t.Fatal(err)
	}
	failures := 0
	for i := range 8 {
		_, _, err := s.Get(ctx, fmt.Sprintf("idle%d", i))
		if err != nil && !errors.Is(err, memcached.ErrServerDown) {
			failures++
		}
	}
	if failures > 2 {
		t.Errorf("%d of 8 calls after the kill failed other than with ErrServerDown; want 2 at most (one reset, one refused connect)", failures)
	}
}
