package hoard

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/hoardcache/hoard/internal/framework"
)

// Stale serving (Route.StaleWhileRevalidate, Route.StaleIfError). An entry
// records when it was stored and its TTL; a route with a window has the
// store keep its entries for the TTL plus the larger window (keepFor), so
// that past its TTL an entry can still be served. Only while its
// generations are current: then no write since it was stored has deleted
// them, and the entry has only aged, not been written over. That is the
// difference from HTTP caches' grace modes, which serve purged content too.

// revalidateTimeout bounds a background revalidation's handler run.
const revalidateTimeout = 30 * time.Second

// Cache-Status details of a stale answer.
const (
	detailRevalidate = "stale-while-revalidate"
	detailIfError    = "stale-if-error"
)

// staleWindow resolves a route's window: its own when positive, the
// Cache's default when 0, off when negative.
func staleWindow(route, def time.Duration) time.Duration {
	switch {
	case route > 0:
		return route
	case route < 0:
		return 0
	}
	return def
}

// leaseTTL is how long an instance's revalidation lease keeps the other
// instances from revalidating the same entry: the route's TTL, within
// which its fresh entry makes another revalidation unneeded, at most
// revalidateTimeout. It is not released: an instance that read the stale
// entry just before the fresh one was stored would revalidate again.
func (r *route) leaseTTL() time.Duration { return min(r.ttl, revalidateTimeout) }

// keepFor is how long the store keeps the route's entries.
func (r *route) keepFor() time.Duration {
	return r.ttl + max(r.staleWhileRevalidate, r.staleIfError)
}

// serveStale answers from an entry past its TTL; detail says why.
func (h *routeHandler) serveStale(w http.ResponseWriter, r *http.Request, e *entry, now time.Time, detail string) {
	over := int64((e.overdue(now) + time.Second - 1) / time.Second)
	h.serveEntry(w, r, e, now, "hoard; hit; ttl=-"+strconv.FormatInt(over, 10)+"; detail="+detail)
}

// revalidate runs the handler for r in the background, at most one run per
// entry key at a time in this process and, by a lease in the store, across
// the instances sharing it, and stores its answer under gens,
// the generations the stale entry was found current with: if a write
// deletes them meanwhile, the new entry is never served (the write wins).
// The run is detached from the request (it keeps its values, not its
// cancellation), bounded by revalidateTimeout, cancelled by Close (which
// waits for it), and logged when it fails.
func (h *routeHandler) revalidate(r *http.Request, key string, gens [][]byte) {
	c := h.c
	if _, running := c.revalidating.LoadOrStore(key, struct{}{}); running {
		return
	}
	started := false
	defer func() {
		if !started {
			c.revalidating.Delete(key)
		}
	}()
	// A framework adapter's handler reads the framework's pooled context,
	// which is another request's once this one has ended: the adapter
	// gives a detached handler, made now while the request is served.
	next := framework.Background(r, h.next)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), revalidateTimeout)
	rr := r.Clone(ctx)
	rr.Method = http.MethodGet
	gens = cloneBytes(gens)
	started = c.goBackground(func(bg context.Context) {
		defer c.revalidating.Delete(key)
		defer cancel()
		defer context.AfterFunc(bg, cancel)()
		// One instance revalidates: the lease goes to the first to ask
		// (the store's Add); the others keep serving the stale entry. A
		// store that cannot say runs the handler anyway (liveness before
		// strictness).
		if won, err := c.calls.add(ctx, c.keys.lease(key), []byte{1}, h.leaseTTL()); err == nil && !won {
			return
		}
		rec := &recorder{header: http.Header{}}
		cw := newCaptureWriter(rec, h.maxBody, func(http.Header) {})
		var panicked any
		func() {
			defer func() {
				if panicked = recover(); panicked != nil {
					cw.fail()
				}
			}()
			next.ServeHTTP(cw, rr)
		}()
		status := cw.statusCode()
		if reason := h.uncacheable(cw, status); reason != "" {
			err := fmt.Errorf("the handler's answer is not cacheable (%s, status %d)", reason, status)
			attrs := []any{keyAttr(key)}
			if panicked != nil {
				attrs = append(attrs, slog.String("panic", clip(fmt.Sprint(panicked))))
			}
			c.log.error("hoard: background revalidation not stored; the stale entry stays until its window ends", err, attrs...)
			return
		}
		if _, _, err := h.store(ctx, key, gens, rec.header, nil, status, cw.buf.Bytes()); err != nil {
			c.log.error("hoard: storing a background revalidation failed", err, keyAttr(key))
		}
	})
	if !started {
		cancel()
	}
}

// recorder is the ResponseWriter of a background revalidation: nothing is
// sent anywhere (captureWriter keeps the status and the body).
type recorder struct{ header http.Header }

func (w *recorder) Header() http.Header         { return w.header }
func (w *recorder) Write(p []byte) (int, error) { return len(p), nil }
func (w *recorder) WriteHeader(int)             {}

// cloneBytes copies each value, so that a background run does not hold
// slices a store may reuse.
func cloneBytes(vs [][]byte) [][]byte {
	out := make([][]byte, len(vs))
	for i, v := range vs {
		out[i] = append([]byte(nil), v...)
	}
	return out
}
