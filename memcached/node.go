package memcached

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/hoardcache/hoard"
)

// ErrServerDown is returned (wrapped, with the failure that caused it) by
// calls on a server that the store has marked down: see "Server failures"
// in the package documentation. It is the same value as
// hoard.ErrServerDown, which a hoard Cache's circuit breaker does not
// count: such a call fails at once, and the pool's other servers keep
// serving their keys.
var ErrServerDown = hoard.ErrServerDown

// ioFailuresToMarkDown is how many server failures in a row other than a
// refused connect (a timeout, a reset or closed connection) it takes, with
// no answer from the server for a whole back-off, to mark it down. A few
// such failures prove little: after a restart every idle connection fails
// once, and a busy host stalls calls, or connects, past their Timeout in
// bursts while the server keeps answering the others.
const ioFailuresToMarkDown = 3

// node is one server of the pool: a gomemcache client of its own (so that
// its idle connections can be dropped when it fails, without touching the
// other servers') and its health.
type node struct {
	addr    string
	client  *memcache.Client
	backoff time.Duration
	timeout time.Duration
	// slots holds a token per call running on the server; its capacity is
	// PoolSize, so gomemcache never has more connections in use than it
	// keeps idle, and never closes one on release to dial again.
	slots chan struct{}

	downUntil atomic.Int64 // unix nanoseconds; 0 while the server is up
	fails     atomic.Int32 // server failures in a row since the last answer
	answered  atomic.Int64 // unix nanoseconds of the last answer (or of New)
	last      atomic.Pointer[failure]
}

// failure is the server failure that marked a node down.
type failure struct {
	err error
	at  time.Time
}

// single is a memcache.ServerSelector of one server.
type single struct{ addr net.Addr }

func (s single) PickServer(string) (net.Addr, error) { return s.addr, nil }
func (s single) Each(f func(net.Addr) error) error   { return f(s.addr) }

func newNode(addr string, poolSize int, timeout, backoff time.Duration) *node {
	c := memcache.NewFromSelector(single{&serverAddr{hostport: addr}})
	c.MaxIdleConns = poolSize
	c.Timeout = timeout
	n := &node{addr: addr, client: c, backoff: backoff, timeout: timeout, slots: make(chan struct{}, poolSize)}
	n.answered.Store(time.Now().UnixNano())
	return n
}

// start reserves one of the server's PoolSize connections for a call. It
// fails at once if the server is marked down; while every connection is
// busy it waits, at most Timeout or until ctx ends. A call that started
// must end with finish.
func (n *node) start(ctx context.Context) error {
	if !n.available() {
		return n.downErr()
	}
	select {
	case n.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(n.timeout)
	defer t.Stop()
	select {
	case n.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("memcached %s: all %d connections stayed busy for %v (Timeout); raise PoolSize (CACHE_MEMCACHED_POOL_SIZE) if the server keeps up, or check why it is slow", n.addr, cap(n.slots), n.timeout)
	}
}

// finish records the outcome of a call that start let through and frees
// its connection.
func (n *node) finish(err error) {
	n.report(err)
	<-n.slots
}

// available reports whether a call may use the server now: it is up, or
// its back-off is over and this call is the one that tries it again (the
// others keep treating it as down until that call has an answer).
func (n *node) available() bool {
	until := n.downUntil.Load()
	if until == 0 {
		return true
	}
	now := time.Now().UnixNano()
	if now < until {
		return false
	}
	return n.downUntil.CompareAndSwap(until, now+int64(n.backoff))
}

// downErr is the error of a call skipped because the server is down.
func (n *node) downErr() error {
	f := n.last.Load()
	if f == nil { // marked down and up again meanwhile
		return fmt.Errorf("%w; try again", ErrServerDown)
	}
	retry := time.Until(time.Unix(0, n.downUntil.Load()))
	return fmt.Errorf("%w %v ago after: %w; its calls fail at once, and GetMulti reports its keys as misses, until it is tried again in %v: check that memcached runs at %s",
		ErrServerDown, time.Since(f.at).Round(time.Millisecond), f.err, max(retry, 0).Round(time.Millisecond), n.addr)
}

// outcome is what an error says about the server that returned it.
type outcome int

const (
	answered       outcome = iota // the server answered (a miss or an error reply included)
	connectFailed                 // the connect was refused or the host unreachable
	connectionLost                // a connect or a read/write timed out, or the connection was reset or closed
)

// classify sorts an error of a gomemcache call on one server.
func classify(err error) outcome {
	if err == nil {
		return answered
	}
	var cte *memcache.ConnectTimeoutError
	if errors.As(err, &cte) {
		// On a busy host a connect can time out against a healthy server.
		return connectionLost
	}
	var op *net.OpError
	if errors.As(err, &op) {
		if op.Op == "dial" && !op.Timeout() {
			return connectFailed
		}
		return connectionLost
	}
	var ne net.Error
	if errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return connectionLost
	}
	// ErrCacheMiss, ErrNotStored, an error reply (SERVER_ERROR, CLIENT_ERROR)
	// or an unexpected reply line: the server is there. That includes a
	// refusal of one value ("object too large for cache", "out of memory
	// storing object"), which must neither mark the server down nor count
	// toward ioFailuresToMarkDown: the server is healthy, and only that
	// value goes uncached.
	return answered
}

// report records the outcome of a call on the server.
func (n *node) report(err error) {
	switch classify(err) {
	case answered:
		n.answered.Store(time.Now().UnixNano())
		if n.fails.Load() != 0 {
			n.fails.Store(0)
		}
		if n.downUntil.Load() != 0 {
			n.downUntil.Store(0)
		}
	case connectFailed:
		n.markDown(err)
	case connectionLost:
		if n.fails.Add(1) >= ioFailuresToMarkDown &&
			time.Since(time.Unix(0, n.answered.Load())) >= n.backoff {
			n.markDown(err)
			return
		}
		if closedByPeer(err) {
			// The server closed this connection (it restarted, or is
			// gone): its other idle connections are closed too. Drop them,
			// so that the next calls dial (and find the server back, or
			// mark it down on a refused connect) rather than each fail
			// once on a dead connection: a burst of such failures after a
			// kill would open the Cache's breaker for the whole pool.
			_ = n.client.Close()
		}
	}
}

// closedByPeer reports whether err says the server closed or reset the
// connection (not a timeout: a busy server keeps its connections).
func closedByPeer(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// markDown makes the server's calls fail at once (and its keys misses for
// GetMulti) for the back-off, and drops its idle connections, which are
// most likely broken too.
func (n *node) markDown(err error) {
	now := time.Now()
	n.last.Store(&failure{err: err, at: now})
	n.downUntil.Store(now.Add(n.backoff).UnixNano())
	n.fails.Store(0)
	_ = n.client.Close()
}
