package hoard

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
)

// captureWriter buffers a GET response so that it can be stored, given an
// ETag and answered with 304 before anything reaches the client. If the
// handler flushes, hijacks or writes more than the body limit, it switches to
// passthrough: what was buffered is written out, the rest streams directly,
// and the response is not stored. It keeps Flusher, Hijacker and Unwrap so
// that http.ResponseController works through it.
type captureWriter struct {
	w           http.ResponseWriter
	status      int
	wroteHeader bool
	buf         bytes.Buffer
	max         int
	passthrough bool
	failed      bool
	// onPassthrough sets the headers of an uncached response (Cache-Status,
	// Cache-Control) just before it starts streaming.
	onPassthrough func(http.Header)
}

func newCaptureWriter(w http.ResponseWriter, max int, onPassthrough func(http.Header)) *captureWriter {
	return &captureWriter{w: w, max: max, onPassthrough: onPassthrough}
}

func (cw *captureWriter) Header() http.Header { return cw.w.Header() }

func (cw *captureWriter) WriteHeader(code int) {
	if cw.passthrough {
		cw.w.WriteHeader(code)
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		cw.w.WriteHeader(code) // informational: passes through, not recorded
		return
	}
	if cw.wroteHeader {
		return
	}
	cw.wroteHeader = true
	cw.status = code
}

func (cw *captureWriter) Write(p []byte) (int, error) {
	if cw.passthrough {
		return cw.w.Write(p)
	}
	if !cw.wroteHeader {
		cw.WriteHeader(http.StatusOK)
	}
	if cw.buf.Len()+len(p) > cw.max {
		if err := cw.startPassthrough(); err != nil {
			return 0, err
		}
		return cw.w.Write(p)
	}
	return cw.buf.Write(p)
}

func (cw *captureWriter) statusCode() int {
	if !cw.wroteHeader {
		return http.StatusOK
	}
	return cw.status
}

// fail marks the response as broken (the handler panicked).
func (cw *captureWriter) fail() { cw.failed = true }

// startPassthrough writes what was buffered and streams from now on.
func (cw *captureWriter) startPassthrough() error {
	if cw.passthrough {
		return nil
	}
	cw.passthrough = true
	if cw.onPassthrough != nil {
		cw.onPassthrough(cw.w.Header())
	}
	if cw.wroteHeader {
		cw.w.WriteHeader(cw.status)
	}
	if cw.buf.Len() > 0 {
		_, err := cw.w.Write(cw.buf.Bytes())
		cw.buf.Reset()
		return err
	}
	return nil
}

// Flush streams: a flushed response is never stored.
func (cw *captureWriter) Flush() { _ = cw.FlushError() }

// FlushError is Flush for http.ResponseController.
func (cw *captureWriter) FlushError() error {
	if !cw.wroteHeader {
		cw.WriteHeader(http.StatusOK)
	}
	if err := cw.startPassthrough(); err != nil {
		return err
	}
	return http.NewResponseController(cw.w).Flush()
}

// Hijack hands the connection to the handler; the response is not stored.
func (cw *captureWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	cw.passthrough = true
	return http.NewResponseController(cw.w).Hijack()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (cw *captureWriter) Unwrap() http.ResponseWriter { return cw.w }

// invalidatingWriter runs invalidate once, before the response's status
// reaches the client (read-your-writes): at the first WriteHeader, Write,
// Flush or Hijack, with the status being sent (0 when the handler hijacks
// the connection). status keeps it for the invalidation made when the
// handler returns.
type invalidatingWriter struct {
	http.ResponseWriter
	invalidate func(status int)
	status     int
	done       bool
}

func (iw *invalidatingWriter) before(status int) {
	if !iw.done {
		iw.done = true
		iw.status = status
		iw.invalidate(status)
	}
}

func (iw *invalidatingWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		iw.before(code)
	}
	iw.ResponseWriter.WriteHeader(code)
}

func (iw *invalidatingWriter) Write(p []byte) (int, error) {
	iw.before(http.StatusOK)
	return iw.ResponseWriter.Write(p)
}

// Flush invalidates first: flushing sends the status.
func (iw *invalidatingWriter) Flush() { _ = iw.FlushError() }

// FlushError is Flush for http.ResponseController.
func (iw *invalidatingWriter) FlushError() error {
	iw.before(http.StatusOK)
	return http.NewResponseController(iw.ResponseWriter).Flush()
}

// Hijack invalidates first: the handler may answer on the raw connection.
func (iw *invalidatingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	iw.before(0)
	return http.NewResponseController(iw.ResponseWriter).Hijack()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (iw *invalidatingWriter) Unwrap() http.ResponseWriter { return iw.ResponseWriter }
