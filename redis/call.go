package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// One caller's context must never make other callers' calls fail: in a
// service, request contexts end all the time (client gone, handler
// deadline), and errors for everyone would soon open hoard's circuit
// breaker. rueidis v1.0.79 ties connections to call contexts in two places:
//
//   - A lone call (no other call in flight on that connection) is run
//     synchronously, with the call's deadline as the socket deadline; when
//     it passes, rueidis closes the shared connection and fails the calls
//     queued behind it. The store sets AlwaysPipelining, so every call goes
//     through the connection's writer and reader goroutines and a call
//     whose context ends only abandons its own reply.
//
//   - Connections are (re)dialled lazily, by whichever call finds one
//     missing, with that call's context (the TCP dial and the
//     HELLO/AUTH/SELECT handshake), and the outcome is handed to every call
//     waiting for the same connection. A caller whose context ends mid-dial
//     would fail them all with its own context error.
//
// So rueidis never sees the caller's context. Each store call gives it a
// call: a context the store controls, whose deadline is the store's own
// (Options.Timeout), detached from the caller's context but cancelled when
// the caller's context ends (context.AfterFunc: no goroutine per call), so
// rueidis abandons the caller's reply at once and the caller returns
// early. The exception is a call that has started a dial (the store's
// dialer pins it): it is no longer cancelled by its caller and finishes
// the dial and handshake within Timeout, so the connection it opens serves
// everyone. (rueidis runs the handshake with the deadline alone, so a call
// in it could not return early anyway.) What is left (a caller whose
// context ended just before its dial began) is covered by sending a
// command again when it failed on a context that is not its own
// (neighbourFailure); such a command was never written.

// call states.
const (
	callLive      int32 = iota // may be cancelled by its caller
	callAbandoned              // cancelled: its caller's context ended
	callPinned                 // dialling: no longer cancelled by its caller
)

// call is the context rueidis is given for one store call.
type call struct {
	context.Context // WithTimeout(WithoutCancel(caller), Timeout)
	caller          context.Context
	cancel          context.CancelFunc
	stop            func() bool
	state           atomic.Int32
}

// callKey finds the call behind a context that rueidis derived from it.
type callKey struct{}

// begin starts a call bounded by Options.Timeout for a caller's context. It
// fails at once if ctx has already ended. End it with end.
func (s *Store) begin(ctx context.Context) (*call, error) {
	return s.beginFor(ctx, s.timeout)
}

// beginFor is begin with the given timeout.
func (s *Store) beginFor(ctx context.Context, timeout time.Duration) (*call, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &call{caller: ctx}
	c.Context, c.cancel = context.WithTimeout(context.WithoutCancel(ctx), timeout)
	c.stop = context.AfterFunc(ctx, c.abandon)
	return c, nil
}

// abandon cancels the call when its caller's context ends, unless the call
// is dialling.
func (c *call) abandon() {
	if c.state.CompareAndSwap(callLive, callAbandoned) {
		c.cancel()
	}
}

// pin keeps the call from being cancelled by its caller from now on. It
// reports false if the call was cancelled already.
func (c *call) pin() bool {
	return c.state.CompareAndSwap(callLive, callPinned) || c.state.Load() == callPinned
}

// end releases the call's timer and its hook on the caller's context.
func (c *call) end() {
	c.stop()
	c.cancel()
}

// Value returns the call itself for callKey, so that the store's dialer
// finds it; other keys are the caller's values.
func (c *call) Value(key any) any {
	if _, ok := key.(callKey); ok {
		return c
	}
	return c.Context.Value(key)
}

// err returns the error to report for a call that failed with err: the
// caller's own context error when the caller's context ended (a call
// abandoned because its caller's deadline passed reports
// context.DeadlineExceeded, not the Canceled rueidis saw).
func (c *call) err(err error) error {
	if cerr := c.caller.Err(); cerr != nil &&
		(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return cerr
	}
	return err
}

// neighbourFailure reports whether err, returned by rueidis for c, is
// another call's context error (or a dial aborted by one) while c and its
// caller are live: the failure of a shared dial that another call started.
// The command was never written, so it is safe to send again, writes
// included.
func (c *call) neighbourFailure(err error) bool {
	if err == nil || c.Err() != nil || c.caller.Err() != nil {
		return false
	}
	// A deadline may pass a little before Err reports it.
	if dl, ok := c.Deadline(); ok && !time.Now().Before(dl) {
		return false
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// maxAttempts bounds the attempts of a command that keeps failing on other
// calls' contexts.
const maxAttempts = 3

// pinned: every command is pinned (cmd.Pin) before rueidis sees it, so
// rueidis never returns it to its pool. The race detector caught a command
// being rebuilt from the pool while a pipe's background writer of a
// connection that a Redis restart had just broken was still reading it
// (consistency test RedisEmptied); an unpooled command costs one
// allocation and cannot be shared.

// do is rc.Do, sent again (up to maxAttempts) when it failed on another
// call's context. rueidis does not recycle a command whose call failed, so
// it can be sent again.
func (c *call) do(rc rueidis.Client, cmd rueidis.Completed) rueidis.RedisResult {
	cmd = cmd.Pin() // see pinned
	r := rc.Do(c, cmd)
	for attempt := 1; attempt < maxAttempts && c.neighbourFailure(r.NonRedisError()); attempt++ {
		r = rc.Do(c, cmd)
	}
	return r
}

// doMulti is rc.DoMulti; the commands that failed on another call's
// context are sent again (up to maxAttempts). The others are not: rueidis
// recycles a command once it has its reply.
func (c *call) doMulti(rc rueidis.Client, cmds rueidis.Commands) []rueidis.RedisResult {
	for i := range cmds {
		cmds[i] = cmds[i].Pin() // see pinned
	}
	return retryNeighbourFailures(c, cmds, func(cmds ...rueidis.Completed) []rueidis.RedisResult { return rc.DoMulti(c, cmds...) })
}

// retryNeighbourFailures runs cmds with do, then runs again, up to
// maxAttempts in all, those whose result failed because of another
// caller's call (neighbourFailure), keeping each command's position.
func retryNeighbourFailures[T any](c *call, cmds []T, do func(cmds ...T) []rueidis.RedisResult) []rueidis.RedisResult {
	rs := do(cmds...)
	for attempt := 1; attempt < maxAttempts; attempt++ {
		var again []T
		var at []int
		for i := range rs {
			if c.neighbourFailure(rs[i].NonRedisError()) {
				again = append(again, cmds[i])
				at = append(at, i)
			}
		}
		if len(again) == 0 {
			break
		}
		for j, r := range do(again...) {
			rs[at[j]] = r
		}
	}
	return rs
}

// dial is the store's rueidis dialer (ClientOption.DialCtxFn). When a store
// call is what needs the connection, it pins the call first, so that the
// call's caller cannot abort a dial other calls wait for; the dial stays
// bounded by the call's Timeout.
func dial(ctx context.Context, dst string, dialer *net.Dialer, tlsConfig *tls.Config) (net.Conn, error) {
	if c, ok := ctx.Value(callKey{}).(*call); ok && !c.pin() {
		return nil, c.err(context.Canceled)
	}
	var (
		conn net.Conn
		err  error
	)
	if tlsConfig != nil {
		d := tls.Dialer{NetDialer: dialer, Config: tlsConfig}
		conn, err = d.DialContext(ctx, "tcp", dst)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", dst)
	}
	if oe := (*net.OpError)(nil); errors.As(err, &oe) && oe.Op == "dial" {
		// Nothing answered at dst (refused, unroutable, no such host, or
		// the TCP connect timed out), as opposed to a server that answered
		// and then failed the TLS or Redis handshake.
		return nil, &dialError{err}
	}
	return conn, err
}

// dialError marks a failure to open a TCP connection at all. By it New
// tells a server that is not reachable (New then connects in the
// background) from one that answered and refused the store (wrong
// password, kind of server or TLS: New fails). Its text is the dial
// error's own.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// doCache is do for a read through the near cache (rc.DoCache).
func (c *call) doCache(rc rueidis.Client, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	cmd = cmd.Pin() // see pinned
	r := rc.DoCache(c, cmd, ttl)
	for attempt := 1; attempt < maxAttempts && c.neighbourFailure(r.NonRedisError()); attempt++ {
		r = rc.DoCache(c, cmd, ttl)
	}
	return r
}

// doMultiCache is doMulti for reads through the near cache
// (rc.DoMultiCache).
func (c *call) doMultiCache(rc rueidis.Client, cmds []rueidis.CacheableTTL) []rueidis.RedisResult {
	for i := range cmds {
		cmds[i].Cmd = cmds[i].Cmd.Pin() // see pinned
	}
	return retryNeighbourFailures(c, cmds, func(cmds ...rueidis.CacheableTTL) []rueidis.RedisResult { return rc.DoMultiCache(c, cmds...) })
}
