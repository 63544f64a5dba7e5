package testserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemcachedOptions configures StartMemcached. The zero value is a 64 MB
// server that accepts items up to 2 MiB.
type MemcachedOptions struct {
	// Args are extra memcached arguments, appended last so they override
	// the defaults, e.g. "-t", "1".
	Args []string
	// MemoryMB is the cache size (-m). Zero means 64.
	MemoryMB int
	// MaxItemSize is the largest item (-I), e.g. "1m", "2m", "64k", "1k"
	// (memcached's minimum). Empty means "2m", so a 1 MiB value plus its
	// envelope fits. memcached refuses to start with an -I below its
	// largest slab chunk (512 KiB by default), so for a size below 512k
	// StartMemcached also passes -o slab_chunk_max=<half the size>, unless
	// Args sets slab_chunk_max itself.
	MaxItemSize string
}

// Memcached is one private memcached process listening on 127.0.0.1:Port
// (TCP only, -U 0). Its methods are safe for concurrent use.
type Memcached struct {
	// Addr is "127.0.0.1:Port".
	Addr string
	// Port is the TCP port.
	Port int
	// Dir holds the server's output log. Stop removes it.
	Dir string

	srv *server
}

// StartMemcached starts a private memcached on a free loopback port and
// waits until it answers `version`. Running as root, it passes `-u root`
// unless Args has -u. Call Stop when done, or use MemcachedT in a test.
func StartMemcached(opts MemcachedOptions) (*Memcached, error) {
	bin, err := lookBin("memcached")
	if err != nil {
		return nil, err
	}
	if opts.MemoryMB == 0 {
		opts.MemoryMB = 64
	}
	if opts.MaxItemSize == "" {
		opts.MaxItemSize = "2m"
	}
	dir, err := os.MkdirTemp("", "testserver-memcached-*")
	if err != nil {
		return nil, err
	}
	m := &Memcached{Dir: dir}
	out := filepath.Join(dir, "log")
	m.srv = &server{
		name:    "memcached",
		bin:     bin,
		dir:     dir,
		outPath: out,
		logs:    []string{out},
		probe: func(ctx context.Context) error {
			_, err := m.version(ctx)
			return err
		},
	}
	argsFor := func(port int) []string {
		a := []string{
			"-l", "127.0.0.1",
			"-p", strconv.Itoa(port),
			"-U", "0",
			"-m", strconv.Itoa(opts.MemoryMB),
			"-I", opts.MaxItemSize,
		}
		if chunk, ok := smallItemChunk(opts.MaxItemSize); ok && !slices.ContainsFunc(opts.Args, func(a string) bool { return strings.Contains(a, "slab_chunk_max") }) {
			a = append(a, "-o", "slab_chunk_max="+strconv.Itoa(chunk))
		}
		if os.Geteuid() == 0 && !slices.Contains(opts.Args, "-u") {
			a = append(a, "-u", "root")
		}
		return append(a, opts.Args...)
	}
	if err := startServer(m.srv, argsFor); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	m.Port = m.srv.port
	m.Addr = m.srv.addr()
	return m, nil
}

// smallItemChunk returns the slab_chunk_max (in bytes, as memcached 1.6
// reads it) for an item size (-I) below memcached's default largest chunk
// of 512 KiB, which it refuses to start with: half the item size, as
// memcached's own default is half of its default -I 1m. ok is false for a
// size of 512k or more, or one it cannot read (memcached reports that).
func smallItemChunk(size string) (chunk int, ok bool) {
	unit := 1
	num := strings.ToLower(size)
	switch {
	case strings.HasSuffix(num, "k"):
		unit, num = 1<<10, strings.TrimSuffix(num, "k")
	case strings.HasSuffix(num, "m"):
		unit, num = 1<<20, strings.TrimSuffix(num, "m")
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n*unit >= 512<<10 {
		return 0, false
	}
	return n * unit / 2, true
}

// StartMemcachedPool starts n memcached servers with the same options, in
// parallel. On error it stops the ones already started.
func StartMemcachedPool(n int, opts MemcachedOptions) ([]*Memcached, error) {
	if n < 1 {
		return nil, fmt.Errorf("testserver: memcached pool size %d, want at least 1", n)
	}
	pool := make([]*Memcached, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range pool {
		wg.Go(func() { pool[i], errs[i] = StartMemcached(opts) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		StopMemcachedPool(pool)
		return nil, err
	}
	return pool, nil
}

// StopMemcachedPool stops every server of pool (nil entries are skipped).
func StopMemcachedPool(pool []*Memcached) error {
	var errs []error
	for _, m := range pool {
		if m != nil {
			errs = append(errs, m.Stop())
		}
	}
	return errors.Join(errs...)
}

// Addrs returns the addresses of pool, in order.
func Addrs(pool []*Memcached) []string {
	addrs := make([]string, len(pool))
	for i, m := range pool {
		addrs[i] = m.Addr
	}
	return addrs
}

// Do sends one text-protocol command (CRLF is appended; a storage command
// carries its data after an inner CRLF, e.g. "set k 0 0 1\r\nx") on a fresh
// connection with a 5 s deadline, and returns the whole reply without its
// final CRLF: "STORED", "VALUE k 0 1\r\nx\r\nEND", "VERSION 1.6.18", ...
// Error replies (ERROR, CLIENT_ERROR, SERVER_ERROR) are returned as errors.
func (m *Memcached) Do(command string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return m.do(ctx, command)
}

func (m *Memcached) do(ctx context.Context, command string) (string, error) {
	d := &net.Dialer{}
	c, err := d.DialContext(ctx, "tcp", m.srv.addr())
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, command+"\r\n"); err != nil {
		return "", err
	}
	return readMemcachedReply(bufio.NewReader(c))
}

// readMemcachedReply reads lines until one that ends a reply; VALUE and VA
// data blocks are read by their length.
func readMemcachedReply(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return b.String(), err
		}
		b.WriteString(line)
		l := strings.TrimRight(line, "\r\n")
		f := strings.Fields(l)
		switch {
		case len(f) >= 4 && f[0] == "VALUE", len(f) >= 2 && f[0] == "VA":
			lenField := f[1]
			if f[0] == "VALUE" {
				lenField = f[3]
			}
			n, err := strconv.Atoi(lenField)
			if err != nil {
				return b.String(), fmt.Errorf("testserver: bad memcached reply %q", l)
			}
			data := make([]byte, n+2)
			if _, err := io.ReadFull(r, data); err != nil {
				return b.String(), err
			}
			b.Write(data)
			if f[0] == "VA" {
				return strings.TrimSuffix(b.String(), "\r\n"), nil
			}
		case len(f) >= 1 && (f[0] == "STAT" || f[0] == "ITEM"):
			// more lines follow until END
		case l == "ERROR" || strings.HasPrefix(l, "CLIENT_ERROR") || strings.HasPrefix(l, "SERVER_ERROR"):
			return "", fmt.Errorf("testserver: memcached: %s", l)
		default:
			return strings.TrimSuffix(b.String(), "\r\n"), nil
		}
	}
}

func (m *Memcached) version(ctx context.Context) (string, error) {
	s, err := m.do(ctx, "version")
	if err != nil {
		return "", err
	}
	v, ok := strings.CutPrefix(s, "VERSION ")
	if !ok {
		return "", fmt.Errorf("testserver: version answered %q", s)
	}
	return v, nil
}

// Version returns the server's version, e.g. "1.6.18".
func (m *Memcached) Version() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return m.version(ctx)
}

// Stats returns the statistics of `stats [group]` as a map: with no group
// the general-purpose ones ("curr_items", "evictions", "limit_maxbytes"),
// with "settings" the configuration ("item_size_max", "maxconns"), and so on.
func (m *Memcached) Stats(group ...string) (map[string]string, error) {
	s, err := m.Do(strings.Join(append([]string{"stats"}, group...), " "))
	if err != nil {
		return nil, err
	}
	st := make(map[string]string)
	for _, line := range strings.Split(s, "\r\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "STAT" {
			st[f[1]] = f[2]
		}
	}
	return st, nil
}

// LogTail returns the end of the server's output, for failure messages.
func (m *Memcached) LogTail() string { return m.srv.logTail() }

// Kill sends SIGKILL and waits for the process to exit. The port stays
// reserved for Restart. Killing a killed server is a no-op.
func (m *Memcached) Kill() error { return m.srv.kill() }

// Pause freezes the process with SIGSTOP: connects still succeed, nothing
// answers until Resume. It returns once every thread of the process is
// stopped (state T in /proc), so no request is served after it returns; it
// fails if that takes more than 5s.
func (m *Memcached) Pause() error { return m.srv.pause() }

// Resume continues a paused process with SIGCONT and returns once no
// thread of it is stopped any more.
func (m *Memcached) Resume() error { return m.srv.resume() }

// Restart kills the process if it still runs and starts it again, empty,
// on the same port with the same options; it waits until `version` answers.
func (m *Memcached) Restart() error { return m.srv.restart() }

// Stop kills the process, waits for it and removes Dir. It is idempotent.
func (m *Memcached) Stop() error { return m.srv.stop() }
