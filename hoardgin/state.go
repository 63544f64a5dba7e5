package hoardgin

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hoardcache/hoard/internal/framework"
)

// state carries the gin.Context of one request through hoard, which knows
// only net/http: Params and the wrapped handler find it in the request's
// context (under framework.Key, where hoard finds Detach).
type state struct {
	m  *middleware
	gc *gin.Context
	// ctx is the request context hoard was given; a run of the handler
	// under another (a background run) is refused, see chain.
	ctx context.Context
	// ran records that hoard ran the rest of gin's chain.
	ran bool
	// depth counts the hoardgin middlewares before this one in the chain
	// (a group's and a route's, say): this is the depth+1st.
	depth int
}

// stateOf returns the state of r, or nil.
func stateOf(r *http.Request) *state {
	st, _ := r.Context().Value(framework.Key{}).(*state)
	return st
}

// param is the Route.Params of every hoardgin route: gin's path parameter.
func param(r *http.Request, name string) string {
	if st := stateOf(r); st != nil {
		return st.gc.Param(name)
	}
	return ""
}
