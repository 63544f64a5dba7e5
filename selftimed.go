package hoard

import "time"

// isSelfTimed reports whether store bounds every call itself, so that the
// Cache need not put a deadline of its own on each call's context: the
// store says so with a CallTimeout method, which hoard's stores have
// (redis and memcached return their per-call timeout; memory returns 0, as
// it never blocks). A Store without it gets Config.Timeout on each call.
func isSelfTimed(store Store) bool {
	_, ok := store.(interface{ CallTimeout() time.Duration })
	return ok
}
