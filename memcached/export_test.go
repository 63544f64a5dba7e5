package memcached

// StoredKey exposes storedKey to the external tests, which read the servers
// directly to see where a key landed.
var StoredKey = storedKey

// NodeHealth reports whether the server that holds key is marked down, and
// how many server failures in a row it has had since its last answer.
func NodeHealth(s *Store, key string) (down bool, fails int32) {
	n := s.node(key, storedKey(key))
	return n.downUntil.Load() != 0, n.fails.Load()
}
