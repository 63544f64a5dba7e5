package testserver

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// RedisError is an error reply ("-ERR ...") from a Redis server. Conn.Do
// returns it as its error.
type RedisError string

// Error returns the server's message, e.g. "NOAUTH Authentication required.".
func (e RedisError) Error() string { return string(e) }

// Conn is a minimal RESP connection to one Redis server, for test assertions
// and readiness probes. It is not safe for concurrent use.
//
// Replies decode as: simple and bulk strings -> string; integers -> int64;
// null -> nil; arrays, sets, maps (flattened key, value, ...) and pushes ->
// []any; RESP3 booleans -> bool, doubles and big numbers -> string. A
// top-level error reply is returned as a RedisError error; an error inside
// an array (EXEC) stays in place as a RedisError element.
type Conn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

// DialRESP connects to addr ("127.0.0.1:port"), over TLS when tlsConfig is
// not nil, within timeout. It sends nothing; see Redis.Dial for an
// authenticated connection.
func DialRESP(addr string, tlsConfig *tls.Config, timeout time.Duration) (*Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	var (
		c   net.Conn
		err error
	)
	if tlsConfig != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tlsConfig)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	return NewConn(c), nil
}

// NewConn wraps an established connection (plain or TLS).
func NewConn(c net.Conn) *Conn {
	return &Conn{c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
}

// SetDeadline sets the read and write deadline of the underlying connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Send writes one command without reading its reply (for pipelining).
func (c *Conn) Send(args ...string) error {
	if err := WriteCommand(c.w, args...); err != nil {
		return err
	}
	return c.w.Flush()
}

// Receive reads one reply.
func (c *Conn) Receive() (any, error) { return ReadReply(c.r) }

// Do sends one command and reads its reply. An error reply is returned as a
// RedisError.
func (c *Conn) Do(args ...string) (any, error) {
	if err := c.Send(args...); err != nil {
		return nil, err
	}
	return c.Receive()
}

// WriteCommand writes args as a RESP array of bulk strings.
func WriteCommand(w io.Writer, args ...string) error {
	if len(args) == 0 {
		return errors.New("testserver: empty command")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ReadReply reads one RESP2 or RESP3 reply. An error reply is returned as a
// RedisError with a nil value; a malformed stream is another error.
func ReadReply(r *bufio.Reader) (any, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, errors.New("testserver: empty RESP line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-', '!':
		if line[0] == '!' { // RESP3 blob error
			s, err := readBulk(r, body)
			if err != nil {
				return nil, err
			}
			return nil, RedisError(s)
		}
		return nil, RedisError(body)
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("testserver: bad RESP integer %q", body)
		}
		return n, nil
	case '(', ',':
		return body, nil
	case '#':
		return body == "t", nil
	case '_':
		return nil, nil
	case '$', '=':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, fmt.Errorf("testserver: bad RESP length %q", body)
		}
		if n < 0 {
			return nil, nil
		}
		s, err := readBulk(r, body)
		if err != nil {
			return nil, err
		}
		if line[0] == '=' && len(s) >= 4 { // verbatim: "txt:..."
			s = s[4:]
		}
		return s, nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, fmt.Errorf("testserver: bad RESP length %q", body)
		}
		if n < 0 {
			return nil, nil
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		out := make([]any, 0, n)
		for i := 0; i < n; i++ {
			v, err := ReadReply(r)
			var re RedisError
			if errors.As(err, &re) { // an error inside an array (EXEC) stays in place
				out = append(out, re)
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		if line[0] == '|' { // attribute: the real reply follows
			return ReadReply(r)
		}
		return out, nil
	}
	return nil, fmt.Errorf("testserver: unknown RESP type %q", line)
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return "", fmt.Errorf("testserver: malformed RESP line %q", line)
	}
	return line[:len(line)-2], nil
}

func readBulk(r *bufio.Reader, length string) (string, error) {
	n, err := strconv.Atoi(length)
	if err != nil || n < 0 {
		return "", fmt.Errorf("testserver: bad RESP length %q", length)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	if buf[n] != '\r' || buf[n+1] != '\n' {
		return "", errors.New("testserver: RESP bulk string not terminated by CRLF")
	}
	return string(buf[:n]), nil
}

// FormatReply renders a decoded reply as text, the way redis-cli --raw
// does: arrays one element per line (nested arrays flattened), integers in
// decimal, null as the empty string.
func FormatReply(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	case RedisError:
		return string(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = FormatReply(e)
		}
		return strings.Join(parts, "\n")
	}
	return fmt.Sprint(v)
}

// parseInfo parses INFO / CLUSTER INFO text ("key:value" lines).
func parseInfo(s string) map[string]string {
	m := make(map[string]string)
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}
