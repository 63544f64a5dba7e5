package main

import (
	"bytes"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// maxBodyBytes caps request bodies.
const maxBodyBytes = 1 << 20

// apiError is an error the client caused (or a resource it asked for that
// does not exist): answered with its status and {"detail": …}.
type apiError struct {
	status int
	detail string
}

func (e *apiError) Error() string { return e.detail }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, detail: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *apiError {
	return errorf(http.StatusUnprocessableEntity, format, args...)
}

func notFound(format string, args ...any) *apiError {
	return errorf(http.StatusNotFound, format, args...)
}

// writeJSON answers status with v as JSON. Handlers call it only after their
// transaction has committed: hoard invalidates on the first write of the
// response, and a client that got the answer must read its own write.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"detail":"internal error: response does not encode"}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]string{"detail": detail})
}

// maxEcho is the most bytes of one string the client controls (a path, a
// query, a method, a header value, a JSON field name) that the demo writes
// to its log or echoes in an error detail. A request line and headers may
// carry about 1 MiB (http.Server's default MaxHeaderBytes) and a body 1 MiB
// more: written whole, 250 requests with 900 KB URLs made a 317 MB log, and
// an error detail would send a client its megabyte back. 256 bytes shows any
// real path, query or value whole.
const maxEcho = 256

// clip returns s unchanged when it is at most maxEcho bytes; otherwise its
// first maxEcho bytes (fewer if that would split a UTF-8 character) followed
// by "…(+N bytes)", N the number of bytes cut, so that a reader sees the
// value was cut and how long it was. Every request-controlled string the log
// writes or an error detail echoes goes through clip (quote for values shown
// in quotes).
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	// Back up to the start of the character s[maxEcho] belongs to: at most
	// utf8.UTFMax-1 bytes back (bytes that are not UTF-8 are cut anywhere).
	i := maxEcho
	for i > maxEcho-(utf8.UTFMax-1) && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…(+" + strconv.Itoa(len(s)-i) + " bytes)"
}

// quote shows a client's value in a message: clipped, then in Go quotes, so
// that spaces, quotes and control characters are visible.
func quote(s string) string { return strconv.Quote(clip(s)) }

// --- path and query ---------------------------------------------------------

var usernameRE = regexp.MustCompile(`^[a-z0-9]{2,20}$`)

func checkUsername(name, v string) error {
	if !usernameRE.MatchString(v) {
		return invalid("%s: must be 2 to 20 lowercase letters or digits (^[a-z0-9]{2,20}$), got %s", name, quote(v))
	}
	return nil
}

// canonicalUint reports whether s is a whole number written without sign,
// spaces or leading zeros: ids must have one spelling, or "/widgets/07" would
// be cached under another key than the one "/widgets/7" invalidates.
func canonicalUint(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseID reads a path id: 1 to MaxInt64.
func parseID(name, v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if !canonicalUint(v) || err != nil || n < 1 {
		return 0, invalid("%s: must be a whole number from 1 to 9223372036854775807, without sign or leading zeros, got %s", name, quote(v))
	}
	return n, nil
}

// queryParams parses the query string, rejecting parameters outside allowed
// and parameters given twice. It returns the values of those present.
func queryParams(r *http.Request, allowed ...string) (map[string]string, error) {
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalid("malformed query string: %v", err)
	}
	out := make(map[string]string, len(vals))
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range vals {
			if !yield(k) {
				return
			}
		}
	}) {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return nil, invalid("unknown query parameter %s; this route takes none", quote(k))
			}
			return nil, invalid("unknown query parameter %s; accepted: %s", quote(k), strings.Join(allowed, ", "))
		}
		if len(vals[k]) > 1 {
			return nil, invalid("query parameter %s given %d times; give it once", quote(k), len(vals[k]))
		}
		out[k] = vals[k][0]
	}
	return out, nil
}

// intParam reads an optional whole-number parameter in [lo, hi].
func intParam(name string, q map[string]string, def, lo, hi int) (int, error) {
	v, ok := q[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if !canonicalUint(v) || err != nil || n < lo || n > hi {
		return 0, invalid("%s: must be a whole number from %d to %d, got %s", name, lo, hi, quote(v))
	}
	return n, nil
}

// Paging limits. maxPage keeps the row offset far from overflowing.
const (
	maxPage         = 1_000_000
	maxItemsPerPage = 100
)

// paging reads ?page (default 1) and ?items_per_page (default 10).
func paging(r *http.Request) (page, perPage int, err error) {
	q, err := queryParams(r, listQuery...)
	if err != nil {
		return 0, 0, err
	}
	if page, err = intParam("page", q, 1, 1, maxPage); err != nil {
		return 0, 0, err
	}
	if perPage, err = intParam("items_per_page", q, 10, 1, maxItemsPerPage); err != nil {
		return 0, 0, err
	}
	return page, perPage, nil
}

// noQuery rejects any query parameter.
func noQuery(r *http.Request) error {
	_, err := queryParams(r)
	return err
}

// --- JSON bodies ------------------------------------------------------------

// object is a decoded JSON object body, by field.
type object map[string]json.RawMessage

// maxNamed is how many unknown fields an error detail names; a body may hold
// thousands.
const maxNamed = 10

// readObject reads a JSON object of at most maxBodyBytes, sent as JSON
// (checkJSONContentType) and encoded as UTF-8, rejecting fields outside
// allowed.
func readObject(w http.ResponseWriter, r *http.Request, allowed ...string) (object, error) {
	if err := checkJSONContentType(r); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes (1 MiB)", maxBodyBytes)
		}
		return nil, errorf(http.StatusBadRequest, "could not read the request body: %v", err)
	}
	// encoding/json does not refuse invalid UTF-8: inside a string it
	// silently becomes U+FFFD, so the row would hold other text than the
	// client sent. Check the raw bytes.
	if !utf8.Valid(data) {
		return nil, invalid("request body: not valid UTF-8 (first invalid byte at offset %d); send JSON encoded as UTF-8", invalidUTF8At(data))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, invalid("request body: must be a JSON object with the fields %s; got nothing", strings.Join(allowed, ", "))
	}
	var obj object
	if err := json.Unmarshal(data, &obj); err != nil {
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			return nil, invalid("request body: malformed JSON at byte %d: %v", se.Offset, err)
		}
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return nil, invalid("request body: must be a JSON object, got %s", te.Value)
		}
		return nil, invalid("request body: malformed JSON: %v", err)
	}
	if obj == nil {
		return nil, invalid("request body: must be a JSON object, got null")
	}
	var unknown []string
	for k := range obj {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		var named []string
		for _, k := range unknown[:min(len(unknown), maxNamed)] {
			named = append(named, quote(k))
		}
		list := strings.Join(named, ", ")
		if len(unknown) > maxNamed {
			list += fmt.Sprintf(" and %d more", len(unknown)-maxNamed)
		}
		return nil, invalid("unknown field %s; accepted fields: %s", list, strings.Join(allowed, ", "))
	}
	return obj, nil
}

// sendJSON is what a 415 tells the client to do.
const sendJSON = "send Content-Type: application/json with a JSON object"

// checkJSONContentType answers 415 unless the request says its body is JSON:
// application/json or application/*+json (such as
// application/merge-patch+json), with no charset or charset=utf-8. A
// cross-site HTML form can send text/plain, application/x-www-form-urlencoded
// or multipart/form-data without a CORS preflight, so a JSON body accepted
// under those would let any web page a browser visits write to the API;
// application/json needs a preflight, which the demo never grants. A missing
// Content-Type is refused too.
func checkJSONContentType(r *http.Request) error {
	vals := r.Header.Values("Content-Type")
	switch {
	case len(vals) == 0 || len(vals) == 1 && strings.TrimSpace(vals[0]) == "":
		return errorf(http.StatusUnsupportedMediaType, "request body: no Content-Type; %s", sendJSON)
	case len(vals) > 1:
		return errorf(http.StatusUnsupportedMediaType, "request body: Content-Type given %d times; send Content-Type: application/json once, with a JSON object", len(vals))
	}
	mt, params, err := mime.ParseMediaType(vals[0])
	if err != nil {
		return errorf(http.StatusUnsupportedMediaType, "request body: malformed Content-Type %s (%v); %s", quote(vals[0]), err, sendJSON)
	}
	sub, ok := strings.CutPrefix(mt, "application/")
	if !ok || sub != "json" && (!strings.HasSuffix(sub, "+json") || sub == "+json") {
		return errorf(http.StatusUnsupportedMediaType, "request body: Content-Type %s is not JSON; %s", quote(vals[0]), sendJSON)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return errorf(http.StatusUnsupportedMediaType, "request body: charset %s is not supported: JSON must be UTF-8; %s, with charset=utf-8 or no charset", quote(cs), sendJSON)
	}
	return nil
}

// invalidUTF8At returns the offset of the first byte of b that is not part
// of a valid UTF-8 character, or -1.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// textRule constrains a string field.
type textRule struct {
	min, max  int  // length in characters
	multiline bool // newlines and tabs allowed
}

// str reads string field name: nil when absent and not required.
func (o object) str(name string, required bool, rule textRule) (*string, error) {
	raw, ok := o[name]
	if !ok {
		if required {
			return nil, invalid("%s: required", name)
		}
		return nil, nil
	}
	if string(raw) == "null" {
		return nil, invalid("%s: must be a string, not null", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, invalid("%s: must be a string, got %s", name, jsonKind(raw))
	}
	if !rule.multiline {
		s = strings.TrimSpace(s)
	}
	for _, c := range s {
		if c < 0x20 && !(rule.multiline && (c == '\n' || c == '\t' || c == '\r')) || c == 0x7f {
			return nil, invalid("%s: must not contain control characters (got %U)", name, c)
		}
	}
	if n := utf8.RuneCountInString(s); n < rule.min || n > rule.max || strings.TrimSpace(s) == "" && rule.min > 0 {
		return nil, invalid("%s: must be %d to %d characters, not blank (got %d)", name, rule.min, rule.max, n)
	}
	return &s, nil
}

// number reads number field name in [lo, hi]: nil when absent and not
// required.
func (o object) number(name string, required bool, lo, hi float64) (*float64, error) {
	raw, ok := o[name]
	if !ok {
		if required {
			return nil, invalid("%s: required", name)
		}
		return nil, nil
	}
	var f float64
	if string(raw) == "null" {
		return nil, invalid("%s: must be a number, not null", name)
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, invalid("%s: must be a number from %g to %g, got %s", name, lo, hi, jsonKind(raw))
	}
	if f < lo || f > hi {
		return nil, invalid("%s: must be a number from %g to %g, got %g", name, lo, hi, f)
	}
	return &f, nil
}

// jsonKind names the JSON type of a raw value, for messages.
func jsonKind(raw json.RawMessage) string {
	switch b := bytes.TrimSpace(raw); {
	case len(b) == 0:
		return "nothing"
	case b[0] == '"':
		return "a string"
	case b[0] == '{':
		return "an object"
	case b[0] == '[':
		return "an array"
	case b[0] == 't' || b[0] == 'f':
		return "a boolean"
	case b[0] == 'n':
		return "null"
	default:
		return "a number out of range"
	}
}

// --- errors from the database ---------------------------------------------

// isUnavailable reports whether err says the database cannot be reached or
// is too busy, as opposed to a bug.
func isUnavailable(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		// Class 08: connection exception; 57P: operator intervention
		// (shutdown); 53: insufficient resources.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P") || strings.HasPrefix(pe.Code, "53")
	}
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		switch se.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	return strings.Contains(err.Error(), "sql: database is closed")
}

// --- request log ------------------------------------------------------------

// logRequests logs one line per request (method, path, status, duration,
// cache status from the Cache-Status response header, bytes, query) and
// turns a panic into a logged 500. Every string in the line is clipped to
// maxEcho bytes, so a line stays short whatever the URL.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			p := recover()
			if p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic serving request", slog.String("method", clip(r.Method)), slog.String("path", clip(r.URL.Path)),
					slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
				if sw.status == 0 {
					writeError(sw, http.StatusInternalServerError, "internal error")
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			attrs := []slog.Attr{
				slog.String("method", clip(r.Method)),
				slog.String("path", clip(r.URL.Path)),
				slog.Int("status", status),
				slog.Duration("duration", time.Since(start)),
				slog.String("cache", clip(sw.Header().Get("Cache-Status"))),
				slog.Int64("bytes", sw.bytes),
			}
			if r.URL.RawQuery != "" {
				attrs = append(attrs, slog.String("query", clip(r.URL.RawQuery)))
			}
			log.LogAttrs(r.Context(), level, "request", attrs...)
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter records the status and size of a response. It unwraps for
// http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
