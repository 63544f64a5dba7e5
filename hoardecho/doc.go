// Package hoardecho runs hoard's route middleware on echo
// (github.com/labstack/echo/v4) routes: GET and HEAD answers are cached per
// resource (Cache-Status, ETag, 304 on If-None-Match) and POST, PUT, PATCH
// and DELETE invalidate the resource before their status reaches the
// client, exactly as hoard.Cache.Middleware does on net/http.
//
//	mw := hoardecho.MustMiddleware(cache, hoard.Route{KeyPrefix: "widget", TTL: time.Minute})
//	e := echo.New()
//	e.GET("/widgets/:id", getWidget, mw)
//	e.PATCH("/widgets/:id", patchWidget, mw)
//
// What differs from net/http:
//
//   - Path parameters come from echo.Context.Param, so Route.Params must be
//     left nil (the adapter sets it).
//   - An empty Route.ResourceID means the last path parameter of the echo
//     route that matched ("id" in /widgets/:id), or no id on a route without
//     parameters, as the last wildcard of a ServeMux pattern does.
//   - A GET on a route with a path parameter that is neither the id nor a
//     {placeholder} of KeyPrefix (/users/:user/posts/:id with KeyPrefix
//     "post") is served uncached (Cache-Status "hoard; fwd=bypass") and
//     logged, since two paths would share one entry.
//   - An error a handler returns is written by the Echo's HTTPErrorHandler
//     inside the middleware, through hoard (an echo.ErrNotFound is a 404
//     that is not stored and invalidates nothing), and is then returned
//     as usual: the response is committed, so echo's default error handler
//     does not write it again (a custom one should check
//     c.Response().Committed, as echo's does).
//   - echo routes HEAD to a handler of its own, whose answer is not the
//     GET's: a HEAD is answered from the GET's entry when there is one, and
//     otherwise by its handler, uncached (Cache-Status "hoard; fwd=bypass").
//   - A background revalidation (StaleWhileRevalidate, the Route's or the
//     Cache's default as on net/http) runs after the request has ended,
//     when echo has given its Context to another request: it runs the rest
//     of the chain (the middleware after hoard's and the handler) on a new
//     echo.Context with the request, route path and path parameters.
//     Values set with Context.Set by middleware before hoard's are not
//     there (echo cannot list them), nor is a custom Context type wrapped
//     around echo's before it: set what the handler needs after hoard's
//     middleware, or in the request's context. A run that fails is logged
//     and stores nothing.
//   - hoard sees the echo route as a ServeMux pattern (r.Pattern:
//     "/widgets/{id}" for /widgets/:id, "/files/{*...}" for /files/*), which is
//     how metrics name it.
//
// A request answered from the cache does not run the handler; after the
// middleware, c.Response() is echo's own again, with the status and size
// that reached the client, for logging middleware outside.
package hoardecho
