package memcached

// StoredKey exposes storedKey to the external tests, which read the servers
// directly to see where a key landed.
var StoredKey = storedKey
