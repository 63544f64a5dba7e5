package main

// Request-controlled strings in the log and in error details are clipped to
// maxEcho bytes (clip): a 1 MB URL must not make a 1 MB log line or answer.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
)

// bigURL is the length of the long strings sent: about 1 MB, under the 1 MiB
// (plus 4 KiB) an http.Server reads of a request line and headers.
const bigURL = 1_000_000

var clipMarker = regexp.MustCompile(`…\(\+(\d+) bytes\)$`)

// checkClipped checks that got is s clipped: a prefix of s of maxEcho-3 to
// maxEcho bytes, not ending inside a UTF-8 character that s has whole,
// followed by the marker with the number of bytes cut.
func checkClipped(t *testing.T, got, s string) {
	t.Helper()
	m := clipMarker.FindStringSubmatchIndex(got)
	if m == nil {
		t.Fatalf("clip of %d bytes = %.300q…; want a prefix and …(+N bytes)", len(s), got)
	}
	prefix := got[:m[0]]
	cut, _ := strconv.Atoi(got[m[2]:m[3]])
	if !strings.HasPrefix(s, prefix) || len(prefix) > maxEcho || len(prefix) < maxEcho-utf8.UTFMax+1 || len(prefix)+cut != len(s) {
		t.Fatalf("clip of %d bytes: prefix of %d bytes, +%d; want a prefix of s of at most %d bytes and the rest counted",
			len(s), len(prefix), cut, maxEcho)
	}
	if utf8.ValidString(s) && !utf8.ValidString(prefix) {
		t.Fatalf("clip of %d bytes of UTF-8 split a character: %q", len(s), prefix[len(prefix)-8:])
	}
}

func TestClip(t *testing.T) {
	for _, s := range []string{"", "abc", "/api/v1/widgets", strings.Repeat("é", maxEcho/2), strings.Repeat("x", maxEcho)} {
		if got := clip(s); got != s {
			t.Errorf("clip(%q) = %q; want it unchanged (at most %d bytes)", s, got, maxEcho)
		}
	}
	for _, s := range []string{
		strings.Repeat("x", maxEcho+1),
		strings.Repeat("x", bigURL),
		strings.Repeat("é", maxEcho),       // 2 bytes: maxEcho is a boundary
		strings.Repeat("€", maxEcho),       // 3 bytes: cut before the one maxEcho splits
		"x" + strings.Repeat("€", maxEcho), // another offset
		strings.Repeat("😀", maxEcho),       // 4 bytes
		strings.Repeat("\x80", maxEcho*2),  // not UTF-8: cut anyway
		strings.Repeat("\xff", maxEcho*2),
	} {
		checkClipped(t, clip(s), s)
	}
	if got, want := quote(strings.Repeat("a", 300)), `"`+strings.Repeat("a", maxEcho)+`…(+44 bytes)"`; got != want {
		t.Errorf("quote(300 × a) = %q; want %q", got, want)
	}
}

// logLines decodes the JSON lines of a captured log.
func logLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range bytes.Lines(b) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %.300q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestLogClipped: the request log, the panic line and the handler error
// lines write normal URLs unchanged and clip every request-controlled string
// of a long one, keeping the line short.
func TestLogClipped(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Status", r.Header.Get("X-Echo"))
		writeJSON(w, http.StatusOK, map[string]string{})
	})
	serve := func(h http.Handler, r *http.Request) []map[string]any {
		t.Helper()
		var buf bytes.Buffer
		logRequests(slog.New(slog.NewJSONHandler(&buf, nil)), h).ServeHTTP(httptest.NewRecorder(), r)
		for line := range bytes.Lines(buf.Bytes()) {
			// The panic line carries a stack, which the client does not
			// control; the others must be short.
			if len(line) > 2048 && !bytes.Contains(line, []byte(`"stack"`)) {
				t.Fatalf("log line of %d bytes: %.300s…; want at most 2 KB", len(line), line)
			}
		}
		return logLines(t, buf.Bytes())
	}

	t.Run("normal", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/api/v1/users/alice/posts?page=2&items_per_page=5", nil)
		r.Header.Set("X-Echo", "hoard; hit; ttl=60")
		l := serve(ok, r)
		if len(l) != 1 || l[0]["method"] != "GET" || l[0]["path"] != "/api/v1/users/alice/posts" ||
			l[0]["query"] != "page=2&items_per_page=5" || l[0]["cache"] != "hoard; hit; ttl=60" {
			t.Fatalf("log %v; want one line with the method, path, query and cache status unchanged", l)
		}
	})

	method := strings.Repeat("M", bigURL/10)
	path := "/api/v1/widgets/x" + strings.Repeat("é", bigURL/2) // maxEcho splits an é
	query := "q=" + strings.Repeat("x", bigURL)
	long := func() *http.Request {
		r := httptest.NewRequest(method, path+"?"+query, nil)
		r.Header.Set("X-Echo", strings.Repeat("c", bigURL/10))
		return r
	}
	t.Run("long", func(t *testing.T) {
		l := serve(ok, long())
		if len(l) != 1 {
			t.Fatalf("log %.300v; want one line", l)
		}
		for k, s := range map[string]string{"method": method, "path": path, "query": query, "cache": long().Header.Get("X-Echo")} {
			got, _ := l[0][k].(string)
			checkClipped(t, got, s)
		}
	})
	t.Run("panic", func(t *testing.T) {
		l := serve(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }), long())
		if len(l) != 2 || l[0]["msg"] != "panic serving request" || l[1]["status"] != 500.0 {
			t.Fatalf("log %.300v; want the panic and a 500", l)
		}
		for _, line := range l {
			checkClipped(t, line["method"].(string), method)
			checkClipped(t, line["path"].(string), path)
		}
	})
	t.Run("handler error", func(t *testing.T) {
		var buf bytes.Buffer
		s := &server{log: slog.New(slog.NewJSONHandler(&buf, nil))}
		w := httptest.NewRecorder()
		s.wrap(func(*server, http.ResponseWriter, *http.Request) error { return errors.New("boom") }).ServeHTTP(w, long())
		if w.Code != http.StatusInternalServerError || buf.Len() > 2048 {
			t.Fatalf("status %d, log of %d bytes: %.300s; want 500 and a short line", w.Code, buf.Len(), buf.Bytes())
		}
		l := logLines(t, buf.Bytes())
		checkClipped(t, l[0]["method"].(string), method)
		checkClipped(t, l[0]["path"].(string), path)
	})
}

// TestEchoClipped: through the demo's server, a request carrying about 1 MB
// in its method, path, query, a header or a body field name gets its error
// with the value clipped in the detail, and adds a short line to the log.
func TestEchoClipped(t *testing.T) {
	e := newEnv(t, sqliteDB(t), storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{}))
	big := func(c string) string { return strings.Repeat(c, bigURL) }
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	manyFields := []string{`"name": "x"`, `"price": 1`}
	for i := range 20_000 {
		manyFields = append(manyFields, fmt.Sprintf(`"f%05d": 1`, i))
	}
	for _, tc := range []struct {
		name, method, path, body string
		header                   http.Header
		status                   int
		detail                   *regexp.Regexp
	}{
		{"widget id", "GET", "/api/v1/widgets/" + big("9"), "", nil, 422, regexp.MustCompile(`^widget_id: .*, got "9{256}…\(\+999744 bytes\)"$`)},
		{"username", "GET", "/api/v1/users/" + big("a"), "", nil, 422, regexp.MustCompile(`^username: .*, got "a{256}…\(\+999744 bytes\)"$`)},
		{"no route", "GET", "/api/v1/nothing/" + big("x"), "", nil, 404, regexp.MustCompile(`^no route GET /api/v1/nothing/x{240}…\(\+999760 bytes\)$`)},
		{"method not allowed", "POST", "/api/v1/widgets/" + big("x"), "{}", jsonCT, 405, regexp.MustCompile(`^method POST not allowed on /api/v1/widgets/x{240}…\(\+999760 bytes\); allowed: `)},
		{"long method", big("M")[:bigURL/10], "/api/v1/widgets", "", nil, 405, regexp.MustCompile(`^method M{256}…\(\+99744 bytes\) not allowed on /api/v1/widgets; `)},
		{"query value", "GET", "/api/v1/widgets?page=" + big("1"), "", nil, 422, regexp.MustCompile(`^page: .*, got "1{256}…\(\+999744 bytes\)"$`)},
		{"query name", "GET", "/api/v1/widgets?" + big("k") + "=1", "", nil, 422, regexp.MustCompile(`^unknown query parameter "k{256}…\(\+999744 bytes\)"; accepted: page, items_per_page$`)},
		{"field name", "POST", "/api/v1/widgets", `{"` + big("f")[:900_000] + `": 1}`, jsonCT, 422, regexp.MustCompile(`^unknown field "f{256}…\(\+899744 bytes\)"; accepted fields: `)},
		{"many fields", "POST", "/api/v1/widgets", "{" + strings.Join(manyFields, ", ") + "}", jsonCT, 422,
			regexp.MustCompile(`^unknown field "f00000", "f00001", .*"f00009" and 19990 more; accepted fields: `)},
		{"content type", "POST", "/api/v1/widgets", `{}`, http.Header{"Content-Type": {"text/plain; x=" + big("t")[:bigURL/10]}}, 415,
			regexp.MustCompile(`^request body: Content-Type "text/plain; x=t{242}…\(\+99758 bytes\)" is not JSON; send Content-Type: application/json`)},
		{"charset", "POST", "/api/v1/widgets", `{}`, http.Header{"Content-Type": {"application/json; charset=" + big("c")[:bigURL/10]}}, 415,
			regexp.MustCompile(`^request body: charset "c{256}…\(\+99744 bytes\)" is not supported`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logged := len(e.Logs.String())
			r := e.with(t).send(tc.method, tc.path, tc.body, tc.header)
			if r.Status != tc.status {
				t.Fatalf("status %d, body %.300s; want %d", r.Status, r.Body, tc.status)
			}
			d := decode[map[string]string](t, r)["detail"]
			if len(d) > 1024 || !tc.detail.MatchString(d) {
				t.Fatalf("detail of %d bytes: %.600q; want at most 1 KB, matching %s", len(d), d, tc.detail)
			}
			// The line is written before the response is flushed.
			if n := len(e.Logs.String()) - logged; n == 0 || n > 2048 {
				t.Fatalf("the request logged %d bytes: %.300s; want one line of at most 2 KB", n, e.Logs.String()[logged:])
			}
		})
	}
}
