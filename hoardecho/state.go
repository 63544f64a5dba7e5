package hoardecho

import (
	"context"
	"net/http"

	"github.com/hoardcache/hoard/internal/framework"
	"github.com/labstack/echo/v4"
)

// state carries the echo.Context of one request, and the handler after the
// middleware, through hoard, which knows only net/http: Params and the
// wrapped handler find it in the request's context (under framework.Key,
// where hoard finds Detach).
type state struct {
	ec   echo.Context
	next echo.HandlerFunc
	// ctx is the request context hoard was given; a run of the handler
	// under another (a background run) is refused, see chain.
	ctx context.Context
	// err is what the handler returned.
	err error
}

// stateOf returns the state of r, or nil.
func stateOf(r *http.Request) *state {
	st, _ := r.Context().Value(framework.Key{}).(*state)
	return st
}

// param is the Route.Params of every hoardecho route: echo's path
// parameter.
func param(r *http.Request, name string) string {
	if st := stateOf(r); st != nil {
		return st.ec.Param(name)
	}
	return ""
}
