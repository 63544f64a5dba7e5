// Package hoardgin runs hoard's route middleware on gin
// (github.com/gin-gonic/gin) routes: GET and HEAD answers are cached per
// resource (Cache-Status, ETag, 304 on If-None-Match) and POST, PUT, PATCH
// and DELETE invalidate the resource before their status reaches the
// client, exactly as hoard.Cache.Middleware does on net/http.
//
//	mw := hoardgin.MustMiddleware(cache, hoard.Route{KeyPrefix: "widget", TTL: time.Minute})
//	r := gin.New()
//	r.GET("/widgets/:id", mw, getWidget)
//	r.PATCH("/widgets/:id", mw, patchWidget)
//
// What differs from net/http:
//
//   - Path parameters come from gin.Context.Param, so Route.Params must be
//     left nil (the adapter sets it).
//   - An empty Route.ResourceID means the last path parameter of the gin
//     route that matched ("id" in /widgets/:id), or no id on a route without
//     parameters, as the last wildcard of a ServeMux pattern does.
//   - A GET on a route with a path parameter that is neither the id nor a
//     {placeholder} of KeyPrefix (/users/:user/posts/:id with KeyPrefix
//     "post") is served uncached (Cache-Status "hoard; fwd=bypass") and
//     logged once per route, since two paths would share one entry.
//   - A background revalidation (StaleWhileRevalidate) runs after the
//     request has ended, when gin has given its Context to another request:
//     it calls the route's main handler with a copy of the Context
//     (gin.Context.Copy: the request, path parameters and the keys set by
//     middleware before hoard's). gin cannot run part of a chain outside
//     its request, so handlers between hoard's and the main one do not run
//     in it; a route with such handlers and a stale window is logged once.
//   - Metrics name the route by its KeyPrefix (r.Pattern is left empty:
//     gin paths are not ServeMux patterns).
//
// A request answered from the cache does not run the handlers after the
// middleware (the context is aborted); gin's c.Writer reports the status
// and size that reached the client, for logging middleware outside.
package hoardgin
