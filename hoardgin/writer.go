package hoardgin

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
)

// noWritten is the size of a response whose header is not written yet, as
// in gin.
const noWritten = -1

// writer is the gin.ResponseWriter the handlers after the middleware write
// to: it wraps the http.ResponseWriter hoard passes on (which captures,
// stores or invalidates), with gin's status and size bookkeeping.
type writer struct {
	http.ResponseWriter
	ctx    context.Context // the request's, for CloseNotify
	status int
	size   int
	// statusSet records a status set by the handler, which gin sends only
	// after the chain when nothing was written (c.Status(204)).
	statusSet bool
}

var _ gin.ResponseWriter = (*writer)(nil)

func newWriter(w http.ResponseWriter, ctx context.Context) *writer {
	return &writer{ResponseWriter: w, ctx: ctx, status: http.StatusOK, size: noWritten}
}

// Unwrap lets http.ResponseController reach hoard's writer.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WriteHeader records the status; it is sent with the first write (or
// WriteHeaderNow), as gin does, so that handlers may change it until then.
func (w *writer) WriteHeader(code int) {
	if code > 0 && !w.Written() {
		w.status = code
		w.statusSet = true
	}
}

// WriteHeaderNow sends the status and header if not sent yet.
func (w *writer) WriteHeaderNow() {
	if !w.Written() {
		w.size = 0
		w.ResponseWriter.WriteHeader(w.status)
	}
}

func (w *writer) Write(p []byte) (int, error) {
	w.WriteHeaderNow()
	n, err := w.ResponseWriter.Write(p)
	w.size += n
	return n, err
}

func (w *writer) WriteString(s string) (int, error) {
	w.WriteHeaderNow()
	n, err := io.WriteString(w.ResponseWriter, s)
	w.size += n
	return n, err
}

// Status is the status the handler set (200 by default).
func (w *writer) Status() int { return w.status }

// Size is the number of body bytes written, -1 before the header.
func (w *writer) Size() int { return w.size }

// Written reports whether the header has been written.
func (w *writer) Written() bool { return w.size != noWritten }

// Flush sends the header and what is buffered, if hoard's writer can
// (a response being captured for the cache is not flushed early).
func (w *writer) Flush() {
	w.WriteHeaderNow()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// errHijackWritten is gin's answer to a hijack after the body began.
var errHijackWritten = errors.New("hoardgin: response body already written; hijack before writing")

// Hijack takes over the connection if hoard's writer allows it.
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.size > 0 {
		return nil, nil, errHijackWritten
	}
	if w.size < 0 {
		w.size = 0
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// CloseNotify fires when the request's context ends (the client went
// away or the server is done with it). Deprecated in net/http; gin's
// interface requires it.
func (w *writer) CloseNotify() <-chan bool {
	ch := make(chan bool, 1)
	context.AfterFunc(w.ctx, func() { ch <- true })
	return ch
}

// Pusher returns the HTTP/2 pusher of hoard's writer, or nil.
func (w *writer) Pusher() http.Pusher {
	if p, ok := w.ResponseWriter.(http.Pusher); ok {
		return p
	}
	return nil
}
