package redis_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hoardcache/hoard/redis"
)

// Benchmarks run against the shared private standalone server, with the
// default Timeout and PoolSize. Each has a serial and a RunParallel variant
// (parallel calls are auto-pipelined by rueidis).

func benchStore(b *testing.B) *redis.Store {
	s := NewStandaloneStore(b, redis.Options{Timeout: time.Second})
	for i := range 4 {
		if err := s.Set(ctx, fmt.Sprintf("bench:%d", i), make([]byte, 512), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkGet(b *testing.B) {
	s := benchStore(b)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := s.Get(ctx, "bench:0"); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, ok, err := s.Get(ctx, "bench:0"); err != nil || !ok {
					b.Error(ok, err)
					return
				}
			}
		})
	})
}

func BenchmarkSet(b *testing.B) {
	s := benchStore(b)
	val := make([]byte, 512)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Set(ctx, "bench:set", val, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Set(ctx, "bench:set", val, time.Hour); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkGetMulti(b *testing.B) {
	s := benchStore(b)
	keys := []string{"bench:0", "bench:1", "bench:2", "bench:3"}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.GetMulti(ctx, keys); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.GetMulti(ctx, keys); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
