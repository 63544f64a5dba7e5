package redis_test

import (
	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/redis"
)

// *redis.Store implements the hoard.Store contract.
var _ hoard.Store = (*redis.Store)(nil)
