package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/hoardcache/hoard"
)

// Back-off of the background connection (see New): the first retry comes
// soon, because an outage at start-up is often a restart of both sides; the
// cap keeps a store whose server comes back at most about a second behind
// it, at the cost of one dial a second while it is away.
const (
	firstRetryDelay = 50 * time.Millisecond
	maxRetryDelay   = time.Second
)

// reachHint tells what to check when Redis does not answer at all.
const reachHint = "check that Redis runs there and is reachable (CACHE_REDIS_URL or CACHE_REDIS_HOST/CACHE_REDIS_PORT)"

// link is the Store's connection: a client once connected, otherwise the
// error every call returns meanwhile. A link is never modified; the Store
// replaces it.
type link struct {
	c    rueidis.Client
	err  error
	near bool // c has the near cache on (see Options.NearCache)
}

// New connects to Redis as opts describe and checks that the server answers
// with the given credentials and is of the kind Options.Cluster says. ctx
// bounds the checks made after connecting.
//
// When nothing answers at the address (every Cluster seed: the TCP connect
// is refused or times out, or the host name does not resolve), New does not
// fail: an application restarted during a Redis outage must still start,
// and serve uncached. The Store then connects in the background, retrying
// about every second until Close, and every call fails at once, without
// dialling, with an error that names the address and the last dial error
// (Ping too, so a readiness check reports it). Once the server answers and
// passes the checks, calls work by themselves. If it answers but fails them
// (wrong password, DB, kind of server, TLS), calls fail with that
// explanation instead, and the Store keeps retrying, in case the server's
// configuration is being fixed.
//
// A server that answers and fails the checks at start-up, or a malformed
// option, makes New fail with an error that says what to change.
func New(ctx context.Context, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.WithDefaults()
	s := &Store{
		cluster:  o.Cluster,
		timeout:  o.Timeout,
		maxValue: o.MaxValueBytes,
		addrs:    strings.Join(o.Addrs, ","),
		tls:      o.TLSConfig != nil,
		logger:   o.Logger,
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	co := clientOption(o)
	if o.NearCache {
		s.near = newNear(o)
		co.DisableCache = false
		co.NewCacheStoreFn = s.near.copies.conn
		co.PipelineMultiplex = -1 // one connection per server: see near.go, Lag
	}
	l, err := s.connect(ctx, co)
	if err != nil && !isDialFailure(err) {
		return nil, err
	}
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	if s.near != nil {
		go s.heartbeat(bg)
		s.metrics = s.registerNearMetrics(o.MeterProvider)
	}
	if err == nil {
		s.link.Store(l)
		return s, nil
	}
	s.link.Store(&link{err: s.pending(err)})
	go s.connectLoop(bg, co)
	return s, nil
}

// clientOption is the rueidis configuration of o.
func clientOption(o Options) rueidis.ClientOption {
	co := rueidis.ClientOption{
		InitAddress:       append([]string(nil), o.Addrs...),
		Username:          o.Username,
		Password:          o.Password,
		SelectDB:          o.DB,
		TLSConfig:         o.TLSConfig,
		DisableCache:      true,
		ForceSingleClient: !o.Cluster,
		BlockingPoolSize:  o.PoolSize,
		PipelineMultiplex: pipelineMultiplex(o.PoolSize),
		ConnWriteTimeout:  max(o.Timeout, minConnTimeout),
		// Pipeline even a lone call, and dial with the store's dialer:
		// see call.go for why (one caller's context must not break other
		// callers' calls).
		AlwaysPipelining: true,
		DialCtxFn:        dial,
	}
	co.Dialer.Timeout = max(o.Timeout, minConnTimeout)
	return co
}

// connect creates a client and runs the start-up checks on it. Its error
// explains what failed; when no server answered, it wraps a *dialError.
// When co asks for the client-side cache (the near cache) and the server
// refuses it, connect logs why and connects without it.
func (s *Store) connect(ctx context.Context, co rueidis.ClientOption) (*link, error) {
	sent := time.Now()
	c, err := s.connectWith(ctx, co)
	if err != nil && !co.DisableCache && !isDialFailure(err) && refusesTracking(err) {
		co.DisableCache = true
		co.NewCacheStoreFn = nil
		c, err2 := s.connectWith(ctx, co)
		if err2 != nil {
			return nil, err2
		}
		s.logger.Warn("redis: near cache off: the server refuses client-side caching (RESP3 CLIENT TRACKING); reads go to Redis. Use Redis 6 or later and allow the user CLIENT TRACKING (ACL +client|tracking), or unset NearCache (CACHE_NEAR_CACHE)",
			"addr", s.addrs, "error", trackingRefusal(err))
		return &link{c: c}, nil
	}
	if err != nil {
		return nil, err
	}
	if s.near != nil {
		s.near.answered(sent) // the start-up checks were answered
	}
	return &link{c: c, near: !co.DisableCache}, nil
}

// connectWith is connect with co as it is.
func (s *Store) connectWith(ctx context.Context, co rueidis.ClientOption) (rueidis.Client, error) {
	c, err := rueidis.NewClient(co)
	if err != nil {
		if c != nil {
			// A standalone client is returned even when its dial failed.
			c.Close()
		}
		return nil, s.connectError(err)
	}
	if err := s.check(ctx, c, co.Dialer.Timeout); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// check refuses a client of the wrong kind: a standalone client on a
// cluster node gets MOVED for most keys, and rueidis silently falls back to
// a standalone client when a single Cluster seed is not a cluster node.
func (s *Store) check(ctx context.Context, c rueidis.Client, timeout time.Duration) error {
	cc, err := s.beginFor(ctx, timeout)
	if err != nil {
		return s.connectError(err)
	}
	defer cc.end()
	if s.cluster {
		if c.Mode() != rueidis.ClientModeCluster {
			return fmt.Errorf("redis: Cluster is set but %s is not a Redis Cluster node (cluster_enabled:0); unset Cluster (CACHE_REDIS_CLUSTER=false) for a standalone server", s.addrs)
		}
		if err := s.pingCluster(cc, c); err != nil {
			return s.connectError(err)
		}
		return nil
	}
	info, err := cc.do(c, c.B().Info().Section("cluster").Build()).ToString()
	if err != nil {
		return s.connectError(cc.err(err))
	}
	if strings.Contains(info, "cluster_enabled:1") {
		return fmt.Errorf("redis: %s is a Redis Cluster node; set Cluster (CACHE_REDIS_CLUSTER=true or ?cluster=true in the URL) to use it", s.addrs)
	}
	return nil
}

// isDialFailure reports whether err, from connect, means that nothing
// answered at the address: a TCP connect that failed, or a connection the
// server accepted but did not answer on in time (frozen, overloaded), as
// opposed to a server that answered and failed a check.
func isDialFailure(err error) bool {
	var de *dialError
	if errors.As(err, &de) {
		return true
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// pending is the error calls return while the Store is not connected, for
// the failure err of the last attempt.
func (s *Store) pending(err error) error {
	var de *dialError
	if !errors.As(err, &de) {
		return fmt.Errorf("%w (retrying in the background)", err)
	}
	return fmt.Errorf("redis: %s is not reachable yet (connecting in the background; last dial error: %w); %s", s.addrs, de, reachHint)
}

// connectLoop connects in the background, with a capped back-off, until
// it succeeds or Close cancels ctx. Each failure becomes the error of the
// calls made meanwhile.
func (s *Store) connectLoop(ctx context.Context, co rueidis.ClientOption) {
	for delay := firstRetryDelay; ; delay = min(2*delay, maxRetryDelay) {
		if !sleep(ctx, delay) {
			return
		}
		l, err := s.connect(ctx, co)
		if ctx.Err() != nil {
			if l != nil {
				l.c.Close()
			}
			return
		}
		if err != nil {
			s.link.Store(&link{err: s.pending(err)})
			continue
		}
		if !s.publish(l) {
			l.c.Close()
		}
		return
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// publish makes c the Store's client, unless the Store was closed
// meanwhile (then the caller closes c). Close takes the same lock, so a
// client is either published before Close reads it, and closed by Close, or
// not published at all.
func (s *Store) publish(l *link) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return false
	}
	s.link.Store(l)
	return true
}

// client returns the connected client, or the error to return: ErrClosed
// after Close, the reason it is not connected before it is.
func (s *Store) client() (rueidis.Client, error) {
	if s.closed.Load() {
		return nil, hoard.ErrClosed
	}
	l := s.link.Load()
	if l.c == nil {
		return nil, l.err
	}
	return l.c, nil
}

// Close closes the connections and stops a background connection. It is
// idempotent; other calls made after Close return hoard.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	first := s.closed.CompareAndSwap(false, true)
	l := s.link.Load()
	s.mu.Unlock()
	if !first {
		return nil
	}
	s.stop()
	if s.metrics != nil {
		s.metrics.Unregister()
	}
	if l != nil && l.c != nil {
		l.c.Close()
	}
	return nil
}

// connectError explains a failure to connect or authenticate.
func (s *Store) connectError(err error) error {
	hint := reachHint
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "NOAUTH"), strings.Contains(msg, "AUTH"):
		hint = "check Username and Password (CACHE_REDIS_USERNAME and CACHE_REDIS_PASSWORD, or the URL's user:password)"
	case strings.Contains(msg, "NOPERM"):
		hint = "the user lacks an ACL permission; allow it the string, keyspace and connection commands"
	case strings.Contains(msg, "DB index"), strings.Contains(msg, "SELECT"):
		hint = "check DB (CACHE_REDIS_DB or the URL path): it must be below the server's 'databases' setting"
	case strings.Contains(msg, "tls:"), strings.Contains(msg, "x509:"), strings.Contains(msg, "EOF"),
		strings.Contains(msg, "connection reset"):
		if s.tls {
			hint = "check that the server speaks TLS on this port and that its certificate is trusted (rediss:// and CACHE_REDIS_TLS need a TLS port; CACHE_REDIS_TLS_CA_FILE names a private CA)"
		} else {
			hint = "if the server requires TLS, use rediss:// or CACHE_REDIS_TLS=true (Options.TLSConfig); otherwise " + hint
		}
	}
	return fmt.Errorf("redis: cannot connect to %s: %w; %s", s.addrs, err, hint)
}
