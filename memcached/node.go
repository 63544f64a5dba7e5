package memcached

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// ErrServerDown is returned (wrapped, with the failure that caused it) by
// calls on a server that the store has marked down: see "Server failures"
// in the package documentation.
var ErrServerDown = errors.New("memcached: server marked down")

// ioFailuresToMarkDown is how many server failures in a row other than a
// refused connect (a timeout, a reset or closed connection) mark a server
// down. One is not enough: after a restart every idle connection fails once,
// and a busy host can stall a call, or a connect, past its Timeout.
const ioFailuresToMarkDown = 3

// node is one server of the pool: a gomemcache client of its own (so that
// its idle connections can be dropped when it fails, without touching the
// other servers') and its health.
type node struct {
	addr    string
	client  *memcache.Client
	backoff time.Duration

	downUntil atomic.Int64 // unix nanoseconds; 0 while the server is up
	fails     atomic.Int32 // server failures in a row since the last answer
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
	return &node{addr: addr, client: c, backoff: backoff}
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
	// or an unexpected reply line: the server is there.
	return answered
}

// report records the outcome of a call on the server.
func (n *node) report(err error) {
	switch classify(err) {
	case answered:
		if n.fails.Load() != 0 {
			n.fails.Store(0)
		}
		if n.downUntil.Load() != 0 {
			n.downUntil.Store(0)
		}
	case connectFailed:
		n.markDown(err)
	case connectionLost:
		if n.fails.Add(1) >= ioFailuresToMarkDown {
			n.markDown(err)
		}
	}
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
