package keys

import (
	"errors"
	"net/url"
	"slices"
	"strings"
)

// Pair is one query parameter, name and value unescaped.
type Pair struct {
	Name, Value string
}

// comparePairs orders pairs by name only: AppendQuery sorts stably with it,
// so the values of one name keep the order they had in the request.
func comparePairs(a, b Pair) int { return strings.Compare(a.Name, b.Name) }

// ErrBadQuery is returned by ParseQuery for a query string that does not
// decode. The middleware bypasses the cache for such a request: a key built
// from a partial decoding could merge requests the handler tells apart.
var ErrBadQuery = errors.New(`hoard: query string does not decode (bad %-escape or ";" separator); the request is served uncached`)

// ParseQuery appends the parameters of a raw query string (r.URL.RawQuery)
// to dst, decoded as url.ParseQuery does ("+" is a space) but strictly: a bad
// %-escape or a ";" is ErrBadQuery instead of a silently dropped pair. Empty
// parameters ("a=1&&b=2") are skipped. It allocates only for names and
// values that hold escapes.
func ParseQuery(dst []Pair, raw string) ([]Pair, error) {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		if strings.IndexByte(kv, ';') >= 0 {
			return dst, ErrBadQuery
		}
		k, v, _ := strings.Cut(kv, "=")
		k, err1 := unescapeQuery(k)
		v, err2 := unescapeQuery(v)
		if err1 != nil || err2 != nil {
			return dst, ErrBadQuery
		}
		dst = append(dst, Pair{k, v})
	}
	return dst, nil
}

func unescapeQuery(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// AppendQuery appends the query part ":q=n=v&n=v" of a key to dst: the pairs
// sorted by name (q is sorted in place, stably), each name and value
// escaped, so that "?a=1%26b%3D2" (a = "1&b=2") and "?a=1&b=2" give
// different keys. It appends nothing when q is empty. Repeated pairs are
// kept: "?a=1&a=1" and "?a=1" are different requests. The values of one name
// keep their order (a difference from FastAPI-boilerplate's "sorted by name then
// value"): "?a=2&a=1" and "?a=1&a=2" are different requests, since
// r.URL.Query().Get("a") gives "2" for one and "1" for the other, and
// sharing their entry would let one poison the other. Only the order of
// different names, which url.Values cannot see, is ignored.
func AppendQuery(dst []byte, q []Pair) []byte {
	if len(q) == 0 {
		return dst
	}
	slices.SortStableFunc(q, comparePairs)
	dst = append(dst, ":q="...)
	for i, p := range q {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = AppendEscape(dst, p.Name)
		dst = append(dst, '=')
		dst = AppendEscape(dst, p.Value)
	}
	return dst
}

// AppendID appends the id segment ":" + Escape(id).
func AppendID(dst []byte, id string) []byte {
	return AppendEscape(append(dst, ':'), id)
}

// AppendCaller appends the caller segment ":u=" + Escape(caller).
func AppendCaller(dst []byte, caller string) []byte {
	return AppendEscape(append(dst, ":u="...), caller)
}
