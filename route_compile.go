package hoard

// Route compilation: a Route declaration checked and turned into the
// route a handler runs, with its templates parsed and its ServeMux
// pattern's wildcards known.

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoardcache/hoard/internal/keys"
)

// maxPatternMatches bounds how many registered-pattern instances one key may
// record; a key matching more bypasses the cache (safe, and never seen with
// sane templates).
const maxPatternMatches = 16

// idKind says where an InvalidateKeys id comes from.
type idKind uint8

const (
	idParam idKind = iota
	idTemplate
	idLiteral
)

type idSource struct {
	kind    idKind
	name    string         // idParam
	tmpl    *keys.Template // idTemplate
	literal string         // idLiteral, already escaped
}

type extraKey struct {
	prefix *keys.Template
	id     idSource
}

// route is a compiled Route.
type route struct {
	c        *Cache
	prefix   *keys.Template // nil on an invalidate-only route
	consumed map[string]bool
	ttl      time.Duration
	// staleWhileRevalidate and staleIfError: the route's windows past the
	// TTL (stale.go), 0 when off.
	staleWhileRevalidate, staleIfError time.Duration
	extra                              []extraKey
	patterns                           []*keys.Template
	queryKeys                          map[string]bool
	defaults                           map[string]string
	perCaller                          func(*http.Request) string
	params                             func(*http.Request, string) string
	resource                           string
	cacheable                          []int
	maxBody                            int
	compressMin                        int // 0: off (compress.go)
	clientCC                           string

	// wildcards known at construction (Handle) or learned per ServeMux
	// pattern at request time (Middleware): pattern is the last one served,
	// byPattern every one seen (up to maxPatterns), for a Middleware
	// mounted on several patterns, as on "GET /w/{id}" and "PATCH /w/{id}",
	// which would otherwise rebuild its info each time they alternate.
	pattern   atomic.Pointer[patternInfo]
	byPattern sync.Map // r.Pattern -> *patternInfo
	nPatterns atomic.Int32
	// noPattern stands for the pattern of a request that a router other
	// than ServeMux (or none) routed to the middleware: its metrics name
	// the route by its KeyPrefix.
	noPattern *patternInfo
}

type patternInfo struct {
	pattern   string
	wildcards []string
	// unkeyed, when set, says why two paths matching the pattern could
	// share a GET key (see route.unkeyedPath); such a GET bypasses.
	unkeyed string
	// results are the attribute sets of hoard.route.requests for the
	// route under this pattern (metrics.go).
	results *routeResults
}

// newPatternInfo describes pattern (with its wildcards) for rt.
func (rt *route) newPatternInfo(pattern string, wildcards []string, unkeyed string) *patternInfo {
	return &patternInfo{pattern: pattern, wildcards: wildcards, unkeyed: unkeyed, results: rt.c.metrics.routeResults(pattern)}
}

func routeErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrRouteConfig}, args...)...)
}

// compile validates rt and builds its route; errors name the fix.
func (c *Cache) compile(rt Route) (*route, error) {
	r := &route{
		c:         c,
		ttl:       rt.TTL,
		defaults:  rt.Defaults,
		perCaller: rt.PerCaller,
		params:    rt.Params,
		resource:  rt.ResourceID,
		cacheable: rt.CacheableStatus,
		maxBody:   rt.MaxBodyBytes,
		consumed:  map[string]bool{},
	}
	switch {
	case rt.TTL < 0:
		return nil, routeErr("negative TTL %v; use 0 for DEFAULT_CACHE_EXPIRATION or a positive duration", rt.TTL)
	case rt.TTL == 0:
		r.ttl = c.cfg.DefaultTTL
	}
	r.staleWhileRevalidate = staleWindow(rt.StaleWhileRevalidate, c.cfg.StaleWhileRevalidate)
	r.staleIfError = staleWindow(rt.StaleIfError, c.cfg.StaleIfError)
	c.noteTTL(r.keepFor())
	if rt.ClientMaxAge < 0 {
		return nil, routeErr("negative ClientMaxAge %v; use 0 to leave Cache-Control to the client cache middleware", rt.ClientMaxAge)
	}
	if rt.MaxBodyBytes < 0 {
		return nil, routeErr("negative MaxBodyBytes %d; use 0 for the 1 MiB default", rt.MaxBodyBytes)
	}
	if r.maxBody == 0 {
		r.maxBody = DefaultMaxBodyBytes
	}
	switch {
	case rt.CompressMinBytes > 0:
		r.compressMin = rt.CompressMinBytes
	case rt.CompressMinBytes == 0 && c.cfg.CompressMinBytes > 0:
		r.compressMin = c.cfg.CompressMinBytes
	}
	if len(r.cacheable) == 0 {
		r.cacheable = []int{http.StatusOK}
	}
	for _, s := range r.cacheable {
		if s < 200 || s > 599 {
			return nil, routeErr("CacheableStatus %d is not a final HTTP status (200-599)", s)
		}
	}
	if rt.KeyPrefix == "" && len(rt.InvalidateKeys) == 0 && len(rt.InvalidatePatterns) == 0 {
		return nil, routeErr("empty KeyPrefix; set it to the resource's key template, e.g. \"widget\" or \"{username}_posts\"")
	}
	if rt.KeyPrefix != "" {
		t, err := keys.ParseKey(rt.KeyPrefix)
		if err != nil {
			return nil, fmt.Errorf("%w: KeyPrefix: %w", ErrRouteConfig, err)
		}
		r.prefix = t
		for _, n := range t.Names() {
			r.consumed[n] = true
		}
		if rt.ResourceID != "" {
			r.consumed[rt.ResourceID] = true
		}
	}
	if len(rt.QueryKeys) > 0 {
		r.queryKeys = map[string]bool{}
		for _, q := range rt.QueryKeys {
			if q == "" {
				return nil, routeErr("empty name in QueryKeys")
			}
			r.queryKeys[q] = true
		}
	}
	// Map order is random; keep invalidations in a stable order.
	for _, p := range slices.Sorted(mapKeys(rt.InvalidateKeys)) {
		pt, err := keys.ParseKey(p)
		if err != nil {
			return nil, fmt.Errorf("%w: InvalidateKeys prefix: %w", ErrRouteConfig, err)
		}
		id, err := parseIDSource(rt.InvalidateKeys[p])
		if err != nil {
			return nil, fmt.Errorf("%w: InvalidateKeys[%q]: %w", ErrRouteConfig, p, err)
		}
		r.extra = append(r.extra, extraKey{prefix: pt, id: id})
	}
	for _, p := range rt.InvalidatePatterns {
		pt, err := keys.ParsePattern(p)
		if err != nil {
			return nil, fmt.Errorf("%w: InvalidatePatterns: %w", ErrRouteConfig, err)
		}
		if !strings.HasSuffix(p, "*") {
			return nil, routeErr("InvalidatePatterns entry %q must end with '*' (to invalidate one key, use InvalidateKeys)", p)
		}
		r.patterns = append(r.patterns, pt)
	}
	if rt.ClientMaxAge > 0 {
		scope := "public"
		if rt.PerCaller != nil {
			scope = "private"
		}
		r.clientCC = scope + ", max-age=" + strconv.FormatInt(int64(rt.ClientMaxAge/time.Second), 10)
	}
	r.noPattern = &patternInfo{results: c.metrics.routeResults(rt.KeyPrefix)}
	return r, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// parseIDSource classifies an InvalidateKeys id: a template if it holds a
// placeholder, else a parameter name if it looks like one (resolved against
// the route's parameters when the route is compiled for a pattern, see
// checkNames), else a literal.
func parseIDSource(s string) (idSource, error) {
	if strings.ContainsAny(s, "{}") {
		t, err := keys.ParseKey(s)
		if err != nil {
			return idSource{}, err
		}
		return idSource{kind: idTemplate, tmpl: t}, nil
	}
	if s == "" {
		return idSource{}, errors.New("empty id; use a parameter name, a template such as \"{id}\" or a literal such as \"global\"")
	}
	return idSource{kind: idParam, name: s, literal: keys.Escape(s)}, nil
}

// known reports whether name can be filled for requests matching a pattern
// with the given wildcards.
func (r *route) known(name string, wildcards []string) bool {
	if slices.Contains(wildcards, name) || r.queryKeys[name] {
		return true
	}
	_, ok := r.defaults[name]
	return ok
}

// checkNames validates placeholders against the wildcards of a ServeMux
// pattern (registration time) and settles parameter-or-literal ids.
func (r *route) checkNames(pattern string, wildcards []string, methods []string) error {
	write := false
	read := false
	for _, m := range methods {
		switch m {
		case http.MethodGet, http.MethodHead:
			read = true
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			write = true
		}
	}
	if len(methods) == 0 {
		read, write = true, true
	}
	if !write && (len(r.extra) > 0 || len(r.patterns) > 0) {
		return routeErr("%q only reads, but declares InvalidateKeys/InvalidatePatterns; move them to the write routes (POST, PUT, PATCH, DELETE) of the resource", pattern)
	}
	if read && r.prefix == nil {
		return routeErr("%q serves GET but has no KeyPrefix; set KeyPrefix to cache it, or register it without hoard", pattern)
	}
	var names []string
	if r.prefix != nil {
		names = append(names, r.prefix.Names()...)
	}
	if r.resource != "" {
		names = append(names, r.resource)
	}
	for i, e := range r.extra {
		names = append(names, e.prefix.Names()...)
		switch e.id.kind {
		case idTemplate:
			names = append(names, e.id.tmpl.Names()...)
		case idParam:
			if !r.known(e.id.name, wildcards) {
				r.extra[i].id.kind = idLiteral
			}
		}
	}
	for _, p := range r.patterns {
		names = append(names, p.Names()...)
	}
	for _, n := range names {
		if !r.known(n, wildcards) {
			return routeErr("%q: placeholder {%s} cannot be filled: it is not a wildcard of the pattern; add it to QueryKeys or Defaults, or fix its name", pattern, n)
		}
	}
	return nil
}

// parseMuxPattern returns the method(s) and wildcard names of a ServeMux
// pattern "[METHOD ][HOST]/[PATH]".
func parseMuxPattern(pattern string) (methods, wildcards []string, err error) {
	rest := pattern
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		m := pattern[:i]
		rest = strings.TrimLeft(pattern[i:], " \t")
		methods = []string{m}
		if m == http.MethodGet {
			methods = append(methods, http.MethodHead)
		}
	}
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return nil, nil, routeErr("pattern %q has no path; write it as \"GET /widgets/{id}\"", pattern)
	}
	return methods, wildcardNames(rest[slash:]), nil
}

// wildcardNames lists the path parameters of a route pattern: ServeMux's
// {name} and {name...}, and those of chi, which sets r.Pattern to its own
// syntax: {name:regexp} and a final * (whose value it sets as
// r.PathValue("*")). A parameter missed here would be left out of the key,
// and paths that differ only in it would share one entry.
func wildcardNames(path string) []string {
	var names []string
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '{':
			end, depth := i+1, 1 // a regexp may hold braces: {id:[0-9]{3}}
			for ; end < len(path) && depth > 0; end++ {
				switch path[end] {
				case '{':
					depth++
				case '}':
					depth--
				}
			}
			if depth > 0 {
				return names
			}
			n, _, _ := strings.Cut(path[i+1:end-1], ":")
			n = strings.TrimSuffix(n, "...")
			if n != "$" && n != "" {
				names = append(names, n)
			}
			i = end - 1
		case '*':
			if i == len(path)-1 && i > 0 && path[i-1] == '/' {
				names = append(names, "*")
			}
		}
	}
	return names
}

// registerPatterns adds pattern templates to the set every GET checks its
// key against (docs/design.md: a read records the generation of each registered
// pattern instance that covers its key).
func (c *Cache) registerPatterns(ps []*keys.Template) {
	if len(ps) == 0 {
		return
	}
	c.patternsMu.Lock()
	defer c.patternsMu.Unlock()
	cur := c.patterns.Load()
	var next []*keys.Template
	if cur != nil {
		next = slices.Clone(*cur)
	}
	for _, p := range ps {
		if !slices.ContainsFunc(next, func(q *keys.Template) bool { return q.String() == p.String() }) {
			next = append(next, p)
		}
	}
	c.patterns.Store(&next)
}

// maxPatterns bounds the patterns a route keeps the info of: a router
// sets r.Pattern from its own routes, a bounded set, but a Middleware on a
// whole group of routes (as gin's and echo's often are) sees many.
const maxPatterns = 1024

// patternInfo returns the wildcards of the ServeMux pattern that matched r.
func (rt *route) patternInfo(r *http.Request) *patternInfo {
	p := rt.pattern.Load()
	if p != nil && (r.Pattern == "" || p.pattern == r.Pattern) {
		return p
	}
	if r.Pattern == "" {
		return rt.noPattern
	}
	if v, ok := rt.byPattern.Load(r.Pattern); ok {
		p = v.(*patternInfo)
	} else {
		_, wc, err := parseMuxPattern(r.Pattern)
		if err != nil {
			return rt.newPatternInfo(r.Pattern, nil, "")
		}
		p = rt.newPatternInfo(r.Pattern, wc, rt.unkeyedPath(r.Pattern, wc))
		if rt.nPatterns.Add(1) <= maxPatterns {
			v, _ := rt.byPattern.LoadOrStore(r.Pattern, p)
			p = v.(*patternInfo)
		}
	}
	rt.pattern.Store(p)
	return p
}

// reads reports whether a pattern with these methods (none: every method)
// serves GET or HEAD.
func reads(methods []string) bool {
	return len(methods) == 0 || slices.Contains(methods, http.MethodGet) || slices.Contains(methods, http.MethodHead)
}

// unkeyedPath returns why two different paths matching a ServeMux pattern
// would get the same GET key, or "": a wildcard that is neither in KeyPrefix
// nor the resource id ("GET /users/{username}/posts/{id}" with KeyPrefix
// "post" would serve alice's post 1 to a request for bob's post 1), or a
// subtree pattern ("GET /files/", which matches /files/a and /files/b) whose
// route has no ResourceID.
func (r *route) unkeyedPath(pattern string, wildcards []string) string {
	if r.prefix == nil {
		return ""
	}
	inKey := func(name string) bool { return slices.Contains(r.prefix.Names(), name) || name == r.resource }
	for i, w := range wildcards {
		if r.resource == "" && i == len(wildcards)-1 {
			break // the id segment
		}
		if !inKey(w) {
			return fmt.Sprintf("GET pattern %q: wildcard {%s} is not part of the key, so paths that differ only in it would share one cached response; "+
				"put {%s} in KeyPrefix (e.g. \"{%s}_%s\") or register the route without hoard", pattern, w, w, w, r.prefix.String())
		}
	}
	_, rest, _ := strings.Cut(pattern, " ")
	if !strings.Contains(pattern, " ") {
		rest = pattern
	}
	if strings.HasSuffix(strings.TrimSpace(rest), "/") && r.resource == "" && len(wildcards) == 0 {
		return fmt.Sprintf("GET pattern %q matches every path under it, but no part of the path is in the key, so they would share one cached response; "+
			"end the pattern with a wildcard such as {path...} (it becomes the id), add {$} to match the path exactly, or set ResourceID", pattern)
	}
	return ""
}
