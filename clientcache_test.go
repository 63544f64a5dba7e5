package hoard

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// serve runs one request for path through ClientCache(cfg) around h and
// returns the response as the client would see it.
func ccServe(t *testing.T, cfg ClientCacheConfig, h http.HandlerFunc, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	ClientCache(cfg)(h).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Result()
}

func ccWriteBody(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "body") }

func TestClientCacheRules(t *testing.T) {
	const (
		api     = "private, no-cache, no-store, must-revalidate"
		other   = "private, no-store"
		public  = "public, max-age=60"
		noValue = "<none>"
	)
	tests := []struct {
		name    string
		cfg     ClientCacheConfig
		handler http.HandlerFunc
		path    string
		want    string
	}{
		{"api path", ClientCacheConfig{}, ccWriteBody, "/api/v1/widgets/42", api},
		{"api prefix itself", ClientCacheConfig{}, ccWriteBody, "/api", api},
		{"api prefix with slash", ClientCacheConfig{}, ccWriteBody, "/api/", api},
		{"not under api", ClientCacheConfig{}, ccWriteBody, "/apiary", other},
		{"public", ClientCacheConfig{}, ccWriteBody, "/static/app.js", public},
		{"public prefix without its slash", ClientCacheConfig{}, ccWriteBody, "/static", other},
		{"root", ClientCacheConfig{}, ccWriteBody, "/", other},
		{"other", ClientCacheConfig{}, ccWriteBody, "/health", other},

		{"APIPrefix /v2", ClientCacheConfig{APIPrefix: "/v2"}, ccWriteBody, "/v2/users", api},
		{"APIPrefix /v2, old /api", ClientCacheConfig{APIPrefix: "/v2"}, ccWriteBody, "/api/users", other},
		{"APIPrefix /v2/ trailing slash", ClientCacheConfig{APIPrefix: "/v2/"}, ccWriteBody, "/v2", api},
		{"APIPrefix / makes all API", ClientCacheConfig{APIPrefix: "/"}, ccWriteBody, "/static/x.css", api},
		{"API wins over public", ClientCacheConfig{PublicPrefixes: []string{"/api/docs/"}}, ccWriteBody, "/api/docs/x", api},

		{"MaxAge", ClientCacheConfig{MaxAge: 5 * time.Minute}, ccWriteBody, "/static/x", "public, max-age=300"},
		{"MaxAge rounds down", ClientCacheConfig{MaxAge: 1500 * time.Millisecond}, ccWriteBody, "/static/x", "public, max-age=1"},
		{"negative MaxAge is max-age=0", ClientCacheConfig{MaxAge: -1}, ccWriteBody, "/static/x", "public, max-age=0"},
		{"prefix without slash: itself", ClientCacheConfig{PublicPrefixes: []string{"/favicon.ico", "/assets"}}, ccWriteBody, "/favicon.ico", public},
		{"prefix without slash: below", ClientCacheConfig{PublicPrefixes: []string{"/favicon.ico", "/assets"}}, ccWriteBody, "/assets/a.png", public},
		{"prefix without slash: sibling", ClientCacheConfig{PublicPrefixes: []string{"/assets"}}, ccWriteBody, "/assets2/a.png", other},
		{"no public prefixes", ClientCacheConfig{PublicPrefixes: []string{}}, ccWriteBody, "/static/x", other},

		{"route header kept on api", ClientCacheConfig{}, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "public, max-age=30")
			ccWriteBody(w, r)
		}, "/api/v1/widgets/1", "public, max-age=30"},
		{"route header kept on public", ClientCacheConfig{}, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "private, max-age=30")
			w.WriteHeader(http.StatusOK)
		}, "/static/x", "private, max-age=30"},
		{"nil header suppresses", ClientCacheConfig{}, func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Cache-Control"] = nil
			ccWriteBody(w, r)
		}, "/api/x", noValue},

		{"implicit 200", ClientCacheConfig{}, ccWriteBody, "/static/x", public},
		{"handler writes nothing", ClientCacheConfig{}, func(http.ResponseWriter, *http.Request) {}, "/api/x", api},
		{"404 on public", ClientCacheConfig{}, http.NotFound, "/static/missing.js", public},
		{"500 on public is not public", ClientCacheConfig{}, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}, "/static/x", other},
		{"500 on api", ClientCacheConfig{}, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
		}, "/api/x", api},
		{"io.Copy (ReadFrom)", ClientCacheConfig{}, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(w, strings.NewReader("body"))
		}, "/static/x", public},
		{"Flush first", ClientCacheConfig{}, func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush()
		}, "/other", other},
		{"header set after WriteHeader is too late", ClientCacheConfig{}, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.Header().Set("Cache-Control", "late")
		}, "/other", other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ccServe(t, tt.cfg, tt.handler, tt.path)
			got, ok := res.Header["Cache-Control"]
			switch {
			case tt.want == noValue && ok && got != nil:
				t.Fatalf("Cache-Control = %q, want none", got)
			case tt.want != noValue && (len(got) != 1 || got[0] != tt.want):
				t.Fatalf("Cache-Control = %q, want %q", got, tt.want)
			}
		})
	}
}

type ccPlainHandler struct{}

func (*ccPlainHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { ccWriteBody(w, r) }

func TestClientCacheDisabled(t *testing.T) {
	next := &ccPlainHandler{}
	if got := ClientCache(ClientCacheConfig{Disabled: true})(next); got != http.Handler(next) {
		t.Fatalf("disabled middleware wrapped the handler: %T", got)
	}
	// Disabled wins over a configuration that would otherwise panic.
	res := ccServe(t, ClientCacheConfig{Disabled: true, APIPrefix: "bad"}, ccWriteBody, "/api/x")
	if v, ok := res.Header["Cache-Control"]; ok {
		t.Fatalf("disabled middleware set Cache-Control %q", v)
	}
}

func TestClientCachePanicsOnBadConfig(t *testing.T) {
	for _, cfg := range []ClientCacheConfig{
		{APIPrefix: "api"},
		{PublicPrefixes: []string{"/ok/", "static/"}},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(error).Error(), `with "/"`) {
					t.Errorf("%+v: recovered %v, want a panic saying prefixes start with \"/\"", cfg, r)
				}
			}()
			ClientCache(cfg)
		}()
	}
}

// TestClientCacheSharedValuesStayIntact checks that a handler that adds to
// the header after it was set cannot change what other requests get: the
// precomputed values are shared between requests.
func TestClientCacheSharedValuesStayIntact(t *testing.T) {
	h := ClientCache(ClientCacheConfig{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Header().Add("Cache-Control", "immutable")
	}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/static/x", nil))
				if got := rec.Result().Header["Cache-Control"]; len(got) != 1 || got[0] != "public, max-age=60" {
					t.Errorf("Cache-Control = %q", got)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestClientCacheAfterPanic checks that a handler that panics before writing
// leaves no header for an outer recoverer's error page.
func TestClientCacheAfterPanic(t *testing.T) {
	inner := ClientCache(ClientCacheConfig{})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	recoverer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if recover() != nil {
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		inner.ServeHTTP(w, r)
	})
	rec := httptest.NewRecorder()
	recoverer.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/static/x", nil))
	if got := rec.Result().Header.Get("Cache-Control"); strings.Contains(got, "public") {
		t.Fatalf("error page after a panic got Cache-Control %q", got)
	}
}

// server starts a real HTTP server running h behind ClientCache.
func ccServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(ClientCache(ClientCacheConfig{})(h))
	t.Cleanup(srv.Close)
	return srv
}

func ccGet(t *testing.T, url string) *http.Response {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func TestClientCacheRealServer(t *testing.T) {
	tests := []struct {
		name string
		h    http.HandlerFunc
		path string
		want string
	}{
		{"nothing written", func(http.ResponseWriter, *http.Request) {}, "/static/x", "public, max-age=60"},
		{"body only", ccWriteBody, "/api/x", "private, no-cache, no-store, must-revalidate"},
		{"sendfile path", func(w http.ResponseWriter, r *http.Request) {
			io.Copy(w, io.LimitReader(strings.NewReader(strings.Repeat("x", 100000)), 100000))
		}, "/x", "private, no-store"},
		{"ResponseController deadline (Unwrap)", func(w http.ResponseWriter, r *http.Request) {
			if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
				http.Error(w, err.Error(), http.StatusTeapot)
			}
		}, "/x", "private, no-store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ccGet(t, ccServer(t, tt.h).URL+tt.path)
			if res.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(res.Body)
				t.Fatalf("status %d: %s", res.StatusCode, b)
			}
			if got := res.Header.Get("Cache-Control"); got != tt.want {
				t.Fatalf("Cache-Control = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestClientCacheFlush checks that flushing through the wrapper really sends
// the response so far: the handler waits until the client has read the first
// chunk before it writes the second.
func TestClientCacheFlush(t *testing.T) {
	flushers := map[string]func(http.ResponseWriter) error{
		"http.Flusher": func(w http.ResponseWriter) error {
			f, ok := w.(http.Flusher)
			if !ok {
				return errors.New("not an http.Flusher")
			}
			f.Flush()
			return nil
		},
		"ResponseController": func(w http.ResponseWriter) error { return http.NewResponseController(w).Flush() },
	}
	for name, flush := range flushers {
		t.Run(name, func(t *testing.T) {
			clientRead := make(chan struct{})
			srv := ccServer(t, func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "first\n")
				if err := flush(w); err != nil {
					t.Error(err)
					return
				}
				select {
				case <-clientRead:
				case <-time.After(10 * time.Second): // a guard against hanging, not a timing test
					t.Error("client never received the flushed chunk")
					return
				}
				io.WriteString(w, "second\n")
			})
			res := ccGet(t, srv.URL+"/static/stream")
			if got := res.Header.Get("Cache-Control"); got != "public, max-age=60" {
				t.Errorf("Cache-Control = %q", got)
			}
			br := bufio.NewReader(res.Body)
			line, err := br.ReadString('\n')
			if err != nil || line != "first\n" {
				t.Fatalf("first chunk %q, %v", line, err)
			}
			close(clientRead)
			if rest, _ := io.ReadAll(br); string(rest) != "second\n" {
				t.Fatalf("rest %q", rest)
			}
		})
	}
}

func TestClientCacheFlushErrorWithoutFlusher(t *testing.T) {
	// A writer that cannot flush: the error reaches ResponseController users.
	var w http.ResponseWriter = struct{ http.ResponseWriter }{httptest.NewRecorder()}
	var got error
	ClientCache(ClientCacheConfig{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = http.NewResponseController(w).Flush()
		w.(http.Flusher).Flush() // must not panic
	})).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if !errors.Is(got, http.ErrNotSupported) {
		t.Fatalf("Flush through a writer without Flusher: %v, want http.ErrNotSupported", got)
	}
}

func TestClientCacheHijack(t *testing.T) {
	srv := ccServer(t, func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 200 OK\r\nX-Hijacked: yes\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
		rw.Flush()
	})
	res := ccGet(t, srv.URL+"/static/ws")
	if res.Header.Get("X-Hijacked") != "yes" || res.Header.Get("Cache-Control") != "" {
		t.Fatalf("hijacked response headers %v", res.Header)
	}

	// Without a Hijacker underneath, the error says so.
	var herr error
	ClientCache(ClientCacheConfig{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _, herr = w.(http.Hijacker).Hijack()
	})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if !errors.Is(herr, http.ErrNotSupported) {
		t.Fatalf("Hijack on a recorder: %v, want http.ErrNotSupported", herr)
	}
}

// TestClientCacheEarlyHints checks that a 103 interim response does not
// carry (or settle) Cache-Control, and the final response does.
func TestClientCacheEarlyHints(t *testing.T) {
	srv := ccServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</static/app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Cache-Control", "public, max-age=5")
		ccWriteBody(w, r)
	})
	var interim http.Header
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		interim = http.Header(h)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodGet, srv.URL+"/api/x", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if interim == nil || interim.Get("Link") == "" {
		t.Fatalf("no 103 seen: %v", interim)
	}
	if v := interim.Get("Cache-Control"); v != "" {
		t.Errorf("103 carried Cache-Control %q", v)
	}
	if v := res.Header.Get("Cache-Control"); v != "public, max-age=5" {
		t.Errorf("final Cache-Control = %q, want the handler's, set after the 103", v)
	}
}

// ccDiscardWriter is a ResponseWriter that allocates nothing per request.
type ccDiscardWriter struct{ h http.Header }

func (d *ccDiscardWriter) Header() http.Header         { return d.h }
func (d *ccDiscardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *ccDiscardWriter) WriteHeader(int)             {}

func TestClientCacheAllocations(t *testing.T) {
	body := []byte("body")
	h := ClientCache(ClientCacheConfig{PublicPrefixes: []string{"/static/", "/assets"}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	w := &ccDiscardWriter{h: http.Header{}}
	for _, path := range []string{"/api/v1/x", "/static/app.js", "/assets", "/other"} {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		allocs := testing.AllocsPerRun(100, func() {
			delete(w.h, "Cache-Control")
			h.ServeHTTP(w, r)
		})
		if allocs > 1 {
			t.Errorf("%s: %.0f allocations per request, want at most 1 (the writer wrapper)", path, allocs)
		}
	}
}

func BenchmarkClientCache(b *testing.B) {
	h := ClientCache(ClientCacheConfig{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	w := &ccDiscardWriter{h: http.Header{}}
	r := httptest.NewRequest(http.MethodGet, "/static/app.js", nil)
	b.ReportAllocs()
	for b.Loop() {
		delete(w.h, "Cache-Control")
		h.ServeHTTP(w, r)
	}
}
