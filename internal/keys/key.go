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

// QueryPairs appends every (name, value) of q to dst, in no particular order
// (AppendQuery sorts them).
func QueryPairs(dst []Pair, q url.Values) []Pair {
	for name, vs := range q {
		for _, v := range vs {
			dst = append(dst, Pair{name, v})
		}
	}
	return dst
}

// AppendQuery appends the query part ":q=n=v&n=v" of a key to dst: the pairs
// sorted by name (q is sorted in place, stably), each name and value
// escaped, so that "?a=1%26b%3D2" (a = "1&b=2") and "?a=1&b=2" give
// different keys. It appends nothing when q is empty. Repeated pairs are
// kept: "?a=1&a=1" and "?a=1" are different requests. The values of one name
// keep their order (a difference from spec 1.3's "sorted by name then
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

// AppendKey appends the key prefix[:id][:q=<query>][:u=<caller>] (spec 1.1)
// to dst. prefix is copied as is: it is a template already formatted by
// Template.AppendFormat. id and caller are escaped; query is sorted in place
// and omitted when empty.
//
// Given one template, the key tells every part apart: an escaped id never
// holds ":" or "=", so it cannot pass for a ":q=" or ":u=" segment, and the
// prefix has as many ":"-separated segments as the template's literal text.
func AppendKey(dst []byte, prefix []byte, id string, hasID bool, query []Pair, caller string, hasCaller bool) []byte {
	dst = append(dst, prefix...)
	if hasID {
		dst = AppendID(dst, id)
	}
	dst = AppendQuery(dst, query)
	if hasCaller {
		dst = AppendCaller(dst, caller)
	}
	return dst
}

// Builder builds one key at a time into a reusable buffer, so that building
// the key of a cache hit allocates at most the final string (or nothing, with
// Bytes). Call Prefix, then optionally ID or IDValue, Query, Caller, in that
// order. The zero Builder is ready to use; a Builder is not safe for
// concurrent use (keep one per request, or pool them).
type Builder struct {
	buf   []byte
	res   int    // length of prefix[:id]
	pairs []Pair // scratch for QueryString
	stage uint8
}

const (
	stageEmpty uint8 = iota
	stagePrefix
	stageID
	stageQuery
	stageCaller
)

func (b *Builder) advance(to uint8, what string) {
	if b.stage == stageEmpty || b.stage >= to {
		panic("keys: Builder." + what + " called out of order; call Prefix, then ID, Query, Caller")
	}
	b.stage = to
}

// Reset empties the builder, keeping its buffers.
func (b *Builder) Reset() {
	b.buf = b.buf[:0]
	b.res = 0
	b.stage = stageEmpty
	clear(b.pairs)
	b.pairs = b.pairs[:0]
}

// Prefix resets the builder and formats t as the key's prefix. On a
// *MissingError the builder is left empty.
func (b *Builder) Prefix(t *Template, lookup func(name string) (string, bool)) error {
	b.Reset()
	var err error
	b.buf, err = t.AppendFormat(b.buf, lookup)
	if err != nil {
		return err
	}
	b.res = len(b.buf)
	b.stage = stagePrefix
	return nil
}

// ID appends the id segment, escaped.
func (b *Builder) ID(id string) {
	b.advance(stageID, "ID")
	b.buf = AppendID(b.buf, id)
	b.res = len(b.buf)
}

// IDValue appends the id segment formatted from an id template (an
// InvalidateKeys id) with Template.AppendValue. On error nothing is appended.
func (b *Builder) IDValue(t *Template, lookup func(name string) (string, bool)) error {
	b.advance(stageID, "IDValue")
	n := len(b.buf)
	var err error
	b.buf, err = t.AppendValue(append(b.buf, ':'), lookup)
	if err != nil {
		b.buf = b.buf[:n]
		return err
	}
	b.res = len(b.buf)
	return nil
}

// Query appends the query part (see AppendQuery); q is sorted in place.
func (b *Builder) Query(q []Pair) {
	b.advance(stageQuery, "Query")
	b.buf = AppendQuery(b.buf, q)
}

// QueryString appends the query part of a raw query string (see
// ParseQuery), using the builder's own scratch space. On ErrBadQuery nothing
// is appended; the caller should bypass the cache.
func (b *Builder) QueryString(raw string) error {
	b.advance(stageQuery, "QueryString")
	var err error
	b.pairs, err = ParseQuery(b.pairs[:0], raw)
	if err != nil {
		return err
	}
	b.buf = AppendQuery(b.buf, b.pairs)
	return nil
}

// Caller appends the caller segment ":u=" + Escape(caller).
func (b *Builder) Caller(caller string) {
	b.advance(stageCaller, "Caller")
	b.buf = AppendCaller(b.buf, caller)
}

// Bytes returns the key built so far. It aliases the builder's buffer and is
// valid until the next call on the builder.
func (b *Builder) Bytes() []byte { return b.buf }

// String returns the key built so far as a new string.
func (b *Builder) String() string { return string(b.buf) }

// Resource returns the resource part prefix[:id] of the key: the namespace a
// write to this resource invalidates with all its query and caller variants.
// It aliases the builder's buffer like Bytes.
func (b *Builder) Resource() []byte { return b.buf[:b.res] }
