package hoard

// Serving a GET or HEAD: the hit path (serveRead, serveHit) and the miss
// (serveMiss, one handler run per key and generations in a process).

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hoardcache/hoard/internal/framework"
)

// routeHandler is a compiled route wrapped around the handler it caches.
type routeHandler struct {
	*route
	next http.Handler
}

// ServeHTTP dispatches on the method: reads are served from the cache,
// writes invalidate, other methods pass through.
func (h *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.serveRead(w, r)
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		h.serveWrite(w, r)
	default:
		h.next.ServeHTTP(w, r)
	}
}

const (
	statusBypass    = "hoard; fwd=bypass"
	statusMiss      = "hoard; fwd=miss"
	statusStored    = "hoard; fwd=miss; stored"
	statusCollapsed = "hoard; fwd=miss; collapsed"
)

// bypass serves r uncached, counted as res (resultBypass or resultError)
// and logged at debug level with why.
func (h *routeHandler) bypass(w http.ResponseWriter, r *http.Request, info *patternInfo, res result, why string) {
	h.decided(r, info, res, why)
	w.Header().Set("Cache-Status", statusBypass)
	h.setClientCC(w.Header())
	h.next.ServeHTTP(w, r)
}

// uncachedHeaders marks a response that streams through uncached.
func (h *routeHandler) uncachedHeaders(hdr http.Header) {
	hdr["Cache-Status"] = []string{statusMiss}
	h.setClientCC(hdr)
}

func (h *routeHandler) setClientCC(hdr http.Header) {
	if h.clientCC != "" && hdr.Get("Cache-Control") == "" {
		hdr.Set("Cache-Control", h.clientCC)
	}
}

func (h *routeHandler) serveRead(w http.ResponseWriter, r *http.Request) {
	c := h.c
	if h.prefix == nil {
		h.next.ServeHTTP(w, r)
		return
	}
	info := h.patternInfo(r)
	if overridden(r.Header) {
		h.bypass(w, r, info, resultBypass, "a method-override header")
		return
	}
	var q request
	if !h.initRequest(&q, r, info) {
		h.bypass(w, r, info, resultBypass, "the query string does not decode")
		return
	}
	if q.info.unkeyed != "" {
		c.log.error("hoard: route served uncached", errors.New(q.info.unkeyed))
		h.bypass(w, r, info, resultBypass, "the path is not all in the key")
		return
	}
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	// The key (resource, then variant), then the store keys of its entry
	// and its resource's generation, built in one buffer and converted with
	// one allocation.
	buf, resLen, ok := q.readKey((*bp)[:0])
	if !ok {
		*bp = buf
		h.bypass(w, r, info, resultBypass, "no key: no caller (PerCaller), or a key parameter given twice")
		return
	}
	keyLen := len(buf)
	if keyLen > c.maxKey {
		// Nothing is stored under a key this long, so a write never needs
		// to invalidate one (invalidationKeys skips them too).
		c.stats.keysTooLong.Add(1)
		c.log.error("hoard: key longer than CACHE_MAX_KEY_BYTES; served uncached", ErrKeyTooLong, keyAttr(string(buf)))
		*bp = buf
		h.bypass(w, r, info, resultBypass, "the key is longer than CACHE_MAX_KEY_BYTES")
		return
	}
	buf = c.keys.appendEntry(buf, buf[:resLen], buf[resLen:keyLen])
	entryEnd := len(buf)
	buf = c.keys.appendGen(buf, buf[:resLen])
	*bp = buf
	all := string(buf)
	logical, entryKey := all[:keyLen], all[keyLen:entryEnd]
	shard := c.keys.shardOf(entryKey)
	// keys: entry, epoch, resource generation, pattern generations.
	storeKeys := make([]string, 3, 3+2)
	storeKeys[0] = entryKey
	storeKeys[1] = c.keys.epoch(shard)
	storeKeys[2] = all[entryEnd:]
	if ps := c.patterns.Load(); ps != nil {
		var matches []string
		for _, p := range *ps {
			matches, ok = p.AppendMatches(matches, logical, maxPatternMatches)
			if !ok || len(matches) > maxPatternMatches {
				h.bypass(w, r, info, resultBypass, "the key matches too many InvalidatePatterns instances")
				return
			}
		}
		for _, m := range matches {
			if len(m) > c.maxKey {
				// A write skips a pattern name this long (invalidationKeys),
				// so no entry may depend on it ('*' can match nothing, so a
				// pattern name can be longer than the key).
				c.stats.keysTooLong.Add(1)
				h.bypass(w, r, info, resultBypass, "a pattern the key matches is longer than CACHE_MAX_KEY_BYTES")
				return
			}
			storeKeys = append(storeKeys, c.keys.patternGen(m, shard))
		}
	}
	ctx := r.Context()
	vals, err := c.readEntry(ctx, storeKeys)
	if err != nil {
		// ErrUnavailable (breaker open, or an invalidation of this
		// namespace pending) is an expected state, logged when it began.
		if !errors.Is(err, ErrUnavailable) {
			c.log.error("hoard: cache read failed; serving uncached", err, keyAttr(logical))
		}
		h.bypass(w, r, info, resultError, err.Error())
		return
	}
	gens := vals[1:]
	var stale *entry // past its TTL, within StaleIfError: the answer if the handler fails
	if vals[0] != nil {
		if e, err := decodeEntry(vals[0], kindHTTP); err == nil && e.current(gens) {
			now := time.Now()
			switch over := e.overdue(now); {
			case over < 0:
				h.count(r, info, resultHit) // not logged: the common case
				h.serveHit(w, r, &e, now)
				return
			case over < h.staleWhileRevalidate:
				h.decided(r, info, resultStale, detailRevalidate)
				h.serveStale(w, r, &e, now, detailRevalidate)
				if !headOwnRoute(r) {
					h.revalidate(r, storeKeys[0], gens)
				}
				return
			case over < h.staleIfError:
				stale = &e
			}
		}
	}
	if headOwnRoute(r) {
		h.bypass(w, r, info, resultBypass, "a HEAD miss on a framework route (its handler's answer is not the GET's)")
		return
	}
	created, ok := c.ensureGenerations(ctx, storeKeys[1:], gens, provisionalGenerationTTL)
	if !ok {
		h.bypass(w, r, info, resultError, "the store did not take the key's generations")
		return
	}
	h.serveMiss(w, r, info, storeKeys, gens, created, stale)
}

// count counts r in hoard.route.requests as res.
func (h *routeHandler) count(r *http.Request, info *patternInfo, res result) {
	h.c.metrics.request(r.Context(), info.results, res)
}

// decided counts r as res, a decision other than a hit or a plain miss,
// and logs it at debug level with why.
func (h *routeHandler) decided(r *http.Request, info *patternInfo, res result, why string) {
	h.count(r, info, res)
	h.c.log.decision(r, info.pattern, resultNames[res], why)
}

// serveHit replays a stored response without running the handler.
func (h *routeHandler) serveHit(w http.ResponseWriter, r *http.Request, e *entry, now time.Time) {
	ttl := int64((e.remaining(now) + time.Second - 1) / time.Second)
	h.serveEntry(w, r, e, now, hitStatus.format(ttl))
}

// serveEntry replays a stored response with the given Cache-Status.
func (h *routeHandler) serveEntry(w http.ResponseWriter, r *http.Request, e *entry, now time.Time, status string) {
	if e.gzipped && !acceptsGzip(r.Header) {
		h.serveIdentity(w, r, e, now, status)
		return
	}
	hdr := w.Header()
	e.applyHeader(hdr,
		"Cache-Status", status,
		"Age", decimal.format(int64(e.age(now)/time.Second)),
		"Content-Length", decimal.format(int64(len(e.body))))
	h.setClientCC(hdr)
	writeStored(w, r, e.status, e.body, true)
}

// numberStrings remembers the strings prefix+decimal(n) for small n, so that
// a hit formats no header value (Cache-Status ttl, Age, Content-Length):
// each string is allocated once per process instead of once per hit.
type numberStrings struct {
	prefix string
	s      [4096]atomic.Pointer[string]
}

var (
	hitStatus = numberStrings{prefix: "hoard; hit; ttl="}
	decimal   = numberStrings{}
)

func (t *numberStrings) format(n int64) string {
	if n < 0 || n >= int64(len(t.s)) {
		return t.prefix + strconv.FormatInt(n, 10)
	}
	if p := t.s[n].Load(); p != nil {
		return *p
	}
	v := t.prefix + strconv.FormatInt(n, 10)
	t.s[n].Store(&v)
	return v
}

// writeStored writes a stored status and body, answering 304 to a matching
// If-None-Match and leaving the body out for HEAD.
// lengthSet says the caller has set Content-Length already.
func writeStored(w http.ResponseWriter, r *http.Request, status int, body []byte, lengthSet bool) {
	hdr := w.Header()
	if notModified(hdr, r, status) {
		delete(hdr, "Content-Type")
		delete(hdr, "Content-Length")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if !lengthSet {
		hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead && len(body) > 0 {
		w.Write(body)
	}
}

// notModified reports whether r's If-None-Match matches the ETag in hdr of
// a 200 answer: a 304 is due.
func notModified(hdr http.Header, r *http.Request, status int) bool {
	if status != http.StatusOK {
		return false
	}
	inm := r.Header["If-None-Match"]
	if len(inm) == 0 {
		return false
	}
	etag := hdr.Get("Etag")
	return etag != "" && etagMatch(inm, etag)
}

// etagMatch implements If-None-Match's weak comparison (RFC 9110 13.1.2)
// over every line of the field: a list may be split over several.
func etagMatch(lines []string, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ",") {
			part = strings.TrimSpace(part)
			if part == "*" || strings.TrimPrefix(part, "W/") == etag {
				return true
			}
		}
	}
	return false
}

// flightResult is what a singleflight leader hands to the requests that
// waited for it.
type flightResult struct {
	status      int
	header      http.Header
	body        []byte
	cacheable   bool
	failed      bool   // 5xx or a panic: a stale entry may be served instead
	storeFailed bool   // the answer was not stored because the store failed
	reason      string // why the answer is not cacheable (storage_policy.go), or ""
	peer        *entry // the entry another instance stored while this one waited
	gz          []byte // the body as stored gzipped (compress.go), or nil
}

// headOwnRoute reports whether r is a HEAD that a framework adapter routed
// to a handler of its own (gin and echo route HEAD apart from GET): running
// it as a GET would store that handler's answer, perhaps an empty body, as
// the GET's. Such a HEAD is answered from a fresh or stale entry, else by
// its handler, uncached; it never stores or revalidates.
func headOwnRoute(r *http.Request) bool {
	return r.Method == http.MethodHead && framework.Routed(r)
}

// serveMiss runs the handler for a GET (or HEAD) whose entry storeKeys[0]
// is missing or stale, stores its answer if it may be shared, and answers.
// gens are the current values of the generations storeKeys[1:], created
// the ones this request made (see ensureGenerations). stale, when set, is
// answered instead of a failed handler run (StaleIfError).
func (h *routeHandler) serveMiss(w http.ResponseWriter, r *http.Request, info *patternInfo, storeKeys []string, gens [][]byte, created uint32, stale *entry) {
	c := h.c
	key := storeKeys[0]
	flight := string(appendFlightKey(make([]byte, 0, len(key)+8*len(gens)+len(gens)), key, gens))
	// A HEAD miss runs the handler as a GET, as HTTP caches do, so that
	// the answer (headers, ETag) is the GET's and can be stored for both;
	// writeStored leaves the body out for the HEAD.
	hr := r
	if r.Method == http.MethodHead {
		hr = r.Clone(r.Context())
		hr.Method = http.MethodGet
	}
	var (
		ran      bool
		cw       *captureWriter
		panicked any
		// Fields already in the header were put there by middleware outside
		// the route (CORS, request ids): they are not the handler's, and
		// that middleware sets them again on every hit.
		before http.Header
	)
	if pre := w.Header(); len(pre) > 0 {
		before = pre.Clone()
	}
	v, _, _ := c.flights.Do(flight, func() (any, error) {
		lease, ok := c.takeMissLease(r.Context(), key, gens)
		defer c.releaseMissLease(r.Context(), lease)
		peer := c.storedSince(r.Context(), storeKeys, lease)
		if !ok && !c.quiet() { // in its quiet period, no entry would be served: no use waiting
			peer = c.awaitPeer(r.Context(), storeKeys, lease, gens)
		}
		if peer != nil {
			return &flightResult{peer: peer, cacheable: true}, nil
		}
		ran = true
		cw = newCaptureWriter(w, h.maxBody, h.uncachedHeaders)
		func() {
			defer func() {
				if p := recover(); p != nil {
					panicked = p
					cw.fail()
				}
			}()
			h.next.ServeHTTP(cw, hr)
		}()
		res := &flightResult{status: cw.statusCode()}
		res.failed = cw.failed || res.status >= 500
		if res.reason = h.uncacheable(cw, res.status); res.reason != "" {
			return res, nil
		}
		res.cacheable = true
		res.body = cw.buf.Bytes()
		var err error
		if res.header, res.gz, err = h.store(r.Context(), key, gens, w.Header(), before, res.status, res.body); err != nil {
			c.log.error("hoard: storing a response failed; served uncached", err, keyAttr(key))
			// Followers run their own handler rather than trust an unstored
			// answer's freshness window. A value the store refused (too
			// large) counts as uncacheable, not as a store failure.
			res.cacheable = false
			res.storeFailed = !errors.Is(err, ErrRefused)
			res.reason = "the store refused the value (too large)"
			return res, nil
		}
		return res, nil
	})
	res := v.(*flightResult)
	c.settleGenerations(r.Context(), storeKeys[1:], created, res.cacheable)
	if res.peer != nil {
		// Another instance ran the handler (misswait.go).
		h.count(r, info, resultMiss)
		h.serveEntry(w, r, res.peer, time.Now(), statusCollapsed)
		return
	}
	if stale != nil && res.failed && (!ran || !cw.passthrough) {
		// StaleIfError: the entry no write has touched, instead of the
		// failure (a follower does not run the handler again).
		c.log.error("hoard: handler failed; serving the stale entry (StaleIfError)", errHandlerFailed(res.status, panicked), keyAttr(key))
		h.decided(r, info, resultStale, detailIfError)
		hdr := w.Header()
		clear(hdr)
		for k, vs := range before {
			hdr[k] = vs
		}
		h.serveStale(w, r, stale, time.Now(), detailIfError)
		return
	}
	switch {
	case res.storeFailed:
		h.decided(r, info, resultError, "storing the answer failed")
	case res.cacheable:
		h.count(r, info, resultMiss) // not logged: the common case
	default:
		h.decided(r, info, resultUncacheable, res.reason)
	}
	if panicked != nil {
		panic(panicked)
	}
	if ran {
		if cw.passthrough {
			return // already streamed to the client
		}
		hdr := w.Header()
		if res.cacheable {
			hdr["Cache-Status"] = []string{statusStored}
		} else {
			hdr["Cache-Status"] = []string{statusMiss}
		}
		h.setClientCC(hdr)
		writeStored(w, r, res.status, representation(hdr, r, cw.buf.Bytes(), res.gz), false)
		return
	}
	if !res.cacheable {
		// The leader's answer is not shareable: run our own handler.
		w.Header().Set("Cache-Status", statusMiss)
		h.setClientCC(w.Header())
		h.next.ServeHTTP(w, hr)
		return
	}
	hdr := w.Header()
	for k, vs := range res.header {
		hdr[k] = append(hdr[k], vs...)
	}
	hdr["Cache-Status"] = []string{statusCollapsed}
	h.setClientCC(hdr)
	writeStored(w, r, res.status, representation(hdr, r, res.body, res.gz), false)
}

// errHandlerFailed describes a failed handler run for the log.
func errHandlerFailed(status int, panicked any) error {
	if panicked != nil {
		return fmt.Errorf("the handler panicked: %v", panicked)
	}
	return fmt.Errorf("the handler answered %d", status)
}
