package hoardecho

import (
	"context"
	"net/http"
	"slices"

	"github.com/hoardcache/hoard/internal/detach"
	"github.com/labstack/echo/v4"
)

// state carries the echo.Context of one request, and the handler after the
// middleware, through hoard, which knows only net/http: Params and the
// wrapped handler find it in the request's context (under detach.Key,
// where hoard looks for Detach).
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
	st, _ := r.Context().Value(detach.Key{}).(*state)
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

// Detach gives hoard's background revalidation of this request a new
// echo.Context with the request's route path and path parameters, on which
// it runs the rest of the chain (next), since echo reuses the Context once
// the request has ended. Values set with Context.Set before this
// middleware are not carried (echo cannot list them; see the package doc).
func (st *state) Detach(next http.Handler) http.Handler {
	if _, ours := next.(chain); !ours {
		return nil
	}
	ec := st.ec
	e, path, rest := ec.Echo(), ec.Path(), st.next
	names, values := slices.Clone(ec.ParamNames()), slices.Clone(ec.ParamValues())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The request's context still holds this state: shadow it, so that
		// nothing below reaches the request's echo.Context.
		r = r.WithContext(context.WithValue(r.Context(), detach.Key{}, nil))
		bc := e.NewContext(r, w)
		bc.SetPath(path)
		bc.SetParamNames(names...)
		bc.SetParamValues(values...)
		_ = run(bc, rest) // written by run; the status decides what is stored
	})
}
