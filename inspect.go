package hoard

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Entry describes what the store holds under one key of the Cache: a
// route's cached response or a provider value (Inspect). It is for
// operators and tools (cmd/hoard get), not for serving.
type Entry struct {
	// Key is the key inspected, without KeyPrefix; StoreKey the key it is
	// stored under.
	Key, StoreKey string
	// Route is true for a route's cached response (Status and Header
	// set), false for a provider value.
	Route  bool
	Status int
	Header http.Header
	// Body is the response body (decompressed), or the provider value.
	Body []byte
	// Compressed reports a body stored gzipped (Route.CompressMinBytes);
	// StoredBytes is the size of what the store holds, envelope included.
	Compressed  bool
	StoredBytes int
	// Stored is when it was stored, TTL its lifetime; Remaining is the
	// TTL left (negative past it: the entry is kept for a stale window).
	Stored         time.Time
	TTL, Remaining time.Duration
	// Current reports whether the generations the entry was stored under
	// and that Inspect can check (the namespace epoch and the resource's
	// generation: Checked of Generations) are still the store's: false
	// means a write or Clear has made it stale, and it is never served.
	// True is as far as checked: generations of InvalidatePatterns are
	// checked by the route that reads the entry, which knows its patterns.
	Current              bool
	Generations, Checked int
}

// Inspect reads the entry stored under key (without KeyPrefix): a
// provider key ("session:42"), or a route's key as its Cache-Status debug
// log and cmd/hoard show it: the resource ("widget:42"), then its query
// and caller variant (":q=page=2", ":u=alice"). found is false when
// nothing is stored under it.
func (c *Cache) Inspect(ctx context.Context, key string) (e Entry, found bool, err error) {
	if c.disabled {
		return e, false, nil
	}
	if err := c.checkKey(key); err != nil {
		return e, false, err
	}
	resource, variant := key, ""
	if i := variantStart(key); i >= 0 {
		resource, variant = key[:i], key[i:]
	}
	entryKey := string(c.keys.appendEntry(nil, []byte(resource), []byte(variant)))
	keys := []string{entryKey, c.keys.epoch(c.keys.shardOf(entryKey)), c.keys.gen(resource)}
	vals, err := c.read(ctx, keys)
	if err != nil || vals[0] == nil {
		return e, false, err
	}
	d, err := decodeEntry(vals[0], kindHTTP)
	e.Route = err == nil
	if !e.Route {
		if d, err = decodeEntry(vals[0], kindRaw); err != nil {
			return e, false, err
		}
	}
	now := time.Now()
	e.Key, e.StoreKey = key, entryKey
	e.Status, e.Body = d.status, append([]byte(nil), d.body...)
	e.Compressed, e.StoredBytes = d.gzipped, len(vals[0])
	if d.gzipped {
		if e.Body, err = gunzip(d.body, d.plainLen); err != nil {
			return e, false, err
		}
	}
	if e.Route {
		e.Header = http.Header{}
		d.applyHeader(e.Header)
		if d.gzipped { // the identity representation's fields, as Body is
			delete(e.Header, "Content-Encoding")
			if etag := e.Header.Get("Etag"); etag != "" {
				e.Header.Set("Etag", untagETag(etag))
			}
		}
	}
	e.Stored = time.UnixMilli(d.storedAt)
	e.TTL = time.Duration(d.ttl) * time.Millisecond
	e.Remaining = -d.overdue(now)
	gens := d.generations()
	e.Generations, e.Checked = len(gens), min(len(gens), 2)
	e.Current = len(gens) >= 2 && string(gens[0]) == string(vals[1]) && vals[1] != nil &&
		string(gens[1]) == string(vals[2]) && vals[2] != nil
	return e, true, nil
}

// variantStart returns where a route key's variant (":q=", ":u=") starts,
// or -1: ids and query values are escaped, so neither appears in a
// resource name.
func variantStart(key string) int {
	i, j := strings.Index(key, ":q="), strings.Index(key, ":u=")
	switch {
	case i < 0:
		return j
	case j < 0:
		return i
	}
	return min(i, j)
}
