package hoard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoardcache/hoard/internal/keys"
)

// Route configures caching for one route: upstream's @cache decorator. The
// zero value of every field but KeyPrefix is a sensible default.
//
// On GET (and HEAD, served from the GET entry) the response is cached under
// the key prefix[:id][:q=<query>][:u=<caller>]; on POST, PUT, PATCH and
// DELETE the resource prefix[:id] is invalidated with every query and caller
// variant, plus InvalidateKeys and InvalidatePatterns, before the response's
// status reaches the client. Other methods pass through.
//
// # What the key holds, and what the application decides
//
// A GET's key holds the route's placeholders, its id, its query parameters
// (one name's values in their order) and, with PerCaller, the caller; no
// request header takes part. A cached response is therefore served to
// every request with the same key, whatever else the request carries:
//
//   - Authorization (and cookies, client certificates): a route without
//     PerCaller is shared. hoard does not look at Authorization: a request
//     that carries it reads and stores the same entry as an anonymous one,
//     as the application declared by not setting PerCaller. If the response
//     depends on who asks, set PerCaller (a request without a caller then
//     bypasses the cache); to keep only some answers out of the shared
//     cache, have the handler set "Cache-Control: private" or "no-store" on
//     them (not stored, though a stored shared answer still serves such
//     requests), or route authenticated requests around the middleware.
//   - Headers the handler reads (Accept-Language, Host, X-Forwarded-Host,
//     X-Forwarded-Proto, X-Original-URL...): a response that depends on one
//     must say so with Vary; hoard never stores a response that carries
//     Vary (so "Vary: *" is never cached either). A handler that reflects
//     such a header without Vary (absolute URLs built from X-Forwarded-Host,
//     say) lets one request poison the entry for everyone: trust those
//     headers only from your proxy, or set Vary.
//   - Method overrides: a GET or HEAD carrying X-HTTP-Method-Override,
//     X-HTTP-Method or X-Method-Override bypasses the cache (neither read nor
//     stored). An application that honours them should rewrite r.Method in
//     middleware outside hoard, so that the write also invalidates.
//
// The path reaches the key only through wildcards, so Handle refuses a GET
// pattern with a wildcard that is not in the key, or a subtree pattern
// ("GET /files/") without ResourceID; under Middleware, such a request
// bypasses the cache and is logged.
type Route struct {
	// KeyPrefix is the key template, e.g. "widget" or
	// "{username}_posts:page_{page}:items_per_page:{items_per_page}".
	// {name} placeholders are filled from the path wildcards, then the query,
	// then Defaults; values are escaped. Required, except on a route that only
	// invalidates (InvalidateKeys or InvalidatePatterns set).
	KeyPrefix string

	// ResourceID names the path or query parameter that identifies the
	// resource. Empty: the last wildcard of the matched ServeMux pattern, or
	// no id.
	ResourceID string

	// TTL of cached responses; 0 = the Cache's DefaultTTL
	// (DEFAULT_CACHE_EXPIRATION). Negative is a configuration error.
	TTL time.Duration

	// InvalidateKeys maps further key-prefix templates to ids, invalidated
	// with the resource on writes. The id is a parameter name (a path
	// wildcard, a QueryKeys entry or a Defaults key), a template such as
	// "{username}", or a literal such as "global".
	InvalidateKeys map[string]string

	// InvalidatePatterns are templates ending in '*' (such as
	// "{username}_posts:*") whose every cached key is invalidated on writes.
	// Only the template's own '*' and '?' are wildcards.
	InvalidatePatterns []string

	// PerCaller, when set, returns the caller's identity (e.g. the user id
	// from the auth context, never an unverified header); the key gets
	// ":u=<caller>", escaped, so callers never share an entry (an id such as
	// "alice&u=bob" or "*" is escaped, not read as a separator or wildcard).
	// A GET with no caller ("") bypasses the cache. A write invalidates the
	// resource for every caller. Nil: the route is shared by every caller,
	// authenticated or not (see the Route doc comment on Authorization).
	PerCaller func(r *http.Request) string

	// QueryKeys, when set, is the allow-list of query parameters that take
	// part in the key; a GET with any other query parameter bypasses the
	// cache. Empty: every query parameter is part of the key.
	QueryKeys []string

	// Defaults gives values to placeholders absent from the request, e.g.
	// {"page": "1", "items_per_page": "10"}.
	Defaults map[string]string

	// ClientMaxAge, when positive, sets "Cache-Control: public, max-age=N"
	// ("private, max-age=N" with PerCaller) on GET responses that do not set
	// Cache-Control themselves, so that browsers may keep them.
	ClientMaxAge time.Duration

	// Params looks up a path parameter for routers that do not fill
	// r.PathValue. Nil: r.PathValue (net/http's ServeMux and chi fill it).
	Params func(r *http.Request, name string) string

	// CacheableStatus lists the status codes that are stored. Empty: 200.
	CacheableStatus []int

	// MaxBodyBytes is the largest body stored; larger responses pass
	// through uncached. 0 = 1 MiB.
	MaxBodyBytes int
}

// DefaultMaxBodyBytes is the body limit of a Route whose MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// ErrRouteConfig is wrapped by every route configuration error.
var ErrRouteConfig = errors.New("hoard: route configuration")

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
	c         *Cache
	prefix    *keys.Template // nil on an invalidate-only route
	consumed  map[string]bool
	ttl       time.Duration
	extra     []extraKey
	patterns  []*keys.Template
	queryKeys map[string]bool
	defaults  map[string]string
	perCaller func(*http.Request) string
	params    func(*http.Request, string) string
	resource  string
	cacheable []int
	maxBody   int
	clientCC  string

	// wildcards known at construction (Handle) or learned per ServeMux
	// pattern at request time (Middleware).
	pattern atomic.Pointer[patternInfo]
}

type patternInfo struct {
	pattern   string
	wildcards []string
	// unkeyed, when set, says why two paths matching the pattern could
	// share a GET key (see route.unkeyedPath); such a GET bypasses.
	unkeyed string
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
	c.noteTTL(r.ttl)
	if rt.ClientMaxAge < 0 {
		return nil, routeErr("negative ClientMaxAge %v; use 0 to leave Cache-Control to the client cache middleware", rt.ClientMaxAge)
	}
	if rt.MaxBodyBytes < 0 {
		return nil, routeErr("negative MaxBodyBytes %d; use 0 for the 1 MiB default", rt.MaxBodyBytes)
	}
	if r.maxBody == 0 {
		r.maxBody = DefaultMaxBodyBytes
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

// Middleware returns the caching middleware for one route. Misconfiguration
// is reported here, never per request. When the cache is disabled
// (CACHE_ENABLED=false) the returned middleware returns the handler itself.
//
// Prefer Handle, which also checks the placeholders against the route's
// ServeMux pattern.
func (c *Cache) Middleware(rt Route) (func(http.Handler) http.Handler, error) {
	r, err := c.compile(rt)
	if err != nil {
		return nil, err
	}
	c.registerPatterns(r.patterns)
	if c.disabled {
		return func(next http.Handler) http.Handler { return next }, nil
	}
	return func(next http.Handler) http.Handler { return &routeHandler{route: r, next: next} }, nil
}

// MustMiddleware is Middleware that panics on a configuration error, for
// route tables built at start-up.
func (c *Cache) MustMiddleware(rt Route) func(http.Handler) http.Handler {
	mw, err := c.Middleware(rt)
	if err != nil {
		panic(err)
	}
	return mw
}

// Handle registers h on mux under pattern (a ServeMux pattern such as
// "GET /widgets/{widget_id}") wrapped in the route's caching middleware. It
// checks at registration that every placeholder can be filled by a wildcard
// of the pattern, a QueryKeys entry or a Defaults key, and that a read-only
// route declares no invalidations.
func (c *Cache) Handle(mux *http.ServeMux, pattern string, rt Route, h http.Handler) error {
	methods, wildcards, err := parseMuxPattern(pattern)
	if err != nil {
		return err
	}
	r, err := c.compile(rt)
	if err != nil {
		return fmt.Errorf("%s: %w", pattern, err)
	}
	if err := r.checkNames(pattern, wildcards, methods); err != nil {
		return err
	}
	unkeyed := r.unkeyedPath(pattern, wildcards)
	if unkeyed != "" && reads(methods) {
		return routeErr("%s", unkeyed)
	}
	r.pattern.Store(&patternInfo{pattern: pattern, wildcards: wildcards, unkeyed: unkeyed})
	c.registerPatterns(r.patterns)
	if c.disabled {
		mux.Handle(pattern, h)
		return nil
	}
	mux.Handle(pattern, &routeHandler{route: r, next: h})
	return nil
}

// HandleFunc is Handle for a handler function.
func (c *Cache) HandleFunc(mux *http.ServeMux, pattern string, rt Route, h func(http.ResponseWriter, *http.Request)) error {
	return c.Handle(mux, pattern, rt, http.HandlerFunc(h))
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

// wildcardNames lists the {name} and {name...} wildcards of a path pattern.
func wildcardNames(path string) []string {
	var names []string
	for {
		i := strings.IndexByte(path, '{')
		if i < 0 {
			return names
		}
		j := strings.IndexByte(path[i:], '}')
		if j < 0 {
			return names
		}
		n := strings.TrimSuffix(path[i+1:i+j], "...")
		if n != "$" && n != "" {
			names = append(names, n)
		}
		path = path[i+j+1:]
	}
}

// registerPatterns adds pattern templates to the set every GET checks its
// key against (design.md: a read records the generation of each registered
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

// --- per request -------------------------------------------------------

type routeHandler struct {
	*route
	next http.Handler
}

func (h *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.serveRead(w, r)
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		h.serveWrite(w, r)
	default:
		h.next.ServeHTTP(w, r)
	}
}

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
// router that leaves r.Pattern empty (chi), the wildcards are unknown: a name
// with a path value is a wildcard.
func (q *request) isParam(name string) bool {
	if q.info.pattern != "" || q.rt.known(name, nil) {
		return q.rt.known(name, q.info.wildcards)
	}
	return q.pathValue(name) != ""
}

// patternInfo returns the wildcards of the ServeMux pattern that matched r.
func (rt *route) patternInfo(r *http.Request) *patternInfo {
	p := rt.pattern.Load()
	if p != nil && (r.Pattern == "" || p.pattern == r.Pattern) {
		return p
	}
	if r.Pattern == "" {
		return &patternInfo{}
	}
	_, wc, err := parseMuxPattern(r.Pattern)
	if err != nil {
		return &patternInfo{pattern: r.Pattern}
	}
	p = &patternInfo{pattern: r.Pattern, wildcards: wc, unkeyed: rt.unkeyedPath(r.Pattern, wc)}
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
	if q.pathValue(name) != "" {
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

// pathValue returns the path parameter name of the request, or "".
func (q *request) pathValue(name string) string {
	if q.rt.params != nil {
		return q.rt.params(q.r, name)
	}
	return q.r.PathValue(name)
}

var keyBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// initRequest prepares q for r; ok is false for a query string that does
// not decode (the request then bypasses the cache).
func (h *routeHandler) initRequest(q *request, r *http.Request) (ok bool) {
	*q = request{rt: h.route, r: r, info: h.patternInfo(r)}
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

const (
	statusBypass    = "hoard; fwd=bypass"
	statusMiss      = "hoard; fwd=miss"
	statusStored    = "hoard; fwd=miss; stored"
	statusCollapsed = "hoard; fwd=miss; collapsed"
)

func (h *routeHandler) bypass(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Status", statusBypass)
	h.setClientCC(w.Header())
	h.next.ServeHTTP(w, r)
}

// uncachedHeaders marks a response that streams through uncached.
func (h *routeHandler) uncachedHeaders(hdr http.Header) {
	hdr["Cache-Status"] = []string{statusMiss}
	h.setClientCC(hdr)
}

func (h *routeHandler) setClientCC(hdr http.Header) {
	if h.clientCC != "" && hdr.Get("Cache-Control") == "" {
		hdr.Set("Cache-Control", h.clientCC)
	}
}

func (h *routeHandler) serveRead(w http.ResponseWriter, r *http.Request) {
	c := h.c
	if h.prefix == nil {
		h.next.ServeHTTP(w, r)
		return
	}
	if overridden(r.Header) {
		h.bypass(w, r)
		return
	}
	var q request
	if !h.initRequest(&q, r) {
		h.bypass(w, r)
		return
	}
	if q.info.unkeyed != "" {
		c.log.error("hoard: route served uncached", errors.New(q.info.unkeyed))
		h.bypass(w, r)
		return
	}
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	// The key (resource, then variant), then the store keys of its entry
	// and its resource's generation, built in one buffer and converted with
	// one allocation.
	buf, resLen, ok := q.readKey((*bp)[:0])
	if !ok {
		*bp = buf
		h.bypass(w, r)
		return
	}
	keyLen := len(buf)
	if keyLen > c.maxKey {
		// Nothing is stored under a key this long, so a write never needs
		// to invalidate one (invalidationKeys skips them too).
		c.stats.keysTooLong.Add(1)
		c.log.error("hoard: key longer than CACHE_MAX_KEY_BYTES; served uncached", ErrKeyTooLong, keyAttr(string(buf)))
		*bp = buf
		h.bypass(w, r)
		return
	}
	buf = c.keys.appendEntry(buf, buf[:resLen], buf[resLen:keyLen])
	entryEnd := len(buf)
	buf = c.keys.appendGen(buf, buf[:resLen])
	*bp = buf
	all := string(buf)
	logical, entryKey := all[:keyLen], all[keyLen:entryEnd]
	shard := c.keys.shardOf(entryKey)
	// keys: entry, epoch, resource generation, pattern generations.
	storeKeys := make([]string, 3, 3+2)
	storeKeys[0] = entryKey
	storeKeys[1] = c.keys.epoch(shard)
	storeKeys[2] = all[entryEnd:]
	if ps := c.patterns.Load(); ps != nil {
		var matches []string
		for _, p := range *ps {
			matches, ok = p.AppendMatches(matches, logical, maxPatternMatches)
			if !ok || len(matches) > maxPatternMatches {
				h.bypass(w, r)
				return
			}
		}
		for _, m := range matches {
			storeKeys = append(storeKeys, c.keys.patternGen(m, shard))
		}
	}
	ctx := r.Context()
	vals, err := c.read(ctx, storeKeys)
	if err != nil {
		// ErrUnavailable (breaker open, or an invalidation of this
		// namespace pending) is an expected state, logged when it began.
		if !errors.Is(err, ErrUnavailable) {
			c.log.error("hoard: cache read failed; serving uncached", err, keyAttr(logical))
		}
		h.bypass(w, r)
		return
	}
	gens := vals[1:]
	if vals[0] != nil {
		if e, err := decodeEntry(vals[0], kindHTTP); err == nil && e.current(gens) {
			h.serveHit(w, r, &e, time.Now())
			return
		}
	}
	created, ok := c.ensureGenerations(ctx, storeKeys[1:], gens, provisionalGenerationTTL)
	if !ok {
		h.bypass(w, r)
		return
	}
	h.serveMiss(w, r, storeKeys, gens, created)
}

// serveHit replays a stored response without running the handler.
func (h *routeHandler) serveHit(w http.ResponseWriter, r *http.Request, e *entry, now time.Time) {
	hdr := w.Header()
	ttl := int64((e.remaining(now) + time.Second - 1) / time.Second)
	e.applyHeader(hdr,
		"Cache-Status", hitStatus.format(ttl),
		"Age", decimal.format(int64(e.age(now)/time.Second)),
		"Content-Length", decimal.format(int64(len(e.body))))
	h.setClientCC(hdr)
	writeStored(w, r, e.status, e.body, true)
}

// numberStrings remembers the strings prefix+decimal(n) for small n, so that
// a hit formats no header value (Cache-Status ttl, Age, Content-Length):
// each string is allocated once per process instead of once per hit.
type numberStrings struct {
	prefix string
	s      [4096]atomic.Pointer[string]
}

var (
	hitStatus = numberStrings{prefix: "hoard; hit; ttl="}
	decimal   = numberStrings{}
)

func (t *numberStrings) format(n int64) string {
	if n < 0 || n >= int64(len(t.s)) {
		return t.prefix + strconv.FormatInt(n, 10)
	}
	if p := t.s[n].Load(); p != nil {
		return *p
	}
	v := t.prefix + strconv.FormatInt(n, 10)
	t.s[n].Store(&v)
	return v
}

// writeStored writes a stored status and body, answering 304 to a matching
// If-None-Match and leaving the body out for HEAD.
// lengthSet says the caller has set Content-Length already.
func writeStored(w http.ResponseWriter, r *http.Request, status int, body []byte, lengthSet bool) {
	hdr := w.Header()
	if status == http.StatusOK {
		if inm := r.Header["If-None-Match"]; len(inm) > 0 {
			if etag := hdr.Get("Etag"); etag != "" && etagMatch(inm, etag) {
				delete(hdr, "Content-Type")
				delete(hdr, "Content-Length")
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
	}
	if !lengthSet {
		hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead && len(body) > 0 {
		w.Write(body)
	}
}

// etagMatch implements If-None-Match's weak comparison (RFC 9110 13.1.2)
// over every line of the field: a list may be split over several.
func etagMatch(lines []string, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ",") {
			part = strings.TrimSpace(part)
			if part == "*" || strings.TrimPrefix(part, "W/") == etag {
				return true
			}
		}
	}
	return false
}

// flightResult is what a singleflight leader hands to the requests that
// waited for it.
type flightResult struct {
	status    int
	header    http.Header
	body      []byte
	cacheable bool
}

// serveMiss runs the handler for a GET (or HEAD) whose entry storeKeys[0]
// is missing or stale, stores its answer if it may be shared, and answers.
// gens are the current values of the generations storeKeys[1:], created
// the ones this request made (see ensureGenerations).
func (h *routeHandler) serveMiss(w http.ResponseWriter, r *http.Request, storeKeys []string, gens [][]byte, created uint32) {
	c := h.c
	key := storeKeys[0]
	flight := string(appendFlightKey(make([]byte, 0, len(key)+8*len(gens)+len(gens)), key, gens))
	// A HEAD miss runs the handler as a GET, as HTTP caches do, so that
	// the answer (headers, ETag) is the GET's and can be stored for both;
	// writeStored leaves the body out for the HEAD.
	hr := r
	if r.Method == http.MethodHead {
		hr = r.Clone(r.Context())
		hr.Method = http.MethodGet
	}
	var (
		ran      bool
		cw       *captureWriter
		panicked any
	)
	v, _, _ := c.flights.Do(flight, func() (any, error) {
		ran = true
		// Fields already in the header were put there by middleware outside
		// the route (CORS, request ids): they are not the handler's, and
		// that middleware sets them again on every hit.
		var before http.Header
		if pre := w.Header(); len(pre) > 0 {
			before = pre.Clone()
		}
		cw = newCaptureWriter(w, h.maxBody, h.uncachedHeaders)
		func() {
			defer func() {
				if p := recover(); p != nil {
					panicked = p
					cw.fail()
				}
			}()
			h.next.ServeHTTP(cw, hr)
		}()
		res := &flightResult{status: cw.statusCode()}
		reason := h.uncacheable(cw, res.status)
		if reason != "" {
			return res, nil
		}
		res.cacheable = true
		res.body = cw.buf.Bytes()
		hdr := w.Header()
		if _, ok := hdr["Content-Type"]; !ok && len(res.body) > 0 {
			// What net/http would sniff from the body: stored, so that a
			// HEAD served from the entry (no body to sniff) carries it too.
			hdr["Content-Type"] = []string{http.DetectContentType(res.body)}
		}
		if hdr.Get("Etag") == "" {
			sum := sha256.Sum256(res.body)
			hdr["Etag"] = []string{`"` + hex.EncodeToString(sum[:16]) + `"`}
		}
		fields := storedHeader(hdr, before)
		res.header = http.Header{}
		for _, f := range fields {
			res.header[f.name] = append(res.header[f.name], f.value)
		}
		if err := c.set(r.Context(), key, encodeHTTP(gens, time.Now(), h.ttl, res.status, fields, res.body), h.ttl); err != nil {
			c.log.error("hoard: storing a response failed; served uncached", err, keyAttr(key))
			res.cacheable = false // followers run their own handler rather than trust an unstored answer's freshness window
			return res, nil
		}
		return res, nil
	})
	res := v.(*flightResult)
	c.settleGenerations(r.Context(), storeKeys[1:], created, res.cacheable)
	if panicked != nil {
		panic(panicked)
	}
	if ran {
		if cw.passthrough {
			return // already streamed to the client
		}
		hdr := w.Header()
		if res.cacheable {
			hdr["Cache-Status"] = []string{statusStored}
		} else {
			hdr["Cache-Status"] = []string{statusMiss}
		}
		h.setClientCC(hdr)
		writeStored(w, r, res.status, cw.buf.Bytes(), false)
		return
	}
	if !res.cacheable {
		// The leader's answer is not shareable: run our own handler.
		w.Header().Set("Cache-Status", statusMiss)
		h.setClientCC(w.Header())
		h.next.ServeHTTP(w, hr)
		return
	}
	hdr := w.Header()
	for k, vs := range res.header {
		hdr[k] = append(hdr[k], vs...)
	}
	hdr["Cache-Status"] = []string{statusCollapsed}
	h.setClientCC(hdr)
	writeStored(w, r, res.status, res.body, false)
}

// uncacheable returns why a captured response must not be stored, or "".
func (h *routeHandler) uncacheable(cw *captureWriter, status int) string {
	switch {
	case cw.passthrough:
		return "streamed"
	case cw.failed:
		return "panicked"
	case !slices.Contains(h.cacheable, status):
		return "status"
	}
	// Field names are compared case-insensitively: a handler may write
	// w.Header()["set-cookie"] directly, and net/http sends it as is.
	for k, vs := range cw.Header() {
		switch http.CanonicalHeaderKey(k) {
		case "Set-Cookie":
			return "set-cookie"
		case "Content-Encoding":
			return "content-encoding"
		case "Vary":
			return "vary"
		case "Cache-Control":
			for _, cc := range vs {
				for d := range strings.SplitSeq(cc, ",") {
					d = strings.ToLower(strings.TrimSpace(d))
					if d == "no-store" || (d == "private" || strings.HasPrefix(d, "private=")) && h.perCaller == nil {
						return "cache-control"
					}
				}
			}
		}
	}
	return ""
}

// hopByHop headers describe one connection and are never stored (RFC 9110
// 7.6.1), nor are Date and hoard's own per-response headers.
var unstoredHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Proxy-Connection": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Date": true, "Cache-Status": true, "Age": true, "Content-Length": true,
}

// storedHeader selects the header fields that are stored with a response:
// not hop-by-hop ones, and not the values that were in the header before
// the handler ran (before; a handler's additions to such a field are kept,
// and a field the handler replaced is stored whole).
func storedHeader(hdr, before http.Header) []headerField {
	var conn []string
	for _, v := range hdr["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			conn = append(conn, http.CanonicalHeaderKey(strings.TrimSpace(f)))
		}
	}
	names := slices.Sorted(mapKeys(hdr))
	var out []headerField
	for _, k := range names {
		ck := http.CanonicalHeaderKey(k)
		if unstoredHeaders[ck] || slices.Contains(conn, ck) || strings.HasPrefix(ck, http.TrailerPrefix) {
			continue
		}
		vs := hdr[k]
		if pre := before[k]; len(pre) > 0 && len(vs) >= len(pre) && slices.Equal(vs[:len(pre)], pre) {
			vs = vs[len(pre):]
		}
		for _, v := range vs {
			out = append(out, headerField{name: k, value: v})
		}
	}
	return out
}

// --- writes ---------------------------------------------------------------

// serveWrite runs a write and invalidates what it may have changed before
// its status reaches the client. A write answered with a 4xx status is
// taken to have changed nothing (the request was refused): it invalidates
// nothing, so that writes to ids that do not exist cost the store nothing
// and, during an outage, add nothing to the pending invalidations.
func (h *routeHandler) serveWrite(w http.ResponseWriter, r *http.Request) {
	c := h.c
	keys, err := h.invalidationKeys(r)
	if err != nil {
		// Nothing has run: answer before the handler can change anything.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "{\"detail\":%q}\n", "cache invalidation cannot be formatted: "+err.Error())
		c.log.error("hoard: write refused: invalidation key cannot be formatted", err, slog.String("path", r.URL.Path))
		return
	}
	ctx := context.WithoutCancel(r.Context())
	var failed bool
	iw := &invalidatingWriter{ResponseWriter: w, invalidate: func(status int) {
		if !refused(status) {
			failed = c.invalidate(ctx, keys) != nil
		}
	}}
	defer func() {
		// Again when the handler returns (or panics): a read that began
		// between the first invalidation and the end of the handler must not
		// keep what it read. If the first one failed it is pending and will
		// be replayed before any hit; don't wait for the store twice.
		if !failed && !refused(iw.status) {
			c.invalidate(ctx, keys)
		}
	}()
	h.next.ServeHTTP(iw, r)
}

// refused reports whether a write's status says it changed nothing.
func refused(status int) bool { return status >= 400 && status < 500 }

// invalidationKeys formats every generation and entry key to delete for a
// write request. A name longer than MaxKeyBytes is left out: no read
// stores under it (serveRead serves such keys uncached), so no entry
// depends on it.
func (h *routeHandler) invalidationKeys(r *http.Request) (storeKeys []string, err error) {
	c := h.c
	q := &request{}
	if !h.initRequest(q, r) {
		q.query = nil
	}
	var buf []byte
	addResource := func(name []byte) {
		if len(name) <= c.maxKey {
			storeKeys = c.keys.appendInvalidation(storeKeys, string(name), false)
		}
	}
	if h.prefix != nil {
		buf, err = q.resourceName(buf[:0])
		if err != nil {
			return nil, err
		}
		addResource(buf)
	}
	for _, e := range h.extra {
		buf, err = e.prefix.AppendFormat(buf[:0], q.lookup)
		if err != nil {
			return nil, err
		}
		buf = append(buf, ':')
		switch e.id.kind {
		case idTemplate:
			buf, err = e.id.tmpl.AppendValue(buf, q.lookup)
			if err != nil {
				return nil, err
			}
		case idParam:
			if !q.isParam(e.id.name) {
				buf = append(buf, e.id.literal...)
			} else if v, ok := q.lookup(e.id.name); ok {
				buf = keys.AppendEscape(buf, v)
			} else {
				return nil, &keys.MissingError{Template: e.prefix.String() + ":{" + e.id.name + "}", Name: e.id.name}
			}
		case idLiteral:
			buf = append(buf, e.id.literal...)
		}
		addResource(buf)
	}
	for _, p := range h.patterns {
		buf, err = p.AppendFormat(buf[:0], q.lookup)
		if err != nil {
			return nil, err
		}
		if len(buf) <= c.maxKey {
			storeKeys = c.keys.appendInvalidation(storeKeys, string(buf), true)
		}
	}
	return storeKeys, nil
}
