package hoardgin

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"runtime"

	"github.com/gin-gonic/gin"
	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/adapt"
	"github.com/hoardcache/hoard/internal/framework"
)

// Middleware returns gin middleware that caches and invalidates the routes
// it is attached to as rt says (see hoard.Route and the package doc for
// what differs from net/http). Misconfiguration is reported here, never
// per request; errors wrap hoard.ErrRouteConfig.
func Middleware(c *hoard.Cache, rt hoard.Route) (gin.HandlerFunc, error) {
	if c == nil {
		return nil, errors.New("hoardgin: nil *hoard.Cache; pass the Cache from hoard.New or stores.Open")
	}
	rt, err := adapt.Prepare("hoardgin", "gin", rt, param)
	if err != nil {
		return nil, err
	}
	rs, err := adapt.NewRoutes("hoardgin", c, rt, chain{})
	if err != nil {
		return nil, err
	}
	m := &middleware{rs: rs}
	h := gin.HandlerFunc(m.serve)
	m.name = runtime.FuncForPC(reflect.ValueOf(h).Pointer()).Name()
	return h, nil
}

// MustMiddleware is Middleware that panics on a configuration error, for
// route tables built at start-up.
func MustMiddleware(c *hoard.Cache, rt hoard.Route) gin.HandlerFunc {
	mw, err := Middleware(c, rt)
	if err != nil {
		panic(err)
	}
	return mw
}

// middleware is what Middleware returns the serve method of.
type middleware struct {
	rs *adapt.Routes
	// name is gin's name of the handler (as in Context.HandlerNames), the
	// same for every hoardgin middleware; background.go finds it in a
	// route's chain.
	name string
}

// serve hands the request to hoard with the gin.Context in its context, and
// aborts the chain when hoard answered without running it (a hit, a 304, a
// collapsed miss).
func (m *middleware) serve(gc *gin.Context) {
	path := gc.FullPath()
	if path == "" {
		gc.Next() // no route matched (NoRoute, NoMethod): nothing to cache
		return
	}
	r := gc.Request
	st := &state{m: m, gc: gc}
	if outer := stateOf(r); outer != nil {
		st.depth = outer.depth + 1
	}
	st.ctx = context.WithValue(r.Context(), framework.Key{}, st)
	req := r.WithContext(st.ctx)
	req.Pattern = m.rs.Pattern(path) // whatever a ServeMux outside gin set
	outer := gc.Writer
	defer func() {
		// Also on a panic, so that gin's recovery writes to its own writer.
		gc.Writer = outer
		gc.Request = r
		if !st.ran {
			gc.Abort()
		}
	}()
	m.rs.H.ServeHTTP(outer, req)
}

// chain is the handler hoard wraps: the rest of gin's chain, writing to
// hoard's writer. (A type of its own, so that state.Detach knows it.)
type chain struct{}

func (chain) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	if st == nil || r.Context() != st.ctx {
		// Not the request's own run: the gin.Context may already serve
		// another request. (hoard's background runs call the handler
		// state.Detach made instead.) An error status keeps anything from
		// being stored.
		http.Error(w, "hoardgin: the gin handler cannot run outside its request", http.StatusServiceUnavailable)
		return
	}
	st.ran = true
	gc := st.gc
	ww := newWriter(w, r.Context())
	gc.Writer = ww
	gc.Request = r
	gc.Next()
	// A status set without a body (c.Status(204)) is sent here, as gin's
	// engine does after the chain, so that hoard sees it.
	ww.WriteHeaderNow()
}
