package memory_test

import (
	"fmt"
	"testing"

	"github.com/hoardcache/hoard/memory"
)

const benchKeys = 1024 // a power of two: i&(benchKeys-1) picks a key

// benchStore returns a store holding benchKeys entries of 512 bytes, and
// their keys.
func benchStore(b *testing.B) (*memory.Store, []string) {
	s := newStore(b, memory.Options{})
	keys := make([]string, benchKeys)
	value := make([]byte, 512)
	for i := range keys {
		keys[i] = fmt.Sprintf("widgets:page_%d:items_per_page:10", i)
		set(b, s, keys[i], value, hour)
	}
	return s, keys
}

// BenchmarkGet measures a hit.
func BenchmarkGet(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		s, keys := benchStore(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, found, _ := s.Get(ctx, keys[i&(benchKeys-1)]); !found {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s, keys := benchStore(b)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, found, _ := s.Get(ctx, keys[i&(benchKeys-1)]); !found {
					b.Error("miss")
					return
				}
				i++
			}
		})
	})
}

// BenchmarkSet measures an overwrite of a 512-byte value (one copy).
func BenchmarkSet(b *testing.B) {
	value := make([]byte, 512)
	b.Run("serial", func(b *testing.B) {
		s, keys := benchStore(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := s.Set(ctx, keys[i&(benchKeys-1)], value, hour); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s, keys := benchStore(b)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if err := s.Set(ctx, keys[i&(benchKeys-1)], value, hour); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

// BenchmarkGetMulti measures the read of a route hit: an entry and three
// generation keys, all present.
func BenchmarkGetMulti(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		s, keys := benchStore(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			j := i & (benchKeys - 4)
			if v, _ := s.GetMulti(ctx, keys[j:j+4]); v[3] == nil {
				b.Fatal("miss")
			}
			i += 4
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s, keys := benchStore(b)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				j := i & (benchKeys - 4)
				if v, _ := s.GetMulti(ctx, keys[j:j+4]); v[3] == nil {
					b.Error("miss")
					return
				}
				i += 4
			}
		})
	})
}
