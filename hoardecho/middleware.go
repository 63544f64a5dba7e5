package hoardecho

import (
	"context"
	"errors"
	"net/http"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/adapt"
	"github.com/hoardcache/hoard/internal/framework"
	"github.com/labstack/echo/v4"
)

// Middleware returns echo middleware that caches and invalidates the routes
// it is attached to as rt says (see hoard.Route and the package doc for
// what differs from net/http). Misconfiguration is reported here, never
// per request; errors wrap hoard.ErrRouteConfig.
//
// It does what echo.WrapMiddleware(c.Middleware(rt)) cannot: read echo's
// path parameters, write a returned error through hoard, and give
// c.Response() back to the middleware outside.
func Middleware(c *hoard.Cache, rt hoard.Route) (echo.MiddlewareFunc, error) {
	if c == nil {
		return nil, errors.New("hoardecho: nil *hoard.Cache; pass the Cache from hoard.New or stores.Open")
	}
	rt, err := adapt.Prepare("hoardecho", "echo", rt, param)
	if err != nil {
		return nil, err
	}
	rs, err := adapt.NewRoutes("hoardecho", c, rt, chain{})
	if err != nil {
		return nil, err
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc { return middleware(rs, next) }, nil
}

// MustMiddleware is Middleware that panics on a configuration error, for
// route tables built at start-up.
func MustMiddleware(c *hoard.Cache, rt hoard.Route) echo.MiddlewareFunc {
	mw, err := Middleware(c, rt)
	if err != nil {
		panic(err)
	}
	return mw
}

// middleware hands each request to hoard with the echo.Context and next in
// its context. (echo applies e.Use middleware per request, so next is not
// fixed per route.)
func middleware(rs *adapt.Routes, next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		path := ec.Path()
		if path == "" {
			return next(ec) // no route: nothing to cache
		}
		r := ec.Request()
		st := &state{ec: ec, next: next}
		st.ctx = context.WithValue(r.Context(), framework.Key{}, st)
		req := r.WithContext(st.ctx)
		req.Pattern = rs.Pattern(path) // whatever a ServeMux outside echo set
		resp := ec.Response()
		defer func() {
			// Also on a panic, so that echo's Recover writes to its own
			// Response.
			ec.SetResponse(resp)
			ec.SetRequest(r)
		}()
		rs.H.ServeHTTP(resp, req)
		return st.err
	}
}

// chain is the handler hoard wraps: the echo handler (and the middleware
// after this one), writing to hoard's writer. (A type of its own, so that
// state.Detach knows it.)
type chain struct{}

func (chain) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	if st == nil || r.Context() != st.ctx {
		// Not the request's own run: the echo.Context may already serve
		// another request. (hoard's background runs call the handler
		// state.Detach made instead.) An error status keeps anything from
		// being stored.
		http.Error(w, "hoardecho: the echo handler cannot run outside its request", http.StatusServiceUnavailable)
		return
	}
	ec := st.ec
	ec.SetRequest(r)
	ec.SetResponse(echo.NewResponse(w, ec.Echo()))
	st.err = run(ec, st.next)
}

// run calls next and writes the error it returns, if nothing was written
// yet, here, through hoard, so that its status decides what is stored and
// invalidated.
func run(ec echo.Context, next echo.HandlerFunc) error {
	err := next(ec)
	if err != nil && !ec.Response().Committed {
		ec.Error(err)
	}
	return err
}
