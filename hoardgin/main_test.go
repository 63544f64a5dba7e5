package hoardgin_test

import (
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/hoardcache/hoard/internal/storefixture"
)

// TestMain quiets gin's debug output and stops the test servers.
func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	storefixture.Main(m)
}
