package hoard

// Writes: the invalidation a POST, PUT, PATCH or DELETE makes before its
// status reaches the client.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/hoardcache/hoard/internal/keys"
)

// serveWrite runs a write and invalidates what it may have changed before
// its status reaches the client. A write answered with a 4xx status is
// taken to have changed nothing (the request was refused): it invalidates
// nothing, so that writes to ids that do not exist cost the store nothing
// and, during an outage, add nothing to the pending invalidations.
func (h *routeHandler) serveWrite(w http.ResponseWriter, r *http.Request) {
	c := h.c
	keys, err := h.invalidationKeys(r)
	if err != nil {
		// Nothing has run: answer before the handler can change anything.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "{\"detail\":%q}\n", "cache invalidation cannot be formatted: "+err.Error())
		c.log.error("hoard: write refused: invalidation key cannot be formatted", err, slog.String("path", r.URL.Path))
		return
	}
	ctx := context.WithoutCancel(r.Context())
	var failed bool
	iw := &invalidatingWriter{ResponseWriter: w, invalidate: func(status int) {
		if !refused(status) {
			failed = c.invalidate(ctx, keys) != nil
		}
	}}
	defer func() {
		// Again when the handler returns (or panics): a read that began
		// between the first invalidation and the end of the handler must not
		// keep what it read. If the first one failed, its keys are pending,
		// but a replay may already have deleted them while the handler ran
		// and a read may have stored what it read before the commit: mark
		// them pending again (no store call: don't wait for the store twice).
		switch {
		case refused(iw.status):
		case failed:
			c.addPending(keys)
		default:
			c.invalidate(ctx, keys)
		}
	}()
	h.next.ServeHTTP(iw, r)
}

// refused reports whether a write's status says it changed nothing.
func refused(status int) bool { return status >= 400 && status < 500 }

// invalidationKeys formats every generation and entry key to delete for a
// write request. A name longer than MaxKeyBytes is left out: no read
// stores under it (serveRead serves such keys uncached), so no entry
// depends on it.
func (h *routeHandler) invalidationKeys(r *http.Request) (storeKeys []string, err error) {
	c := h.c
	q := &request{}
	if !h.initRequest(q, r, h.patternInfo(r)) {
		q.query = nil
	}
	var buf []byte
	addResource := func(name []byte) {
		if len(name) <= c.maxKey {
			storeKeys = c.keys.appendInvalidation(storeKeys, string(name), false)
		}
	}
	if h.prefix != nil {
		buf, err = q.resourceName(buf[:0])
		if err != nil {
			return nil, err
		}
		addResource(buf)
	}
	for _, e := range h.extra {
		buf, err = e.prefix.AppendFormat(buf[:0], q.lookup)
		if err != nil {
			return nil, err
		}
		buf = append(buf, ':')
		switch e.id.kind {
		case idTemplate:
			buf, err = e.id.tmpl.AppendValue(buf, q.lookup)
			if err != nil {
				return nil, err
			}
		case idParam:
			if !q.isParam(e.id.name) {
				buf = append(buf, e.id.literal...)
			} else if v, ok := q.lookup(e.id.name); ok {
				buf = keys.AppendEscape(buf, v)
			} else {
				return nil, &keys.MissingError{Template: e.prefix.String() + ":{" + e.id.name + "}", Name: e.id.name}
			}
		case idLiteral:
			buf = append(buf, e.id.literal...)
		}
		addResource(buf)
	}
	for _, p := range h.patterns {
		buf, err = p.AppendFormat(buf[:0], q.lookup)
		if err != nil {
			return nil, err
		}
		if len(buf) <= c.maxKey {
			storeKeys = c.keys.appendInvalidation(storeKeys, string(buf), true)
		}
	}
	return storeKeys, nil
}
