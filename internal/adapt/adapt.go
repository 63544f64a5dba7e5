// Package adapt is what the gin and echo adapters (hoardgin, hoardecho)
// share: the checks of a Route given to a framework's middleware, and the
// pattern hoard is given for each framework route.
package adapt

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/hoardcache/hoard"
)

// Prepare checks rt for the adapter named pkg (whose path parameters
// params reads) and returns it ready for hoard: Params set.
func Prepare(pkg, framework string, rt hoard.Route, params func(*http.Request, string) string) (hoard.Route, error) {
	if rt.Params != nil {
		return rt, fmt.Errorf("%w: %s: Route.Params is set; leave it nil: %s reads path parameters from %s.Context.Param", hoard.ErrRouteConfig, pkg, pkg, framework)
	}
	rt.Params = params
	return rt, nil
}

// Routes is hoard's middleware for a framework Middleware, and the pattern
// it gives hoard (as r.Pattern) for each framework route it serves: a gin
// or echo route path written in ServeMux's syntax, from which hoard reads
// the route's wildcards as it does a ServeMux pattern's: a Route without
// ResourceID takes the last as its id, and the GETs of a route with a
// wildcard in no key bypass the cache.
type Routes struct {
	pkg   string // "hoardgin", for the log
	cache *hoard.Cache
	// H is hoard's middleware around the adapter's handler.
	H        http.Handler
	patterns sync.Map // framework route path -> its pattern
	warned   sync.Map // WarnOnce keys
}

// NewRoutes builds the Routes of the adapter pkg for rt (prepared), whose
// handler is next.
func NewRoutes(pkg string, c *hoard.Cache, rt hoard.Route, next http.Handler) (*Routes, error) {
	mw, err := c.Middleware(rt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkg, err)
	}
	return &Routes{pkg: pkg, cache: c, H: mw(next)}, nil
}

// Pattern returns the pattern of the framework route path.
func (rs *Routes) Pattern(path string) string {
	if v, ok := rs.patterns.Load(path); ok {
		return v.(string)
	}
	p := muxPattern(path)
	rs.patterns.Store(path, p)
	return p
}

// muxPattern writes a gin or echo route path in ServeMux's syntax:
// ":name" is {name}, gin's "*name" {name...}, echo's "*" {*...}, and a
// final "/" is {$}, since gin and echo match it exactly where ServeMux
// would match the whole subtree.
func muxPattern(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); {
		c := path[i]
		if c != ':' && c != '*' {
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(path[i:], '/')
		if end < 0 {
			end = len(path) - i
		}
		name := path[i+1 : i+end]
		if c == '*' {
			name = cmp.Or(name, "*") + "..."
		}
		b.WriteString("{" + name + "}")
		i += end
	}
	if strings.HasSuffix(path, "/") {
		b.WriteString("{$}")
	}
	return b.String()
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
