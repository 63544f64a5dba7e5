package memcached

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/hoardcache/hoard"
)

var _ hoard.Describer = (*Store)(nil)

// statFigures are the stats Describe reports per server.
var statFigures = []string{"version", "uptime", "curr_items", "total_items", "bytes", "limit_maxbytes",
	"evictions", "get_hits", "get_misses", "curr_connections"}

// Describe reports each server's own figures (the stats command, on a
// connection of its own). Memcached cannot list its keys, so Keys and
// Bytes of the namespace are -1.
func (s *Store) Describe(ctx context.Context, prefix string) (hoard.StoreDescription, error) {
	d := hoard.StoreDescription{Keys: -1, Bytes: -1, Servers: map[string]map[string]string{}}
	for _, n := range s.nodes {
		figures, err := s.stats(ctx, n.addr)
		if err != nil {
			return d, fmt.Errorf("memcached %s: stats: %w", n.addr, err)
		}
		d.Servers[n.addr] = figures
	}
	return d, nil
}

// stats sends "stats" to addr and keeps statFigures of the answer,
// within the store's Timeout.
func (s *Store) stats(ctx context.Context, addr string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte("stats\r\n")); err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "END" {
			return out, nil
		}
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "STAT" && slices.Contains(statFigures, f[1]) {
			out[f[1]] = f[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("the connection closed before the answer's END")
}
