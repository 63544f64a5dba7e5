package hoard

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Route configures caching for one route (FastAPI-boilerplate's @cache
// decorator: see the README for how the options map). The zero value of
// every field but KeyPrefix is a sensible default.
//
// On GET (and HEAD, served from the GET entry) the response is cached under
// the key prefix[:id][:q=<query>][:u=<caller>]; on POST, PUT, PATCH and
// DELETE the resource prefix[:id] is invalidated with every query and caller
// variant, plus InvalidateKeys and InvalidatePatterns, before the response's
// status reaches the client. Other methods pass through.
//
// A write answered with a 4xx status is taken to have changed nothing and
// invalidates nothing (so that requests for missing ids cost the store
// nothing). A handler that changes data and then answers 4xx (say a 409
// after a partial update) must call Cache.Invalidate itself.
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
	// resource. Empty: the last wildcard of the pattern that matched
	// (r.Pattern, as ServeMux and chi set it), or no id. Set it under a
	// router that leaves r.Pattern empty: hoard cannot tell its wildcards.
	ResourceID string

	// TTL of cached responses; 0 = the Cache's DefaultTTL
	// (DEFAULT_CACHE_EXPIRATION). Negative is a configuration error.
	TTL time.Duration

	// StaleWhileRevalidate: for this long past its TTL, a GET for an entry
	// that no write has made stale (its generations are current) is
	// answered from the entry at once (Cache-Status "hoard; hit; ttl=-N;
	// detail=stale-while-revalidate"), and one background run of the
	// handler per key and process stores a fresh entry. An entry a write
	// invalidated is never served, in any window. 0 = the Cache's default
	// (Config.StaleWhileRevalidate); negative = off for this route.
	StaleWhileRevalidate time.Duration

	// StaleIfError: for this long past its TTL, when the handler answers
	// 5xx or panics, an entry that no write has made stale is served
	// instead (Cache-Status "…; detail=stale-if-error") and the failure is
	// logged. A 4xx is never replaced. 0 = the Cache's default
	// (Config.StaleIfError); negative = off for this route.
	StaleIfError time.Duration

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

	// CompressMinBytes: bodies of at least this many bytes, of a type that
	// compresses (text, JSON, XML, JavaScript, SVG), are stored gzipped,
	// once; a hit for a client that accepts gzip is served as stored
	// (Content-Encoding: gzip, Vary: Accept-Encoding, an ETag of its own),
	// others get the identity body. So a gzip middleware is not needed in
	// front of the route, and would compress every hit again. 0 = the
	// Cache's default (Config.CompressMinBytes); negative = off.
	CompressMinBytes int
}

// DefaultMaxBodyBytes is the body limit of a Route whose MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// ErrRouteConfig is wrapped by every route configuration error.
var ErrRouteConfig = errors.New("hoard: route configuration")

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
	r.pattern.Store(r.newPatternInfo(pattern, wildcards, unkeyed))
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
