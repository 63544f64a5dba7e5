// Package adapt is what the gin and echo adapters (hoardgin, hoardecho)
// share: the checks of a Route given to a framework's middleware, and the
// table of hoard's middleware per framework route, built on a route's
// first request, when the framework tells its path parameters.
package adapt

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/keys"
)

// BypassStatus is hoard's Cache-Status of a response served uncached.
const BypassStatus = "hoard; fwd=bypass"

// Prepare checks rt for the adapter named pkg (whose path parameters
// params reads) and returns it ready for hoard: Params set.
func Prepare(pkg, framework string, rt hoard.Route, params func(*http.Request, string) string) (hoard.Route, error) {
	if rt.Params != nil {
		return rt, fmt.Errorf("%w: %s: Route.Params is set; leave it nil: %s reads path parameters from %s.Context.Param", hoard.ErrRouteConfig, pkg, pkg, framework)
	}
	rt.Params = params
	return rt, nil
}

// Routes holds hoard's middleware for each framework route a Middleware
// serves: the id of a Route without ResourceID depends on the route's path
// parameters, which the framework tells only per request, so each route's
// middleware is built on its first request (and checked, as
// hoard.Cache.Handle checks a ServeMux pattern).
type Routes struct {
	pkg   string // "hoardgin", for the log
	cache *hoard.Cache
	rt    hoard.Route
	next  http.Handler
	// named is hoard's middleware for the Route as given, built (and
	// checked) at construction: the one used when ResourceID is set or the
	// route has no path parameter.
	named  http.Handler
	byPath sync.Map // the framework's route path -> *Route
	warned sync.Map // WarnOnce keys
}

// Route is what one framework route serves through.
type Route struct {
	H http.Handler
	// Unkeyed: a path parameter is not in the GET key, so GETs bypass.
	Unkeyed bool
}

// NewRoutes builds the table of the adapter pkg for rt (prepared), whose
// handler is next.
func NewRoutes(pkg string, c *hoard.Cache, rt hoard.Route, next http.Handler) (*Routes, error) {
	mw, err := c.Middleware(rt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkg, err)
	}
	return &Routes{pkg: pkg, cache: c, rt: rt, next: next, named: mw(next)}, nil
}

// For returns the Route of the framework path, building it on first use
// from the names of its path parameters (the same for every request of a
// path; names is called only then).
func (rs *Routes) For(path string, names func() []string) *Route {
	if v, ok := rs.byPath.Load(path); ok {
		return v.(*Route)
	}
	v, _ := rs.byPath.LoadOrStore(path, rs.build(path, names()))
	return v.(*Route)
}

// build makes the Route of a path with these parameter names.
func (rs *Routes) build(path string, names []string) *Route {
	rt := rs.rt
	r := &Route{H: rs.named}
	if rt.ResourceID == "" && len(names) > 0 {
		rt.ResourceID = names[len(names)-1]
		mw, err := rs.cache.Middleware(rt)
		if err != nil {
			// Not expected: rt differs from the Route checked at
			// construction only by its id. Serve uncached rather than
			// keyed without the id.
			rs.logger().Error(rs.pkg+": route served uncached", "route", path, "err", err)
			return &Route{H: rs.next, Unkeyed: true}
		}
		r.H = mw(rs.next)
	}
	if rt.KeyPrefix == "" {
		return r // only invalidates
	}
	var placeholders []string
	if t, err := keys.ParseKey(rt.KeyPrefix); err == nil { // checked by Middleware
		placeholders = t.Names()
	}
	var missing []string
	for _, n := range names {
		if n != rt.ResourceID && !slices.Contains(placeholders, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		r.Unkeyed = true
		rs.logger().Error(rs.pkg+": GETs of this route are served uncached: two paths would share one entry",
			"route", path,
			"err", fmt.Errorf("path parameters %s are neither ResourceID (%q) nor a placeholder of KeyPrefix %q; add them to KeyPrefix (e.g. \"{%s}_%s\") or name the id in ResourceID",
				strings.Join(missing, ", "), rt.ResourceID, rt.KeyPrefix, missing[0], rt.KeyPrefix))
	}
	return r
}

// WarnOnce logs, once per key (a framework route, say), a problem the
// adapter found while serving, where hoard logs.
func (rs *Routes) WarnOnce(key, msg string, args ...any) {
	if _, done := rs.warned.LoadOrStore(key, true); done {
		return
	}
	rs.logger().Warn(rs.pkg+": "+msg, args...)
}

// logger is the Cache's logger, where hoard logs too.
func (rs *Routes) logger() *slog.Logger {
	if l := rs.cache.Config().Logger; l != nil {
		return l
	}
	return slog.Default()
}
