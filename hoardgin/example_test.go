package hoardgin_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/hoardgin"
	"github.com/hoardcache/hoard/stores"
)

// A widget resource on gin's router: GET is cached under widget:<id> (the
// last path parameter), and PATCH invalidates it before answering.
func Example() {
	gin.SetMode(gin.ReleaseMode)
	c, err := stores.Open(context.Background(), stores.Config{}) // in-memory
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	names := map[string]string{"42": "widget"} // the "database"
	widget, err := hoardgin.Middleware(c, hoard.Route{KeyPrefix: "widget", TTL: 10 * time.Minute})
	if err != nil {
		log.Fatal(err) // a misconfigured route fails here, never per request
	}
	r := gin.New()
	r.GET("/widgets/:id", widget, func(gc *gin.Context) {
		gc.JSON(http.StatusOK, gin.H{"id": gc.Param("id"), "name": names[gc.Param("id")]})
	})
	r.PATCH("/widgets/:id", widget, func(gc *gin.Context) {
		names[gc.Param("id")] = "sprocket"
		gc.Status(http.StatusNoContent)
	})
	srv := httptest.NewServer(r)
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
