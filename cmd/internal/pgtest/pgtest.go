// Package pgtest starts a private PostgreSQL server for tests: initdb into
// a new temporary directory, then postgres listening on 127.0.0.1 on a free
// port (and on a Unix socket in the same directory), with fsync off (a killed
// server keeps its committed data; a crashed machine would not). It never
// connects to a server it did not start, in particular not to a system
// PostgreSQL on 5432.
//
// PostgreSQL refuses to run as root; when the test runs as root the server
// runs as the "postgres" OS user (created by the Debian package), and the
// directory is chowned to it. The binaries are taken from the highest
// /usr/lib/postgresql/*/bin, else from PATH; when they are missing the error
// says what to install (InstallHint). Tests never skip for a missing binary.
//
//	func TestWithPostgres(t *testing.T) {
//		srv := pgtest.T(t)         // started once, stopped when the test ends
//		url := srv.NewDatabase(t)  // a fresh empty database
//		db, err := sql.Open("pgx", url)
//		...
//	}
//
// Starting takes a second or two (initdb); share one Server between the
// subtests of a test.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// InstallHint is the command that installs the binaries this package runs.
const InstallHint = "apt-get install -y postgresql"

// StartTimeout bounds initdb and the wait for the server to accept
// connections.
const StartTimeout = 60 * time.Second

// StopTimeout is how long Stop waits after a fast shutdown request before it
// kills the server.
const StopTimeout = 15 * time.Second

// User is the database superuser of a Server (trust authentication, no
// password).
const User = "postgres"

// Server is a running private PostgreSQL server.
type Server struct {
	// Host is the address the server listens on (127.0.0.1).
	Host string
	// Port is the server's TCP port.
	Port int
	// Dir holds the data directory (Dir/data), the Unix socket and the log
	// (Dir/postgres.log); it is removed by Stop.
	Dir string

	bin  string // directory of initdb and postgres
	cred *syscall.Credential

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool
}

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// URL returns the connection URL of database dbname as the superuser, e.g.
// postgres://postgres@127.0.0.1:41234/app?sslmode=disable.
func (s *Server) URL(dbname string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(User),
		Host:     s.Addr(),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// T starts a Server for one test (and its subtests): it fails the test when
// the server cannot start and stops it in t.Cleanup.
func T(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("pgtest: stop: %v", err)
		}
	})
	return s
}

// Start runs initdb in a new temporary directory and starts postgres on a
// free loopback port, waiting until it accepts connections.
func Start() (*Server, error) {
	bin, err := FindBin()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{Host: "127.0.0.1", Dir: dir, bin: bin, cred: cred}
	if err := s.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	if s.cred != nil {
		if err := os.Chown(s.Dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("pgtest: chown %s to the postgres user: %w", s.Dir, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	initdb := s.command(ctx, "initdb", "-D", s.dataDir(), "-U", User, "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	var err error
	for range 5 {
		var port int
		if port, err = freePort(); err != nil {
			return err
		}
		err = s.launch(ctx, port)
		if !errors.Is(err, errBindRace) {
			return err
		}
	}
	return err
}

// Restart starts a server stopped by Kill again, on the same port and with
// the same data (after crash recovery).
func (s *Server) Restart() error {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return errors.New("pgtest: Restart after Stop")
	}
	s.kill()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	for {
		err := s.launch(ctx, s.Port)
		if err == nil || ctx.Err() != nil {
			return err
		}
		// Backends of the killed server may still hold the port or the
		// shared memory for a moment.
		time.Sleep(100 * time.Millisecond)
	}
}

var errBindRace = errors.New("pgtest: port already in use")

// launch starts postgres on port and waits until it answers.
func (s *Server) launch(ctx context.Context, port int) error {
	s.Port = port
	logPath := filepath.Join(s.Dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	cmd := s.command(context.Background(), "postgres",
		"-D", s.dataDir(), "-k", s.Dir, "-h", s.Host, "-p", strconv.Itoa(port),
		"-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "max_connections=60", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	var lastErr error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		lastErr = s.ping(pctx)
		pcancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-done:
			tail := readTail(logPath)
			if strings.Contains(tail, "could not bind") || strings.Contains(tail, "in use") {
				return fmt.Errorf("%w: %s", errBindRace, tail)
			}
			return fmt.Errorf("pgtest: postgres on %s exited during start; log tail:\n%s", s.Addr(), tail)
		case <-ctx.Done():
			s.kill()
			return fmt.Errorf("pgtest: postgres on %s did not accept connections within %v (last error: %v); log tail:\n%s",
				s.Addr(), StartTimeout, lastErr, readTail(logPath))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) ping(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }

// command builds a command running a PostgreSQL binary as the server's OS
// user, in s.Dir, killed if the test binary dies.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.Dir
	cmd.Env = []string{"LC_ALL=C", "PATH=" + os.Getenv("PATH"), "HOME=" + s.Dir, "TZ=UTC"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: s.cred}
	return cmd
}

// CreateDatabase creates database name and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: create database %q: %w", name, err)
	}
	return s.URL(name), nil
}

// NewDatabase creates a fresh database with a random name and returns its
// URL; it fails the test on error.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := s.CreateDatabase(ctx, "t_"+hex.EncodeToString(b[:]))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Stop shuts the server down (fast shutdown, then SIGKILL after
// StopTimeout) and removes its directory. It is safe to call more than once.
func (s *Server) Stop() error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	var err error
	if cmd != nil {
		cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-done:
		case <-time.After(StopTimeout):
			err = fmt.Errorf("pgtest: postgres on %s did not stop within %v; killed", s.Addr(), StopTimeout)
			s.kill()
		}
	}
	if rerr := os.RemoveAll(s.Dir); rerr != nil && err == nil {
		err = fmt.Errorf("pgtest: %w", rerr)
	}
	return err
}

// Kill stops the server abruptly (SIGKILL), as a crash would, leaving its
// directory in place; Restart starts it again.
func (s *Server) Kill() { s.kill() }

func (s *Server) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	// The backends too, first: each runs in a session of its own, and one
	// that outlived its postmaster for a moment could still answer a pooled
	// connection, so the database would not look down yet.
	children := childrenOf(cmd.Process.Pid)
	for _, pid := range children {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if !slices.ContainsFunc(children, running) {
			return
		}
	}
}

// childrenOf lists the processes whose parent is pid (from /proc).
func childrenOf(pid int) []int {
	var out []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		if child, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil {
			out = append(out, child)
		}
	}
	return out
}

// running reports whether process pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// FindBin returns the directory holding initdb and postgres: the highest
// version under /usr/lib/postgresql/*/bin (Debian's layout), else the
// directory of initdb on PATH.
func FindBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("pgtest: initdb and postgres not found under /usr/lib/postgresql/*/bin or in PATH; install them with `%s`", InstallHint)
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// credential returns the postgres OS user's credential when running as root
// (PostgreSQL refuses to run as root), else nil.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, and PostgreSQL refuses to run as root, but there is no postgres user (%v); install the postgresql package (`%s`), which creates it", err, InstallHint)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: postgres user has non-numeric uid %q or gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

var portsMu sync.Mutex

// freePort picks a free loopback port, never 5432.
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("pgtest: no free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port != 5432 {
			return port, nil
		}
	}
	return 0, errors.New("pgtest: no free port")
}

func readTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "(no log)"
	}
	f.Seek(max(st.Size()-4096, 0), io.SeekStart)
	b, _ := io.ReadAll(f)
	if len(strings.TrimSpace(string(b))) == 0 {
		return "(log is empty)"
	}
	return string(b)
}
