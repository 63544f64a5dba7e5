package memcached

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"testing"
)

func TestXXH64Vectors(t *testing.T) {
	// Reference values from the xxHash reference implementation (XXH64,
	// seed 0); the inputs cover every tail path and the 32-byte stripes.
	tests := []struct {
		in   string
		want uint64
	}{
		{"", 0xef46db3751d8e999},
		{"a", 0xd24ec4f1a98c6e5b},
		{"abc", 0x44bc2cf5ad770999},
		{"abcd", 0xde0327b0d25d92cc},
		{"hello, world", 0xb33a384e6d1b1242},
		{"0123456789abcdef0123456789abcdef", 0x642a94958e71e6c5},
		{"The quick brown fox jumps over the lazy dog", 0x0b242d361fda71bc},
		{"127.0.0.1:11211-0", 0x56c608c117bcf04b},
		{"key-12345", 0x7816e2bec5686f79},
	}
	for _, tt := range tests {
		if got := xxh64(tt.in); got != tt.want {
			t.Errorf("xxh64(%q) = %#016x, want %#016x", tt.in, got, tt.want)
		}
	}
}

func ringKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "hoard:v1:/api/posts/" + strconv.Itoa(i) + "?expand=author"
	}
	return keys
}

func owners(r *ring, keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		a, err := r.PickServer(k)
		if err != nil {
			panic(err)
		}
		out[i] = a.String()
	}
	return out
}

// checkEven fails if some server of r owns a share of keys more than 15%
// away from 1/N.
func checkEven(t *testing.T, r *ring, keys []string) {
	t.Helper()
	count := make(map[string]int)
	for _, o := range owners(r, keys) {
		count[o]++
	}
	even := float64(len(keys)) / float64(len(r.addrs))
	for _, a := range r.addrs {
		dev := float64(count[a.String()])/even - 1
		if math.Abs(dev) > 0.15 {
			t.Errorf("%s owns %d of %d keys, %+.1f%% from an even share (allowed ±15%%)", a, count[a.String()], len(keys), dev*100)
		}
	}
	t.Logf("%d servers: %v", len(r.addrs), count)
}

var ringPools = [][]string{
	{"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211", "10.0.0.4:11211"},
	{"cache-a.internal:11211", "cache-b.internal:11211", "cache-c.internal:11211", "cache-d.internal:11211"},
	{"127.0.0.1:40001", "127.0.0.1:40002", "127.0.0.1:40003", "127.0.0.1:40004"},
}

func TestRingAddServerMovesAQuarterToTheNewServer(t *testing.T) {
	keys := ringKeys(100_000)
	for _, pool := range ringPools {
		t.Run(pool[0], func(t *testing.T) {
			three, four := newRing(pool[:3]), newRing(pool)
			checkEven(t, three, keys)
			checkEven(t, four, keys)
			before, after := owners(three, keys), owners(four, keys)
			moved := 0
			for i := range keys {
				if before[i] == after[i] {
					continue
				}
				moved++
				if after[i] != pool[3] {
					t.Fatalf("key %q moved from %s to %s, not to the new server %s", keys[i], before[i], after[i], pool[3])
				}
			}
			frac := float64(moved) / float64(len(keys))
			t.Logf("adding a 4th server moved %.3f of the keys", frac)
			if frac < 0.18 || frac > 0.32 {
				t.Errorf("adding a 4th server to 3 moved %.3f of the keys, want about 1/4 (0.18..0.32)", frac)
			}
		})
	}
}

func TestRingRemoveServerMovesOnlyItsKeys(t *testing.T) {
	keys := ringKeys(20_000)
	pool := ringPools[0]
	four, three := newRing(pool), newRing(pool[1:])
	before, after := owners(four, keys), owners(three, keys)
	for i := range keys {
		if before[i] != pool[0] && before[i] != after[i] {
			t.Fatalf("key %q moved from %s to %s although only %s was removed", keys[i], before[i], after[i], pool[0])
		}
	}
}

func TestRingIgnoresServerOrder(t *testing.T) {
	keys := ringKeys(10_000)
	p := ringPools[1]
	a := owners(newRing([]string{p[0], p[1], p[2]}), keys)
	b := owners(newRing([]string{p[2], p[0], p[1]}), keys)
	for i := range keys {
		if a[i] != b[i] {
			t.Fatalf("key %q: %s with one server order, %s with another", keys[i], a[i], b[i])
		}
	}
}

func TestRingShape(t *testing.T) {
	for n := 1; n <= 4; n++ {
		r := newRing(ringPools[0][:n])
		if len(r.points) != n*pointsPerServer {
			t.Errorf("%d servers: %d points, want %d", n, len(r.points), n*pointsPerServer)
		}
		for i := 1; i < len(r.points); i++ {
			if r.points[i-1] > r.points[i] {
				t.Fatalf("%d servers: points not sorted at %d", n, i)
			}
		}
	}
}

func TestRingEach(t *testing.T) {
	r := newRing(ringPools[0][:3])
	var got []string
	if err := r.Each(func(a net.Addr) error { got = append(got, a.Network()+" "+a.String()); return nil }); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint([]string{"tcp 10.0.0.1:11211", "tcp 10.0.0.2:11211", "tcp 10.0.0.3:11211"})
	if fmt.Sprint(got) != want {
		t.Errorf("Each visited %v, want %v", got, want)
	}
	stop := fmt.Errorf("stop")
	calls := 0
	if err := r.Each(func(net.Addr) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("Each with a failing f: err %v after %d calls, want %v after 1", err, calls, stop)
	}
}

func TestRingPickDoesNotAllocate(t *testing.T) {
	r := newRing(ringPools[0][:3])
	key := "hoard:v1:/api/posts/42?expand=author,comments&page=2"
	if n := testing.AllocsPerRun(100, func() { _, _ = r.PickServer(key) }); n != 0 {
		t.Errorf("PickServer allocates %.0f times per call, want 0", n)
	}
}

func BenchmarkRingPick(b *testing.B) {
	r := newRing(ringPools[0][:3])
	key := "hoard:v1:/api/posts/42?expand=author,comments&page=2"
	b.ReportAllocs()
	for b.Loop() {
		_, _ = r.PickServer(key)
	}
}
