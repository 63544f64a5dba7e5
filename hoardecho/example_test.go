package hoardecho_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/hoardecho"
	"github.com/hoardcache/hoard/stores"
	"github.com/labstack/echo/v4"
)

// A widget resource on echo's router: GET is cached under widget:<id> (the
// last path parameter), and PATCH invalidates it before answering.
func Example() {
	c, err := stores.Open(context.Background(), stores.Config{}) // in-memory
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	names := map[string]string{"42": "widget"} // the "database"
	widget, err := hoardecho.Middleware(c, hoard.Route{KeyPrefix: "widget", TTL: 10 * time.Minute})
	if err != nil {
		log.Fatal(err) // a misconfigured route fails here, never per request
	}
	e := echo.New()
	e.GET("/widgets/:id", func(ec echo.Context) error {
		return ec.JSON(http.StatusOK, map[string]string{"id": ec.Param("id"), "name": names[ec.Param("id")]})
	}, widget)
	e.PATCH("/widgets/:id", func(ec echo.Context) error {
		names[ec.Param("id")] = "sprocket"
		return ec.NoContent(http.StatusNoContent)
	}, widget)
	srv := httptest.NewServer(e)
	defer srv.Close()

	for _, method := range []string{"GET", "GET", "PATCH", "GET"} {
		req, _ := http.NewRequest(method, srv.URL+"/widgets/42", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Printf("%s: %d %s [%s]\n", method, res.StatusCode, strings.TrimSpace(string(body)), res.Header.Get("Cache-Status"))
	}
	// Output:
	// GET: 200 {"id":"42","name":"widget"} [hoard; fwd=miss; stored]
	// GET: 200 {"id":"42","name":"widget"} [hoard; hit; ttl=600]
	// PATCH: 204  []
	// GET: 200 {"id":"42","name":"sprocket"} [hoard; fwd=miss; stored]
}
