// Package adapttest is what the tests of the framework adapters (hoardgin,
// hoardecho) share: a client for the application under test and the
// scenarios every adapter must pass. Each adapter's test builds the same
// application on its framework's real router; the scenarios send it real
// HTTP requests, on the in-process store and on a real redis-server.
package adapttest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// Cache-Status prefixes the scenarios expect.
const (
	Stored = "hoard; fwd=miss; stored"
	Hit    = "hoard; hit"
	Bypass = "hoard; fwd=bypass"
)

// Response is what a request got.
type Response struct {
	Status int
	Body   string
	Header http.Header
}

// CacheStatus is the response's Cache-Status.
func (r Response) CacheStatus() string { return r.Header.Get("Cache-Status") }

// Client sends requests to the application served at URL.
type Client struct{ URL string }

// Do sends one request; header holds name, value pairs.
func (c Client) Do(t *testing.T, method, path string, header ...string) Response {
	t.Helper()
	res, err := c.Send(method, path, header...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Send is Do for any goroutine: it returns the error.
func (c Client) Send(method, path string, header ...string) (Response, error) {
	req, err := http.NewRequest(method, c.URL+path, nil)
	if err != nil {
		return Response{}, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{res.StatusCode, string(body), res.Header}, nil
}

// Expect reports an error unless got has this status and body and a
// Cache-Status beginning with cacheStatus.
func Expect(t *testing.T, what string, got Response, status int, body, cacheStatus string) {
	t.Helper()
	if got.Status != status || got.Body != body || !strings.HasPrefix(got.CacheStatus(), cacheStatus) {
		t.Errorf("%s: got %d %q [%s], want %d %q [%s…]", what, got.Status, got.Body, got.CacheStatus(), status, body, cacheStatus)
	}
}
