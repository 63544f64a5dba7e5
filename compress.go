package hoard

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Compressed entries (Route.CompressMinBytes, CACHE_COMPRESS_MIN_BYTES). A
// response body of at least the threshold, of a type that compresses
// (text, JSON, XML, JavaScript, SVG), is stored gzip-compressed, once, when
// it is stored: the gzip representation's header fields are stored with it
// (Content-Encoding: gzip, Vary: Accept-Encoding, its own ETag). A hit for
// a client that accepts gzip is served as stored, without compressing
// again; any other client gets the identity body, decompressed, with the
// identity ETag. gzip, from the standard library: every HTTP client
// accepts it, and it adds no dependency.
//
// A stored entry carries Content-Encoding only when hoard compressed it: a
// handler's own Content-Encoding makes its answer uncacheable
// (storage_policy.go).

// gzipTag marks the ETag of the gzip representation: the identity ETag
// with it before the closing quote ("abc" → "abc-gz"), so that the two
// representations never share a validator (RFC 9110 8.8.3).
const gzipTag = "-gz"

// compressible reports whether a response of content type ct is worth
// compressing: text and structured text, not images, audio, video or
// archives, which are compressed already.
func compressible(ct string) bool {
	ct = strings.ToLower(ct)
	return strings.HasPrefix(ct, "text/") || strings.Contains(ct, "json") || strings.Contains(ct, "xml") ||
		strings.Contains(ct, "javascript") || strings.HasPrefix(ct, "image/svg")
}

// gzipWriters keeps gzip writers between stores (each holds about 800 KB
// of compression state).
var gzipWriters = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression); return w }}

// gzipBody compresses body; ok is false when that does not make it
// smaller.
func gzipBody(body []byte) (gz []byte, ok bool) {
	var buf bytes.Buffer
	buf.Grow(len(body) / 3)
	w := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(body); err != nil {
		return nil, false
	}
	if err := w.Close(); err != nil || buf.Len() >= len(body) {
		return nil, false
	}
	return buf.Bytes(), true
}

// gzipReaders keeps gzip readers between identity hits.
var gzipReaders sync.Pool

// gunzip decompresses a body hoard compressed from plainLen bytes, into
// one buffer of that size.
func gunzip(gz []byte, plainLen int) ([]byte, error) {
	var r *gzip.Reader
	if p, ok := gzipReaders.Get().(*gzip.Reader); ok {
		r = p
		if err := r.Reset(bytes.NewReader(gz)); err != nil {
			return nil, err
		}
	} else {
		var err error
		if r, err = gzip.NewReader(bytes.NewReader(gz)); err != nil {
			return nil, err
		}
	}
	defer gzipReaders.Put(r)
	out := make([]byte, plainLen)
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, err
	}
	if n, _ := r.Read(make([]byte, 1)); n != 0 {
		return nil, errCorruptEntry // longer than recorded
	}
	return out, nil
}

// compressFields returns the header fields of the gzip representation of
// a response whose identity fields are fields: Content-Encoding and Vary
// added, the ETag tagged.
func compressFields(fields []headerField) []headerField {
	out := make([]headerField, 0, len(fields)+2)
	for _, f := range fields {
		if f.name == "Etag" {
			f.value = tagETag(f.value)
		}
		out = append(out, f)
	}
	return append(out, headerField{"Content-Encoding", "gzip"}, headerField{"Vary", "Accept-Encoding"})
}

// tagETag returns the gzip representation's ETag of an identity ETag.
func tagETag(etag string) string {
	if strings.HasSuffix(etag, `"`) && len(etag) >= 2 {
		return etag[:len(etag)-1] + gzipTag + `"`
	}
	return etag + gzipTag
}

// untagETag returns the identity ETag of a gzip representation's.
func untagETag(etag string) string {
	if strings.HasSuffix(etag, gzipTag+`"`) {
		return etag[:len(etag)-len(gzipTag)-1] + `"`
	}
	return strings.TrimSuffix(etag, gzipTag)
}

// acceptsGzip reports whether a request's Accept-Encoding admits gzip
// (RFC 9110 12.5.3): "gzip" or "x-gzip" or "*" with a q-value above 0,
// unless gzip itself is listed with q=0. No Accept-Encoding field means
// any encoding is acceptable, but clients that send none (curl without
// --compressed, scripts) are often not ready for one, so hoard answers
// them with the identity body, as most servers do.
func acceptsGzip(h http.Header) bool {
	star, gzipQ := false, -1.0
	for _, line := range h["Accept-Encoding"] {
		for part := range strings.SplitSeq(line, ",") {
			coding, params, _ := strings.Cut(part, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			q := qValue(params)
			switch coding {
			case "gzip", "x-gzip":
				gzipQ = max(gzipQ, q)
			case "*":
				star = star || q > 0
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return star
}

// qValue returns the q parameter among params (";q=0.5"), 1 when absent,
// 0 when it does not parse (a broken weight is not a preference).
func qValue(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		name, value, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || q < 0 || q > 1 {
			return 0
		}
		return q
	}
	return 1
}

// serveIdentity answers a client that does not accept gzip from a
// compressed entry: the body decompressed, without Content-Encoding, with
// the identity ETag. A 304 and a HEAD decompress nothing (the entry
// records the identity length). A body that does not decompress (never
// written by hoard) runs the handler, uncached.
func (h *routeHandler) serveIdentity(w http.ResponseWriter, r *http.Request, e *entry, now time.Time, status string) {
	hdr := w.Header()
	e.applyHeader(hdr,
		"Cache-Status", status,
		"Age", decimal.format(int64(e.age(now)/time.Second)),
		"Content-Length", strconv.Itoa(e.plainLen))
	delete(hdr, "Content-Encoding")
	if etag := hdr.Get("Etag"); etag != "" {
		hdr.Set("Etag", untagETag(etag))
	}
	h.setClientCC(hdr)
	var body []byte
	if r.Method != http.MethodHead && !notModified(hdr, r, e.status) {
		var err error
		if body, err = gunzip(e.body, e.plainLen); err != nil {
			h.c.log.error("hoard: a compressed entry does not decompress; serving uncached", errCorruptEntry, slog.String("path", clip(r.URL.Path)))
			clear(hdr)
			h.next.ServeHTTP(w, r)
			return
		}
	}
	writeStored(w, r, e.status, body, true)
}

// representation returns the body to send for a handler's answer served
// by the run that stored it (or to the requests that waited for it): gz,
// the body as stored compressed, with Content-Encoding and the gzip ETag
// set in hdr, to a client that accepts gzip, so that a miss and the hits
// after it send the same representation and validator; else body.
func representation(hdr http.Header, r *http.Request, body, gz []byte) []byte {
	if gz == nil || !acceptsGzip(r.Header) {
		return body
	}
	hdr.Set("Content-Encoding", "gzip")
	if etag := hdr.Get("Etag"); etag != "" {
		hdr.Set("Etag", tagETag(etag))
	}
	return gz
}
