package storetest_test

import (
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/storetest"
)

// The author of a store runs the suite from the store's own tests, in a
// file such as contract_test.go. This example uses the fake store of
// storetest's own tests; use your constructor instead. A network store also
// sets its per-call Timeout and the outage hooks, which stop and start the
// private server(s) the test launched (never a shared one).
func ExampleRun() {
	// func TestStoreContract(t *testing.T) {
	testStoreContract := func(t *testing.T) {
		srv := newFakeServer("")
		storetest.Run(t, storetest.Harness{
			New: func(t *testing.T) hoard.Store {
				// e.g. st, err := mystore.New(ctx, mystore.Options{Addr: server.Addr, Timeout: 50 * time.Millisecond})
				return &fakePatternStore{&fakeStore{srv: srv, timeout: 50 * time.Millisecond}}
			},
			Timeout:       50 * time.Millisecond, // as configured above
			TTLResolution: time.Millisecond,      // time.Second for a store with whole-second TTLs
			Kill:          func(*testing.T) { srv.kill() },
			Restart:       func(*testing.T) { srv.restart() },
			Pause:         func(*testing.T) { srv.pause() },
			Resume:        func(*testing.T) { srv.resume() },
		})
	}
	_ = testStoreContract
}
