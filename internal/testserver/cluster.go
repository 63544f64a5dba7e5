package testserver

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ClusterOptions configures StartRedisClusterWithOptions.
type ClusterOptions struct {
	// Masters is the number of masters; Redis Cluster needs at least 3.
	Masters int
	// ReplicasPerMaster is the number of replicas of each master.
	ReplicasPerMaster int
	// NodeTimeout is cluster-node-timeout: how long a node may be
	// unreachable (killed, paused) before it is marked failed and a replica
	// takes over. Zero means 3 s.
	NodeTimeout time.Duration
	// Args are extra redis-server arguments for every node.
	Args []string
	// Ports, when set, are the client ports of the nodes, one per node
	// (Masters*(1+ReplicasPerMaster)), each reserved with
	// ReservePort(true); by default the nodes take free ports.
	Ports []int
}

// ClusterTimeout bounds creating a cluster and WaitHealthy's default.
const ClusterTimeout = 30 * time.Second

// Cluster is a private Redis Cluster on loopback: Masters*(1+Replicas)
// redis-server nodes with cluster-enabled, slots spread by
// `redis-cli --cluster create`.
type Cluster struct {
	// Nodes are all nodes: the masters first, ordered by the first slot
	// they owned at creation, then the replicas.
	Nodes []*Redis
	// Addrs are the addresses of Nodes, in the same order (masters first);
	// any of them works as a seed address for a cluster client.
	Addrs []string

	masters int
}

// StartRedisCluster starts masters*(1+replicasPerMaster) nodes, creates the
// cluster with `redis-cli --cluster create ... --cluster-replicas N
// --cluster-yes` and waits until every node reports cluster_state:ok with
// all 16384 slots covered, all nodes agree on who is master and replica,
// and every replica is connected to its master. It takes a few seconds; share one cluster per test package
// (see the package doc).
func StartRedisCluster(masters, replicasPerMaster int) (*Cluster, error) {
	return StartRedisClusterWithOptions(ClusterOptions{Masters: masters, ReplicasPerMaster: replicasPerMaster})
}

// StartRedisClusterWithOptions is StartRedisCluster with more settings.
func StartRedisClusterWithOptions(opts ClusterOptions) (*Cluster, error) {
	if opts.Masters < 3 {
		return nil, fmt.Errorf("testserver: a Redis Cluster needs at least 3 masters, got %d", opts.Masters)
	}
	if opts.ReplicasPerMaster < 0 {
		return nil, fmt.Errorf("testserver: negative ReplicasPerMaster %d", opts.ReplicasPerMaster)
	}
	if opts.NodeTimeout <= 0 {
		opts.NodeTimeout = 3 * time.Second
	}
	cli, err := lookBin("redis-cli")
	if err != nil {
		return nil, err
	}
	n := opts.Masters * (1 + opts.ReplicasPerMaster)
	if opts.Ports != nil && len(opts.Ports) != n {
		return nil, fmt.Errorf("testserver: %d Ports for %d nodes", len(opts.Ports), n)
	}
	nodes := make([]*Redis, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range nodes {
		ro := RedisOptions{Args: opts.Args, cluster: true, nodeTimeout: opts.NodeTimeout}
		if opts.Ports != nil {
			ro.Port = opts.Ports[i]
		}
		wg.Go(func() { nodes[i], errs[i] = StartRedis(ro) })
	}
	wg.Wait()
	c := &Cluster{Nodes: nodes, masters: opts.Masters}
	if err := errors.Join(errs...); err != nil {
		c.Stop()
		return nil, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), ClusterTimeout)
	defer cancel()
	args := []string{"--cluster", "create"}
	for _, r := range nodes {
		args = append(args, r.Addr)
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(opts.ReplicasPerMaster), "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("testserver: redis-cli %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 2048))
	}
	if err := c.waitHealthy(ctx, true); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.order(); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// order sorts Nodes masters first (by first slot), then replicas.
func (c *Cluster) order() error {
	type ranked struct {
		r      *Redis
		master bool
		slot   int
	}
	rs := make([]ranked, len(c.Nodes))
	for i, r := range c.Nodes {
		self, err := r.clusterSelf()
		if err != nil {
			return err
		}
		rs[i] = ranked{r, self.master, self.firstSlot}
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		if a.master != b.master {
			if a.master {
				return -1
			}
			return 1
		}
		return a.slot - b.slot
	})
	masters := 0
	for i, x := range rs {
		c.Nodes[i] = x.r
		if x.master {
			masters++
		}
	}
	if masters != c.masters {
		return fmt.Errorf("testserver: cluster has %d masters, want %d", masters, c.masters)
	}
	c.Addrs = make([]string, len(c.Nodes))
	for i, r := range c.Nodes {
		c.Addrs[i] = r.Addr
	}
	return nil
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, addr  string
	flags     []string
	master    bool
	myself    bool
	failing   bool
	firstSlot int // -1 without slots
}

func parseClusterNodes(s string) []clusterNode {
	var out []clusterNode
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		n := clusterNode{id: f[0], flags: strings.Split(f[2], ","), firstSlot: -1}
		n.addr, _, _ = strings.Cut(f[1], "@")
		n.master = slices.Contains(n.flags, "master")
		n.myself = slices.Contains(n.flags, "myself")
		n.failing = slices.Contains(n.flags, "fail") || slices.Contains(n.flags, "fail?")
		for _, slot := range f[8:] {
			if strings.HasPrefix(slot, "[") { // migrating/importing marker
				continue
			}
			lo, _, _ := strings.Cut(slot, "-")
			if v, err := strconv.Atoi(lo); err == nil && (n.firstSlot < 0 || v < n.firstSlot) {
				n.firstSlot = v
			}
		}
		out = append(out, n)
	}
	return out
}

// clusterSelf returns this node's own CLUSTER NODES line.
func (r *Redis) clusterSelf() (clusterNode, error) {
	s, err := r.Do("CLUSTER", "NODES")
	if err != nil {
		return clusterNode{}, err
	}
	for _, n := range parseClusterNodes(s) {
		if n.myself {
			return n, nil
		}
	}
	return clusterNode{}, fmt.Errorf("testserver: CLUSTER NODES of %s has no myself line", r.Addr)
}

// NodeID returns the node's cluster ID (CLUSTER MYID).
func (r *Redis) NodeID() (string, error) { return r.Do("CLUSTER", "MYID") }

// Masters returns the nodes that were masters when the cluster was
// created, ordered by the first slot they owned. After a failover a
// returned node may have become a replica; ask the node (ROLE) when it
// matters.
func (c *Cluster) Masters() []*Redis { return slices.Clone(c.Nodes[:c.masters]) }

// Replicas returns the nodes that were replicas when the cluster was
// created.
func (c *Cluster) Replicas() []*Redis { return slices.Clone(c.Nodes[c.masters:]) }

// WaitHealthy waits up to timeout (zero: ClusterTimeout) until every
// running node (not killed, not paused) reports cluster_state:ok with all
// slots covered, knows every node, sees every running node as healthy and
// in the role that node reports itself, and every running replica is
// connected to its master. Use it after Restart
// of a cluster node.
func (c *Cluster) WaitHealthy(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = ClusterTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.waitHealthy(ctx, false)
}

func (c *Cluster) waitHealthy(ctx context.Context, all bool) error {
	var last error
	for {
		if last = c.healthy(all); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testserver: redis cluster not healthy: %w", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// healthy checks the cluster once; with all, every node must be running.
func (c *Cluster) healthy(all bool) error {
	running := map[string]bool{}
	for _, r := range c.Nodes {
		if all || r.srv.running() {
			running[r.Addr] = true
		}
	}
	views := map[string][]clusterNode{} // CLUSTER NODES of each running node
	isMaster := map[string]bool{}       // each running node's own role
	for _, r := range c.Nodes {
		if !running[r.Addr] {
			continue
		}
		info, err := r.ClusterInfo()
		if err != nil {
			return fmt.Errorf("%s: %w", r.Addr, err)
		}
		if info["cluster_state"] != "ok" || info["cluster_slots_ok"] != "16384" ||
			info["cluster_known_nodes"] != strconv.Itoa(len(c.Nodes)) {
			return fmt.Errorf("%s: cluster_state:%s cluster_slots_ok:%s cluster_known_nodes:%s",
				r.Addr, info["cluster_state"], info["cluster_slots_ok"], info["cluster_known_nodes"])
		}
		s, err := r.Do("CLUSTER", "NODES")
		if err != nil {
			return fmt.Errorf("%s: %w", r.Addr, err)
		}
		views[r.Addr] = parseClusterNodes(s)
		for _, n := range views[r.Addr] {
			if n.myself {
				isMaster[r.Addr] = n.master
			}
		}
		if !isMaster[r.Addr] {
			role, err := r.DoReply("ROLE")
			if err != nil {
				return fmt.Errorf("%s: %w", r.Addr, err)
			}
			if a, ok := role.([]any); !ok || len(a) < 4 || a[3] != "connected" {
				return fmt.Errorf("%s: replica not connected to its master: ROLE %v", r.Addr, role)
			}
		}
	}
	// Every running node sees every running node healthy and in the role
	// that node has itself.
	for addr, view := range views {
		for _, n := range view {
			if !running[n.addr] {
				continue
			}
			if n.failing {
				return fmt.Errorf("%s sees %s as %s", addr, n.addr, strings.Join(n.flags, ","))
			}
			if n.master != isMaster[n.addr] {
				return fmt.Errorf("%s does not yet see the role change of %s (%s)", addr, n.addr, strings.Join(n.flags, ","))
			}
		}
	}
	return nil
}

// Stop stops every node (in parallel) and removes their directories. It is
// idempotent.
func (c *Cluster) Stop() error {
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, r := range c.Nodes {
		if r != nil {
			wg.Go(func() { errs[i] = r.Stop() })
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
