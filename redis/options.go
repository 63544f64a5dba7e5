package redis

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/addr"
)

// Defaults used for zero fields of Options.
const (
	// DefaultAddr is the address used when Options.Addrs is empty. Its
	// port is also the one ParseURL (and stores.FromEnv, for
	// CACHE_REDIS_HOST without CACHE_REDIS_PORT) gives a host without one.
	DefaultAddr = "localhost:6379"
	// DefaultPoolSize is the PoolSize used when Options.PoolSize is 0.
	DefaultPoolSize = 10
	// DefaultTimeout is the per-call deadline used when Options.Timeout is
	// 0: hoard's CACHE_TIMEOUT default.
	DefaultTimeout = hoard.DefaultTimeout
	// DefaultMaxValueBytes is the MaxValueBytes used when it is 0: 512 MiB,
	// the largest string Redis takes (its default proto-max-bulk-len).
	DefaultMaxValueBytes = 512 << 20
	// DefaultNearMaxBytes is the NearMaxBytes used when it is 0: 64 MiB.
	DefaultNearMaxBytes = 64 << 20
	// DefaultNearTTL is the NearTTL used when it is 0.
	DefaultNearTTL = 60 * time.Second
	// DefaultNearMaxLag is the NearMaxLag used when it is 0.
	DefaultNearMaxLag = 10 * time.Millisecond
)

// minConnTimeout is the floor of the connection timeouts given to rueidis:
// the dial (TCP + TLS + HELLO/AUTH/SELECT) timeout and the connection
// read/write timeout (ConnWriteTimeout). A call never waits longer than
// Options.Timeout anyway, because rueidis honours the call's context (it
// dials with it and abandons the wait for the reply when it ends; see
// call.go). The floor applies where rueidis works without a caller — New,
// Cluster topology refreshes, its background PING of a stalled connection —
// so that a handshake on a loaded host does not fail start-up and a server
// that is merely slow does not lose its connections.
const minConnTimeout = time.Second

// Options configures a Store. The zero value connects to localhost:6379
// without authentication, DB 0, no TLS.
type Options struct {
	// Addrs lists host:port addresses. For a standalone server give one
	// address; with Cluster they are seeds from which the client discovers
	// the whole cluster (one is enough). Default ["localhost:6379"].
	Addrs []string

	// Cluster states that Addrs are Redis Cluster nodes (CACHE_REDIS_CLUSTER).
	// False forces a standalone client even if the server is a cluster node;
	// New refuses either mismatch with an error that says which to set.
	Cluster bool

	// Username and Password authenticate with AUTH (Redis 6 ACL users when
	// Username is set, the default user otherwise): CACHE_REDIS_USERNAME
	// and CACHE_REDIS_PASSWORD, or the URL's user:password.
	Username string
	Password string

	// DB is the database selected with SELECT (CACHE_REDIS_DB). Redis
	// Cluster only has DB 0, so a non-zero DB with Cluster is an error.
	DB int

	// TLSConfig, when non-nil, makes every connection use TLS (rediss://,
	// or CACHE_REDIS_TLS=true with CACHE_REDIS_TLS_CA_FILE for a private
	// CA). An empty ServerName is taken from each address dialed.
	TLSConfig *tls.Config

	// PoolSize bounds the connections opened to each server
	// (CACHE_REDIS_POOL_SIZE), default 10. rueidis auto-pipelines ordinary
	// commands: concurrent calls share a few connections per server and are
	// written together, so PoolSize is not a limit on concurrent calls. It
	// sets rueidis' BlockingPoolSize (dedicated connections, used for very
	// large batches such as a Delete of thousands of keys) and caps the
	// number of pipelined connections (PipelineMultiplex) at
	// min(PoolSize, 4) rounded down to a power of two.
	PoolSize int

	// Timeout is the deadline of one store call (CACHE_TIMEOUT), default
	// 50ms; a context with an earlier deadline wins. A dead or frozen
	// (SIGSTOPped) server therefore costs each call at most Timeout.
	// DeletePattern applies it to each round trip of its walk rather than
	// to the whole walk.
	//
	// It is also the dial timeout and the connection read/write timeout
	// (rueidis Dialer.Timeout and ConnWriteTimeout), but no less than 1s
	// there: these bound work rueidis does without a caller (connecting in
	// New, topology refreshes, the background PING that detects a frozen
	// server and replaces its connection, about 1s after it stalls).
	Timeout time.Duration

	// MaxValueBytes is the largest value Set and Add send, default 512 MiB
	// (DefaultMaxValueBytes), the largest string Redis takes. A larger value
	// is refused before anything is sent, with an error wrapping
	// hoard.ErrValueTooLarge: a refusal of that value, not a store failure,
	// so a Cache leaves that response uncached and counts nothing against
	// the server. Set it lower to keep huge responses out of a shared Redis;
	// above 512 MiB only for a server whose proto-max-bulk-len was raised.
	MaxValueBytes int

	// NearCache turns on the near cache (CACHE_NEAR_CACHE), off by
	// default: Get and GetMulti keep the values they read in process
	// memory and serve repeated reads of them without a round trip.
	// Redis keeps those copies coherent: the store's connections use
	// RESP3 client-side caching (CLIENT TRACKING, default mode, opt-in),
	// so the server pushes an invalidation for a key as soon as anyone
	// changes it, and the local copy is dropped (typically within a
	// millisecond on a local network). A connection that drops loses all
	// its local copies. A key this store itself writes (Set, Add, Touch,
	// Delete) is read from the server until the invalidation for it has
	// arrived, at most 1s (or NearTTL if smaller), so a process reads its
	// own writes. A server that refuses client-side caching (RESP2 only,
	// or an ACL that denies CLIENT TRACKING) does not fail New: the store
	// logs one line to Logger and runs without the near cache. Copies are
	// used only while the server answers (see NearMaxLag): when it stops
	// (frozen, unreachable), reads go to the server, whose failure the
	// Cache answers by serving uncached. With the near cache on, the store
	// uses one connection per server (PoolSize is not used for it), which
	// carries reads, writes, pings and invalidations in order.
	NearCache bool

	// NearMaxBytes bounds the memory of the near cache
	// (CACHE_NEAR_MAX_BYTES), default 64 MiB (DefaultNearMaxBytes), for
	// the whole store, however many connections and Cluster masters. Each
	// copy counts its key and value plus 200 bytes of bookkeeping; past the
	// bound, copies not read lately are evicted first.
	NearMaxBytes int64

	// NearTTL is the longest a local copy is used without the server's
	// word (CACHE_NEAR_TTL), default 60s (DefaultNearTTL): a copy older
	// than that (or than the key's remaining Redis TTL, if shorter) is read
	// again from the server, even if no invalidation arrived.
	NearTTL time.Duration

	// NearMaxLag is the longest a process uses its local copies after it
	// last heard from every server it reads (CACHE_NEAR_MAX_LAG), default
	// 10ms (DefaultNearMaxLag), at most Timeout. It is what makes a write
	// visible everywhere once it is acknowledged: Redis pushes the
	// invalidation before it answers the write, but the receiving process
	// may not have read the push yet. So the store pings each server every
	// NearMaxLag/4 on the connection that carries its copies and
	// invalidations, uses copies only while a ping (or read) sent less than
	// NearMaxLag ago has been answered (the answer comes after any push
	// sent before it), and Delete returns NearMaxLag after Redis answered
	// it: by then, every process either has dropped its copies of the keys
	// or has stopped using copies. The costs: Delete (and so every write
	// route's invalidation) takes NearMaxLag longer, and each process
	// sends 4/NearMaxLag pings a second to each server. A process too
	// loaded to read the answers in time reads from the server instead,
	// uncached, until it catches up.
	NearMaxLag time.Duration

	// Logger receives the store's rare notices (such as a near cache turned
	// off because the server refuses it). Nil means slog.Default().
	Logger *slog.Logger

	// MeterProvider receives the near cache's metrics when it is on:
	// hoard.near.hits, hoard.near.drops (by reason: invalidated, evicted),
	// hoard.near.copies and hoard.near.bytes. Nil means the global provider
	// (otel.GetMeterProvider). stores.Open gives it the Cache's.
	MeterProvider metric.MeterProvider
}

// WithDefaults returns o with its zero fields replaced by their defaults
// (Addrs, PoolSize, Timeout, MaxValueBytes, NearMaxBytes, NearTTL,
// NearMaxLag). Other fields, and negative
// values, which Validate reports, are left as they are.
func (o Options) WithDefaults() Options {
	if len(o.Addrs) == 0 {
		o.Addrs = []string{DefaultAddr}
	}
	if o.PoolSize == 0 {
		o.PoolSize = DefaultPoolSize
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxValueBytes == 0 {
		o.MaxValueBytes = DefaultMaxValueBytes
	}
	if o.NearMaxBytes == 0 {
		o.NearMaxBytes = DefaultNearMaxBytes
	}
	if o.NearTTL == 0 {
		o.NearTTL = DefaultNearTTL
	}
	if o.NearMaxLag == 0 {
		o.NearMaxLag = DefaultNearMaxLag
	}
	return o
}

// Validate reports every field of o that New cannot use, each as a
// *hoard.FieldError, joined with errors.Join. Zero fields are valid (they
// mean the defaults).
func (o Options) Validate() error {
	var errs []error
	bad := func(field string, value any, want string) {
		errs = append(errs, &hoard.FieldError{Type: "redis.Options", Field: field, Value: value, Want: want})
	}
	for _, a := range o.Addrs {
		if want := addr.CheckHostPort(a); want != "" {
			bad("Addrs", a, want+", e.g. localhost:6379 or [::1]:6379")
		}
	}
	if o.DB < 0 {
		bad("DB", o.DB, "must not be negative: databases are numbered from 0")
	} else if o.Cluster && o.DB != 0 {
		bad("DB", o.DB, "must be 0 with Cluster: Redis Cluster has only database 0 (separate applications with a key prefix instead)")
	}
	if o.PoolSize < 0 {
		bad("PoolSize", o.PoolSize, fmt.Sprintf("must not be negative (0 means the default, %d)", DefaultPoolSize))
	}
	if o.Timeout < 0 {
		bad("Timeout", o.Timeout, fmt.Sprintf("must not be negative (0 means the default, %v)", DefaultTimeout))
	}
	if o.MaxValueBytes < 0 {
		bad("MaxValueBytes", o.MaxValueBytes, fmt.Sprintf("must not be negative (0 means the default, %d: 512 MiB)", DefaultMaxValueBytes))
	}
	if o.NearMaxBytes < 0 {
		bad("NearMaxBytes", o.NearMaxBytes, fmt.Sprintf("must not be negative (0 means the default, %d: 64 MiB)", DefaultNearMaxBytes))
	}
	if o.NearTTL < 0 {
		bad("NearTTL", o.NearTTL, fmt.Sprintf("must not be negative (0 means the default, %v)", DefaultNearTTL))
	}
	if o.NearMaxLag < 0 {
		bad("NearMaxLag", o.NearMaxLag, fmt.Sprintf("must not be negative (0 means the default, %v)", DefaultNearMaxLag))
	}
	return errors.Join(errs...)
}

// pipelineMultiplex is the rueidis PipelineMultiplex for a pool size: the
// largest n with 2^n <= min(poolSize, 4). rueidis reads 0 as "automatic"
// for standalone clients, so a single connection is requested as -1.
func pipelineMultiplex(poolSize int) int {
	switch {
	case poolSize >= 4:
		return 2
	case poolSize >= 2:
		return 1
	default:
		return -1
	}
}

const urlForm = "redis://[user:password@]host:port[/db][?cluster=true] or rediss://… for TLS"

// ParseURL parses a Redis URL into Options:
//
//	redis://[[user]:password@]host[:port][/db][?cluster=true]
//	rediss://…  (TLS; the certificate is verified against the host name)
//
// The port defaults to DefaultAddr's (6379) and db to 0. With cluster=true, several seeds
// may be given separated by commas: redis://h1:7000,h2:7001?cluster=true.
// PoolSize and Timeout are left zero (defaults).
func ParseURL(rawURL string) (Options, error) {
	var o Options
	u, err := url.Parse(rawURL)
	if err != nil {
		return o, fmt.Errorf("redis: invalid URL %q: %v; expected %s", redactURL(rawURL), err, urlForm)
	}
	switch u.Scheme {
	case "redis":
	case "rediss":
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	case "":
		return o, fmt.Errorf("redis: URL %q has no scheme; expected %s", redactURL(rawURL), urlForm)
	default:
		return o, fmt.Errorf("redis: URL scheme %q is not supported; expected %s", u.Scheme, urlForm)
	}
	if u.Opaque != "" {
		return o, fmt.Errorf("redis: URL %q lacks // after the scheme; expected %s", redactURL(rawURL), urlForm)
	}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}

	for _, hp := range strings.Split(u.Host, ",") {
		if hp == "" {
			return o, fmt.Errorf("redis: URL %q has no host; expected %s", redactURL(rawURL), urlForm)
		}
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			// No port (or a bare IPv6 literal in brackets).
			host, port = strings.TrimSuffix(strings.TrimPrefix(hp, "["), "]"), strconv.Itoa(addr.Port(DefaultAddr))
			if strings.Contains(host, ":") && !strings.HasPrefix(hp, "[") {
				return o, fmt.Errorf("redis: URL host %q is not host[:port] (IPv6 addresses need brackets); expected %s", hp, urlForm)
			}
		}
		if host == "" {
			return o, fmt.Errorf("redis: URL %q has no host; expected %s", redactURL(rawURL), urlForm)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return o, fmt.Errorf("redis: URL port %q is not a number from 1 to 65535; expected %s", port, urlForm)
		}
		o.Addrs = append(o.Addrs, net.JoinHostPort(host, port))
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		db, err := strconv.Atoi(p)
		if err != nil || db < 0 {
			return o, fmt.Errorf("redis: URL path %q is not a database number; expected %s", u.Path, urlForm)
		}
		o.DB = db
	}

	q := u.Query()
	for name, vals := range q {
		switch name {
		case "cluster":
			b, err := strconv.ParseBool(vals[len(vals)-1])
			if err != nil {
				return o, fmt.Errorf("redis: URL parameter cluster=%q is not a boolean (true or false)", vals[len(vals)-1])
			}
			o.Cluster = b
		default:
			return o, fmt.Errorf("redis: URL parameter %q is not supported; the only parameter is cluster=true|false", name)
		}
	}
	if len(o.Addrs) > 1 && !o.Cluster {
		return o, errors.New("redis: URL lists several hosts but not cluster=true; a standalone server takes one host:port")
	}
	if o.TLSConfig != nil && !o.Cluster {
		// A Cluster client dials nodes it discovers, each under its own
		// name: there ServerName stays empty and crypto/tls takes it from
		// each dialed address.
		o.TLSConfig.ServerName, _, _ = net.SplitHostPort(o.Addrs[0])
	}
	if o.Cluster && o.DB != 0 {
		return o, fmt.Errorf("redis: URL selects DB %d with cluster=true, but Redis Cluster only has DB 0", o.DB)
	}
	return o, nil
}

// redactURL hides the password of a URL that is quoted in an error.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	// Unparsable: drop everything between :// and @.
	if i := strings.Index(raw, "://"); i >= 0 {
		if j := strings.LastIndex(raw, "@"); j > i {
			return raw[:i+3] + "xxxxx" + raw[j:]
		}
	}
	return raw
}
