package hoard

// The key of one request: the resource (prefix and id) a write
// invalidates, and the variant (query, caller) a GET adds to it.

import (
	"net/http"
	"slices"
	"sync"

	"github.com/hoardcache/hoard/internal/keys"
)

// request holds what one request's key building needs.
type request struct {
	rt    *route
	r     *http.Request
	query []keys.Pair
	info  *patternInfo
}

func (q *request) lookup(name string) (string, bool) {
	if v := q.pathValue(name); v != "" {
		return v, true
	}
	if q.isWildcard(name) {
		// An empty wildcard ("GET /files/{path...}" on /files/) is not
		// filled from the query: "?path=x" would store the root's answer
		// under x's key.
		return "", false
	}
	for _, p := range q.query {
		if p.Name == name {
			return p.Value, true
		}
	}
	if v, ok := q.rt.defaults[name]; ok {
		return v, true
	}
	return "", false
}

// isParam reports whether an InvalidateKeys id that is a bare name (such as
// "widget_id" or "global") names a parameter of this request, as Handle
// decides at registration: a wildcard of the matched ServeMux pattern, a
// QueryKeys entry or a Defaults key; anything else is a literal, so that a
// query parameter of the same name cannot redirect the invalidation. Under a
// router that leaves r.Pattern empty (gorilla/mux), the wildcards are
// unknown: a name with a path value is a wildcard.
func (q *request) isParam(name string) bool {
	if q.info.pattern != "" || q.rt.known(name, nil) {
		return q.rt.known(name, q.info.wildcards)
	}
	return q.pathValue(name) != ""
}

// resourceName formats prefix[:id], the namespace a write invalidates.
func (q *request) resourceName(dst []byte) ([]byte, error) {
	dst, err := q.rt.prefix.AppendFormat(dst, q.lookup)
	if err != nil {
		return dst, err
	}
	idName := q.rt.resource
	if idName == "" && len(q.info.wildcards) > 0 {
		idName = q.info.wildcards[len(q.info.wildcards)-1]
	}
	if idName != "" {
		id, ok := q.lookup(idName)
		if !ok {
			return dst, &keys.MissingError{Template: q.rt.prefix.String() + ":{" + idName + "}", Name: idName}
		}
		dst = keys.AppendID(dst, id)
	}
	return dst, nil
}

// readKey appends the GET key (resource, then its variant: query and
// caller) to dst; resourceLen is the length of the resource part. ok is
// false when the request must bypass the cache (a query parameter outside
// QueryKeys, no caller on a per-caller route, a placeholder without value,
// or a query that carries values the key would not hold: see
// keyHoldsQuery). resourceLen is the length of dst
// up to the end of the resource name; with closeTag a '}' follows it (the
// caller wrote the '{' of the hash tag before it).
func (q *request) readKey(dst []byte) (key []byte, resourceLen int, ok bool) {
	dst, err := q.resourceName(dst)
	if err != nil {
		return dst, 0, false
	}
	resourceLen = len(dst)
	if len(q.query) > 0 {
		// Parameters consumed by placeholders are already in the key.
		var rest []keys.Pair
		for i, p := range q.query {
			if q.rt.queryKeys != nil && !q.rt.queryKeys[p.Name] || !q.keyHoldsQuery(i) {
				return dst, 0, false
			}
			if q.rt.consumed[p.Name] {
				if rest == nil {
					rest = append(make([]keys.Pair, 0, len(q.query)), q.query[:i]...)
				}
				continue
			}
			if rest != nil {
				rest = append(rest, p)
			}
		}
		if rest == nil {
			rest = q.query
		}
		dst = keys.AppendQuery(dst, rest)
	}
	if q.rt.perCaller != nil {
		caller := q.rt.perCaller(q.r)
		if caller == "" {
			return dst, 0, false
		}
		dst = keys.AppendCaller(dst, caller)
	}
	return dst, resourceLen, true
}

// keyHoldsQuery reports whether the key holds the value of query pair i.
// Values of a placeholder's parameter are not in the key's query part: the
// placeholder takes one value, the first. So a second value of such a
// parameter ("?page=2&page=1"), or a query parameter named like a path
// parameter ("/widgets/2?widget_id=7", whose key holds the path's value),
// would be answered from an entry whose key ignores it, while the handler
// may read it: such requests bypass the cache.
func (q *request) keyHoldsQuery(i int) bool {
	name := q.query[i].Name
	if q.isWildcard(name) || q.pathValue(name) != "" {
		return false
	}
	if q.rt.consumed[name] {
		for _, p := range q.query[:i] {
			if p.Name == name {
				return false
			}
		}
	}
	return true
}

// isWildcard reports whether name is a wildcard of the ServeMux pattern
// that matched the request. (Under a router that leaves r.Pattern empty,
// such as one using Route.Params, the wildcards are unknown: a name with a
// path value is one.)
func (q *request) isWildcard(name string) bool { return slices.Contains(q.info.wildcards, name) }

// pathValue returns the path parameter name of the request, or "".
func (q *request) pathValue(name string) string {
	if q.rt.params != nil {
		return q.rt.params(q.r, name)
	}
	return q.r.PathValue(name)
}

var keyBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// initRequest prepares q for r, matched by the pattern info describes (as
// h.patternInfo returns it); ok is false for a query string that does not
// decode (the request then bypasses the cache).
func (h *routeHandler) initRequest(q *request, r *http.Request, info *patternInfo) (ok bool) {
	*q = request{rt: h.route, r: r, info: info}
	if r.URL.RawQuery != "" {
		v, err := keys.ParseQuery(nil, r.URL.RawQuery)
		if err != nil {
			return false
		}
		q.query = v
	}
	return true
}

// methodOverrideHeaders ask a framework to treat a request as another
// method. hoard dispatches on r.Method, so a GET or HEAD carrying one
// bypasses the cache: if the application honours the header behind the
// middleware, a cached read must not answer what it treats as a write, and
// the write's response must not be stored as the resource's GET. (Apply
// method overrides before hoard, in middleware that sets r.Method, so that
// writes also invalidate.)
var methodOverrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// overridden reports whether h holds a method-override header.
func overridden(h http.Header) bool {
	for _, k := range methodOverrideHeaders {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}
