package memcached

import (
	"strconv"
	"strings"
	"testing"
)

func TestHashTag(t *testing.T) {
	for _, c := range []struct {
		key, tag string
		ok       bool
	}{
		{"plain", "", false},
		{"ns{widget:42}?x=1", "widget:42", true},
		{"ns#g:{widget:42}", "widget:42", true},
		{"{a}{b}", "a", true},     // the first '{' and the next '}'
		{"a{b{c}d}", "b{c", true}, // a '{' inside the tag is part of it
		{"a}b{c}", "c", true},     // a '}' before the first '{' does not count
		{"a{}b{c}", "", false},    // empty tag: the whole key
		{"a{bc", "", false},       // no '}'
		{"a}bc", "", false},       // no '{'
		{"{}", "", false},
		{"{x}", "x", true},
	} {
		tag, ok := hashTag(c.key)
		if tag != c.tag || ok != c.ok {
			t.Errorf("hashTag(%q) = %q, %v; want %q, %v", c.key, tag, ok, c.tag, c.ok)
		}
	}
}

// TestRingHashTags: keys with a tag live on the server of the tag alone;
// keys without one are placed by the whole key, as before tags existed.
func TestRingHashTags(t *testing.T) {
	r := newRing(ringPools[0][:3])
	servers := map[int]bool{}
	for i := range 300 {
		tag := "widget:" + strconv.Itoa(i)
		want := r.index(tag)
		servers[want] = true
		for _, k := range []string{
			"ns:{" + tag + "}",
			"ns:{" + tag + "}?expand=author&page=2",
			"ns:#g:{" + tag + "}",
			"other{" + tag + "}#caller=alice",
			// A long key, stored under its hashed form: placed by the
			// tag of the key as given.
			"ns:{" + tag + "}?q=" + strings.Repeat("x", 300),
		} {
			if got := r.locate(k, storedKey(k)); got != want {
				t.Fatalf("key %q on server %d, its tag %q on %d", k, got, tag, want)
			}
		}
		for _, k := range []string{"ns:" + tag, "ns:{}" + tag, "ns:{" + tag} {
			if got, whole := r.locate(k, storedKey(k)), r.index(storedKey(k)); got != whole {
				t.Fatalf("untagged key %q on server %d, want %d (the whole key's)", k, got, whole)
			}
		}
		long := "ns:" + tag + strings.Repeat("y", 300)
		if got, whole := r.locate(long, storedKey(long)), r.index(storedKey(long)); got != whole {
			t.Fatalf("untagged long key on server %d, want %d (its hashed form's)", got, whole)
		}
	}
	if len(servers) != 3 {
		t.Errorf("300 tags landed on %d of 3 servers", len(servers))
	}
	if a, _ := r.PickServer("x{" + "widget:1" + "}"); a != r.addrs[r.index("widget:1")] {
		t.Errorf("PickServer ignores the hash tag: %v", a)
	}
}

// TestShardTags: each server gets a tag that the ring places on it, and
// the tags depend on the set of servers, not their order.
func TestShardTags(t *testing.T) {
	for n := 1; n <= 4; n++ {
		pool := ringPools[0][:n]
		r := newRing(pool)
		tags := r.shardTags()
		if len(tags) != n {
			t.Fatalf("%d servers, %d tags", n, len(tags))
		}
		byAddr := map[string]string{}
		for i, tag := range tags {
			if got := r.locate("ns#epoch{"+tag+"}", "ns#epoch{"+tag+"}"); got != i {
				t.Errorf("%d servers: tag %q of server %d lands on %d", n, tag, i, got)
			}
			byAddr[pool[i]] = tag
		}
		rev := make([]string, n)
		for i := range pool {
			rev[i] = pool[n-1-i]
		}
		for i, tag := range newRing(rev).shardTags() {
			if byAddr[rev[i]] != tag {
				t.Errorf("%d servers: %s has tag %q in one order, %q in another", n, rev[i], byAddr[rev[i]], tag)
			}
		}
	}
}
