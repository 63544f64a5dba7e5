package hoardgin

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/hoardcache/hoard/internal/framework"
)

// A background revalidation (StaleWhileRevalidate) runs after the request,
// when gin has given the request's Context to another request. gin can
// copy a Context (Context.Copy: request, path parameters, route path and
// keys) but cannot run part of a chain outside its request, so the run
// calls the route's main handler on a copy. That answers as the request's
// chain would only when the main handler directly follows hoard's
// middleware: a handler between them (one that loads what the main one
// reads, say) would be skipped, and what is stored could differ from what
// the route answers. Such a route is not revalidated (its stale entry is
// served until the window ends, then a miss runs the whole chain), and is
// logged once.

// Detach gives hoard's background run of this request the main handler on
// a copy of the Context, or a refusal when that would not answer as the
// request's chain does.
func (st *state) Detach(next http.Handler) http.Handler {
	if _, ours := next.(chain); !ours {
		return nil
	}
	gc, m := st.gc, st.m
	route := gc.Request.Method + " " + gc.FullPath()
	if why := m.unrevalidatable(gc.HandlerNames(), st.depth); why != "" {
		return m.refusal(route, why)
	}
	cp := gc.Copy()
	main := gc.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The request's context still holds this state: shadow it, so that
		// nothing below reaches the request's gin.Context.
		r = r.WithContext(context.WithValue(r.Context(), framework.Key{}, nil))
		ww := newWriter(w, r.Context())
		cp.Writer = ww
		cp.Request = r
		main(cp)
		if !ww.Written() && !ww.statusSet {
			// The handler answered nothing: on the copy, c.IsAborted() is
			// true (gin marks a copy aborted), and a handler that returns
			// early on it would have an empty 200 stored.
			m.refusal(route, "the main handler wrote nothing on gin's copy of the Context, where c.IsAborted() is true; do not return early on it in a handler of a route with a stale window").ServeHTTP(w, r)
			return
		}
		ww.WriteHeaderNow()
	})
}

// unrevalidatable says why the route whose chain is names cannot be
// revalidated by its main handler alone, for the hoardgin middleware
// preceded by depth others; "" when it can.
func (m *middleware) unrevalidatable(names []string, depth int) string {
	i := -1
	for j, n := range names {
		if n == m.name {
			if depth == 0 {
				i = j
				break
			}
			depth--
		}
	}
	switch {
	case i < 0:
		return "hoardgin's middleware is not in the route's handlers under its own name (wrapped in another function?), so what runs between it and the main handler is unknown"
	case i == len(names)-1:
		return "hoardgin's middleware is the route's last handler: there is no main handler to run"
	case i < len(names)-2:
		return fmt.Sprintf("handlers %s come between hoardgin's middleware and the main handler, and gin cannot run them after the request; put them before hoardgin's middleware, or set StaleWhileRevalidate -1 on this route",
			strings.Join(names[i+1:len(names)-1], ", "))
	}
	return ""
}

// refusal is the background handler of a route that cannot be revalidated:
// it logs why (once per route) and answers 503, which hoard does not store.
func (m *middleware) refusal(route, why string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		m.rs.WarnOnce(route, "a stale entry of this route is not revalidated in the background; it is served until its window ends", "route", route, "reason", why)
		http.Error(w, "hoardgin: not revalidated: "+why, http.StatusServiceUnavailable)
	})
}
