// Package stores builds a hoard Cache on any of hoard's stores, from a
// Config or from the CACHE_* environment: it is the one package that
// imports every store (memory, redis, memcached), so that package hoard
// itself links no store client.
//
//	c, err := stores.OpenEnv(ctx) // CACHE_BACKEND=redis CACHE_REDIS_URL=...
//
// is FromEnv followed by Open. Config holds hoard.Config (the cache-wide
// settings) and each store package's own Options, so every option of a
// store is reachable without a URL, each default is defined once (in the
// package that owns it: hoard.DefaultTimeout, memory.DefaultMaxBytes,
// redis.DefaultPoolSize, ...), and each package validates its own options
// (hoard.Config.Validate, memory.Options.Validate, ...). FromEnv reads the
// environment variables into that Config and names the variable of every
// bad value.
//
// # Why a package, and why this name
//
// Building the configured store needs every store's client library
// (rueidis for Redis, gomemcache for Memcached); a program that builds
// its store itself (hoard.New(store, cfg)) should not link them. Registering
// stores from their packages' init functions would avoid the import, but it
// is hidden global state: what CACHE_BACKEND accepts would depend on which
// blank imports some file of the program holds. So the choice is made here,
// in plain code, and the import line says what it costs: importing
// "github.com/hoardcache/hoard/stores" links all of hoard's stores. The
// package is named for that (what it brings in and chooses between), and
// its calls read as what they do: stores.Open builds the store and the
// Cache over it, stores.FromEnv reads the configuration, stores.OpenEnv
// does both.
package stores

import (
	"context"
	"errors"
	"fmt"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/memcached"
	"github.com/hoardcache/hoard/memory"
	"github.com/hoardcache/hoard/redis"
)

// Backend names the store that holds a Cache's entries (CACHE_BACKEND).
type Backend string

// The backends Open can build.
const (
	// Memory is the in-process store (package memory). It is the default:
	// nothing to run, but every process has its own cache.
	Memory Backend = "memory"
	// Redis is a Redis server or Redis Cluster (package redis).
	Redis Backend = "redis"
	// Memcached is a pool of Memcached servers (package memcached).
	Memcached Backend = "memcached"
)

// Config configures a Cache and the store it is built on. The zero value is
// valid: an in-memory cache with every default. Only the options of the
// store that Backend selects are used, but Validate checks all of them.
type Config struct {
	// Cache holds the cache-wide settings: CACHE_ENABLED, CACHE_KEY_PREFIX,
	// CACHE_TIMEOUT, the ClientCache middleware's, ...
	Cache hoard.Config
	// Backend is the store to build (CACHE_BACKEND). "" means Memory.
	Backend Backend
	// Memory configures the in-process store (CACHE_MEMORY_MAX_BYTES).
	Memory memory.Options
	// Redis configures the Redis store (CACHE_REDIS_*, and its near cache:
	// CACHE_NEAR_*). A zero Redis.Timeout takes Cache.Timeout
	// (CACHE_TIMEOUT), a nil Redis.Logger takes Cache.Logger, a nil
	// Redis.MeterProvider takes Cache.MeterProvider. Redis.NearCache
	// is an error with any other Backend.
	Redis redis.Options
	// Memcached configures the Memcached store (CACHE_MEMCACHED_*). A zero
	// Memcached.Timeout takes Cache.Timeout (CACHE_TIMEOUT).
	Memcached memcached.Options
}

// WithDefaults returns c with every zero value replaced by its default, as
// each package defines it; the stores' zero Timeouts take Cache.Timeout.
// It is idempotent.
func (c Config) WithDefaults() Config {
	c.Cache = c.Cache.WithDefaults()
	if c.Backend == "" {
		c.Backend = Memory
	}
	c.Memory = c.Memory.WithDefaults()
	if c.Redis.Timeout == 0 {
		c.Redis.Timeout = c.Cache.Timeout
	}
	c.Redis = c.Redis.WithDefaults()
	if c.Memcached.Timeout == 0 {
		c.Memcached.Timeout = c.Cache.Timeout
	}
	c.Memcached = c.Memcached.WithDefaults()
	return c
}

// Validate reports every field of c that cannot be used, each as a
// *hoard.FieldError, joined with errors.Join: those of Cache
// (hoard.Config.Validate), Backend, and every store's Options (their
// Validate methods), and a near cache (Redis.NearCache) asked of another
// backend than Redis. Zero values are valid (they mean the defaults).
func (c Config) Validate() error {
	var errs []error
	add := func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = append(errs, j.Unwrap()...)
		} else if err != nil {
			errs = append(errs, err)
		}
	}
	add(c.Cache.Validate())
	switch c.Backend {
	case "", Memory, Redis, Memcached:
	default:
		add(&hoard.FieldError{Type: "stores.Config", Field: "Backend", Value: string(c.Backend),
			Want: "must be one of memory, redis, memcached"})
	}
	if c.Redis.NearCache {
		switch c.Backend {
		case Memcached:
			add(&hoard.FieldError{Type: "stores.Config", Field: "Redis.NearCache", Value: true,
				Want: "must be false with the memcached backend: Memcached has no invalidation push, so a near cache could serve stale data; use the redis backend for a near cache"})
		case "", Memory:
			add(&hoard.FieldError{Type: "stores.Config", Field: "Redis.NearCache", Value: true,
				Want: "must be false with the memory backend: the memory store is already in process; a near cache is for the redis backend (use Redis when several instances share the cache)"})
		}
	}
	add(c.Memory.Validate())
	add(c.Redis.Validate())
	add(c.Memcached.Validate())
	return errors.Join(errs...)
}

// Open builds the store that cfg selects (Backend: memory, redis or
// memcached) and returns a Cache over it, which owns it (Close closes it).
// With cfg.Cache.Disabled no store is built and no connection is made.
func Open(ctx context.Context, cfg Config) (*hoard.Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if cfg.Cache.Disabled {
		return hoard.New(nil, cfg.Cache)
	}
	store, err := NewStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c, err := hoard.New(store, cfg.Cache)
	if err != nil {
		store.Close()
		return nil, err
	}
	return c, nil
}

// OpenEnv is FromEnv followed by Open: the Cache that the CACHE_*
// environment variables describe (an in-memory one when none is set).
// Errors name the bad variables.
func OpenEnv(ctx context.Context) (*hoard.Cache, error) {
	cfg, err := FromEnv()
	if err != nil {
		return nil, err
	}
	return Open(ctx, cfg)
}

// NewStore builds the store that cfg selects, without a Cache, for a
// program that wraps it (say, to count calls) before giving it to
// hoard.New with cfg.Cache. cfg.Cache.Disabled is not looked at.
func NewStore(ctx context.Context, cfg Config) (hoard.Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	switch cfg.Backend {
	case Memory:
		return memory.New(cfg.Memory)
	case Redis:
		if cfg.Redis.Logger == nil {
			cfg.Redis.Logger = cfg.Cache.Logger // the store's notices go where the Cache's logs go
		}
		if cfg.Redis.MeterProvider == nil {
			cfg.Redis.MeterProvider = cfg.Cache.MeterProvider // and its metrics where the Cache's go
		}
		s, err := redis.New(ctx, cfg.Redis)
		if err != nil {
			return nil, fmt.Errorf("hoard: CACHE_BACKEND=redis: %w", err)
		}
		return s, nil
	case Memcached:
		s, err := memcached.New(cfg.Memcached)
		if err != nil {
			return nil, fmt.Errorf("hoard: CACHE_BACKEND=memcached: %w", err)
		}
		return s, nil
	}
	panic("unreachable: Validate checks Backend")
}
