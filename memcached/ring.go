package memcached

import (
	"cmp"
	"math/bits"
	"net"
	"slices"
	"strconv"
	"strings"
)

// pointsPerServer is the number of virtual nodes each server gets on the
// ring, as in libketama: enough that every server owns close to 1/N of the
// hash space, few enough that the ring stays small (160 × 8 bytes per server).
const pointsPerServer = 160

// ring is a consistent-hash (ketama-style) memcache.ServerSelector: each
// server owns pointsPerServer points on a 64-bit circle, at
// xxh64("host:port-i"), and a key belongs to the server of the first point
// at or after xxh64(key), wrapping around. Adding a server to N moves about
// 1/(N+1) of the keys, all of them to the new server; removing one moves
// only its own keys.
//
// Hash tags: a key that holds a '{' followed later by a '}' with at least
// one byte between them is placed by the bytes between the first '{' and
// the next '}' only (Redis Cluster's rule), so keys with the same tag live
// on the same server. Other keys are placed by the whole (stored) key.
//
// The ring depends only on the set of server names, not on their order, so
// every client configured with the same servers agrees on every key. It is
// immutable, hence safe for concurrent use, and PickServer does not allocate.
type ring struct {
	points []uint64   // sorted hashes of the virtual nodes
	owner  []int32    // owner[i] is the index in addrs of points[i]
	addrs  []net.Addr // one per server, in the order given
}

// serverAddr is a TCP address kept as written ("host:port"): the dialer
// resolves the host on each new connection, so a DNS change is followed.
type serverAddr struct{ hostport string }

func (a *serverAddr) Network() string { return "tcp" }
func (a *serverAddr) String() string  { return a.hostport }

// newRing builds the ring of servers, which must be distinct, non-empty
// "host:port" strings.
func newRing(servers []string) *ring {
	r := &ring{addrs: make([]net.Addr, len(servers))}
	type point struct {
		hash  uint64
		owner int32
	}
	pts := make([]point, 0, len(servers)*pointsPerServer)
	var buf []byte
	for i, s := range servers {
		r.addrs[i] = &serverAddr{hostport: s}
		for v := range pointsPerServer {
			buf = strconv.AppendInt(append(append(buf[:0], s...), '-'), int64(v), 10)
			pts = append(pts, point{xxh64(string(buf)), int32(i)})
		}
	}
	// Ties (two servers on the same point) go to the smaller name, so the
	// ring does not depend on the order of servers.
	slices.SortFunc(pts, func(a, b point) int {
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return cmp.Compare(servers[a.owner], servers[b.owner])
	})
	r.points = make([]uint64, len(pts))
	r.owner = make([]int32, len(pts))
	for i, p := range pts {
		r.points[i], r.owner[i] = p.hash, p.owner
	}
	return r
}

// hashTag returns the hash tag of key: the bytes between its first '{'
// and the next '}', if there are any (Redis Cluster's rule). ok is false
// when key has no '{', no '}' after it, or nothing between the two.
func hashTag(key string) (tag string, ok bool) {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return "", false
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return "", false
	}
	return key[i+1 : i+1+j], true
}

// locate returns the index in r.addrs of the server that holds key, stored
// as skey (storedKey(key)): the server of key's hash tag if it has one,
// else the server of skey. The tag is read from key, not skey, so that a
// long key stored under its hashed form stays with the other keys of its
// tag.
func (r *ring) locate(key, skey string) int {
	if tag, ok := hashTag(key); ok {
		return r.index(tag)
	}
	return r.index(skey)
}

// index returns the index in r.addrs of the server that owns key, hashed
// whole (a stored key, or a hash tag).
func (r *ring) index(key string) int {
	if len(r.addrs) == 1 {
		return 0
	}
	h := xxh64(key)
	// Binary search for the first point >= h.
	lo, hi := 0, len(r.points)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.points[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(r.points) {
		lo = 0
	}
	return int(r.owner[lo])
}

// PickServer returns the server that owns key, a stored key (its hash tag
// if it has one). It implements memcache.ServerSelector.
func (r *ring) PickServer(key string) (net.Addr, error) {
	return r.addrs[r.locate(key, key)], nil
}

// shardTags returns, for each server, a hash tag that the ring places on
// it: the decimal form of the smallest integer that lands there. It
// depends only on the set of servers, like the ring, so every client with
// the same servers computes the same tags.
func (r *ring) shardTags() []string {
	tags := make([]string, len(r.addrs))
	left := len(r.addrs)
	var buf []byte
	for k := 0; left > 0; k++ {
		buf = strconv.AppendInt(buf[:0], int64(k), 10)
		if i := r.index(string(buf)); tags[i] == "" {
			tags[i] = string(buf)
			left--
		}
	}
	return tags
}

// Each calls f for every server, in the order given, and stops at the first
// error. It implements memcache.ServerSelector.
func (r *ring) Each(f func(net.Addr) error) error {
	for _, a := range r.addrs {
		if err := f(a); err != nil {
			return err
		}
	}
	return nil
}

// XXH64 (seed 0), the 64-bit xxHash by Yann Collet: fast, well distributed,
// with published test vectors, and computed here on the string in place.
const (
	xxPrime1 uint64 = 11400714785074694791
	xxPrime2 uint64 = 14029467366897019727
	xxPrime3 uint64 = 1609587929392839161
	xxPrime4 uint64 = 9650029242287828579
	xxPrime5 uint64 = 2870177450012600261
)

func xxRound(acc, lane uint64) uint64 {
	return bits.RotateLeft64(acc+lane*xxPrime2, 31) * xxPrime1
}

func xxMerge(h, v uint64) uint64 {
	return (h^xxRound(0, v))*xxPrime1 + xxPrime4
}

func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func le32(s string) uint64 {
	_ = s[3]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24
}

func xxh64(s string) uint64 {
	n := len(s)
	var h uint64
	if n >= 32 {
		p1, p2 := xxPrime1, xxPrime2 // variables: the sums wrap around
		v1 := p1 + p2
		v2 := p2
		v3 := uint64(0)
		v4 := -p1
		for len(s) >= 32 {
			v1 = xxRound(v1, le64(s[0:8]))
			v2 = xxRound(v2, le64(s[8:16]))
			v3 = xxRound(v3, le64(s[16:24]))
			v4 = xxRound(v4, le64(s[24:32]))
			s = s[32:]
		}
		h = bits.RotateLeft64(v1, 1) + bits.RotateLeft64(v2, 7) +
			bits.RotateLeft64(v3, 12) + bits.RotateLeft64(v4, 18)
		h = xxMerge(h, v1)
		h = xxMerge(h, v2)
		h = xxMerge(h, v3)
		h = xxMerge(h, v4)
	} else {
		h = xxPrime5
	}
	h += uint64(n)
	for ; len(s) >= 8; s = s[8:] {
		h ^= xxRound(0, le64(s))
		h = bits.RotateLeft64(h, 27)*xxPrime1 + xxPrime4
	}
	if len(s) >= 4 {
		h ^= le32(s) * xxPrime1
		h = bits.RotateLeft64(h, 23)*xxPrime2 + xxPrime3
		s = s[4:]
	}
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i]) * xxPrime5
		h = bits.RotateLeft64(h, 11) * xxPrime1
	}
	h ^= h >> 33
	h *= xxPrime2
	h ^= h >> 29
	h *= xxPrime3
	h ^= h >> 32
	return h
}
