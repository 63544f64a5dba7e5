package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
)

// badInputs are requests a client may send that must be refused with a
// 4xx and a {"detail"} naming the problem, leaving the database unchanged.
var badInputs = []struct {
	method, path, body string
	status             int
	detail             string // a part of the detail
}{
	// Malformed bodies and wrong types.
	{"POST", "/api/v1/widgets", ``, 422, "must be a JSON object"},
	{"POST", "/api/v1/widgets", `{`, 422, "malformed JSON"},
	{"POST", "/api/v1/widgets", `{"name": "x", "price": 1} trailing`, 422, "malformed JSON"},
	{"POST", "/api/v1/widgets", `{"name": "x", "price": 1}{}`, 422, "malformed JSON"},
	{"POST", "/api/v1/widgets", `[]`, 422, "must be a JSON object, got array"},
	{"POST", "/api/v1/widgets", `"widget"`, 422, "must be a JSON object"},
	{"POST", "/api/v1/widgets", `null`, 422, "must be a JSON object, got null"},
	{"POST", "/api/v1/widgets", `{"name": "x"}`, 422, "price: required"},
	{"POST", "/api/v1/widgets", `{"price": 1}`, 422, "name: required"},
	{"POST", "/api/v1/widgets", `{"name": 42, "price": 1}`, 422, "name: must be a string, got a number"},
	{"POST", "/api/v1/widgets", `{"name": null, "price": 1}`, 422, "name: must be a string, not null"},
	{"POST", "/api/v1/widgets", `{"name": "x", "price": "1"}`, 422, "price: must be a number"},
	{"POST", "/api/v1/widgets", `{"name": "x", "price": [1]}`, 422, "price: must be a number"},
	{"POST", "/api/v1/widgets", `{"name": "x", "price": true}`, 422, "price: must be a number"},
	{"POST", "/api/v1/widgets", `{"name": "x", "price": -0.01}`, 422, "price: must be a number from 0"},
	{"POST", "/api/v1/widgets", `{"name": "x", "price": 1e999}`, 422, "price: must be a number"},
	{"POST", "/api/v1/widgets", `{"name": "x", "price": 1e10}`, 422, "price: must be a number from 0 to 1e+09"},
	{"POST", "/api/v1/widgets", `{"name": "", "price": 1}`, 422, "name: must be 1 to 100 characters"},
	{"POST", "/api/v1/widgets", `{"name": "   ", "price": 1}`, 422, "name: must be 1 to 100 characters"},
	{"POST", "/api/v1/widgets", `{"name": "` + strings.Repeat("é", 101) + `", "price": 1}`, 422, "name: must be 1 to 100"},
	{"POST", "/api/v1/widgets", `{"name": "a\u0000b", "price": 1}`, 422, "name: must not contain control characters"},
	{"POST", "/api/v1/widgets", `{"name": "a\nb", "price": 1}`, 422, "name: must not contain control characters"},
	{"POST", "/api/v1/widgets", `{"name": "x", "price": 1, "description": "nul\u0000"}`, 422, "description: must not contain control"},
	{"POST", "/api/v1/widgets", `{"name": "x", "price": 1, "description": 7}`, 422, "description: must be a string"},
	// Bodies that are not UTF-8: encoding/json would store U+FFFD in
	// place of the bytes inside a string.
	{"POST", "/api/v1/widgets", "{\"name\": \"caf\xe9\", \"price\": 1}", 422, "not valid UTF-8 (first invalid byte at offset 13)"},
	{"POST", "/api/v1/widgets", "{\"name\": \"x\", \"price\": 1, \"description\": \"\xff\xfe\"}", 422, "not valid UTF-8"},
	{"POST", "/api/v1/widgets", "{\"name\": \"\xc0\xaf\", \"price\": 1}", 422, "not valid UTF-8"},     // overlong "/"
	{"POST", "/api/v1/widgets", "{\"name\": \"\xed\xa0\x80\", \"price\": 1}", 422, "not valid UTF-8"}, // encoded surrogate
	{"POST", "/api/v1/widgets", "{\"name\": \"\xe2\x82\", \"price\": 1}", 422, "not valid UTF-8"},     // truncated "€"
	{"POST", "/api/v1/widgets", "{\"name\": \"x\", \"price\": 1}\x80", 422, "not valid UTF-8"},
	{"PUT", "/api/v1/widgets/1", "{\"name\": \"\xff\", \"price\": 1}", 422, "not valid UTF-8"},
	{"PATCH", "/api/v1/widgets/1", "{\"description\": \"\xff\"}", 422, "not valid UTF-8"},
	{"POST", "/api/v1/users", "{\"username\": \"carol\", \"name\": \"\xff\"}", 422, "not valid UTF-8"},
	{"POST", "/api/v1/users/alice/posts", "{\"title\": \"t\", \"text\": \"\xff\"}", 422, "not valid UTF-8"},
	{"PATCH", "/api/v1/users/alice/posts/1", "{\"\xff\": \"t\"}", 422, "not valid UTF-8"},
	// Unknown fields, named (JSON field names are exact: no case folding).
	{"POST", "/api/v1/widgets", `{"name": "x", "price": 1, "color": "red"}`, 422, `unknown field "color"`},
	{"POST", "/api/v1/widgets", `{"Name": "x", "price": 1}`, 422, `unknown field "Name"`},
	{"POST", "/api/v1/widgets", `{"name": "x", "price": 1, "id": 99, "created_at": "2020-01-01T00:00:00Z"}`, 422, `unknown field "created_at", "id"`},
	// Body size.
	{"POST", "/api/v1/widgets", `{"name": "x", "price": 1, "description": "` + strings.Repeat("a", maxBodyBytes) + `"}`, 413, "larger than 1048576 bytes"},
	// Query parameters.
	{"POST", "/api/v1/widgets?debug=1", `{"name": "x", "price": 1}`, 422, `unknown query parameter "debug"; this route takes none`},
	{"GET", "/api/v1/widgets/1?expand=all", ``, 422, `unknown query parameter "expand"`},
	{"GET", "/api/v1/widgets?page=0", ``, 422, "page: must be a whole number from 1 to 1000000"},
	{"GET", "/api/v1/widgets?page=-1", ``, 422, "page: must be"},
	{"GET", "/api/v1/widgets?page=abc", ``, 422, `page: must be a whole number from 1 to 1000000, got "abc"`},
	{"GET", "/api/v1/widgets?page=", ``, 422, "page: must be"},
	{"GET", "/api/v1/widgets?page=01", ``, 422, "page: must be"},
	{"GET", "/api/v1/widgets?page=1.5", ``, 422, "page: must be"},
	{"GET", "/api/v1/widgets?page=99999999999999999999999", ``, 422, "page: must be"},
	{"GET", "/api/v1/widgets?page=1000001", ``, 422, "page: must be"},
	{"GET", "/api/v1/widgets?page=1&page=2", ``, 422, `query parameter "page" given 2 times`},
	{"GET", "/api/v1/widgets?items_per_page=0", ``, 422, "items_per_page: must be a whole number from 1 to 100"},
	{"GET", "/api/v1/widgets?items_per_page=101", ``, 422, "items_per_page: must be a whole number from 1 to 100"},
	{"GET", "/api/v1/widgets?sort=name", ``, 422, `unknown query parameter "sort"; accepted: page, items_per_page`},
	{"GET", "/api/v1/widgets?page=%zz", ``, 422, "malformed query string"},
	{"GET", "/api/v1/users/alice/posts?page=0", ``, 422, "page: must be"},
	{"GET", "/api/v1/users/alice/posts?items_per_page=1000", ``, 422, "items_per_page: must be"},
	// Ids.
	{"GET", "/api/v1/widgets/abc", ``, 422, `widget_id: must be a whole number from 1 to 9223372036854775807, without sign or leading zeros, got "abc"`},
	{"GET", "/api/v1/widgets/0", ``, 422, "widget_id: must be"},
	{"GET", "/api/v1/widgets/-1", ``, 422, "widget_id: must be"},
	{"GET", "/api/v1/widgets/+1", ``, 422, "widget_id: must be"},
	{"GET", "/api/v1/widgets/01", ``, 422, "widget_id: must be"},
	{"GET", "/api/v1/widgets/1e3", ``, 422, "widget_id: must be"},
	{"GET", "/api/v1/widgets/9223372036854775808", ``, 422, "widget_id: must be"},
	{"GET", "/api/v1/widgets/99999999999999999999999999", ``, 422, "widget_id: must be"},
	{"GET", "/api/v1/widgets/%2A", ``, 422, `got "*"`},
	{"PUT", "/api/v1/widgets/abc", `{"name": "x", "price": 1}`, 422, "widget_id: must be"},
	{"PATCH", "/api/v1/widgets/0", `{"price": 1}`, 422, "widget_id: must be"},
	{"DELETE", "/api/v1/widgets/x", ``, 422, "widget_id: must be"},
	{"GET", "/api/v1/users/alice/posts/abc", ``, 422, "id: must be"},
	{"PATCH", "/api/v1/users/alice/posts/-5", `{"title": "x"}`, 422, "id: must be"},
	{"DELETE", "/api/v1/users/alice/posts/00", ``, 422, "id: must be"},
	// Unknown resources.
	{"GET", "/api/v1/widgets/999", ``, 404, "widget 999 not found"},
	{"GET", "/api/v1/widgets/9223372036854775807", ``, 404, "widget 9223372036854775807 not found"},
	{"PUT", "/api/v1/widgets/999", `{"name": "x", "price": 1}`, 404, "widget 999 not found"},
	{"PATCH", "/api/v1/widgets/999", `{"price": 1}`, 404, "widget 999 not found"},
	{"DELETE", "/api/v1/widgets/999", ``, 404, "widget 999 not found"},
	{"GET", "/api/v1/users/nobody", ``, 404, `user "nobody" not found`},
	{"GET", "/api/v1/users/nobody/posts", ``, 404, `user "nobody" not found`},
	{"POST", "/api/v1/users/nobody/posts", `{"title": "t", "text": "x"}`, 404, `user "nobody" not found`},
	{"GET", "/api/v1/users/alice/posts/999", ``, 404, `post 999 of user "alice" not found`},
	{"PATCH", "/api/v1/users/alice/posts/999", `{"title": "x"}`, 404, "post 999"},
	{"DELETE", "/api/v1/users/alice/posts/999", ``, 404, "post 999"},
	// A post belongs to its user: bob's path to alice's post 1.
	{"GET", "/api/v1/users/bob/posts/1", ``, 404, `post 1 of user "bob" not found`},
	{"PATCH", "/api/v1/users/bob/posts/1", `{"title": "mine now"}`, 404, `post 1 of user "bob" not found`},
	{"DELETE", "/api/v1/users/bob/posts/1", ``, 404, `post 1 of user "bob" not found`},
	// Partial updates need a field; PUT needs the whole widget.
	{"PATCH", "/api/v1/widgets/1", `{}`, 422, "nothing to change"},
	{"PUT", "/api/v1/widgets/1", `{"price": 1}`, 422, "name: required"},
	{"PATCH", "/api/v1/users/alice/posts/1", `{}`, 422, "nothing to change"},
	{"PATCH", "/api/v1/users/alice/posts/1", `{"created_by_user_id": 2}`, 422, `unknown field "created_by_user_id"`},
	{"PATCH", "/api/v1/users/alice/posts/1", `{"title": ""}`, 422, "title: must be 1 to 100"},
	// Users and posts.
	{"POST", "/api/v1/users", `{"username": "alice", "name": "Another Alice"}`, 409, `username "alice" is taken`},
	{"POST", "/api/v1/users", `{"username": "Alice", "name": "A"}`, 422, "username: must be 2 to 20 lowercase letters or digits"},
	{"POST", "/api/v1/users", `{"username": "a", "name": "A"}`, 422, "username: must be"},
	{"POST", "/api/v1/users", `{"username": "abcdefghijklmnopqrstu", "name": "A"}`, 422, "username: must be"},
	{"POST", "/api/v1/users", `{"username": "al ice", "name": "A"}`, 422, "username: must be"},
	{"POST", "/api/v1/users", `{"username": "al*ce", "name": "A"}`, 422, "username: must be"},
	{"POST", "/api/v1/users", `{"username": "carol"}`, 422, "name: required"},
	{"POST", "/api/v1/users", `{"username": 7, "name": "A"}`, 422, "username: must be a string"},
	{"POST", "/api/v1/users", `{"username": "carol", "name": "C", "password": "x"}`, 422, `unknown field "password"`},
	{"GET", "/api/v1/users/Alice", ``, 422, "username: must be"},
	{"GET", "/api/v1/users/a", ``, 422, "username: must be"},
	{"GET", "/api/v1/users/%2A", ``, 422, `username: must be 2 to 20 lowercase letters or digits (^[a-z0-9]{2,20}$), got "*"`},
	{"GET", "/api/v1/users/al%20ice/posts", ``, 422, "username: must be"},
	{"POST", "/api/v1/users/Bob/posts", `{"title": "t", "text": "x"}`, 422, "username: must be"},
	{"POST", "/api/v1/users/alice/posts", `{"title": "t"}`, 422, "text: required"},
	{"POST", "/api/v1/users/alice/posts", `{"title": "t", "text": "` + strings.Repeat("x", 10001) + `"}`, 422, "text: must be 1 to 10000"},
	{"POST", "/api/v1/users/alice/posts", `{"title": "t", "text": "bell\u0007"}`, 422, "text: must not contain control characters"},
	// Routes and methods that do not exist.
	{"GET", "/api/v1/nothing", ``, 404, "no route GET /api/v1/nothing"},
	{"GET", "/api/v1/widgets/", ``, 404, "no route"},
	{"POST", "/api/v1/widgets/1", `{}`, 405, "method POST not allowed on /api/v1/widgets/1"},
	{"DELETE", "/api/v1/widgets", ``, 405, "method DELETE not allowed"},
	{"PUT", "/api/v1/users/alice/posts/1", `{"title": "x"}`, 405, "method PUT not allowed"},
}

// TestBadInput: every bad input gets its status and a detail, and the
// database is unchanged; the first GETs are also never cached.
func TestBadInput(t *testing.T) {
	e := newEnv(t, sqliteDB(t), storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{}))
	before := dump(t, e.DB)
	for _, tc := range badInputs {
		name := tc.method + " " + tc.path
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			r := e.do(tc.method, tc.path, tc.body)
			if r.Status != tc.status {
				t.Fatalf("%.300v; want status %d", r, tc.status)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q; want application/json", ct)
			}
			var got map[string]any
			if err := json.Unmarshal(r.Body, &got); err != nil || len(got) != 1 {
				t.Fatalf("body %.300s: want exactly {\"detail\": …} (%v)", r.Body, err)
			}
			if d, _ := got["detail"].(string); !strings.Contains(d, tc.detail) {
				t.Fatalf("detail %q; want it to contain %q", d, tc.detail)
			}
			if r.hit() {
				t.Fatalf("%v: an error answered from the cache", r)
			}
		})
	}
	if after := dump(t, e.DB); after != before {
		t.Fatalf("bad input changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Bad GETs are not cached either: asking again runs the handler.
	for _, tc := range badInputs {
		if tc.method == http.MethodGet {
			if r := e.get(tc.path); r.hit() || r.Status != tc.status {
				t.Errorf("second %v; want status %d, not from the cache", r, tc.status)
			}
		}
	}
}

// writeRoutes are a valid request of each route that reads a body.
var writeRoutes = []struct{ method, path, body string }{
	{"POST", "/api/v1/widgets", `{"name": "Forged", "price": 1}`},
	{"PUT", "/api/v1/widgets/1", `{"name": "Forged", "price": 1}`},
	{"PATCH", "/api/v1/widgets/1", `{"price": 0.01}`},
	{"POST", "/api/v1/users", `{"username": "mallory", "name": "Mallory"}`},
	{"POST", "/api/v1/users/alice/posts", `{"title": "Forged", "text": "x"}`},
	{"PATCH", "/api/v1/users/alice/posts/1", `{"title": "Forged"}`},
}

// TestContentType: a body is read only when it says it is JSON. Every write
// route answers 415 to the Content-Types a cross-site HTML form can send
// (text/plain, application/x-www-form-urlencoded, multipart/form-data), to
// none, and to anything else that is not application/json or
// application/*+json in UTF-8, leaving the database unchanged; parameters
// and case do not matter.
func TestContentType(t *testing.T) {
	e := newEnv(t, sqliteDB(t), storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{}))
	before := dump(t, e.DB)
	refused := []struct {
		name   string
		values []string // the Content-Type header's values
		detail string
	}{
		{"missing", nil, "no Content-Type"},
		{"empty", []string{""}, "no Content-Type"},
		{"text/plain", []string{"text/plain"}, `Content-Type "text/plain" is not JSON`},
		{"text/plain utf-8", []string{"text/plain; charset=utf-8"}, "is not JSON"},
		{"form", []string{"application/x-www-form-urlencoded"}, "is not JSON"},
		{"multipart", []string{"multipart/form-data; boundary=x"}, "is not JSON"},
		{"text/json", []string{"text/json"}, "is not JSON"},
		{"jsonp", []string{"application/jsonp"}, "is not JSON"},
		{"bare +json", []string{"application/+json"}, "is not JSON"},
		{"latin1", []string{"application/json; charset=iso-8859-1"}, `charset "iso-8859-1" is not supported`},
		{"malformed", []string{"application/json; charset"}, "malformed Content-Type"},
		{"list", []string{"application/json, text/plain"}, "malformed Content-Type"},
		{"twice", []string{"application/json", "text/plain"}, "Content-Type given 2 times"},
	}
	for _, rt := range writeRoutes {
		for _, tc := range refused {
			t.Run(rt.method+" "+rt.path+" "+tc.name, func(t *testing.T) {
				r := e.with(t).send(rt.method, rt.path, rt.body, http.Header{"Content-Type": tc.values})
				if r.Status != http.StatusUnsupportedMediaType {
					t.Fatalf("Content-Type %q: %v; want 415", tc.values, r)
				}
				d := decode[map[string]string](t, r)["detail"]
				if !strings.Contains(d, tc.detail) || !strings.Contains(d, "send Content-Type: application/json") {
					t.Fatalf("detail %q; want it to contain %q and say to send Content-Type: application/json", d, tc.detail)
				}
			})
		}
	}
	if after := dump(t, e.DB); after != before {
		t.Fatalf("a body that is not application/json changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	for i, ct := range []string{"application/json", "application/json; charset=utf-8", `Application/JSON; Charset="UTF-8"`, "application/merge-patch+json"} {
		t.Run("accepted "+ct, func(t *testing.T) {
			body := fmt.Sprintf(`{"price": %d}`, 100+i)
			r := e.with(t).send("PATCH", "/api/v1/widgets/2", body, http.Header{"Content-Type": {ct}})
			if r.Status != http.StatusOK || decode[widget](t, r).Price != float64(100+i) {
				t.Fatalf("Content-Type %q: %v; want 200 with price %d", ct, r, 100+i)
			}
		})
	}
}

// FuzzRequest: nothing a client sends produces a 5xx or changes a row it
// must not.
func FuzzRequest(f *testing.F) {
	for _, tc := range badInputs {
		if len(tc.body) < 1000 {
			f.Add(tc.method, tc.path, tc.body)
		}
	}
	f.Add("PATCH", "/api/v1/widgets/1", `{"name": "\ud800", "description": "\u2028"}`)
	f.Add("POST", "/api/v1/users/alice/posts", `{"title": "é", "text": "\r\n\t"}`)
	e := newEnv(f, sqliteDB(f), storefixture.Shared(f, storefixture.Memory).NewCache(f, hoard.Config{}))
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		m := methods[len(method)%len(methods)]
		req, err := http.NewRequest(m, e.URL+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		req.Header.Set("Content-Type", "application/json") // else every body is 415
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		res.Body.Close()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %q %q: status %d", m, path, body, res.StatusCode)
		}
	})
}

// dump returns every row of the demo's tables, for comparisons.
func dump(t testing.TB, db *sql.DB) string {
	t.Helper()
	var b bytes.Buffer
	for _, table := range []string{"widgets", "users", "posts"} {
		rows, err := db.Query(`SELECT * FROM ` + table + ` ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %v\n", table, vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return b.String()
}
