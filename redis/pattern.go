package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/redis/rueidis"
)

// DeletePattern removes every key matching the glob pattern (Redis syntax,
// backslash escapes metacharacters) and returns how many it removed.
//
// It walks the keyspace with a SCAN cursor loop (MATCH pattern COUNT 1000)
// and UNLINKs the matches in batches of about 1000, so Redis is never
// blocked by one large command. On Cluster it walks every master, in
// parallel; replicas are skipped, they hold copies. ctx bounds the whole
// walk; Options.Timeout bounds each round trip (one SCAN page or one UNLINK
// batch), not the walk, which takes as long as the keyspace needs.
//
// Keys written during the walk may survive it. On error, deleted counts the
// keys removed before the failure.
func (s *Store) DeletePattern(ctx context.Context, pattern string) (int, error) {
	rc, err := s.client()
	if err != nil {
		return 0, err
	}
	var deleted atomic.Int64
	err = s.eachMaster(ctx, rc, func(ctx context.Context, _ string, node rueidis.Client) error {
		return s.scan(ctx, node, pattern, func(batch []string) error {
			c, err := s.begin(ctx)
			if err != nil {
				return s.fail("UNLINK", err)
			}
			n, err := s.unlink(c, rc, batch)
			c.end()
			deleted.Add(int64(n))
			return err
		})
	})
	return int(deleted.Load()), err
}

// eachMaster runs f on the server (standalone) or on every Cluster
// master, in parallel, with its address; replicas are skipped, they hold
// copies. The first error cancels the others' context and is returned,
// naming its master.
func (s *Store) eachMaster(ctx context.Context, rc rueidis.Client, f func(ctx context.Context, addr string, node rueidis.Client) error) error {
	if !s.cluster {
		return f(ctx, s.addrs, rc)
	}
	masters, err := s.masters(ctx, rc)
	if err != nil {
		return err
	}
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, m := range masters {
		wg.Go(func() {
			if err := f(wctx, m.addr, m.client); err != nil {
				errOnce.Do(func() {
					first = fmt.Errorf("%w (on master %s)", err, m.addr)
					cancel()
				})
			}
		})
	}
	wg.Wait()
	return first
}

// scan SCANs node for the keys matching pattern and hands them to each in
// batches of about deleteBatch, one page's round trip at a time.
func (s *Store) scan(ctx context.Context, node rueidis.Client, pattern string, each func(batch []string) error) error {
	var (
		cursor uint64
		batch  []string
	)
	for {
		c, err := s.begin(ctx)
		if err != nil {
			return s.fail("SCAN", err)
		}
		page, err := c.do(node, node.B().Scan().Cursor(cursor).Match(pattern).Count(deleteBatch).Build()).AsScanEntry()
		c.end()
		if err != nil {
			return s.fail("SCAN", c.err(err))
		}
		batch = append(batch, page.Elements...)
		cursor = page.Cursor
		if len(batch) > 0 && (len(batch) >= deleteBatch || cursor == 0) {
			if err := each(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		if cursor == 0 {
			return nil
		}
	}
}

// master is one Cluster master and a client bound to it.
type master struct {
	addr   string
	client rueidis.Client
}

// masters returns every master of the cluster, as reported by CLUSTER
// SHARDS (Redis 7+) or CLUSTER SLOTS (older servers). Every known node is
// asked at once and the first complete answer wins, so the lookup costs one
// round trip and, while nodes are frozen or down, at most one Timeout in
// all (not one per node). It fails if a shard serving slots has no
// reachable master, since its keys could not be walked.
func (s *Store) masters(ctx context.Context, rc rueidis.Client) ([]master, error) {
	nodes := rc.Nodes()
	if len(nodes) == 0 {
		return nil, s.fail("finding Cluster masters", errNoNode)
	}
	type answer struct {
		addr    string
		masters []string
		err     error
	}
	answers := make(chan answer, len(nodes)) // buffered: late asks never block
	c, err := s.begin(ctx)
	if err != nil {
		return nil, s.fail("finding Cluster masters", err)
	}
	// The call ends when the last ask does: the slower asks run on after
	// the first answer, until they answer or time out (or ctx ends).
	var wg sync.WaitGroup
	for a, n := range nodes {
		wg.Go(func() {
			found, err := s.askMasters(c, a, n)
			answers <- answer{a, found, c.err(err)}
		})
	}
	go func() { wg.Wait(); c.end() }()
	var errs []error
	for range nodes {
		ans := <-answers
		if ans.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ans.addr, ans.err))
			continue
		}
		out := make([]master, 0, len(ans.masters))
		for _, m := range ans.masters {
			client, ok := nodes[m]
			if !ok {
				return nil, fmt.Errorf("redis: Cluster master %s is not known to the client yet (topology is changing); retry later", m)
			}
			out = append(out, master{addr: m, client: client})
		}
		return out, nil
	}
	// One line, and the same whatever order the asks failed in.
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	err = errs[0]
	if len(errs) > 1 {
		err = fmt.Errorf("%w (and %d more nodes failed)", err, len(errs)-1)
	}
	return nil, s.fail("finding Cluster masters", err)
}

var errNoNode = errors.New("no Cluster node known")

// askMasters asks node (at addr) for the addresses of the masters.
func (s *Store) askMasters(c *call, addr string, node rueidis.Client) ([]string, error) {
	host, _, _ := net.SplitHostPort(addr)
	resp := c.do(node, node.B().ClusterShards().Build())
	shards, err := resp.ToArray()
	if err != nil {
		if _, isRedisErr := rueidis.IsRedisErr(err); !isRedisErr {
			return nil, err
		}
		// Redis < 7 has no CLUSTER SHARDS.
		return s.askMastersSlots(c, host, node)
	}
	var out []string
	for _, sh := range shards {
		m, err := sh.AsMap()
		if err != nil {
			return nil, err
		}
		slots := m["slots"]
		hasSlots := len(mustArray(&slots)) > 0
		nodesMsg := m["nodes"]
		masterAddr := ""
		for _, n := range mustArray(&nodesMsg) {
			d, err := n.AsMap()
			if err != nil {
				return nil, err
			}
			if str(d["role"]) != "master" || str(d["health"]) != "online" {
				continue
			}
			port := d["port"]
			p, _ := port.AsInt64()
			if s.tls {
				if tp, ok := d["tls-port"]; ok {
					if v, _ := tp.AsInt64(); v > 0 {
						p = v
					}
				}
			}
			masterAddr = endpoint(host, str(d["endpoint"]), p)
		}
		if masterAddr == "" {
			if hasSlots {
				return nil, fmt.Errorf("a Cluster shard serving slots has no online master (failover in progress?)")
			}
			continue
		}
		out = append(out, masterAddr)
	}
	return out, nil
}

// askMastersSlots reads the masters from CLUSTER SLOTS.
func (s *Store) askMastersSlots(c *call, host string, node rueidis.Client) ([]string, error) {
	ranges, err := c.do(node, node.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range ranges {
		vals, err := r.ToArray()
		if err != nil || len(vals) < 3 {
			continue
		}
		m, err := vals[2].ToArray()
		if err != nil || len(m) < 2 {
			continue
		}
		ep, _ := m[0].ToString()
		p, _ := m[1].AsInt64()
		a := endpoint(host, ep, p)
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out, nil
}

// endpoint forms host:port the way rueidis names cluster nodes: an empty
// endpoint means the host of the node that answered.
func endpoint(fallbackHost, ep string, port int64) string {
	switch ep {
	case "?":
		return ""
	case "":
		ep = fallbackHost
	}
	return net.JoinHostPort(ep, strconv.FormatInt(port, 10))
}

func str(m rueidis.RedisMessage) string {
	v, _ := m.ToString()
	return v
}

func mustArray(m *rueidis.RedisMessage) []rueidis.RedisMessage {
	v, _ := m.ToArray()
	return v
}

// pingCluster PINGs every master of the cluster of rc in parallel.
func (s *Store) pingCluster(c *call, rc rueidis.Client) error {
	masters, err := s.masters(c, rc)
	if err != nil {
		return err
	}
	errs := make([]error, len(masters))
	var wg sync.WaitGroup
	for i, m := range masters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.do(m.client, m.client.B().Ping().Build()).Error(); err != nil {
				errs[i] = s.fail("PING "+m.addr, c.err(err))
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
