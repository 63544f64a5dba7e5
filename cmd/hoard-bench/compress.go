package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/hoardcache/hoard"
)

// The json20k scenarios: a widget GET whose answer is a JSON document of
// about 20 KiB (the widget and a page of related ones, as a listing API
// returns), read by clients that accept gzip, over json20kIDs widgets.
// Three ways to serve it: stored as it is and sent as it is (none), stored
// gzipped by hoard and sent as stored (stored), or stored as it is and
// gzipped on every hit by a middleware outside hoard (middleware).

// json20kIDs is the working set of the json20k scenarios: 1,000 × 20 KiB
// fits the memory store's default 64 MiB uncompressed.
const json20kIDs = 1000

// json20kModes are the ways of serving the document.
var json20kModes = []string{"none", "stored", "middleware"}

// json20kScenarios returns the scenarios for the memory store and Redis.
func json20kScenarios() []scenario {
	var ss []scenario
	for _, st := range []string{stMemory, stRedis} {
		for _, mode := range json20kModes {
			desc := map[string]string{
				"none":       "stored and sent uncompressed (CompressMinBytes off)",
				"stored":     "stored gzipped by hoard (CACHE_COMPRESS_MIN_BYTES, default 1024) and sent as stored",
				"middleware": "stored uncompressed, gzipped on every answer by a gzip middleware outside hoard (compress/gzip, default level, pooled writers)",
			}[mode]
			ss = append(ss, scenario{name: "json20k/" + st + "/" + mode, fill: true, hits: true, gzip: true, ids: json20kIDs, storedBytes: true,
				desc: fmt.Sprintf("a ~20 KiB JSON widget document from the %s store, clients accepting gzip, %d ids: %s", st, json20kIDs, desc),
				build: func(e *env) (http.Handler, func(), error) {
					cfg, err := e.storeConfig(st)
					if err != nil {
						return nil, nil, err
					}
					rt := widgetRoute
					if mode != "stored" {
						rt.CompressMinBytes = -1
					}
					h, stop, err := e.cachedRoute(cfg, rt, http.HandlerFunc(e.db.getWidgetDocument), false)
					if err != nil || mode != "middleware" {
						return h, stop, err
					}
					return gzipMiddleware(h), stop, nil
				}})
		}
	}
	return ss
}

// getWidgetDocument answers a widget with a page of 100 related widgets
// (derived from it, no database read beyond the widget's own): about 20
// KiB of JSON that compresses as API listings do.
func (d *widgetDB) getWidgetDocument(w http.ResponseWriter, r *http.Request) {
	id, ok := d.id(w, r)
	if !ok {
		return
	}
	wd, err := scanWidget(d.db.QueryRowContext(r.Context(), `SELECT `+widgetColumns+` FROM widgets WHERE id = $1`, id))
	if err != nil {
		writeDetail(w, http.StatusNotFound, "widget not found")
		return
	}
	related := make([]widget, 100)
	for i := range related {
		related[i] = wd
		related[i].ID = wd.ID*1000 + int64(i)
		related[i].Name = wd.Name + " variant " + strconv.Itoa(i)
		related[i].Price = wd.Price + float64(i)/4
	}
	b, _ := json.Marshal(struct {
		Widget  widget   `json:"widget"`
		Related []widget `json:"related"`
	}{wd, related})
	writeBody(w, http.StatusOK, append(b, '\n'))
}

// gzipMiddleware gzips every answer for clients that accept it, as the
// usual gzip middleware in front of a route does.
func gzipMiddleware(next http.Handler) http.Handler {
	pool := sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression); return w }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			next.ServeHTTP(w, r)
			return
		}
		gz := pool.Get().(*gzip.Writer)
		defer pool.Put(gz)
		gz.Reset(w)
		gw := &gzipWriter{ResponseWriter: w, gz: gz}
		next.ServeHTTP(gw, r)
		gz.Close()
	})
}

// gzipWriter sends what the handler writes through gz.
type gzipWriter struct {
	http.ResponseWriter
	gz *gzip.Writer
}

func (w *gzipWriter) WriteHeader(status int) {
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Encoding", "gzip")
	h.Add("Vary", "Accept-Encoding")
	w.ResponseWriter.WriteHeader(status)
}

func (w *gzipWriter) Write(p []byte) (int, error) { return w.gz.Write(p) }

// storedBytes sums what the store holds for the entries of widgets 1..n
// (envelopes included), read with Cache.Inspect.
func storedBytes(ctx context.Context, c *hoard.Cache, n int) (int64, error) {
	var total int64
	for id := 1; id <= n; id++ {
		e, found, err := c.Inspect(ctx, "widget:"+strconv.Itoa(id))
		if err != nil {
			return 0, err
		}
		if found {
			total += int64(e.StoredBytes)
		}
	}
	return total, nil
}
