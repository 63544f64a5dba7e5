package hoardgin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hoardcache/hoard"
)

// Middleware returns gin middleware that caches and invalidates the routes
// it is attached to as rt says (see hoard.Route and the package doc for
// what differs from net/http). Misconfiguration is reported here, never
// per request; errors wrap hoard.ErrRouteConfig.
func Middleware(c *hoard.Cache, rt hoard.Route) (gin.HandlerFunc, error) {
	if c == nil {
		return nil, errors.New("hoardgin: nil *hoard.Cache; pass the Cache from hoard.New or stores.Open")
	}
	if rt.Params != nil {
		return nil, fmt.Errorf("%w: hoardgin: Route.Params is set; leave it nil: hoardgin reads path parameters from gin.Context.Param", hoard.ErrRouteConfig)
	}
	switch {
	case rt.StaleWhileRevalidate > 0:
		return nil, fmt.Errorf("%w: hoardgin: StaleWhileRevalidate %v runs the handler after the request has ended, which gin's pooled Context cannot do; leave it 0 (off under hoardgin) and use StaleIfError or a shorter TTL", hoard.ErrRouteConfig, rt.StaleWhileRevalidate)
	case rt.StaleWhileRevalidate == 0:
		rt.StaleWhileRevalidate = -1 // off, whatever the Cache's default
	}
	rt.Params = param
	rs, err := newRoutes(c, rt, http.HandlerFunc(serveNext))
	if err != nil {
		return nil, fmt.Errorf("hoardgin: %w", err)
	}
	return rs.serve, nil
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

// bypassStatus is hoard's Cache-Status of a response served uncached.
const bypassStatus = "hoard; fwd=bypass"

// serve is the gin middleware: it hands the request to hoard with the
// gin.Context in its context, and aborts the chain when hoard answered
// without running it (a hit, a 304, a collapsed miss).
func (rs *routes) serve(gc *gin.Context) {
	path := gc.FullPath()
	if path == "" {
		gc.Next() // no route matched (NoRoute, NoMethod): nothing to cache
		return
	}
	rc := rs.forRoute(path, gc.Params)
	r := gc.Request
	if rc.unkeyed && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		gc.Header("Cache-Status", bypassStatus)
		gc.Next()
		return
	}
	st := &state{gc: gc}
	st.ctx = context.WithValue(r.Context(), stateKey{}, st)
	req := r.WithContext(st.ctx)
	req.Pattern = "" // a ServeMux outside gin may have set it; metrics use the KeyPrefix
	outer := gc.Writer
	defer func() {
		// Also on a panic, so that gin's recovery writes to its own writer.
		gc.Writer = outer
		gc.Request = r
		if !st.ran {
			gc.Abort()
		}
	}()
	rc.h.ServeHTTP(outer, req)
}

// serveNext is the handler hoard wraps: the rest of gin's chain, writing
// to hoard's writer.
func serveNext(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	if st == nil || r.Context() != st.ctx {
		// Not the request's own run: the gin.Context may already serve
		// another request. (hoard runs the handler in the background only
		// for StaleWhileRevalidate, which Middleware turns off.) An error
		// status keeps anything from being stored.
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
