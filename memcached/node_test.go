package memcached

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

func TestClassify(t *testing.T) {
	addr := &serverAddr{hostport: "127.0.0.1:1"}
	for _, tt := range []struct {
		name string
		err  error
		want outcome
	}{
		{"nil", nil, answered},
		{"miss", memcache.ErrCacheMiss, answered},
		{"not stored", memcache.ErrNotStored, answered},
		{"error reply", fmt.Errorf("memcache: unexpected response line from %q: %q", "set", "SERVER_ERROR object too large for cache\r\n"), answered},
		{"out of memory reply", fmt.Errorf("memcache: unexpected response line from %q: %q", "set", "SERVER_ERROR out of memory storing object\r\n"), answered},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, connectFailed},
		{"unreachable", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, connectFailed},
		{"dns", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "cache-9", IsNotFound: true}}, connectFailed},
		{"connect timeout", &memcache.ConnectTimeoutError{Addr: addr}, connectionLost},
		{"dial timeout", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, connectionLost},
		{"read timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, connectionLost},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, connectionLost},
		{"eof", io.EOF, connectionLost},
		{"unexpected eof", io.ErrUnexpectedEOF, connectionLost},
	} {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("classify(%s: %v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestNodeMarkDown(t *testing.T) {
	// Time is moved by hand (answered, downUntil), so that a loaded host
	// cannot make the test flaky.
	const backoff = time.Minute
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	down := func(n *node) bool { return n.downUntil.Load() != 0 }
	ago := func(d time.Duration) int64 { return time.Now().Add(-d).UnixNano() }

	// A busy host: timeouts in bursts, but the server keeps answering.
	n := newNode("127.0.0.1:1", 2, time.Second, backoff)
	for range 3 {
		for range 10 {
			n.report(timeout)
		}
		n.report(nil)
	}
	n.answered.Store(ago(backoff - time.Second))
	for range 10 {
		n.report(timeout)
	}
	if down(n) {
		t.Errorf("timeouts within %v of an answer marked the server down", backoff)
	}
	// A frozen server: no answer for a whole back-off.
	n.answered.Store(ago(backoff))
	n.report(timeout)
	if !down(n) || n.available() {
		t.Fatalf("timeouts with no answer for %v did not mark the server down", backoff)
	}
	if err := n.downErr(); !errors.Is(err, ErrServerDown) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("downErr = %v; want ErrServerDown wrapping the timeout", err)
	}
	// Fewer than ioFailuresToMarkDown failures are not enough, however old
	// the last answer.
	n = newNode("127.0.0.1:1", 2, time.Second, backoff)
	n.answered.Store(ago(2 * backoff))
	for range ioFailuresToMarkDown - 1 {
		n.report(timeout)
	}
	if down(n) {
		t.Errorf("%d timeouts marked the server down", ioFailuresToMarkDown-1)
	}
	n.report(timeout)
	if !down(n) {
		t.Errorf("%d timeouts with no answer for %v did not mark the server down", ioFailuresToMarkDown, 2*backoff)
	}
	// After the back-off one call (only) may try it again; its answer
	// marks it up.
	n.downUntil.Store(ago(time.Millisecond))
	if !n.available() {
		t.Fatal("not available after the back-off")
	}
	if n.available() {
		t.Error("a second call was let through while the first retried the server")
	}
	n.report(memcache.ErrCacheMiss)
	if down(n) || !n.available() {
		t.Error("an answer did not mark the server up")
	}

	// A refused connect marks it down at once.
	n.report(refused)
	if !down(n) || n.available() {
		t.Error("a refused connect did not mark the server down")
	}
}
