package testserver

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// dialRefused asserts that nothing listens on addr.
func dialRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections", addr)
	}
}

func TestRedisStartStop(t *testing.T) {
	t.Parallel()
	r, err := StartRedis(RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
	if got, err := r.Do("SET", "k", "v"); err != nil || got != "OK" {
		t.Fatalf("SET = %q, %v", got, err)
	}
	if got, err := r.Do("GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	if !strings.HasPrefix(r.Addr, "127.0.0.1:") || r.Port == 6379 {
		t.Fatalf("Addr = %q", r.Addr)
	}
	if _, err := os.Stat(r.Dir); err != nil {
		t.Fatalf("Dir: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.Dir); !os.IsNotExist(err) {
		t.Fatalf("Dir %s still exists after Stop (err %v)", r.Dir, err)
	}
	dialRefused(t, r.Addr)
	if err := r.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := r.Restart(); !errors.Is(err, ErrStopped) {
		t.Fatalf("Restart after Stop = %v, want ErrStopped", err)
	}
}

func TestRedisKillRestart(t *testing.T) {
	t.Parallel()
	r := RedisT(t, RedisOptions{Args: []string{"--maxmemory", "2mb"}})
	if _, err := r.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	port := r.Port
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	dialRefused(t, r.Addr)
	if _, err := r.Do("PING"); err == nil {
		t.Fatal("PING answered after Kill")
	}
	if err := r.Pause(); err == nil {
		t.Fatal("Pause of a killed server succeeded")
	}
	if err := r.Kill(); err != nil {
		t.Fatalf("second Kill: %v", err)
	}
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	if r.Port != port {
		t.Fatalf("port changed: %d -> %d", port, r.Port)
	}
	if got, err := r.Do("GET", "k"); err != nil || got != "" {
		t.Fatalf("GET after Restart = %q, %v; want empty (no persistence)", got, err)
	}
	mem, err := r.Do("CONFIG", "GET", "maxmemory")
	if err != nil || mem != "maxmemory\n2097152" {
		t.Fatalf("options lost on Restart: CONFIG GET maxmemory = %q, %v", mem, err)
	}
	// Restart of a running server works too.
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
}

func TestRedisPauseResume(t *testing.T) {
	t.Parallel()
	r := RedisT(t, RedisOptions{})
	c, err := r.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	wantThreads(t, r.srv, true)
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	_, err = c.Do("PING")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("PING to a paused server: err = %v, want a timeout", err)
	}
	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	wantThreads(t, r.srv, false)
	if got, err := r.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING after Resume = %q, %v", got, err)
	}
	// Kill and Stop work on a paused server.
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestRedisAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      RedisOptions
		whoami    string
		wrongAuth []string
	}{
		{"password", RedisOptions{Password: "s3cret"}, "default", []string{"AUTH", "wrong"}},
		{"acl user", RedisOptions{Username: "app", Password: "s3cret"}, "app", []string{"AUTH", "s3cret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := RedisT(t, tt.opts)
			if got, err := r.Do("ACL", "WHOAMI"); err != nil || got != tt.whoami {
				t.Fatalf("ACL WHOAMI = %q, %v; want %q", got, err, tt.whoami)
			}
			c, err := DialRESP(r.Addr, nil, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Do("GET", "k"); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
				t.Fatalf("unauthenticated GET: err = %v, want NOAUTH", err)
			}
			var re RedisError
			if _, err := c.Do(tt.wrongAuth...); !errors.As(err, &re) {
				t.Fatalf("%v: err = %v, want an error reply", tt.wrongAuth, err)
			}
		})
	}
	if _, err := StartRedis(RedisOptions{Username: "u"}); err == nil {
		t.Fatal("Username without Password accepted")
	}
}

func TestRedisTLS(t *testing.T) {
	t.Parallel()
	r := RedisT(t, RedisOptions{TLS: true, Password: "pw"})
	cfg := r.TLSConfig()
	if cfg == nil {
		t.Fatal("TLSConfig is nil")
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", r.Addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for _, cmd := range [][]string{{"AUTH", "pw"}, {"PING"}} {
		if err := WriteCommand(c, cmd...); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"OK", "PONG"} {
		if got, err := ReadReply(br); err != nil || got != want {
			t.Fatalf("reply = %v, %v; want %q", got, err, want)
		}
	}
	// The helpers speak TLS too, and a wrong CA is refused.
	if got, err := r.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("Do PING = %q, %v", got, err)
	}
	if _, err := DialRESP(r.Addr, &tls.Config{ServerName: "127.0.0.1"}, time.Second); err == nil {
		t.Fatal("TLS handshake with an untrusted CA succeeded")
	}
	if RedisT(t, RedisOptions{}).TLSConfig() != nil {
		t.Fatal("TLSConfig of a plain server is not nil")
	}
}

func TestRedisConcurrentUse(t *testing.T) {
	t.Parallel()
	r := RedisT(t, RedisOptions{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			_, _ = r.Do("PING")
			_ = r.Kill()
			_ = r.Stop()
		})
	}
	wg.Wait()
	if _, err := os.Stat(r.Dir); !os.IsNotExist(err) {
		t.Fatalf("Dir still exists: %v", err)
	}
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for name, start := range map[string]func() error{
		"redis":     func() error { _, err := StartRedis(RedisOptions{}); return err },
		"memcached": func() error { _, err := StartMemcached(MemcachedOptions{}); return err },
		"cluster":   func() error { _, err := StartRedisCluster(3, 0); return err },
	} {
		err := start()
		if err == nil || !strings.Contains(err.Error(), "apt-get install -y redis-server redis-tools memcached") {
			t.Errorf("%s: err = %v, want the install command", name, err)
		}
	}
}

func TestMemcachedPool(t *testing.T) {
	t.Parallel()
	pool := MemcachedPoolT(t, 3, MemcachedOptions{})
	seen := map[int]bool{}
	for _, m := range pool {
		v, err := m.Version()
		if err != nil || !strings.HasPrefix(v, "1.") {
			t.Fatalf("%s: version = %q, %v", m.Addr, v, err)
		}
		if seen[m.Port] {
			t.Fatalf("port %d used twice", m.Port)
		}
		seen[m.Port] = true
	}
	if got := Addrs(pool); len(got) != 3 || got[0] != pool[0].Addr {
		t.Fatalf("Addrs = %v", got)
	}
	st, err := pool[0].Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st["limit_maxbytes"] != "67108864" {
		t.Fatalf("limit_maxbytes = %q, want 64 MiB", st["limit_maxbytes"])
	}
	// A 1 MiB value fits with the default item size.
	big := strings.Repeat("x", 1<<20)
	if got, err := pool[1].Do("set big 0 0 1048576\r\n" + big); err != nil || got != "STORED" {
		t.Fatalf("set 1 MiB = %q, %v", got, err)
	}
	got, err := pool[1].Do("get big")
	if err != nil || got != "VALUE big 0 1048576\r\n"+big+"\r\nEND" {
		t.Fatalf("get 1 MiB: len %d, %v", len(got), err)
	}
}

// TestMemcachedSmallItemSize starts servers with an item size below the
// default largest slab chunk, which memcached refuses unless
// slab_chunk_max is lowered too: the server starts with that -I and
// refuses an item over it.
func TestMemcachedSmallItemSize(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		size string
		max  int
	}{{"1k", 1 << 10}, {"64k", 64 << 10}, {"65536", 64 << 10}, {"1m", 1 << 20}} {
		m := MemcachedT(t, MemcachedOptions{MemoryMB: 8, MaxItemSize: c.size})
		st, err := m.Stats("settings")
		if err != nil || st["item_size_max"] != strconv.Itoa(c.max) {
			t.Fatalf("-I %s: item_size_max = %q, %v; want %d", c.size, st["item_size_max"], err, c.max)
		}
		if got, err := m.Do("set small 0 0 1\r\nv"); err != nil || got != "STORED" {
			t.Errorf("-I %s: set of 1 byte = %q, %v; want STORED", c.size, got, err)
		}
		big := strings.Repeat("x", c.max)
		if got, err := m.Do("set big 0 0 " + strconv.Itoa(len(big)) + "\r\n" + big); err == nil || !strings.Contains(err.Error(), "too large") {
			t.Errorf("-I %s: set of %d bytes = %q, %v; want SERVER_ERROR object too large for cache", c.size, len(big), got, err)
		}
	}
}

func TestMemcachedKillRestart(t *testing.T) {
	t.Parallel()
	m := MemcachedT(t, MemcachedOptions{MemoryMB: 8, MaxItemSize: "1m"})
	if got, err := m.Do("set k 0 0 1\r\nv"); err != nil || got != "STORED" {
		t.Fatalf("set = %q, %v", got, err)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	dialRefused(t, m.Addr)
	port := m.Port
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if m.Port != port {
		t.Fatalf("port changed")
	}
	if got, err := m.Do("get k"); err != nil || got != "END" {
		t.Fatalf("get after Restart = %q, %v; want a miss", got, err)
	}
	st, err := m.Stats("settings")
	if err != nil || st["maxbytes"] != "8388608" || st["item_size_max"] != "1048576" {
		t.Fatalf("options lost on Restart: maxbytes=%q item_size_max=%q, %v", st["maxbytes"], st["item_size_max"], err)
	}
	if _, err := m.Do("bogus"); err == nil {
		t.Fatal("unknown command: no error")
	}

	// Pause: a connect succeeds, nothing answers.
	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	wantThreads(t, m.srv, true)
	c, err := net.DialTimeout("tcp", m.Addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	c.Write([]byte("version\r\n"))
	var ne net.Error
	if _, err := c.Read(make([]byte, 64)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read from a paused memcached: %v, want a timeout", err)
	}
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	wantThreads(t, m.srv, false)
	if _, err := m.Version(); err != nil {
		t.Fatal(err)
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		in      string
		want    any
		wantErr string
	}{
		{"+OK\r\n", "OK", ""},
		{"-ERR bad\r\n", nil, "ERR bad"},
		{":42\r\n", int64(42), ""},
		{"$3\r\nfoo\r\n", "foo", ""},
		{"$0\r\n\r\n", "", ""},
		{"$-1\r\n", nil, ""},
		{"*-1\r\n", nil, ""},
		{"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", []any{"a", []any{int64(1)}}, ""},
		{"*2\r\n+OK\r\n-WRONGTYPE x\r\n", []any{"OK", RedisError("WRONGTYPE x")}, ""},
		{"%1\r\n+k\r\n:1\r\n", []any{"k", int64(1)}, ""},
		{"_\r\n", nil, ""},
		{"#t\r\n", true, ""},
		{"$3\r\nfoo", nil, "EOF"},
		{"?x\r\n", nil, "unknown RESP type"},
		{"+OK\n", nil, "malformed"},
	}
	for _, tt := range tests {
		got, err := ReadReply(bufio.NewReader(strings.NewReader(tt.in)))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ReadReply(%q) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ReadReply(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
		}
	}
}

func TestWriteCommand(t *testing.T) {
	var b strings.Builder
	if err := WriteCommand(&b, "SET", "k", ""); err != nil {
		t.Fatal(err)
	}
	if want := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"; b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}

func TestRedisCluster(t *testing.T) {
	t.Parallel()
	c := RedisClusterT(t, 3, 1)
	if len(c.Nodes) != 6 || len(c.Addrs) != 6 || len(c.Masters()) != 3 || len(c.Replicas()) != 3 {
		t.Fatalf("nodes %d addrs %d masters %d replicas %d", len(c.Nodes), len(c.Addrs), len(c.Masters()), len(c.Replicas()))
	}
	for i, r := range c.Nodes {
		if c.Addrs[i] != r.Addr {
			t.Fatalf("Addrs[%d] = %s, Nodes[%d].Addr = %s", i, c.Addrs[i], i, r.Addr)
		}
		info, err := r.ClusterInfo()
		if err != nil || info["cluster_state"] != "ok" || info["cluster_slots_ok"] != "16384" {
			t.Fatalf("%s: CLUSTER INFO %v, %v", r.Addr, info, err)
		}
		role, err := r.DoReply("ROLE")
		if err != nil {
			t.Fatal(err)
		}
		wantRole := "master"
		if i >= 3 {
			wantRole = "slave"
		}
		if got := role.([]any)[0]; got != wantRole {
			t.Errorf("Nodes[%d] ROLE %v, want %s", i, got, wantRole)
		}
	}

	nodes, err := c.Nodes[0].Do("CLUSTER", "NODES")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(nodes, "master"); got != 3 {
		t.Errorf("CLUSTER NODES lists %d masters, want 3:\n%s", got, nodes)
	}
	shards, err := c.Nodes[0].DoReply("CLUSTER", "SHARDS")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(shards.([]any)); got != 3 {
		t.Errorf("CLUSTER SHARDS lists %d shards, want 3", got)
	}
	// Masters are ordered by slot: the first one owns slot 0.
	if self, err := c.Masters()[0].clusterSelf(); err != nil || self.firstSlot != 0 {
		t.Errorf("Masters()[0] first slot = %d, %v", self.firstSlot, err)
	}

	// A killed master comes back on the same port with the same identity
	// and the cluster heals.
	m := c.Masters()[1]
	id, err := m.NodeID()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if got, err := m.NodeID(); err != nil || got != id {
		t.Fatalf("node ID after Restart = %q, %v; want %q", got, err, id)
	}
	if err := c.WaitHealthy(0); err != nil {
		t.Fatal(err)
	}
	// Exactly one master serves a key; the others redirect to a member.
	served := 0
	for _, r := range c.Nodes {
		if r.srv.running() && r.Addr != "" {
			_, err := r.Do("SET", "k", "v")
			switch {
			case err == nil:
				served++
			case strings.HasPrefix(err.Error(), "MOVED "):
				if to := strings.Fields(err.Error())[2]; !slices.Contains(c.Addrs, to) {
					t.Errorf("MOVED to %s, not a cluster node", to)
				}
			default:
				t.Errorf("%s: SET: %v", r.Addr, err)
			}
		}
	}
	if served != 1 {
		t.Errorf("%d nodes served SET k, want 1", served)
	}

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	for _, r := range c.Nodes {
		if _, err := os.Stat(r.Dir); !os.IsNotExist(err) {
			t.Fatalf("%s still exists", r.Dir)
		}
	}
}

func TestRedisClusterTooSmall(t *testing.T) {
	if _, err := StartRedisCluster(2, 0); err == nil || !strings.Contains(err.Error(), "at least 3 masters") {
		t.Fatalf("err = %v", err)
	}
}

func TestStartErrorHasLog(t *testing.T) {
	t.Parallel()
	_, err := StartRedis(RedisOptions{Args: []string{"--no-such-directive", "1"}})
	if err == nil || !strings.Contains(err.Error(), "no-such-directive") || !strings.Contains(err.Error(), "log tail") {
		t.Fatalf("err = %v, want the server's complaint", err)
	}
	_, err = StartMemcached(MemcachedOptions{Args: []string{"--no-such-flag"}})
	if err == nil || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("err = %v, want the server's complaint", err)
	}
}

// wantThreads checks, right after Pause or Resume returned, that every
// thread of the server is stopped (stopped true) or that none is: Pause
// must not return while a thread can still serve a request.
func wantThreads(t *testing.T, s *server, stopped bool) {
	t.Helper()
	s.mu.Lock()
	pid := s.proc.cmd.Process.Pid
	s.mu.Unlock()
	states, err := threadStates(pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) < 2 {
		t.Errorf("%s (pid %d) has %d thread(s); the check wants a multi-threaded server", s.name, pid, len(states))
	}
	for i, st := range states {
		if (st == 'T') != stopped {
			t.Fatalf("thread %d of %d of %s is in state %q right after it returned; want all stopped=%v (states %q)",
				i, len(states), s.name, st, stopped, states)
		}
	}
}

func TestStatState(t *testing.T) {
	tests := []struct {
		stat string
		want byte
		err  bool
	}{
		{"123 (redis-server) S 1 123 123 0 -1", 'S', false},
		{"123 (bio_close_file) T 1 2 3", 'T', false},
		{"7 (a) b (c)) R 1 2", 'R', false}, // the name holds ") " and parentheses
		{"7 (with space) D 1", 'D', false},
		{"7 (x) t 1", 't', false},
		{"7 noparens S 1", 0, true},
		{"7 (x)", 0, true},
		{"7 (x)S 1", 0, true},
	}
	for _, tt := range tests {
		got, err := statState([]byte(tt.stat))
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("statState(%q) = %q, %v; want %q, error %v", tt.stat, got, err, tt.want, tt.err)
		}
	}
}

func TestWaitThreadsBounded(t *testing.T) {
	t.Parallel()
	r := RedisT(t, RedisOptions{})
	r.srv.mu.Lock()
	pid, done := r.srv.proc.cmd.Process.Pid, r.srv.proc.done
	r.srv.mu.Unlock()
	// The running server never becomes stopped by itself: the wait gives up.
	start := time.Now()
	err := waitThreads(pid, true, done, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not all stopped") {
		t.Fatalf("waitThreads(stopped) on a running server = %v; want a bounded failure", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("waitThreads took %v with a 50ms bound", took)
	}
	// An exited process ends the wait at once.
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := waitThreads(pid, true, done, time.Minute); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("waitThreads on a killed server = %v; want \"the process exited\"", err)
	}
}

// TestRedisOnReservedPort: a reserved port is free (nothing listens, no
// other start takes it) until a server is started on it; Stop releases it.
func TestRedisOnReservedPort(t *testing.T) {
	t.Parallel()
	port, err := ReservePort(false)
	if err != nil {
		t.Fatal(err)
	}
	dialRefused(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	portsMu.Lock()
	reservedNow := reserved[port]
	portsMu.Unlock()
	if !reservedNow {
		t.Fatalf("port %d is not reserved", port)
	}
	r, err := StartRedis(RedisOptions{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	if r.Port != port || r.Addr != net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) {
		t.Fatalf("started on %s (port %d), want port %d", r.Addr, r.Port, port)
	}
	if got, err := r.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	portsMu.Lock()
	reservedNow = reserved[port]
	portsMu.Unlock()
	if reservedNow {
		t.Errorf("port %d still reserved after Stop", port)
	}

	// A taken port fails the start instead of moving it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	if r, err := StartRedis(RedisOptions{Port: taken}); err == nil {
		r.Stop()
		t.Fatalf("StartRedis on taken port %d succeeded", taken)
	}
}
