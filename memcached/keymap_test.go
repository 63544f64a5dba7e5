package memcached

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestStoredKey(t *testing.T) {
	long := strings.Repeat("a", 300)
	hashedLooking := "posts" + hashMarker + sha("x")
	tests := []struct {
		name, key, want string
	}{
		{"short legal", "hoard:v1:/api/posts?page=2", "hoard:v1:/api/posts?page=2"},
		{"exactly 250 bytes", strings.Repeat("k", 250), strings.Repeat("k", 250)},
		{"utf-8 is legal", "café/ünïcode", "café/ünïcode"},
		{"marker alone is legal", "a#h:b", "a#h:b"},
		{"uppercase hex is not our form", "a#h:" + strings.ToUpper(sha("x")), "a#h:" + strings.ToUpper(sha("x"))},
		{"251 bytes", strings.Repeat("k", 251), strings.Repeat("k", 150) + "#h:" + sha(strings.Repeat("k", 251))},
		{"long", long, long[:150] + "#h:" + sha(long)},
		{"space", "a b", "a_b#h:" + sha("a b")},
		{"control bytes", "a\tb\r\n\x00\x7f", "a_b____#h:" + sha("a\tb\r\n\x00\x7f")},
		{"empty", "", "#h:" + sha("")},
		{"looks hashed", hashedLooking, hashedLooking + "#h:" + sha(hashedLooking)},
		{"cut before a split rune", strings.Repeat("a", 149) + "é" + long, strings.Repeat("a", 149) + "#h:" + sha(strings.Repeat("a", 149)+"é"+long)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := storedKey(tt.key)
			if got != tt.want {
				t.Errorf("storedKey(%q)\n got %q\nwant %q", tt.key, got, tt.want)
			}
			if !legalKey(got) {
				t.Errorf("storedKey(%q) = %q is not a legal memcached key", tt.key, got)
			}
		})
	}
}

func TestStoredKeyLegalDoesNotAllocate(t *testing.T) {
	key := "hoard:v1:/api/posts/42?expand=author"
	if n := testing.AllocsPerRun(100, func() { _ = storedKey(key) }); n != 0 {
		t.Errorf("storedKey of a legal key allocates %.0f times, want 0", n)
	}
}

// FuzzStoredKey checks, for every pair of inputs, that both stored keys are
// legal memcached keys, that a legal key that does not end like a hashed
// form is stored unchanged, and that different keys are stored under
// different keys.
func FuzzStoredKey(f *testing.F) {
	f.Add("a", "b")
	f.Add("a b", "a_b")
	f.Add("", "#h:"+sha(""))
	f.Add(strings.Repeat("x", 250), strings.Repeat("x", 251))
	f.Fuzz(func(t *testing.T, a, b string) {
		ka, kb := storedKey(a), storedKey(b)
		for _, p := range [][2]string{{a, ka}, {b, kb}} {
			in, out := p[0], p[1]
			if len(out) > maxKeyLen {
				t.Fatalf("storedKey(%q) is %d bytes, over %d", in, len(out), maxKeyLen)
			}
			if !legalKey(out) {
				t.Fatalf("storedKey(%q) = %q is not a legal memcached key", in, out)
			}
			if legalKey(in) && !looksHashed(in) && out != in {
				t.Fatalf("legal key %q stored as %q, want it unchanged", in, out)
			}
			if storedKey(in) != out {
				t.Fatalf("storedKey(%q) is not deterministic", in)
			}
		}
		if a != b && ka == kb {
			t.Fatalf("different keys %q and %q are both stored as %q", a, b, ka)
		}
	})
}
