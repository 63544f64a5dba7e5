package testserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// RedisOptions configures StartRedis. The zero value is a plain server
// without authentication.
type RedisOptions struct {
	// Args are extra redis-server arguments, appended last so they override
	// the defaults, e.g. "--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru".
	Args []string
	// Password turns on authentication: requirepass for the default user,
	// or the password of Username.
	Password string
	// Username, with Password, creates the ACL user
	// `NAME on >PASS ~* &* +@all` and switches the default user off.
	Username string
	// TLS makes the server speak TLS only (--port 0 --tls-port P) with a
	// throwaway CA and server certificate generated into Dir. Clients are
	// not asked for certificates. Use TLSConfig to connect.
	TLS bool
	// Port, when set, is the port to listen on, reserved with ReservePort
	// (with cluster true for a cluster node); 0 picks a free one. Start
	// fails if the port is taken.
	Port int

	cluster     bool // cluster node: --cluster-enabled, bus port reserved
	nodeTimeout time.Duration
}

// Redis is one private redis-server process listening on 127.0.0.1:Port.
// Its methods are safe for concurrent use.
type Redis struct {
	// Addr is "127.0.0.1:Port".
	Addr string
	// Port is the client port (the TLS port when TLS is on).
	Port int
	// Dir is the server's private directory: its log, certificates and,
	// for cluster nodes, nodes.conf. Stop removes it.
	Dir string

	opts RedisOptions
	tls  *tlsFiles
	srv  *server
}

// StartRedis starts a private redis-server on a free loopback port and
// waits until it answers PING (authenticated when a password is set). The
// server keeps nothing on disk (--save "" --appendonly no). Call Stop when
// done, or use RedisT in a test.
func StartRedis(opts RedisOptions) (*Redis, error) {
	if opts.Username != "" && opts.Password == "" {
		return nil, errors.New("testserver: RedisOptions.Username needs a Password")
	}
	bin, err := lookBin("redis-server")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "testserver-redis-*")
	if err != nil {
		return nil, err
	}
	r := &Redis{Dir: dir, opts: opts}
	if opts.TLS {
		if r.tls, err = generateTLS(dir); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("testserver: generate TLS certificates: %w", err)
		}
	}
	logFile := filepath.Join(dir, "log")
	r.srv = &server{
		name:    "redis-server",
		bin:     bin,
		bus:     opts.cluster,
		dir:     dir,
		outPath: filepath.Join(dir, "stdout.log"),
		logs:    []string{filepath.Join(dir, "stdout.log"), logFile},
		probe:   r.probe,
	}
	start := func() error { return startServer(r.srv, r.args) }
	if opts.Port != 0 {
		start = func() error { return startServerOn(r.srv, opts.Port, r.args) }
	}
	if err := start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r.Port = r.srv.port
	r.Addr = r.srv.addr()
	return r, nil
}

// args builds the redis-server command line for port.
func (r *Redis) args(port int) []string {
	p := strconv.Itoa(port)
	a := []string{
		"--bind", "127.0.0.1",
		"--protected-mode", "no",
		"--save", "",
		"--appendonly", "no",
		"--dir", r.Dir,
		"--logfile", filepath.Join(r.Dir, "log"),
		"--daemonize", "no",
		"--repl-diskless-sync-delay", "0",
		"--enable-debug-command", "local",
	}
	if r.tls != nil {
		a = append(a,
			"--port", "0",
			"--tls-port", p,
			"--tls-cert-file", r.tls.certFile,
			"--tls-key-file", r.tls.keyFile,
			"--tls-ca-cert-file", r.tls.caFile,
			"--tls-auth-clients", "no",
			"--tls-replication", "yes",
			"--tls-cluster", "yes",
		)
	} else {
		a = append(a, "--port", p)
	}
	switch {
	case r.opts.Username != "":
		a = append(a,
			"--user", r.opts.Username, "on", ">"+r.opts.Password, "~*", "&*", "+@all",
			"--user", "default", "off",
			"--masteruser", r.opts.Username, "--masterauth", r.opts.Password,
		)
	case r.opts.Password != "":
		a = append(a, "--requirepass", r.opts.Password, "--masterauth", r.opts.Password)
	}
	if r.opts.cluster {
		a = append(a,
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(r.Dir, "nodes.conf"),
			"--cluster-node-timeout", strconv.FormatInt(r.opts.nodeTimeout.Milliseconds(), 10),
		)
	}
	return append(a, r.opts.Args...)
}

// probe is the readiness check: an authenticated PING answered PONG.
func (r *Redis) probe(ctx context.Context) error {
	c, err := r.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	v, err := c.Do("PING")
	if err != nil {
		return err
	}
	if v != "PONG" {
		return fmt.Errorf("PING answered %q", FormatReply(v))
	}
	return nil
}

func (r *Redis) dial(ctx context.Context) (*Conn, error) {
	d := &net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", r.srv.addr())
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	if r.tls != nil {
		tc := tls.Client(raw, r.TLSConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		raw = tc
	}
	c := NewConn(raw)
	if r.opts.Password != "" {
		args := []string{"AUTH", r.opts.Password}
		if r.opts.Username != "" {
			args = []string{"AUTH", r.opts.Username, r.opts.Password}
		}
		if _, err := c.Do(args...); err != nil {
			c.Close()
			return nil, fmt.Errorf("testserver: AUTH: %w", err)
		}
	}
	return c, nil
}

// Dial returns a new connection to the server, over TLS and authenticated
// as configured, with a 5 s deadline for the whole conversation (move it
// with SetDeadline). The caller closes it.
func (r *Redis) Dial() (*Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.dial(ctx)
}

// DoReply runs one command on a fresh connection (TLS and AUTH as
// configured, 5 s deadline) and returns the decoded reply; see Conn.
func (r *Redis) DoReply(args ...string) (any, error) {
	c, err := r.Dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Do(args...)
}

// Do runs one command like DoReply and returns the reply as text, the way
// redis-cli --raw prints it (see FormatReply). For test assertions:
//
//	got, err := r.Do("GET", "k")
func (r *Redis) Do(args ...string) (string, error) {
	v, err := r.DoReply(args...)
	if err != nil {
		return "", err
	}
	return FormatReply(v), nil
}

// Info returns the fields of INFO section (e.g. "memory", "stats"; "" for
// the default set) as a map.
func (r *Redis) Info(section string) (map[string]string, error) {
	args := []string{"INFO"}
	if section != "" {
		args = append(args, section)
	}
	s, err := r.Do(args...)
	if err != nil {
		return nil, err
	}
	return parseInfo(s), nil
}

// ClusterInfo returns the fields of CLUSTER INFO as a map
// (cluster_state, cluster_slots_ok, cluster_known_nodes, ...).
func (r *Redis) ClusterInfo() (map[string]string, error) {
	s, err := r.Do("CLUSTER", "INFO")
	if err != nil {
		return nil, err
	}
	return parseInfo(s), nil
}

// TLSConfig returns a client configuration that trusts the server's
// throwaway CA (ServerName 127.0.0.1), or nil when the server does not
// use TLS. Each call returns a new copy.
func (r *Redis) TLSConfig() *tls.Config {
	if r.tls == nil {
		return nil
	}
	return r.tls.client.Clone()
}

// CAFile returns the path of the PEM file of the server's throwaway CA
// (what CACHE_REDIS_TLS_CA_FILE names), or "" when the server does not use
// TLS.
func (r *Redis) CAFile() string {
	if r.tls == nil {
		return ""
	}
	return r.tls.caFile
}

// Options returns the options the server was started with.
func (r *Redis) Options() RedisOptions { return r.opts }

// LogTail returns the end of the server's log, for failure messages.
func (r *Redis) LogTail() string { return r.srv.logTail() }

// Kill sends SIGKILL and waits for the process to exit. The port stays
// reserved and Dir stays in place for Restart. Killing a killed server is a
// no-op.
func (r *Redis) Kill() error { return r.srv.kill() }

// Pause freezes the process with SIGSTOP: connections stay open and
// connects still succeed (the kernel accepts them), but nothing answers
// until Resume. It returns once every thread of the process is stopped
// (state T in /proc), so no request is served after it returns; it fails
// if that takes more than 5s.
func (r *Redis) Pause() error { return r.srv.pause() }

// Resume continues a paused process with SIGCONT and returns once no
// thread of it is stopped any more.
func (r *Redis) Resume() error { return r.srv.resume() }

// Restart kills the process if it still runs and starts it again on the
// same port with the same options, empty (nothing is persisted), and waits
// until it answers PING. A cluster node keeps its nodes.conf, so it rejoins
// its cluster with its old identity.
func (r *Redis) Restart() error { return r.srv.restart() }

// Stop kills the process, waits for it and removes Dir. It is idempotent.
func (r *Redis) Stop() error { return r.srv.stop() }
