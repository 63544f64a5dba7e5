package hoard

// Which responses are stored, which of their header fields, and how
// (store: the envelope, compressed or not).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"time"
)

// uncacheable returns why a captured response must not be stored, or "".
func (h *routeHandler) uncacheable(cw *captureWriter, status int) string {
	switch {
	case cw.passthrough:
		return "streamed"
	case cw.failed:
		return "panicked"
	case !slices.Contains(h.cacheable, status):
		return "status"
	}
	// Field names are compared case-insensitively: a handler may write
	// w.Header()["set-cookie"] directly, and net/http sends it as is.
	for k, vs := range cw.Header() {
		switch http.CanonicalHeaderKey(k) {
		case "Set-Cookie":
			return "set-cookie"
		case "Content-Encoding":
			return "content-encoding"
		case "Vary":
			return "vary"
		case "Cache-Control":
			for _, cc := range vs {
				for d := range strings.SplitSeq(cc, ",") {
					d = strings.ToLower(strings.TrimSpace(d))
					if d == "no-store" || (d == "private" || strings.HasPrefix(d, "private=")) && h.perCaller == nil {
						return "cache-control"
					}
				}
			}
		}
	}
	return ""
}

// hopByHop headers describe one connection and are never stored (RFC 9110
// 7.6.1), nor are Date and hoard's own per-response headers.
var unstoredHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Proxy-Connection": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Date": true, "Cache-Status": true, "Age": true, "Content-Length": true,
}

// storedHeader selects the header fields that are stored with a response:
// not hop-by-hop ones, and not the values that were in the header before
// the handler ran (before; a handler's additions to such a field are kept,
// and a field the handler replaced is stored whole).
func storedHeader(hdr, before http.Header) []headerField {
	var conn []string
	for _, v := range hdr["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			conn = append(conn, http.CanonicalHeaderKey(strings.TrimSpace(f)))
		}
	}
	names := slices.Sorted(mapKeys(hdr))
	var out []headerField
	for _, k := range names {
		ck := http.CanonicalHeaderKey(k)
		if unstoredHeaders[ck] || slices.Contains(conn, ck) || strings.HasPrefix(ck, http.TrailerPrefix) {
			continue
		}
		vs := hdr[k]
		if pre := before[k]; len(pre) > 0 && len(vs) >= len(pre) && slices.Equal(vs[:len(pre)], pre) {
			vs = vs[len(pre):]
		}
		for _, v := range vs {
			out = append(out, headerField{name: k, value: v})
		}
	}
	return out
}

// store stores a handler's answer under key for the route's keepFor, with
// the generations it was produced under, and returns the header fields
// stored (of the identity representation) and, when it was stored
// compressed, the gzipped body. hdr is the response header (given a
// Content-Type sniffed from the body and an ETag when the handler set
// none, and Vary when compressed); before holds the fields that middleware
// outside the route had set, which are not stored.
func (h *routeHandler) store(ctx context.Context, key string, gens [][]byte, hdr, before http.Header, status int, body []byte) (stored http.Header, gz []byte, err error) {
	if _, ok := hdr["Content-Type"]; !ok && len(body) > 0 {
		// What net/http would sniff from the body: stored, so that a HEAD
		// served from the entry (no body to sniff) carries it too.
		hdr["Content-Type"] = []string{http.DetectContentType(body)}
	}
	if hdr.Get("Etag") == "" {
		sum := sha256.Sum256(body)
		hdr["Etag"] = []string{`"` + hex.EncodeToString(sum[:16]) + `"`}
	}
	fields := storedHeader(hdr, before)
	payloadFields, payload := fields, body // the identity representation
	if h.compressMin > 0 && len(body) >= h.compressMin && compressible(hdr.Get("Content-Type")) {
		if z, ok := gzipBody(body); ok {
			// Stored compressed (compress.go); the requests answered from
			// this run get the representation they accept (representation).
			payloadFields, payload, gz = compressFields(fields), z, z
			fields = append(fields, headerField{"Vary", "Accept-Encoding"})
			hdr.Add("Vary", "Accept-Encoding")
		}
	}
	stored = http.Header{}
	for _, f := range fields {
		stored[f.name] = append(stored[f.name], f.value)
	}
	var enc []byte
	if gz != nil {
		enc = encodeHTTPGzip(gens, time.Now(), h.ttl, status, len(body), payloadFields, payload)
	} else {
		enc = encodeHTTP(gens, time.Now(), h.ttl, status, payloadFields, payload)
	}
	return stored, gz, h.c.set(ctx, key, enc, h.keepFor())
}
