package testserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StartTimeout bounds how long a start or restart waits for a server to
// answer before it gives up with an error that includes the server's log.
const StartTimeout = 10 * time.Second

// InstallHint is the command that installs every binary this package runs.
const InstallHint = "apt-get install -y redis-server redis-tools memcached"

// ErrStopped is returned by methods called after Stop.
var ErrStopped = errors.New("testserver: server was stopped")

// errBindRace marks a start that failed because the port was taken between
// picking it and the server binding it; the caller retries with a new port.
var errBindRace = errors.New("testserver: port already in use")

// lookBin finds a server binary or says exactly how to install it.
func lookBin(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("testserver: %s not found in PATH; install it with `%s`", name, InstallHint)
	}
	return p, nil
}

// Ports handed out by this process and not yet released; never handed out
// twice, which closes most of the pick-then-bind race between parallel
// starts in one test binary.
var (
	portsMu  sync.Mutex
	reserved = map[int]bool{}
)

// freePort picks a free loopback port. With bus, port+10000 (the Redis
// Cluster bus port) must be free as well, so the port is below 55000.
func freePort(bus bool) (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	var lastErr error
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			lastErr = err
			continue
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := !reserved[port] && (!bus || !reserved[port+10000])
		if ok && bus {
			if port >= 55000 {
				ok = false
			} else if l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err != nil {
				ok = false
			} else {
				l2.Close()
			}
		}
		l.Close()
		if ok {
			reserved[port] = true
			if bus {
				reserved[port+10000] = true
			}
			return port, nil
		}
	}
	return 0, fmt.Errorf("testserver: no free loopback port found: %v", lastErr)
}

// ReservePort picks a free loopback port on which nothing listens and
// reserves it in this process, so that no server this package starts takes
// it, for a server the caller starts later on it (RedisOptions.Port,
// ClusterOptions.Ports): a test of a client that must cope with a server
// that is not there yet. With cluster, the Redis Cluster bus port
// (port+10000) is free and reserved as well. The server started on it
// releases it when stopped.
func ReservePort(cluster bool) (int, error) { return freePort(cluster) }

func releasePort(port int, bus bool) {
	portsMu.Lock()
	defer portsMu.Unlock()
	delete(reserved, port)
	if bus {
		delete(reserved, port+10000)
	}
}

// process is one run of a server binary.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // cmd.Wait result, valid after done
}

// startProcess runs bin with args, stdout and stderr appended to outPath.
// The child is SIGKILLed by the kernel if the test binary dies.
func startProcess(bin string, args []string, outPath string) (*process, error) {
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("testserver: start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL (which also ends a stopped process) and waits for it.
func (p *process) kill() error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("testserver: kill pid %d: %w", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(StartTimeout):
		return fmt.Errorf("testserver: pid %d did not exit within %v of SIGKILL", p.cmd.Process.Pid, StartTimeout)
	}
}

// server is the lifecycle shared by Redis and Memcached: one port, one
// directory, one process at a time.
type server struct {
	name    string // binary name, for messages
	bin     string
	port    int
	bus     bool // port+10000 reserved too (cluster node)
	dir     string
	args    []string // full argument list, including the port
	logs    []string // files whose tail explains a failure
	outPath string   // stdout+stderr of the process
	probe   func(ctx context.Context) error

	mu      sync.Mutex
	proc    *process
	paused  bool
	stopped bool
}

func (s *server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// launch starts the process and waits until probe succeeds. It returns
// errBindRace (wrapped) when the server exited because its port was taken.
// Called with mu held.
func (s *server) launch() error {
	p, err := startProcess(s.bin, s.args, s.outPath)
	if err != nil {
		return err
	}
	s.proc, s.paused = p, false
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	var lastErr error
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		lastErr = s.probe(pctx)
		pcancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-p.done:
			tail := s.logTail()
			if isBindError(tail) {
				return fmt.Errorf("%w: %s on %s exited: %s", errBindRace, s.name, s.addr(), tail)
			}
			return fmt.Errorf("testserver: %s on %s exited during start (%v); log tail:\n%s", s.name, s.addr(), p.err, tail)
		case <-ctx.Done():
			_ = p.kill()
			return fmt.Errorf("testserver: %s on %s did not answer within %v (last error: %v); log tail:\n%s",
				s.name, s.addr(), StartTimeout, lastErr, s.logTail())
		case <-time.After(15 * time.Millisecond):
		}
	}
}

func isBindError(log string) bool {
	l := strings.ToLower(log)
	return strings.Contains(l, "address already in use") || strings.Contains(l, "failed to listen")
}

// logTail returns the last lines of the server's log files.
func (s *server) logTail() string {
	var b strings.Builder
	for _, path := range s.logs {
		data, err := readTail(path, 2048)
		if err != nil || len(strings.TrimSpace(data)) == 0 {
			continue
		}
		fmt.Fprintf(&b, "==> %s <==\n%s\n", path, strings.TrimRight(data, "\n"))
	}
	if b.Len() == 0 {
		return "(log is empty)"
	}
	return b.String()
}

func readTail(path string, n int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	off := max(st.Size()-n, 0)
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return "", err
	}
	data, err := io.ReadAll(f)
	return string(data), err
}

// running reports whether the process runs and is not paused.
func (s *server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.stopped && !s.paused && s.proc != nil && !s.proc.exited()
}

func (s *server) kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if s.proc == nil {
		return nil
	}
	return s.proc.kill()
}

// signal sends sig (SIGSTOP or SIGCONT) and waits until every thread of the
// process has taken it: kill(2) returns before the threads stop or run
// again, and on a loaded host a paused server could otherwise still serve a
// request after Pause returned.
func (s *server) signal(sig syscall.Signal, paused bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if s.proc == nil || s.proc.exited() {
		return fmt.Errorf("testserver: %s on %s is not running (killed?); call Restart", s.name, s.addr())
	}
	pid := s.proc.cmd.Process.Pid
	if err := s.proc.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("testserver: signal %v to %s: %w", sig, s.name, err)
	}
	s.paused = paused
	if err := waitThreads(pid, paused, s.proc.done, signalWait); err != nil {
		return fmt.Errorf("testserver: %v to %s on %s (pid %d): %w", sig, s.name, s.addr(), pid, err)
	}
	return nil
}

// signalWait bounds how long Pause and Resume wait for the threads of the
// process to stop or to run again.
const signalWait = 5 * time.Second

// waitThreads polls /proc/pid/task/*/stat until every thread of pid is
// stopped (state T), or, with stopped false, until none is. It gives up
// after bound, or when the process exits (done is closed).
func waitThreads(pid int, stopped bool, done <-chan struct{}, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	pause := 100 * time.Microsecond
	for {
		states, err := threadStates(pid)
		if err == nil && len(states) > 0 {
			ok := true
			for _, st := range states {
				if (st == 'T') != stopped {
					ok = false
					break
				}
			}
			if ok {
				return nil
			}
		}
		select {
		case <-done:
			return errors.New("the process exited")
		default:
		}
		if time.Now().After(deadline) {
			want := "stopped (T)"
			if !stopped {
				want = "running"
			}
			return fmt.Errorf("its threads are not all %s after %v: states %q, %v", want, bound, states, err)
		}
		time.Sleep(pause)
		pause = min(2*pause, 5*time.Millisecond)
	}
}

// threadStates returns the state letter (R, S, D, T, t, Z, …) of each
// thread of pid, read from /proc/pid/task/*/stat. A thread that exits while
// it is read is skipped.
func threadStates(pid int) ([]byte, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	states := make([]byte, 0, len(tasks))
	for _, t := range tasks {
		data, err := os.ReadFile(dir + "/" + t.Name() + "/stat")
		if err != nil {
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
				continue
			}
			return nil, err
		}
		st, err := statState(data)
		if err != nil {
			return nil, fmt.Errorf("%s/%s/stat: %w", dir, t.Name(), err)
		}
		states = append(states, st)
	}
	return states, nil
}

// statState returns the state field of a /proc/…/stat line: the first
// letter after the command name, which is in parentheses and may itself
// hold spaces and parentheses.
func statState(stat []byte) (byte, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) || stat[i+1] != ' ' {
		return 0, fmt.Errorf("unexpected format %q", stat)
	}
	return stat[i+2], nil
}

func (s *server) pause() error  { return s.signal(syscall.SIGSTOP, true) }
func (s *server) resume() error { return s.signal(syscall.SIGCONT, false) }

// restart kills the running process, if any, and starts a new one on the
// same port with the same arguments. If something else grabbed the port in
// between, it keeps trying until StartTimeout.
func (s *server) restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if s.proc != nil {
		if err := s.proc.kill(); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(StartTimeout)
	for {
		err := s.launch()
		if err == nil || !errors.Is(err, errBindRace) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop kills the process, waits for it, and removes the directory. It is
// idempotent.
func (s *server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	var errs []error
	if s.proc != nil {
		errs = append(errs, s.proc.kill())
	}
	s.stopped = true
	errs = append(errs, os.RemoveAll(s.dir))
	releasePort(s.port, s.bus)
	return errors.Join(errs...)
}

// startServerOn launches on port, which the caller reserved with
// ReservePort; it fails rather than move when the port was taken.
func startServerOn(s *server, port int, argsFor func(port int) []string) error {
	s.port, s.args = port, argsFor(port)
	s.mu.Lock()
	err := s.launch()
	s.mu.Unlock()
	if err != nil {
		releasePort(port, s.bus)
	}
	return err
}

// startServer picks a port, builds the arguments with argsFor and launches,
// retrying with a new port when the chosen one was taken in the meantime.
// The caller fills name, bin, dir, logs, outPath and probe; probe may read
// s.port.
func startServer(s *server, argsFor func(port int) []string) error {
	var err error
	for range 5 {
		var port int
		if port, err = freePort(s.bus); err != nil {
			return err
		}
		s.port, s.args = port, argsFor(port)
		for _, l := range s.logs { // a previous attempt's bind error must not be read again
			_ = os.Remove(l)
		}
		s.mu.Lock()
		err = s.launch()
		s.mu.Unlock()
		if err == nil {
			return nil
		}
		releasePort(port, s.bus)
		if !errors.Is(err, errBindRace) {
			return err
		}
	}
	return err
}
