package glob

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hoardcache/hoard/internal/testserver"
)

// TestMatchAgainstRedis asks a private redis-server which of about 1,200
// keys each pattern selects with KEYS, for the patterns of matchCases and
// 3,000 random ones over an alphabet of metacharacters, and compares with
// Match. Patterns with bytes >= 0x80 are left out: redis-server orders them
// as signed chars in ranges on x86-64 (see the package doc).
func TestMatchAgainstRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a redis-server")
	}
	r := testserver.RedisT(t, testserver.RedisOptions{})
	c, err := r.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Dial's deadline of 5 s is tight for 3,000 KEYS on a loaded machine
	// under -race; the test binary's own timeout still bounds a hang.
	if err := c.SetDeadline(time.Now().Add(2 * time.Minute)); err != nil {
		t.Fatal(err)
	}

	const alphabet = "ab]-\\*?[^"
	keys := allStrings(alphabet, 3) // includes ""
	for _, mc := range matchCases {
		if ascii(mc.s) && !slices.Contains(keys, mc.s) {
			keys = append(keys, mc.s)
		}
	}
	mset := []string{"MSET"}
	for _, k := range keys {
		mset = append(mset, k, "v")
	}
	if _, err := c.Do(mset...); err != nil {
		t.Fatal(err)
	}

	var patterns []string
	for _, mc := range matchCases {
		if ascii(mc.pattern) {
			patterns = append(patterns, mc.pattern)
		}
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for range 3000 {
		b := make([]byte, rng.IntN(9))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		patterns = append(patterns, string(b))
	}

	// Pipeline: send every KEYS, then read every reply.
	for _, p := range patterns {
		if err := c.Send("KEYS", p); err != nil {
			t.Fatal(err)
		}
	}
	diffs := 0
	for _, p := range patterns {
		reply, err := c.Receive()
		if err != nil {
			t.Fatalf("KEYS %q: %v", p, err)
		}
		list, ok := reply.([]any)
		if !ok {
			t.Fatalf("KEYS %q: reply %T, want an array", p, reply)
		}
		fromRedis := make(map[string]bool, len(list))
		for _, k := range list {
			fromRedis[k.(string)] = true
		}
		for _, k := range keys {
			if got, want := Match(p, k), fromRedis[k]; got != want {
				t.Errorf("Match(%q, %q) = %v, redis-server KEYS says %v", p, k, got, want)
				if diffs++; diffs > 20 {
					t.Fatal("too many differences")
				}
			}
		}
	}
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
