package hoardecho

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/hoardcache/hoard"
)

// routes holds hoard's middleware for each echo route a Middleware serves:
// the id of a Route without ResourceID depends on the route's path
// parameters, which echo tells only per request, so each route's middleware
// is built on its first request (and checked, as hoard.Cache.Handle checks
// a ServeMux pattern).
type routes struct {
	cache *hoard.Cache
	rt    hoard.Route
	next  http.Handler
	// named is hoard's middleware for the Route as given, built (and
	// checked) at construction: the one used when ResourceID is set or the
	// route has no path parameter.
	named  http.Handler
	byPath sync.Map // echo Path -> *route
}

// route is what one echo route serves through.
type route struct {
	h http.Handler
	// unkeyed: a path parameter is not in the GET key, so GETs bypass.
	unkeyed bool
}

func newRoutes(c *hoard.Cache, rt hoard.Route, next http.Handler) (*routes, error) {
	mw, err := c.Middleware(rt)
	if err != nil {
		return nil, err
	}
	return &routes{cache: c, rt: rt, next: next, named: mw(next)}, nil
}

// forRoute returns the route for the echo path, building it on first use
// from the request's parameters (the same names for every request of a
// path).
func (rs *routes) forRoute(path string, names []string) *route {
	if v, ok := rs.byPath.Load(path); ok {
		return v.(*route)
	}
	v, _ := rs.byPath.LoadOrStore(path, rs.build(path, names))
	return v.(*route)
}

// build makes the route of a echo path with these parameter names.
func (rs *routes) build(path string, names []string) *route {
	rt := rs.rt
	r := &route{h: rs.named}
	if rt.ResourceID == "" && len(names) > 0 {
		rt.ResourceID = names[len(names)-1]
		mw, err := rs.cache.Middleware(rt)
		if err != nil {
			// Not expected: rt differs from the Route checked at
			// construction only by its id. Serve uncached rather than
			// keyed without the id.
			rs.logger().Error("hoardecho: route served uncached", "route", path, "err", err)
			return &route{h: rs.next, unkeyed: true}
		}
		r.h = mw(rs.next)
	}
	if rt.KeyPrefix == "" {
		return r // only invalidates
	}
	var missing []string
	for _, n := range names {
		if n != rt.ResourceID && !strings.Contains(rt.KeyPrefix, "{"+n+"}") {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		r.unkeyed = true
		rs.logger().Error("hoardecho: GETs of this route are served uncached: two paths would share one entry",
			"route", path,
			"err", fmt.Errorf("path parameters %s are neither ResourceID (%q) nor a placeholder of KeyPrefix %q; add them to KeyPrefix (e.g. \"{%s}_%s\") or name the id in ResourceID",
				strings.Join(missing, ", "), rt.ResourceID, rt.KeyPrefix, missing[0], rt.KeyPrefix))
	}
	return r
}

// logger is the Cache's logger, where hoard logs too.
func (rs *routes) logger() *slog.Logger {
	if l := rs.cache.Config().Logger; l != nil {
		return l
	}
	return slog.Default()
}
