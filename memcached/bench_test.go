package memcached_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/hoardcache/hoard/memcached"
)

// The benchmarks run on the shared pool of 3 servers with the default
// Timeout and PoolSize, as a service would.

// benchValue is a typical cached JSON response.
var benchValue = make([]byte, 2048)

func benchStore(b *testing.B) (*memcached.Store, []string) {
	s := NewPoolStore(b, memcached.Options{Timeout: time.Second})
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = prefix(b) + "/api/posts/" + strconv.Itoa(i) + "?expand=author"
		if err := s.Set(bg, keys[i], benchValue, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	return s, keys
}

// runBoth runs op serially and from GOMAXPROCS goroutines at once; op gets
// a counter to pick keys with.
func runBoth(b *testing.B, op func(b *testing.B, i int)) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			op(b, i)
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				op(b, i)
				i++
			}
		})
	})
}

func BenchmarkGet(b *testing.B) {
	s, keys := benchStore(b)
	runBoth(b, func(b *testing.B, i int) {
		if _, found, err := s.Get(bg, keys[i%len(keys)]); err != nil || !found {
			b.Fatalf("Get: found %v, err %v", found, err)
		}
	})
}

func BenchmarkSet(b *testing.B) {
	s, keys := benchStore(b)
	runBoth(b, func(b *testing.B, i int) {
		if err := s.Set(bg, keys[i%len(keys)], benchValue, time.Hour); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkGetMulti reads 4 keys per call, the shape of a cached entry
// read together with its generations; they usually span several servers.
func BenchmarkGetMulti(b *testing.B) {
	s, keys := benchStore(b)
	runBoth(b, func(b *testing.B, i int) {
		j := (i * 4) % len(keys)
		values, err := s.GetMulti(bg, keys[j:j+4])
		if err != nil || values[3] == nil {
			b.Fatalf("GetMulti: %v", err)
		}
	})
}
