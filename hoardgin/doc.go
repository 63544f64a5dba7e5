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
//     logged, since two paths would share one entry.
//   - gin routes HEAD to a handler of its own, whose answer is not the
//     GET's: a HEAD is answered from the GET's entry when there is one, and
//     otherwise by its handler, uncached (Cache-Status "hoard; fwd=bypass").
//   - A background revalidation (StaleWhileRevalidate, the Route's or the
//     Cache's default as on net/http) runs after the request has ended,
//     when gin has given its Context to another request: it calls the
//     route's main handler on a copy of the Context (gin.Context.Copy: the
//     request, path parameters and the keys set by the handlers before).
//     gin cannot run part of a chain outside its request, so a route with
//     handlers between hoard's middleware and the main one is not
//     revalidated: its stale entry is served until the window ends, and the
//     route is logged once. On the copy, c.IsAborted() is true and c.Next()
//     does nothing; a main handler that writes nothing there is not stored.
//   - hoard sees the gin route as a ServeMux pattern (r.Pattern:
//     "/widgets/{id}" for /widgets/:id, "/files/{filepath...}" for /files/*filepath), which is
//     how metrics name it.
//
// A request answered from the cache does not run the handlers after the
// middleware (the context is aborted); gin's c.Writer reports the status
// and size that reached the client, for logging middleware outside.
package hoardgin
