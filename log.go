package hoard

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// rateLimitedLog writes at most one line per interval and counts the rest,
// so that an outage does not flood the log with one line per request.
type rateLimitedLog struct {
	logger     *slog.Logger
	interval   time.Duration
	last       atomic.Int64
	suppressed atomic.Int64
}

func (l *rateLimitedLog) error(msg string, err error, attrs ...any) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(l.interval) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	if n := l.suppressed.Swap(0); n > 0 {
		attrs = append(attrs, slog.Int64("suppressed", n))
	}
	attrs = append(attrs, slog.Any("error", err))
	l.logger.Warn(msg, attrs...)
}

// decision logs, at debug level, a cache decision other than a hit or a
// plain miss (a bypass, an uncacheable answer, a stale answer, a store
// failure): what it was and why. Not rate-limited, since debug is opt-in;
// one Enabled call when the logger does not want it.
func (l *rateLimitedLog) decision(r *http.Request, route, result, why string) {
	ctx := r.Context()
	if !l.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	l.logger.LogAttrs(ctx, slog.LevelDebug, "hoard: "+result, slog.String("route", route),
		slog.String("method", r.Method), slog.String("path", clip(r.URL.Path)), slog.String("reason", why))
}

// maxLoggedBytes is the most of a request-controlled string (a key, a
// path) that a log line carries: a client that sends a 1 MB URL must not
// write a 1 MB log line.
const maxLoggedBytes = 256

// clip returns s cut to maxLoggedBytes at a UTF-8 boundary, with the number
// of bytes left out, for logging.
func clip(s string) string {
	if len(s) <= maxLoggedBytes {
		return s
	}
	n := maxLoggedBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…(+" + strconv.Itoa(len(s)-n) + " bytes)"
}

// keyAttr is a log attribute holding a key, clipped.
func keyAttr(key string) slog.Attr { return slog.String("key", clip(key)) }
