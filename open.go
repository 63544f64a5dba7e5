package hoard

import (
	"context"
	"fmt"

	"github.com/hoardcache/hoard/memcached"
	"github.com/hoardcache/hoard/memory"
	"github.com/hoardcache/hoard/redis"
)

// Open builds the store that cfg selects (CACHE_BACKEND: memory, redis or
// memcached) and returns a Cache over it. With cfg.Disabled no store is built
// and no connection is made.
//
//	cfg, err := hoard.FromEnv()
//	...
//	c, err := hoard.Open(ctx, cfg)
func Open(ctx context.Context, cfg Config) (*Cache, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Disabled {
		return New(nil, cfg)
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c, err := New(store, cfg)
	if err != nil {
		store.Close()
		return nil, err
	}
	return c, nil
}

func openStore(ctx context.Context, cfg Config) (Store, error) {
	switch cfg.Backend {
	case BackendMemory:
		return memory.New(memory.Options{MaxBytes: cfg.MemoryMaxBytes})
	case BackendRedis:
		opts := redis.Options{
			Addrs:    cfg.RedisAddrs(),
			DB:       cfg.Redis.DB,
			Password: cfg.Redis.Password,
		}
		if cfg.Redis.URL != "" {
			var err error
			opts, err = redis.ParseURL(cfg.Redis.URL)
			if err != nil {
				return nil, fmt.Errorf("CACHE_REDIS_URL: %w", err)
			}
		}
		opts.Cluster = opts.Cluster || cfg.Redis.Cluster
		opts.PoolSize = cfg.Redis.PoolSize
		opts.Timeout = cfg.Timeout
		s, err := redis.New(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("hoard: CACHE_BACKEND=redis: %w", err)
		}
		return s, nil
	case BackendMemcached:
		s, err := memcached.New(memcached.Options{
			Servers:       cfg.MemcachedServers(),
			PoolSize:      cfg.Memcached.PoolSize,
			Timeout:       cfg.Timeout,
			MaxValueBytes: cfg.Memcached.MaxValueBytes,
		})
		if err != nil {
			return nil, fmt.Errorf("hoard: CACHE_BACKEND=memcached: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("hoard: CACHE_BACKEND=%q: must be one of memory, redis, memcached", cfg.Backend)
}

// isSelfTimed reports whether store is one of hoard's own, which bound every
// call themselves (redis and memcached by CACHE_TIMEOUT; memory never
// blocks), so the Cache need not add a deadline of its own.
func isSelfTimed(store Store) bool {
	switch store.(type) {
	case *memory.Store, *redis.Store, *memcached.Store:
		return true
	}
	return false
}
