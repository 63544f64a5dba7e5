// Package testserver starts private redis-server and memcached processes
// (and small Redis Clusters) for tests, on free loopback ports with their
// own temporary directories, and stops them again.
//
// Every server is a child of the test binary: it listens on 127.0.0.1 only,
// keeps nothing on disk, and is SIGKILLed by the kernel if the test binary
// dies (Pdeathsig), so a crashed test does not leak servers. The package
// never connects to a server it did not start — in particular not to a
// system redis on 6379.
//
// Intended use: tests that need a server for a single test call RedisT,
// MemcachedT or MemcachedPoolT, which fail the test on error and stop the
// server in t.Cleanup. A Redis Cluster takes seconds to create, so start it
// once per test package in TestMain and share it:
//
//	var cluster *testserver.Cluster
//
//	func TestMain(m *testing.M) {
//		var err error
//		cluster, err = testserver.StartRedisCluster(3, 0)
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		code := m.Run()
//		cluster.Stop()
//		os.Exit(code)
//	}
//
// Failure injection: Kill (SIGKILL), Pause/Resume (SIGSTOP/SIGCONT: the
// server accepts connections but answers nothing) and Restart (same port,
// same options, empty data; a cluster node keeps its nodes.conf and rejoins).
//
// The binaries come from the Debian packages redis-server, redis-tools and
// memcached; when one is missing, the start error says exactly what to
// install (see InstallHint). Tests never skip for a missing binary.
package testserver
