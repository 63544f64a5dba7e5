package hoard_test

import (
	"testing"

	"github.com/hoardcache/hoard/internal/storefixture"
)

// TestMain stops the shared test servers (redis-server, a Redis Cluster,
// memcached) that storefixture starts on first use.
func TestMain(m *testing.M) { storefixture.Main(m) }
