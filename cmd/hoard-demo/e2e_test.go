package main

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/cmd/internal/pgtest"
	"github.com/hoardcache/hoard/internal/storefixture"
)

// TestStores runs the end-to-end scenario on SQLite with every store.
func TestStores(t *testing.T) {
	for _, b := range storefixture.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			scenario(t, newEnv(t, sqliteDB(t), b.NewCache(t, hoard.Config{})))
		})
	}
}

// TestPostgres runs the end-to-end scenario on a private PostgreSQL with the
// memory and Redis stores, then takes the database down and up again.
func TestPostgres(t *testing.T) {
	pg := pgtest.T(t)
	t.Run("Stores", func(t *testing.T) {
		for _, name := range []string{storefixture.Memory, storefixture.Redis} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				db := postgresDB(t, pg.NewDatabase(t))
				scenario(t, newEnv(t, db, storefixture.Shared(t, name).NewCache(t, hoard.Config{})))
			})
		}
	})
	t.Run("DatabaseDown", func(t *testing.T) {
		db := postgresDB(t, pg.NewDatabase(t))
		e := newEnv(t, db, storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{}))
		e.want(e.get("/health/ready"), http.StatusOK)
		e.prime("/api/v1/widgets/1")
		pg.Kill()
		r := e.want(e.get("/health/ready"), http.StatusServiceUnavailable)
		if d := decode[map[string]string](t, r)["detail"]; !strings.Contains(d, "database unreachable") {
			t.Fatalf("%v; want a detail naming the database", r)
		}
		// Cached answers are still served; uncached ones fail with 503,
		// never a 500.
		e.hit("/api/v1/widgets/1")
		e.want(e.get("/api/v1/widgets/2"), http.StatusServiceUnavailable)
		e.want(e.do(http.MethodPatch, "/api/v1/widgets/1", `{"price": 1}`), http.StatusServiceUnavailable)
		if err := pg.Restart(); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, e, "/health/ready", http.StatusOK, 15*time.Second)
		e.miss("/api/v1/widgets/2")
		e.want(e.do(http.MethodPatch, "/api/v1/widgets/1", `{"price": 1}`), http.StatusOK)
		if w := decode[widget](t, e.miss("/api/v1/widgets/1")); w.Price != 1 {
			t.Fatalf("after the outage, widget 1 = %+v; want price 1", w)
		}
	})
}

// TestTTL: a row changed behind the cache's back shows once the TTL has
// passed (DEFAULT_CACHE_EXPIRATION, the TTL of GET /users/{username}).
func TestTTL(t *testing.T) {
	for _, b := range storefixture.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, sqliteDB(t), b.NewCache(t, hoard.Config{DefaultTTL: time.Second}))
			e.miss("/api/v1/users/alice")
			e.exec(`UPDATE users SET name = $1 WHERE username = $2`, "Changed Directly", "alice")
			start := time.Now()
			if u := decode[user](t, e.hit("/api/v1/users/alice")); u.Name != "Alice Liddell" {
				t.Fatalf("before the TTL: %+v; want the cached name", u)
			}
			for {
				r := e.want(e.get("/api/v1/users/alice"), http.StatusOK)
				if !r.hit() {
					if u := decode[user](t, r); u.Name != "Changed Directly" {
						t.Fatalf("after the TTL: %+v; want the database's name", u)
					}
					break
				}
				if time.Since(start) > 5*time.Second {
					t.Fatalf("still a hit %v after a 1 s TTL: %v", time.Since(start), r)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// scenario is the end-to-end check of the demo's routes on one database and store: a
// GET is a miss then a hit; a row changed directly stays invisible until a
// write through the API; every write route makes its item and listings
// fresh; a post refreshes every page of its user's listing and no other
// user's.
func scenario(t *testing.T, env *testEnv) {
	const (
		w1, w2, w3, w4 = "/api/v1/widgets/1", "/api/v1/widgets/2", "/api/v1/widgets/3", "/api/v1/widgets/4"
		widgets        = "/api/v1/widgets"
		widgets2       = "/api/v1/widgets?page=2"
		alice          = "/api/v1/users/alice/posts"
		alice1         = "/api/v1/users/alice/posts?page=1&items_per_page=2"
		alice2         = "/api/v1/users/alice/posts?items_per_page=2&page=2"
		bob            = "/api/v1/users/bob/posts"
		bob1           = "/api/v1/users/bob/posts?items_per_page=1"
	)

	t.Run("MissThenHit", func(t *testing.T) {
		e := env.with(t)
		for _, p := range []string{w1, widgets, widgets2, "/api/v1/users/alice", alice, alice2, "/api/v1/users/alice/posts/1"} {
			first := e.miss(p)
			second := e.hit(p)
			if string(first.Body) != string(second.Body) || first.Header.Get("Etag") != second.Header.Get("Etag") {
				t.Fatalf("hit differs from miss:\n%v\n%v", first, second)
			}
		}
		// The default page and ?page=1 are different keys but the same data.
		l := decode[list[widget]](t, e.hit(widgets))
		if len(l.Data) != 10 || l.TotalCount != int64(len(seedWidgets)) || !l.HasMore || l.Page != 1 || l.ItemsPerPage != 10 {
			t.Fatalf("first page: %d items, %+v", len(l.Data), l)
		}
		l = decode[list[widget]](t, e.hit(widgets2))
		if len(l.Data) != len(seedWidgets)-10 || l.HasMore || l.Page != 2 {
			t.Fatalf("second page: %d items, has_more %v", len(l.Data), l.HasMore)
		}
	})

	t.Run("DirectChangeInvisibleUntilWrite", func(t *testing.T) {
		e := env.with(t)
		e.prime(w2, widgets)
		e.exec(`UPDATE widgets SET name = $1 WHERE id = $2`, "Changed Directly", 2)
		if w := decode[widget](t, e.hit(w2)); w.Name != "Gizmo" {
			t.Fatalf("cached widget 2 = %+v; want the cached name Gizmo", w)
		}
		if l := decode[list[widget]](t, e.hit(widgets)); l.Data[1].Name != "Gizmo" {
			t.Fatalf("cached listing shows %q; want Gizmo", l.Data[1].Name)
		}
		// PATCH through the API: item and listings are read again.
		r := decode[widget](t, e.want(e.do(http.MethodPatch, w2, `{"price": 3.25}`), http.StatusOK))
		if r.Name != "Changed Directly" || r.Price != 3.25 {
			t.Fatalf("PATCH answered %+v", r)
		}
		if w := decode[widget](t, e.miss(w2)); w.Name != "Changed Directly" || w.Price != 3.25 || !w.UpdatedAt.After(w.CreatedAt) {
			t.Fatalf("after PATCH: %+v", w)
		}
		if l := decode[list[widget]](t, e.miss(widgets)); l.Data[1].Name != "Changed Directly" || l.Data[1].Price != 3.25 {
			t.Fatalf("listing after PATCH: %+v", l.Data[1])
		}
		e.hit(w2)
	})

	t.Run("CreateWidget", func(t *testing.T) {
		e := env.with(t)
		e.prime(widgets, widgets2)
		r := e.want(e.do(http.MethodPost, widgets, `{"name": "Fresh", "price": 5}`), http.StatusCreated)
		w := decode[widget](t, r)
		if w.ID != int64(len(seedWidgets))+1 || w.Name != "Fresh" || w.Description != "" || r.Header.Get("Location") != widgets+"/"+strconv.FormatInt(w.ID, 10) {
			t.Fatalf("POST answered %v", r)
		}
		l := decode[list[widget]](t, e.miss(widgets2))
		if l.TotalCount != int64(len(seedWidgets))+1 || l.Data[len(l.Data)-1].Name != "Fresh" {
			t.Fatalf("page 2 after POST: %+v", l)
		}
		if l := decode[list[widget]](t, e.miss(widgets)); l.TotalCount != int64(len(seedWidgets))+1 {
			t.Fatalf("page 1 after POST: total %d", l.TotalCount)
		}
		e.miss(widgets + "/" + strconv.FormatInt(w.ID, 10))
	})

	t.Run("PutWidget", func(t *testing.T) {
		e := env.with(t)
		e.prime(w3, widgets)
		e.want(e.do(http.MethodPut, w3, `{"name": "Replaced", "price": 1}`), http.StatusOK)
		if w := decode[widget](t, e.miss(w3)); w.Name != "Replaced" || w.Price != 1 || w.Description != "" {
			t.Fatalf("after PUT: %+v", w)
		}
		if l := decode[list[widget]](t, e.miss(widgets)); l.Data[2].Name != "Replaced" {
			t.Fatalf("listing after PUT: %+v", l.Data[2])
		}
	})

	t.Run("DeleteWidget", func(t *testing.T) {
		e := env.with(t)
		e.prime(w4, widgets)
		e.want(e.do(http.MethodDelete, w4, ""), http.StatusOK)
		r := e.want(e.get(w4), http.StatusNotFound)
		if r.hit() {
			t.Fatalf("%v: a deleted widget served from the cache", r)
		}
		l := decode[list[widget]](t, e.miss(widgets))
		if slices.ContainsFunc(l.Data, func(w widget) bool { return w.ID == 4 }) || l.TotalCount != int64(len(seedWidgets)) {
			t.Fatalf("listing after DELETE still has widget 4 or a wrong total: %+v", l)
		}
		e.want(e.do(http.MethodDelete, w4, ""), http.StatusNotFound)
		// A 404 is not cached.
		e.want(e.get(w4), http.StatusNotFound)
		if r := e.get(w4); r.hit() {
			t.Fatalf("%v: a 404 was cached", r)
		}
	})

	t.Run("CreateUser", func(t *testing.T) {
		e := env.with(t)
		e.want(e.get("/api/v1/users/carol"), http.StatusNotFound)
		r := e.want(e.do(http.MethodPost, "/api/v1/users", `{"username": "carol", "name": "Carol"}`), http.StatusCreated)
		if u := decode[user](t, r); u.Username != "carol" || u.ID == 0 {
			t.Fatalf("POST answered %v", r)
		}
		if u := decode[user](t, e.miss("/api/v1/users/carol")); u.Name != "Carol" {
			t.Fatalf("GET after POST: %+v", u)
		}
		e.hit("/api/v1/users/carol")
		if l := decode[list[post]](t, e.miss("/api/v1/users/carol/posts")); len(l.Data) != 0 || l.Data == nil || l.TotalCount != 0 {
			t.Fatalf("carol's posts: %s", e.get("/api/v1/users/carol/posts").Body)
		}
	})

	t.Run("CreatePost", func(t *testing.T) {
		e := env.with(t)
		e.prime(alice, alice1, alice2, bob, bob1)
		before := decode[list[post]](t, e.hit(alice))
		r := e.want(e.do(http.MethodPost, alice, `{"title": "New post", "text": "Line one\nline two"}`), http.StatusCreated)
		p := decode[post](t, r)
		if p.CreatedByUserID != before.Data[0].CreatedByUserID || p.Text != "Line one\nline two" {
			t.Fatalf("POST answered %v", r)
		}
		// Every page of alice's listing is fresh ...
		for _, path := range []string{alice, alice1, alice2} {
			if l := decode[list[post]](t, e.miss(path)); l.TotalCount != before.TotalCount+1 {
				t.Fatalf("%s after POST: total %d, want %d", path, l.TotalCount, before.TotalCount+1)
			}
		}
		if l := decode[list[post]](t, e.hit(alice2)); l.Data[len(l.Data)-1].Title != "New post" {
			t.Fatalf("alice page 2 ends with %+v", l.Data[len(l.Data)-1])
		}
		// ... and bob's stay cached.
		e.hit(bob)
		e.hit(bob1)
		e.miss(alice + "/" + strconv.FormatInt(p.ID, 10))
	})

	t.Run("PatchPost", func(t *testing.T) {
		e := env.with(t)
		const item = alice + "/1"
		e.prime(item, alice, alice1, bob)
		e.want(e.do(http.MethodPatch, item, `{"title": "Retitled"}`), http.StatusOK)
		if p := decode[post](t, e.miss(item)); p.Title != "Retitled" || p.Text != "It was much pleasanter at home." {
			t.Fatalf("after PATCH: %+v", p)
		}
		for _, path := range []string{alice, alice1} {
			if l := decode[list[post]](t, e.miss(path)); l.Data[0].Title != "Retitled" {
				t.Fatalf("%s after PATCH: %+v", path, l.Data[0])
			}
		}
		e.hit(bob)
		// Another user's path to alice's post: 404, and nothing changes.
		e.want(e.do(http.MethodPatch, "/api/v1/users/bob/posts/1", `{"title": "Hijacked"}`), http.StatusNotFound)
		e.want(e.get("/api/v1/users/bob/posts/1"), http.StatusNotFound)
		if p := decode[post](t, e.hit(item)); p.Title != "Retitled" {
			t.Fatalf("after bob's PATCH: %+v", p)
		}
	})

	t.Run("DeletePost", func(t *testing.T) {
		e := env.with(t)
		const item = alice + "/2"
		// Another user's path to alice's post: 404, and it stays. (The
		// failed write still invalidates bob's listings: hoard invalidates
		// whatever the status, which is safe.)
		e.want(e.do(http.MethodDelete, "/api/v1/users/bob/posts/2", ""), http.StatusNotFound)
		e.prime(item, alice, alice2, bob)
		before := decode[list[post]](t, e.hit(alice))
		e.want(e.do(http.MethodDelete, item, ""), http.StatusOK)
		if r := e.want(e.get(item), http.StatusNotFound); r.hit() {
			t.Fatalf("%v: a deleted post served from the cache", r)
		}
		if l := decode[list[post]](t, e.miss(alice)); l.TotalCount != before.TotalCount-1 {
			t.Fatalf("alice's posts after DELETE: total %d, want %d", l.TotalCount, before.TotalCount-1)
		}
		e.miss(alice2)
		e.hit(bob)
	})

	t.Run("RequestLog", func(t *testing.T) {
		e := env.with(t)
		r := e.get(w1)
		var last string // the line of this request: the last one for w1
		for _, line := range strings.Split(strings.TrimSpace(e.Logs.String()), "\n") {
			if strings.Contains(line, `"msg":"request"`) && strings.Contains(line, `"path":"/api/v1/widgets/1"`) {
				last = line
			}
		}
		if last == "" {
			t.Fatalf("no request log line for %s in:\n%s", w1, e.Logs.String())
		}
		for _, field := range []string{`"method":"GET"`, `"status":200`, `"duration":`, `"cache":"` + r.CacheStatus() + `"`} {
			if !strings.Contains(last, field) {
				t.Errorf("request log line %s lacks %s", last, field)
			}
		}
	})
}

// waitStatus polls path until it answers status.
func waitStatus(t *testing.T, e *testEnv, path string, status int, timeout time.Duration) resp {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := e.get(path)
		if r.Status == status {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v; still not %d after %v", r, status, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConcurrentWrites: concurrent writes and reads on SQLite (one writer at
// a time, the others wait) all succeed, and once they are done every cached
// answer matches the database.
func TestConcurrentWrites(t *testing.T) {
	e := newEnv(t, sqliteDB(t), storefixture.Shared(t, storefixture.Memory).NewCache(t, hoard.Config{}))
	const workers, rounds = 6, 8
	var wg sync.WaitGroup
	errs := make(chan string, workers*rounds*3)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				var r resp
				switch (w + i) % 3 {
				case 0:
					r = e.do(http.MethodPatch, "/api/v1/widgets/"+strconv.Itoa(1+w%3), `{"price": `+strconv.Itoa(w*100+i)+`}`)
				case 1:
					r = e.do(http.MethodPost, "/api/v1/users/alice/posts", `{"title": "t", "text": "x"}`)
				default:
					r = e.get("/api/v1/widgets?items_per_page=5")
				}
				if r.Status >= 300 {
					errs <- r.String()
				}
				for _, p := range []string{"/api/v1/widgets/1", "/api/v1/users/alice/posts?items_per_page=100"} {
					if r := e.get(p); r.Status != http.StatusOK {
						errs <- r.String()
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error(s)
	}
	for id := 1; id <= 3; id++ {
		var price float64
		if err := e.DB.QueryRow(`SELECT price FROM widgets WHERE id = $1`, id).Scan(&price); err != nil {
			t.Fatal(err)
		}
		if w := decode[widget](t, e.want(e.get("/api/v1/widgets/"+strconv.Itoa(id)), http.StatusOK)); w.Price != price {
			t.Errorf("widget %d: served price %v, database has %v", id, w.Price, price)
		}
	}
	var n int64
	e.DB.QueryRow(`SELECT COUNT(*) FROM posts p JOIN users u ON u.id = p.created_by_user_id WHERE u.username = 'alice'`).Scan(&n)
	if l := decode[list[post]](t, e.want(e.get("/api/v1/users/alice/posts?items_per_page=100"), http.StatusOK)); l.TotalCount != n {
		t.Errorf("alice's posts: served total %d, database has %d", l.TotalCount, n)
	}
}
