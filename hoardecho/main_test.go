package hoardecho_test

import (
	"testing"

	"github.com/hoardcache/hoard/internal/storefixture"
)

// TestMain stops the test servers.
func TestMain(m *testing.M) { storefixture.Main(m) }
