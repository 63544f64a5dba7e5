package hoard

import (
	"net/http"
	"strings"
	"testing"
)

// TestAcceptsGzip: RFC 9110's Accept-Encoding, as hoard reads it.
func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  bool
	}{
		{nil, false}, // no field: identity, as most servers answer
		{[]string{"gzip"}, true},
		{[]string{"gzip, deflate, br"}, true},
		{[]string{"br;q=1.0, GZIP;q=0.5"}, true},
		{[]string{"x-gzip"}, true},
		{[]string{"*"}, true},
		{[]string{"*;q=0"}, false},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip;q=0, *"}, false}, // gzip named and refused: * does not bring it back
		{[]string{"identity"}, false},
		{[]string{"br", "gzip"}, true}, // a list split over two lines
		{[]string{"gzip;q=abc"}, false},
		{[]string{"gzip ; q = 0.001"}, true},
		{[]string{"deflate;q=0.5;level=1, gzip;foo=bar"}, true},
	} {
		if got := acceptsGzip(http.Header{"Accept-Encoding": tc.lines}); got != tc.want {
			t.Errorf("Accept-Encoding %q: %v, want %v", tc.lines, got, tc.want)
		}
	}
}

// FuzzAcceptsGzip: whatever a client sends, a field that does not name
// gzip accepts it once ", gzip" is appended and refuses it once ",
// gzip;q=0" is; an ETag survives the trip to the gzip representation's
// and back.
func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"", "gzip", "br;q=0.5", "*;q=0", "identity, *", ";;,,q=", "deflate;q=1.5", "\x00"} {
		f.Add(s, `"abc"`)
	}
	f.Fuzz(func(t *testing.T, ae, etag string) {
		acceptsGzip(http.Header{"Accept-Encoding": {ae}}) // never panics
		if !strings.Contains(strings.ToLower(ae), "gzip") {
			if !acceptsGzip(http.Header{"Accept-Encoding": {ae + ", gzip"}}) {
				t.Errorf("%q + \", gzip\": refused", ae)
			}
			if acceptsGzip(http.Header{"Accept-Encoding": {ae + ", gzip;q=0"}}) {
				t.Errorf("%q + \", gzip;q=0\": accepted", ae)
			}
		}
		if !strings.HasSuffix(etag, gzipTag+`"`) && !strings.HasSuffix(etag, gzipTag) {
			tagged := tagETag(etag)
			if tagged == etag || untagETag(tagged) != etag {
				t.Errorf("ETag %q: tagged %q, back %q", etag, tagged, untagETag(tagged))
			}
		}
	})
}
