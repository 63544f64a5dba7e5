// Package detach is how a framework adapter (hoardgin, hoardecho) gives
// hoard's background runs of a handler (StaleWhileRevalidate's
// revalidation) a handler of their own. A framework's per-request context
// is pooled and serves another request once this one has ended, so a run
// after the request must not reach it: the adapter copies what the handler
// needs while the request is still being served, and hoard runs the copy.
package detach

import "net/http"

// Key is the request-context key under which an adapter keeps its
// per-request state; hoard looks for a Detacher there.
type Key struct{}

// Detacher is the per-request state of an adapter.
type Detacher interface {
	// Detach is called in the request's goroutine, while the framework's
	// context is still the request's, with the handler hoard would run.
	// When that is the adapter's own, it returns the handler to run
	// instead: one that uses only what Detach copied, never the request's
	// framework context. Otherwise (hoard's middleware used directly
	// inside the framework's handler) it returns nil.
	Detach(next http.Handler) http.Handler
}

// Handler returns the handler a background run of r calls: the adapter's
// detached one when next is an adapter's handler, else next.
func Handler(r *http.Request, next http.Handler) http.Handler {
	if d, ok := r.Context().Value(Key{}).(Detacher); ok {
		if h := d.Detach(next); h != nil {
			return h
		}
	}
	return next
}
