package hoard_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
)

// jsonBody is a JSON document of about n bytes, as an API listing would
// return.
func jsonBody(n int) []byte {
	type item struct {
		ID          int    `json:"id"`
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	var items []item
	for i := 0; ; i++ {
		items = append(items, item{ID: i, Name: fmt.Sprintf("widget %d", i), Description: "A widget of the usual kind, blue or green."})
		if b, _ := json.Marshal(items); len(b) >= n {
			return b
		}
	}
}

// compressApp serves /c/{kind} through a route with the given
// CompressMinBytes: "json" a 20 KiB JSON body, "small" 100 bytes of JSON,
// "png" 20 KiB of image/png.
func compressApp(t *testing.T, c *hoard.Cache, min int) (*httptest.Server, []byte) {
	big := jsonBody(20 << 10)
	mux, _ := localMux(t, c, miniRoute{pattern: "GET /c/{kind}", rt: &hoard.Route{KeyPrefix: "c", CompressMinBytes: min},
		h: func(w http.ResponseWriter, r *http.Request) {
			switch r.PathValue("kind") {
			case "json":
				w.Header().Set("Content-Type", "application/json")
				w.Write(big)
			case "small":
				w.Header().Set("Content-Type", "application/json")
				w.Write(big[:100])
			case "png":
				w.Header().Set("Content-Type", "image/png")
				w.Write(big)
			}
		}})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, big
}

// rawGet sends a GET with the given Accept-Encoding ("" sends none) and
// If-None-Match, without Go's transparent decompression, and returns the
// response and its raw body.
func rawGet(t *testing.T, url, acceptEncoding, ifNoneMatch string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	res, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

func gunzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("body does not gunzip: %v", err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCompressedEntries: a large JSON body is stored gzipped (a fraction
// of its size in the store); a hit for a client that accepts gzip is the
// stored bytes with Content-Encoding: gzip and an ETag of its own, for
// any other the identity body with the identity ETag; both say Vary:
// Accept-Encoding and answer their own If-None-Match with 304. Real
// clients: Go's transport (transparent decompression) and curl
// --compressed. On the memory store and Redis.
func TestCompressedEntries(t *testing.T) {
	for _, name := range []string{storefixture.Memory, storefixture.Redis} {
		t.Run(name, func(t *testing.T) {
			c := storefixture.Shared(t, name).NewCache(t, hoard.Config{})
			srv, big := compressApp(t, c, 0) // the Config default: 1024
			url := srv.URL + "/c/json"

			// The miss that stores it sends a client that accepts gzip the
			// representation the hits will send, with the same ETag.
			res, body := rawGet(t, url, "gzip", "")
			missETag := res.Header.Get("Etag")
			if !strings.Contains(res.Header.Get("Cache-Status"), "stored") || res.Header.Get("Content-Encoding") != "gzip" ||
				!bytes.Equal(gunzipped(t, body), big) || res.Header.Get("Vary") != "Accept-Encoding" {
				t.Fatalf("miss: %v; want the gzip representation, stored, Vary: Accept-Encoding", res.Header)
			}
			e, found, err := c.Inspect(context.Background(), "c:json")
			if err != nil || !found || !e.Compressed || !bytes.Equal(e.Body, big) || e.StoredBytes > len(big)/3 {
				t.Fatalf("Inspect: found %v, compressed %v, %d bytes stored for a %d-byte body, %v; want it gzipped", found, e.Compressed, e.StoredBytes, len(big), err)
			}

			res, body = rawGet(t, url, "br, gzip;q=0.8", "")
			gzETag := res.Header.Get("Etag")
			if !strings.HasPrefix(res.Header.Get("Cache-Status"), "hoard; hit") || res.Header.Get("Content-Encoding") != "gzip" ||
				res.Header.Get("Vary") != "Accept-Encoding" || res.ContentLength != int64(len(body)) || !strings.HasSuffix(gzETag, `-gz"`) {
				t.Fatalf("gzip hit: %v; want the stored gzip bytes, Content-Encoding: gzip, its own ETag", res.Header)
			}
			if !bytes.Equal(gunzipped(t, body), big) || gzETag != missETag {
				t.Fatalf("gzip hit: ETag %q (the miss said %q); want the handler's body and the same ETag", gzETag, missETag)
			}

			for _, ae := range []string{"", "identity", "gzip;q=0", "br"} {
				res, body = rawGet(t, url, ae, "")
				if !strings.HasPrefix(res.Header.Get("Cache-Status"), "hoard; hit") || res.Header.Get("Content-Encoding") != "" ||
					!bytes.Equal(body, big) || res.Header.Get("Vary") != "Accept-Encoding" {
					t.Errorf("hit with Accept-Encoding %q: Content-Encoding %q, %d bytes; want the identity body", ae, res.Header.Get("Content-Encoding"), len(body))
				}
			}
			idETag := res.Header.Get("Etag")
			if idETag == "" || idETag == gzETag {
				t.Errorf("ETags: identity %q, gzip %q; want two different validators", idETag, gzETag)
			}
			for _, tc := range []struct {
				ae, inm string
				want    int
			}{{"gzip", gzETag, 304}, {"", idETag, 304}, {"", gzETag, 200}, {"gzip", idETag, 200}} {
				if res, _ := rawGet(t, url, tc.ae, tc.inm); res.StatusCode != tc.want {
					t.Errorf("If-None-Match %s with Accept-Encoding %q: %d; want %d", tc.inm, tc.ae, res.StatusCode, tc.want)
				}
			}

			// Go's client asks for gzip and decompresses.
			gres, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			gbody, _ := io.ReadAll(gres.Body)
			gres.Body.Close()
			if !gres.Uncompressed || !bytes.Equal(gbody, big) {
				t.Errorf("Go's transport: uncompressed %v, %d bytes; want the body decompressed from a gzip answer", gres.Uncompressed, len(gbody))
			}
			// curl --compressed asks for gzip (and more) and decompresses.
			out, err := exec.Command("curl", "-sS", "--compressed", "-D", "-", url).Output()
			if err != nil {
				t.Fatalf("curl --compressed: %v", err)
			}
			head, cbody, _ := bytes.Cut(out, []byte("\r\n\r\n"))
			if !bytes.Contains(bytes.ToLower(head), []byte("content-encoding: gzip")) || !bytes.Equal(cbody, big) {
				t.Errorf("curl --compressed: headers\n%s\nand %d bytes; want a gzip answer decompressed to the body", head, len(cbody))
			}
		})
	}
}

// TestCompressionSkipped: small bodies, types that are compressed
// already, and routes that turn it off are stored as they are.
func TestCompressionSkipped(t *testing.T) {
	c := newMemoryCache(t, hoard.Config{}, nil)
	srv, _ := compressApp(t, c, 0)
	off, _ := compressApp(t, newMemoryCache(t, hoard.Config{}, nil), -1)
	for _, url := range []string{srv.URL + "/c/small", srv.URL + "/c/png", off.URL + "/c/json"} {
		rawGet(t, url, "gzip", "")
		res, _ := rawGet(t, url, "gzip", "")
		if !strings.HasPrefix(res.Header.Get("Cache-Status"), "hoard; hit") || res.Header.Get("Content-Encoding") != "" || res.Header.Get("Vary") != "" {
			t.Errorf("%s: %q, Content-Encoding %q, Vary %q; want a hit stored as it is", url, res.Header.Get("Cache-Status"), res.Header.Get("Content-Encoding"), res.Header.Get("Vary"))
		}
	}
	cfgOff := newMemoryCache(t, hoard.Config{CompressMinBytes: -1}, nil)
	srvOff, _ := compressApp(t, cfgOff, 0)
	rawGet(t, srvOff.URL+"/c/json", "gzip", "")
	if res, _ := rawGet(t, srvOff.URL+"/c/json", "gzip", ""); res.Header.Get("Content-Encoding") != "" {
		t.Errorf("Config.CompressMinBytes -1 (CACHE_COMPRESS_MIN_BYTES=0): Content-Encoding %q; want none", res.Header.Get("Content-Encoding"))
	}
}
