package redis_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/redis"
)

// slowProxy forwards loopback connections to upstream; a connection
// accepted while delay is set is held that long before anything flows, so
// a client's TCP connect succeeds but its TLS or HELLO handshake is slow.
type slowProxy struct {
	addr  string
	delay atomic.Int64 // time.Duration
}

func newSlowProxy(t *testing.T, upstream string) *slowProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowProxy{addr: l.Addr().String()}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Go(func() {
				time.Sleep(time.Duration(p.delay.Load()))
				u, err := net.Dial("tcp", upstream)
				if err != nil {
					c.Close()
					return
				}
				track(u)
				go func() { io.Copy(u, c); u.Close() }()
				io.Copy(c, u)
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

// TestCancelledDialers: rueidis dials a missing connection inside the call
// that needs it, and every call that needs the same connection meanwhile
// waits for that dial. The callers that happen to dial here have contexts
// that end early in the (slow) handshake; the calls waiting on their dials
// have live contexts and must succeed. Over TLS the caller's cancellation
// lands inside the TLS handshake of the dial itself.
func TestCancelledDialers(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			srv := testserver.RedisT(t, testserver.RedisOptions{TLS: useTLS})
			proxy := newSlowProxy(t, srv.Addr)
			opts := redis.Options{Addrs: []string{proxy.addr}, Timeout: 5 * time.Second}
			if useTLS {
				opts.TLSConfig = srv.TLSConfig()
			}
			// New dials one of the PoolSize-derived pipelined connections
			// (4 by default); the others are dialled by the first calls
			// that pick them.
			s := newStore(t, opts)
			proxy.delay.Store(int64(300 * time.Millisecond))

			var wg sync.WaitGroup
			const impatient, patient = 24, 8
			for i := range impatient {
				wg.Go(func() {
					var c context.Context
					var cancel context.CancelFunc
					if i%2 == 0 {
						c, cancel = context.WithTimeout(ctx, 30*time.Millisecond)
					} else {
						c, cancel = context.WithCancel(ctx)
						time.AfterFunc(30*time.Millisecond, cancel)
					}
					defer cancel()
					s.Set(c, fmt.Sprintf("%s:impatient:%d", t.Name(), i), []byte("v"), time.Minute)
				})
			}
			// Let the impatient callers start the dials first.
			time.Sleep(10 * time.Millisecond)
			for i := range patient {
				wg.Go(func() {
					k := fmt.Sprintf("%s:patient:%d", t.Name(), i)
					if err := s.Set(ctx, k, []byte("v"), time.Minute); err != nil {
						t.Errorf("Set(%q) with a live context: %v; another caller's ended context broke it", k, err)
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestCallerContextEndsCall: a call returns when its caller's context ends,
// with that context's error, although the store's Timeout is far away and
// the server never answers; and the store still works afterwards (the
// abandoned calls did not take its connections down).
func TestCallerContextEndsCall(t *testing.T) {
	srv := testserver.RedisT(t, testserver.RedisOptions{})
	s := newStore(t, redis.Options{Addrs: []string{srv.Addr}, Timeout: 10 * time.Second})
	if err := s.Set(ctx, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	// Each call picks one of the store's pipelined connections at random,
	// and the first call on one dials it. Use them all now: a call that is
	// dialling when its context ends finishes the dial (within Timeout),
	// because other calls wait for that connection too.
	for range 100 {
		if _, _, err := s.Get(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	const after = 100 * time.Millisecond
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, after) }, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			c, cancel := context.WithCancel(ctx)
			time.AfterFunc(after, cancel)
			return c, cancel
		}, context.Canceled},
	}
	for _, tt := range tests {
		for op, call := range map[string]func(context.Context) error{
			"Get": func(c context.Context) error { _, _, err := s.Get(c, "k"); return err },
			"Set": func(c context.Context) error { return s.Set(c, "k", []byte("v"), time.Hour) },
		} {
			c, cancel := tt.ctx()
			start := time.Now()
			err := call(c)
			took := time.Since(start)
			cancel()
			if !errors.Is(err, tt.want) {
				t.Errorf("%s with a %s on a frozen server = %v; want %v", op, tt.name, err, tt.want)
			}
			if took > after+slack {
				t.Errorf("%s with a %s after %v took %v; the call must end with its caller's context, not at Timeout", op, tt.name, after, took)
			}
		}
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	if v, _, err := s.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get after Resume = %q, %v", v, err)
	}
}
