package hoardgin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"runtime"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/adapt"
	"github.com/hoardcache/hoard/internal/detach"
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
	var self string
	h := func(gc *gin.Context) { serve(rs, self, gc) }
	self = handlerName(h)
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

// serve is the gin middleware (whose handler name is self): it hands the
// request to hoard with the gin.Context in its context, and aborts the
// chain when hoard answered without running it (a hit, a 304, a collapsed
// miss).
func serve(rs *adapt.Routes, self string, gc *gin.Context) {
	path := gc.FullPath()
	if path == "" {
		gc.Next() // no route matched (NoRoute, NoMethod): nothing to cache
		return
	}
	rc := rs.For(path, func() []string {
		if rs.Revalidates() {
			warnSkippedInBackground(rs, path, self, gc.HandlerNames())
		}
		names := make([]string, len(gc.Params))
		for i, p := range gc.Params {
			names[i] = p.Key
		}
		return names
	})
	r := gc.Request
	if rc.Unkeyed && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		gc.Header("Cache-Status", adapt.BypassStatus)
		gc.Next()
		return
	}
	st := &state{gc: gc}
	st.ctx = context.WithValue(r.Context(), detach.Key{}, st)
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
	rc.H.ServeHTTP(outer, req)
}

// handlerName is gin's name of a handler (HandlerNames).
func handlerName(h gin.HandlerFunc) string {
	return runtime.FuncForPC(reflect.ValueOf(h).Pointer()).Name()
}

// warnSkippedInBackground logs the handlers of a route's chain (names, as
// gin.Context.HandlerNames) between hoard's (self) and the main one: a
// background revalidation runs only the main handler (see state.Detach).
func warnSkippedInBackground(rs *adapt.Routes, path, self string, names []string) {
	i := len(names) - 1 // hoard's last occurrence: a chain may use two
	for i >= 0 && names[i] != self {
		i--
	}
	if i < 0 || i >= len(names)-2 {
		return
	}
	skipped := names[i+1 : len(names)-1]
	rs.Warn(path, "a background revalidation runs only the route's main handler",
		fmt.Errorf("handlers %s come after hoardgin's and do not run when a stale entry is revalidated; put them before hoardgin's middleware, or set StaleWhileRevalidate -1 on this route",
			strings.Join(skipped, ", ")))
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
