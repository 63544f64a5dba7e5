package hoardecho

import (
	"context"
	"net/http"
	"slices"

	"github.com/hoardcache/hoard/internal/framework"
)

// A background revalidation (StaleWhileRevalidate) runs after the request,
// when echo has given the request's Context to another request. The rest
// of the chain (next: the middleware after hoard's and the handler) is a
// function echo lets us call with any Context, so the run calls it on a
// new one with the request, route path and path parameters. What it
// cannot carry: values set with Context.Set by middleware before hoard's
// (echo cannot list them), and a custom Context type wrapped around echo's
// before hoard's middleware.

// Detach gives hoard's background run of this request the rest of the
// chain on a new echo.Context.
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
		r = r.WithContext(context.WithValue(r.Context(), framework.Key{}, nil))
		bc := e.NewContext(r, w)
		bc.SetPath(path)
		bc.SetParamNames(names...)
		bc.SetParamValues(values...)
		_ = run(bc, rest) // written by run; the status decides what is stored
	})
}
