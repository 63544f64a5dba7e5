package hoard

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Cache-Control values set by ClientCache.
const (
	// CacheControlAPI is sent on API paths: browsers must not keep them.
	CacheControlAPI = "private, no-cache, no-store, must-revalidate"
	// CacheControlDefault is sent on paths that are neither API nor public.
	CacheControlDefault = "private, no-store"
)

// ClientCache returns middleware that sets the Cache-Control response header
// for browsers and shared caches. The header is decided just before
// the response header is written, so that a handler, or the route middleware
// of a cached route with ClientMaxAge, can set its own; in order:
//
//  1. a Cache-Control already in the response header is kept (a nil value,
//     w.Header()["Cache-Control"] = nil, keeps the header out entirely);
//  2. paths equal to or below cfg.APIPrefix get CacheControlAPI;
//  3. paths under one of cfg.PublicPrefixes get "public, max-age=N" with
//     N = cfg.MaxAge in seconds, except 5xx responses, which get
//     CacheControlDefault so that a shared cache never keeps a failure;
//  4. any other path gets CacheControlDefault.
//
// Use it outside the route middleware, around the whole mux: inside, the
// "no-store" it puts on API paths would reach the route middleware, which
// does not store such responses.
//
// Zero fields of cfg take their defaults (ClientCacheConfig). With
// cfg.Disabled the middleware returns next itself: no header, no cost.
// ClientCache panics, like a misconfigured chi route, if a prefix does not
// start with "/"; Config.Validate reports the same mistakes as errors.
//
// The ResponseWriter given to next keeps http.Flusher, http.Hijacker,
// io.ReaderFrom and http.Pusher of the one it wraps, and unwraps for
// http.ResponseController. The only allocation per request is that wrapper:
// it is not pooled because a handler that keeps its writer after returning
// would then write into another request's response.
func ClientCache(cfg ClientCacheConfig) func(http.Handler) http.Handler {
	if cfg.Disabled {
		return func(next http.Handler) http.Handler { return next }
	}
	p, err := newClientCachePolicy(cfg.withDefaults())
	if err != nil {
		panic(err)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cw := &clientCacheWriter{ResponseWriter: w, policy: p, class: p.classify(r.URL.Path)}
			next.ServeHTTP(cw, r)
			// A handler that wrote nothing gets an implicit 200 from
			// net/http after it returns; give it its header too. (Not
			// deferred: after a panic, an outer recoverer's error page
			// must not carry a public max-age.)
			cw.setHeader(http.StatusOK)
		})
	}
}

type pathClass uint8

const (
	classDefault pathClass = iota
	classAPI
	classPublic
)

// clientCachePolicy is ClientCache's configuration, precomputed so that a
// request costs prefix comparisons and no allocation. The header values are
// shared slices with len == cap, so that Header.Add on them copies instead
// of writing into the shared array.
type clientCachePolicy struct {
	apiAll    bool   // APIPrefix "/": every path is an API path
	apiExact  string // "/api"
	apiDir    string // "/api/"
	public    []prefixMatch
	values    [3][]string // by pathClass
	onFailure []string    // public paths answering 5xx
}

// prefixMatch matches a path equal to exact (when not empty) or starting
// with dir.
type prefixMatch struct{ exact, dir string }

func newClientCachePolicy(cfg ClientCacheConfig) (*clientCachePolicy, error) {
	if want := checkAPIPrefix(cfg.APIPrefix); want != "" {
		return nil, fmt.Errorf("hoard: ClientCache: APIPrefix %q (API_PREFIX) %s", cfg.APIPrefix, want)
	}
	p := &clientCachePolicy{}
	if api := strings.TrimRight(cfg.APIPrefix, "/"); api == "" {
		p.apiAll = true
	} else {
		p.apiExact, p.apiDir = api, api+"/"
	}
	for _, pre := range cfg.PublicPrefixes {
		if want := checkPublicPrefix(pre); want != "" {
			return nil, fmt.Errorf("hoard: ClientCache: public prefix %q (CLIENT_CACHE_PUBLIC_PREFIXES) %s", pre, want)
		}
		if strings.HasSuffix(pre, "/") {
			p.public = append(p.public, prefixMatch{dir: pre})
		} else {
			p.public = append(p.public, prefixMatch{exact: pre, dir: pre + "/"})
		}
	}
	maxAge := int64(0)
	if cfg.MaxAge > 0 {
		maxAge = int64(cfg.MaxAge / time.Second)
	}
	one := func(v string) []string { return []string{v}[:1:1] }
	p.values[classDefault] = one(CacheControlDefault)
	p.values[classAPI] = one(CacheControlAPI)
	p.values[classPublic] = one("public, max-age=" + strconv.FormatInt(maxAge, 10))
	p.onFailure = p.values[classDefault]
	return p, nil
}

func (p *clientCachePolicy) classify(path string) pathClass {
	if p.apiAll || strings.HasPrefix(path, p.apiDir) || path == p.apiExact {
		return classAPI
	}
	for _, m := range p.public {
		if strings.HasPrefix(path, m.dir) || (m.exact != "" && path == m.exact) {
			return classPublic
		}
	}
	return classDefault
}

// clientCacheWriter sets Cache-Control when the response header is written.
type clientCacheWriter struct {
	http.ResponseWriter
	policy *clientCachePolicy
	class  pathClass
	done   bool // header decided (or connection hijacked)
}

// setHeader puts the Cache-Control for a response with the given status into
// the header, unless one is there; only the first call does anything.
func (w *clientCacheWriter) setHeader(status int) {
	if w.done {
		return
	}
	w.done = true
	h := w.ResponseWriter.Header()
	if _, ok := h["Cache-Control"]; ok {
		return
	}
	if w.class == classPublic && status >= 500 {
		h["Cache-Control"] = w.policy.onFailure
		return
	}
	h["Cache-Control"] = w.policy.values[w.class]
}

// WriteHeader implements http.ResponseWriter. Informational 1xx headers
// (such as 103 Early Hints) pass through without Cache-Control.
func (w *clientCacheWriter) WriteHeader(status int) {
	if status < 100 || status > 199 || status == http.StatusSwitchingProtocols {
		w.setHeader(status)
	}
	w.ResponseWriter.WriteHeader(status)
}

// Write implements http.ResponseWriter.
func (w *clientCacheWriter) Write(b []byte) (int, error) {
	w.setHeader(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// ReadFrom implements io.ReaderFrom, keeping the sendfile path of the
// wrapped writer when it has one.
func (w *clientCacheWriter) ReadFrom(r io.Reader) (int64, error) {
	w.setHeader(http.StatusOK)
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(w.ResponseWriter, r)
}

// Flush implements http.Flusher; it does nothing if the wrapped writer
// cannot flush.
func (w *clientCacheWriter) Flush() { _ = w.FlushError() }

// FlushError flushes like Flush and reports http.ErrNotSupported when the
// wrapped writer cannot flush; http.ResponseController uses it.
func (w *clientCacheWriter) FlushError() error {
	w.setHeader(http.StatusOK)
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker; it reports http.ErrNotSupported when the
// wrapped writer cannot hijack.
func (w *clientCacheWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.done = true
	}
	return conn, rw, err
}

// Push implements http.Pusher; it reports http.ErrNotSupported when the
// wrapped writer cannot push.
func (w *clientCacheWriter) Push(target string, opts *http.PushOptions) error {
	if p, ok := w.ResponseWriter.(http.Pusher); ok {
		return p.Push(target, opts)
	}
	return http.ErrNotSupported
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *clientCacheWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
