// Package framework is what hoard's core asks of a request that a
// framework adapter (hoardgin, hoardecho) hands it. Such a framework pools
// its per-request context, which serves another request once this one has
// ended, and routes HEAD to a handler of its own; the core must not run
// the handler after the request with the request's framework context, nor
// store a HEAD handler's answer as the GET's.
package framework

import "net/http"

// Key is the request-context key under which an adapter keeps its
// per-request State.
type Key struct{}

// State is an adapter's per-request state.
type State interface {
	// Detach is called in the request's goroutine, while the framework's
	// context is still the request's, with the handler hoard would run
	// after the request (a background revalidation). When that is the
	// adapter's own, it returns the handler to run instead: one that uses
	// only what Detach copied, never the request's framework context.
	// Otherwise (hoard's middleware used directly inside the framework's
	// handler) it returns nil.
	Detach(next http.Handler) http.Handler
}

// Routed reports whether r came through a framework adapter.
func Routed(r *http.Request) bool {
	_, ok := r.Context().Value(Key{}).(State)
	return ok
}

// Background returns the handler a run of r after the request calls: the
// adapter's detached one when next is an adapter's handler, else next.
func Background(r *http.Request, next http.Handler) http.Handler {
	if st, ok := r.Context().Value(Key{}).(State); ok {
		if h := st.Detach(next); h != nil {
			return h
		}
	}
	return next
}
