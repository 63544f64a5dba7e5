package memory_test

import (
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/memory"
	"github.com/hoardcache/hoard/storetest"
)

// TestStoreContract runs the hoard.Store contract suite on the memory
// store. It is in-process, so there are no outage hooks and no per-call
// timeout; every subtest gets a fresh, empty store.
func TestStoreContract(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		storetest.Run(t, storetest.Harness{
			New: func(t *testing.T) hoard.Store {
				s, err := memory.New(memory.Options{})
				if err != nil {
					t.Fatalf("memory.New: %v", err)
				}
				return s
			},
			TTLResolution: time.Millisecond,
		})
	})
}
