package redis

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/redis/rueidis"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/glob"
)

var _ hoard.Describer = (*Store)(nil)

// serverFigures are the INFO fields Describe reports per server.
var serverFigures = []string{"redis_version", "used_memory", "used_memory_human", "maxmemory", "maxmemory_policy",
	"evicted_keys", "expired_keys", "keyspace_hits", "keyspace_misses", "connected_clients", "db0"}

// Describe counts the keys under prefix (a SCAN of every master, as
// DeletePattern walks) and their bytes (MEMORY USAGE, pipelined per
// batch), and reports each server's INFO figures (memory, stats, keyspace).
// It takes time in proportion to the keyspace: it is for operators.
func (s *Store) Describe(ctx context.Context, prefix string) (hoard.StoreDescription, error) {
	d := hoard.StoreDescription{Servers: map[string]map[string]string{}}
	rc, err := s.client()
	if err != nil {
		return d, err
	}
	var mu sync.Mutex
	err = s.eachMaster(ctx, rc, func(ctx context.Context, addr string, node rueidis.Client) error {
		c, err := s.begin(ctx)
		if err != nil {
			return s.fail("INFO", err)
		}
		info, err := c.do(node, node.B().Info().Section("server", "memory", "stats", "clients", "keyspace").Build()).ToString()
		c.end()
		if err != nil {
			return s.fail("INFO", c.err(err))
		}
		mu.Lock()
		d.Servers[addr] = infoFigures(info)
		mu.Unlock()
		return s.scan(ctx, node, glob.Escape(prefix)+"*", func(batch []string) error {
			c, err := s.begin(ctx)
			if err != nil {
				return s.fail("MEMORY USAGE", err)
			}
			defer c.end()
			cmds := make(rueidis.Commands, len(batch))
			for i, k := range batch {
				cmds[i] = rc.B().MemoryUsage().Key(k).Build()
			}
			var bytes int64
			for _, r := range c.doMulti(rc, cmds) {
				if n, err := r.AsInt64(); err == nil {
					bytes += n
				}
			}
			mu.Lock()
			d.Keys += int64(len(batch))
			d.Bytes += bytes
			mu.Unlock()
			return nil
		})
	})
	return d, err
}

// infoFigures picks serverFigures out of an INFO reply.
func infoFigures(info string) map[string]string {
	out := map[string]string{}
	for line := range strings.SplitSeq(info, "\n") {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && slices.Contains(serverFigures, name) {
			out[name] = value
		}
	}
	return out
}
