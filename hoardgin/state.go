package hoardgin

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hoardcache/hoard/internal/detach"
)

// state carries the gin.Context of one request through hoard, which knows
// only net/http: Params and the wrapped handler find it in the request's
// context (under detach.Key, where hoard looks for Detach).
type state struct {
	gc *gin.Context
	// ctx is the request context hoard was given; a run of the handler
	// under another (a background run) is refused, see chain.
	ctx context.Context
	// ran records that hoard ran the rest of gin's chain.
	ran bool
}

// stateOf returns the state of r, or nil.
func stateOf(r *http.Request) *state {
	st, _ := r.Context().Value(detach.Key{}).(*state)
	return st
}

// param is the Route.Params of every hoardgin route: gin's path parameter.
func param(r *http.Request, name string) string {
	if st := stateOf(r); st != nil {
		return st.gc.Param(name)
	}
	return ""
}

// Detach gives hoard's background revalidation of this request the
// route's main handler with a copy of the gin.Context (gin's Context.Copy:
// request, path parameters, route path and the keys set so far), since
// gin reuses the Context once the request has ended. gin runs no part of a
// chain outside its request, so handlers between hoard's and the main one
// do not run again (see the package doc).
func (st *state) Detach(next http.Handler) http.Handler {
	if _, ours := next.(chain); !ours {
		return nil
	}
	cp := st.gc.Copy()
	main := st.gc.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The request's context still holds this state: shadow it, so that
		// nothing below reaches the request's gin.Context.
		r = r.WithContext(context.WithValue(r.Context(), detach.Key{}, nil))
		ww := newWriter(w, r.Context())
		cp.Writer = ww
		cp.Request = r
		main(cp)
		ww.WriteHeaderNow()
	})
}
