package hoard_test

// testApp: a small in-memory "database" service with the widgets, users and
// posts routes of spec §6, mounted with hoard's route middleware exactly as
// the spec's table says. Shared by the route tests and the concurrency tests
// of this package; keep its API stable.
//
//	app := newTestApp(t, c)                       // c: a *hoard.Cache, e.g. from storefixture
//	res := app.Get(t, "/api/v1/widgets/1")        // real HTTP through app.Server
//	app.DB.SetWidget(1, func(w *testWidget) { w.Name = "changed" }) // behind the cache's back
//	app.Runs(routeGetWidget)                       // how often that handler ran
//	app.Hook(routeGetWidget, func(r *http.Request) { ... })        // pause a handler mid-request
//
// Names defined here (avoid them in other _test files of the package):
// testApp, testAppOptions, newTestApp, newTestAppWith, testDB, testWidget,
// testUser, testPost, testList, testResponse, doRequest, the route* pattern
// constants, countingStore, newCountingStore, faultyStore, newFaultyStore,
// newMemoryCache, errInjected, discardLogger.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/memory"
)

// The ServeMux patterns of the test app (spec §6), also the keys of Runs and
// Hook.
const (
	routeCreateWidget = "POST /api/v1/widgets"
	routeGetWidget    = "GET /api/v1/widgets/{widget_id}"
	routePutWidget    = "PUT /api/v1/widgets/{widget_id}"
	routePatchWidget  = "PATCH /api/v1/widgets/{widget_id}"
	routeDeleteWidget = "DELETE /api/v1/widgets/{widget_id}"
	routeListWidgets  = "GET /api/v1/widgets"
	routeCreateUser   = "POST /api/v1/users"
	routeGetUser      = "GET /api/v1/users/{username}"
	routeCreatePost   = "POST /api/v1/users/{username}/posts"
	routeListPosts    = "GET /api/v1/users/{username}/posts"
	routeGetPost      = "GET /api/v1/users/{username}/posts/{id}"
	routePatchPost    = "PATCH /api/v1/users/{username}/posts/{id}"
	routeDeletePost   = "DELETE /api/v1/users/{username}/posts/{id}"
)

// testAppRoutes returns the cache options of every route of spec §6's table
// (nil: the route is mounted without hoard). ttl, when positive, replaces
// every TTL of the table.
func testAppRoutes(ttl time.Duration) map[string]*hoard.Route {
	pick := func(d time.Duration) time.Duration {
		if ttl > 0 {
			return ttl
		}
		return d
	}
	pages := map[string]string{"page": "1", "items_per_page": "10"}
	return map[string]*hoard.Route{
		routeCreateWidget: {InvalidatePatterns: []string{"widgets:*"}},
		routeGetWidget:    {KeyPrefix: "widget", ResourceID: "widget_id", TTL: pick(600 * time.Second)},
		routePutWidget:    {KeyPrefix: "widget", ResourceID: "widget_id", InvalidatePatterns: []string{"widgets:*"}},
		routePatchWidget:  {KeyPrefix: "widget", ResourceID: "widget_id", InvalidatePatterns: []string{"widgets:*"}},
		routeDeleteWidget: {KeyPrefix: "widget", ResourceID: "widget_id", InvalidatePatterns: []string{"widgets:*"}},
		routeListWidgets: {KeyPrefix: "widgets:page_{page}:items_per_page:{items_per_page}",
			Defaults: pages, TTL: pick(60 * time.Second)},
		routeCreateUser: nil,
		routeGetUser:    {KeyPrefix: "user", ResourceID: "username", TTL: pick(0)},
		routeCreatePost: {InvalidatePatterns: []string{"{username}_posts:*"}},
		routeListPosts: {KeyPrefix: "{username}_posts:page_{page}:items_per_page:{items_per_page}",
			ResourceID: "username", Defaults: pages, TTL: pick(60 * time.Second)},
		routeGetPost:    {KeyPrefix: "{username}_post_cache", ResourceID: "id", TTL: pick(0)},
		routePatchPost:  {KeyPrefix: "{username}_post_cache", ResourceID: "id", InvalidatePatterns: []string{"{username}_posts:*"}},
		routeDeletePost: {KeyPrefix: "{username}_post_cache", ResourceID: "id", InvalidatePatterns: []string{"{username}_posts:*"}},
	}
}

// testAppOptions changes the test app; the zero value is spec §6 exactly.
type testAppOptions struct {
	// TTL, when positive, replaces the TTL of every cached route (use ≥ 2 s:
	// Memcached counts TTLs in whole seconds).
	TTL time.Duration
	// Outer, when set, wraps the whole mux (e.g. hoard.ClientCache).
	Outer func(http.Handler) http.Handler
}

// testApp is the demo service of spec §6 over an in-memory database.
type testApp struct {
	// Cache is the cache the routes use.
	Cache *hoard.Cache
	// DB is the app's database; change rows through it to act "behind the
	// cache's back".
	DB *testDB
	// Mux is the app's router (without Outer).
	Mux *http.ServeMux
	// Server serves the app (with Outer) over real HTTP; closed when the
	// test ends.
	Server *httptest.Server

	runs  map[string]*atomic.Int64 // by route pattern; fixed after construction
	hooks sync.Map                 // route pattern -> func(*http.Request)
}

// newTestApp mounts spec §6's routes on c over a freshly seeded database.
func newTestApp(t testing.TB, c *hoard.Cache) *testApp {
	t.Helper()
	return newTestAppWith(t, c, testAppOptions{})
}

// newTestAppWith is newTestApp with options.
func newTestAppWith(t testing.TB, c *hoard.Cache, opts testAppOptions) *testApp {
	t.Helper()
	app := &testApp{Cache: c, DB: newTestDB(), Mux: http.NewServeMux(), runs: map[string]*atomic.Int64{}}
	handlers := map[string]http.HandlerFunc{
		routeCreateWidget: app.createWidget,
		routeGetWidget:    app.getWidget,
		routePutWidget:    app.updateWidget,
		routePatchWidget:  app.updateWidget,
		routeDeleteWidget: app.deleteWidget,
		routeListWidgets:  app.listWidgets,
		routeCreateUser:   app.createUser,
		routeGetUser:      app.getUser,
		routeCreatePost:   app.createPost,
		routeListPosts:    app.listPosts,
		routeGetPost:      app.getPost,
		routePatchPost:    app.patchPost,
		routeDeletePost:   app.deletePost,
	}
	routes := testAppRoutes(opts.TTL)
	for _, pattern := range slices.Sorted(func(yield func(string) bool) {
		for p := range handlers {
			if !yield(p) {
				return
			}
		}
	}) {
		n := &atomic.Int64{}
		app.runs[pattern] = n
		h := handlers[pattern]
		counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			h(w, r)
		})
		rt := routes[pattern]
		if rt == nil {
			app.Mux.Handle(pattern, counted)
			continue
		}
		if err := c.Handle(app.Mux, pattern, *rt, counted); err != nil {
			t.Fatalf("testApp: Handle(%q): %v", pattern, err)
		}
	}
	var root http.Handler = app.Mux
	if opts.Outer != nil {
		root = opts.Outer(root)
	}
	app.Server = httptest.NewServer(root)
	t.Cleanup(app.Server.Close)
	return app
}

// Runs returns how many times the handler of the route pattern (one of the
// route* constants) has run.
func (a *testApp) Runs(pattern string) int64 {
	n, ok := a.runs[pattern]
	if !ok {
		panic("testApp: no route " + pattern)
	}
	return n.Load()
}

// Hook makes the handler of the route pattern call f(r) after its database
// work and before it writes its response (f may block, e.g. on a channel).
// nil removes the hook.
func (a *testApp) Hook(pattern string, f func(r *http.Request)) {
	if _, ok := a.runs[pattern]; !ok {
		panic("testApp: no route " + pattern)
	}
	if f == nil {
		a.hooks.Delete(pattern)
		return
	}
	a.hooks.Store(pattern, f)
}

func (a *testApp) hook(r *http.Request) {
	if f, ok := a.hooks.Load(r.Pattern); ok {
		f.(func(*http.Request))(r)
	}
}

// URL returns the absolute URL of path on the app's server.
func (a *testApp) URL(path string) string { return a.Server.URL + path }

// Get sends GET path to the app (header: name, value pairs).
func (a *testApp) Get(t testing.TB, path string, header ...string) testResponse {
	t.Helper()
	return doRequest(t, http.MethodGet, a.URL(path), "", header...)
}

// Do sends method path with a body (JSON text, or "") to the app.
func (a *testApp) Do(t testing.TB, method, path, body string, header ...string) testResponse {
	t.Helper()
	return doRequest(t, method, a.URL(path), body, header...)
}

// testResponse is a response as the client received it.
type testResponse struct {
	Status int
	Header http.Header
	Body   string
}

// CacheStatus returns the Cache-Status header.
func (r testResponse) CacheStatus() string { return r.Header.Get("Cache-Status") }

// JSON decodes the body into v, failing the test if it does not decode.
func (r testResponse) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.Body), v); err != nil {
		t.Fatalf("response body %q: %v", r.Body, err)
	}
}

// String summarizes the response for failure messages.
func (r testResponse) String() string {
	return fmt.Sprintf("%d %q Cache-Status=%q", r.Status, r.Body, r.CacheStatus())
}

// doRequest sends one request over real HTTP with the default client and
// reads the whole response. header holds name, value pairs. The request
// times out after 10 s.
func doRequest(t testing.TB, method, url, body string, header ...string) testResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(header)%2 != 0 {
		t.Fatalf("doRequest: header needs name, value pairs, got %q", header)
	}
	for i := 0; i < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return testResponse{Status: res.StatusCode, Header: res.Header, Body: string(b)}
}

// --- the database -----------------------------------------------------------

// testWidget is a row of the widgets table.
type testWidget struct {
	ID          int       `json:"id"`
	Name        string    `json:"name"`
	Price       float64   `json:"price"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// testUser is a row of the users table.
type testUser struct {
	ID       int    `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
}

// testPost is a row of the posts table.
type testPost struct {
	ID              int       `json:"id"`
	Title           string    `json:"title"`
	Text            string    `json:"text"`
	CreatedByUserID int       `json:"created_by_user_id"`
	CreatedAt       time.Time `json:"created_at"`
}

// testList is a page of a listing (spec §6).
type testList[T any] struct {
	Data         []T  `json:"data"`
	TotalCount   int  `json:"total_count"`
	Page         int  `json:"page"`
	ItemsPerPage int  `json:"items_per_page"`
	HasMore      bool `json:"has_more"`
}

// testDB is the app's in-memory database. Its methods are safe for
// concurrent use. newTestApp seeds it with widgets 1 "alpha", 2 "beta",
// 3 "gamma"; users 1 "alice" and 2 "bob"; posts 1 "first" and 2 "second"
// by alice.
type testDB struct {
	mu      sync.Mutex
	widgets map[int]testWidget
	users   map[string]testUser // by username
	posts   map[int]testPost
	nextID  int
}

func newTestDB() *testDB {
	db := &testDB{widgets: map[int]testWidget{}, users: map[string]testUser{}, posts: map[int]testPost{}}
	db.CreateWidget("alpha", 1.5, "the first")
	db.CreateWidget("beta", 2.5, "the second")
	db.CreateWidget("gamma", 3.5, "the third")
	db.CreateUser("alice", "Alice")
	db.CreateUser("bob", "Bob")
	db.CreatePost("alice", "first", "hello")
	db.CreatePost("alice", "second", "again")
	return db
}

func (db *testDB) id() int {
	db.nextID++
	return db.nextID
}

// CreateWidget inserts a widget and returns it.
func (db *testDB) CreateWidget(name string, price float64, description string) testWidget {
	db.mu.Lock()
	defer db.mu.Unlock()
	now := time.Now().UTC()
	w := testWidget{ID: len(db.widgets) + 1, Name: name, Price: price, Description: description, CreatedAt: now, UpdatedAt: now}
	for db.widgets[w.ID].ID != 0 {
		w.ID++
	}
	db.widgets[w.ID] = w
	return w
}

// Widget returns widget id.
func (db *testDB) Widget(id int) (testWidget, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	w, ok := db.widgets[id]
	return w, ok
}

// SetWidget changes widget id with f (and its updated_at); false if absent.
func (db *testDB) SetWidget(id int, f func(*testWidget)) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	w, ok := db.widgets[id]
	if !ok {
		return false
	}
	f(&w)
	w.ID = id
	w.UpdatedAt = time.Now().UTC()
	db.widgets[id] = w
	return true
}

// DeleteWidget deletes widget id; false if absent.
func (db *testDB) DeleteWidget(id int) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	_, ok := db.widgets[id]
	delete(db.widgets, id)
	return ok
}

// Widgets returns a page of widgets ordered by id.
func (db *testDB) Widgets(page, perPage int) testList[testWidget] {
	db.mu.Lock()
	defer db.mu.Unlock()
	var all []testWidget
	for _, w := range db.widgets {
		all = append(all, w)
	}
	slices.SortFunc(all, func(a, b testWidget) int { return a.ID - b.ID })
	return paginate(all, page, perPage)
}

func paginate[T any](all []T, page, perPage int) testList[T] {
	l := testList[T]{Data: []T{}, TotalCount: len(all), Page: page, ItemsPerPage: perPage}
	from := min((page-1)*perPage, len(all))
	to := min(from+perPage, len(all))
	l.Data = append(l.Data, all[from:to]...)
	l.HasMore = to < len(all)
	return l
}

// CreateUser inserts a user and returns it; false if the username is taken.
func (db *testDB) CreateUser(username, name string) (testUser, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if _, ok := db.users[username]; ok {
		return testUser{}, false
	}
	u := testUser{ID: len(db.users) + 1, Username: username, Name: name}
	db.users[username] = u
	return u, true
}

// User returns the user named username.
func (db *testDB) User(username string) (testUser, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	u, ok := db.users[username]
	return u, ok
}

// SetUser changes the user named username with f (not its username); false
// if absent.
func (db *testDB) SetUser(username string, f func(*testUser)) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	u, ok := db.users[username]
	if !ok {
		return false
	}
	f(&u)
	u.Username = username
	db.users[username] = u
	return true
}

// CreatePost inserts a post by the user named username; false if no such
// user.
func (db *testDB) CreatePost(username, title, text string) (testPost, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	u, ok := db.users[username]
	if !ok {
		return testPost{}, false
	}
	p := testPost{ID: len(db.posts) + 1, Title: title, Text: text, CreatedByUserID: u.ID, CreatedAt: time.Now().UTC()}
	for db.posts[p.ID].ID != 0 {
		p.ID++
	}
	db.posts[p.ID] = p
	return p, true
}

// Post returns post id of the user named username.
func (db *testDB) Post(username string, id int) (testPost, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.postLocked(username, id)
}

func (db *testDB) postLocked(username string, id int) (testPost, bool) {
	u, ok := db.users[username]
	p, found := db.posts[id]
	if !ok || !found || p.CreatedByUserID != u.ID {
		return testPost{}, false
	}
	return p, true
}

// SetPost changes post id of the user named username with f; false if
// absent.
func (db *testDB) SetPost(username string, id int, f func(*testPost)) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	p, ok := db.postLocked(username, id)
	if !ok {
		return false
	}
	f(&p)
	p.ID, p.CreatedByUserID = id, db.users[username].ID
	db.posts[id] = p
	return true
}

// DeletePost deletes post id of the user named username; false if absent.
func (db *testDB) DeletePost(username string, id int) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	if _, ok := db.postLocked(username, id); !ok {
		return false
	}
	delete(db.posts, id)
	return true
}

// Posts returns a page of the posts of the user named username, ordered by
// id; false if no such user.
func (db *testDB) Posts(username string, page, perPage int) (testList[testPost], bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	u, ok := db.users[username]
	if !ok {
		return testList[testPost]{}, false
	}
	var all []testPost
	for _, p := range db.posts {
		if p.CreatedByUserID == u.ID {
			all = append(all, p)
		}
	}
	slices.SortFunc(all, func(a, b testPost) int { return a.ID - b.ID })
	return paginate(all, page, perPage), true
}

// --- handlers ---------------------------------------------------------------

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeDetail(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"detail": fmt.Sprintf(format, args...)})
}

func pathInt(w http.ResponseWriter, r *http.Request, name string) (int, bool) {
	n, err := strconv.Atoi(r.PathValue(name))
	if err != nil || n < 1 {
		writeDetail(w, http.StatusBadRequest, "%s must be a positive integer", name)
		return 0, false
	}
	return n, true
}

func pageParams(w http.ResponseWriter, r *http.Request) (page, perPage int, ok bool) {
	get := func(name string, def int) (int, bool) {
		s := r.URL.Query().Get(name)
		if s == "" {
			return def, true
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			writeDetail(w, http.StatusUnprocessableEntity, "%s must be an integer from 1 to 100", name)
			return 0, false
		}
		return n, true
	}
	if page, ok = get("page", 1); !ok {
		return 0, 0, false
	}
	if perPage, ok = get("items_per_page", 10); !ok {
		return 0, 0, false
	}
	return page, perPage, true
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeDetail(w, http.StatusBadRequest, "invalid JSON body: %v", err)
		return false
	}
	return true
}

type widgetInput struct {
	Name        *string  `json:"name"`
	Price       *float64 `json:"price"`
	Description *string  `json:"description"`
}

func (in widgetInput) apply(w *testWidget) {
	if in.Name != nil {
		w.Name = *in.Name
	}
	if in.Price != nil {
		w.Price = *in.Price
	}
	if in.Description != nil {
		w.Description = *in.Description
	}
}

func (a *testApp) createWidget(w http.ResponseWriter, r *http.Request) {
	var in widgetInput
	if !decodeBody(w, r, &in) {
		return
	}
	if in.Name == nil || *in.Name == "" {
		writeDetail(w, http.StatusUnprocessableEntity, "name is required")
		return
	}
	var wd testWidget
	in.apply(&wd)
	wd = a.DB.CreateWidget(wd.Name, wd.Price, wd.Description)
	a.hook(r)
	writeJSON(w, http.StatusCreated, wd)
}

func (a *testApp) getWidget(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(w, r, "widget_id")
	if !ok {
		return
	}
	wd, found := a.DB.Widget(id)
	a.hook(r)
	if !found {
		writeDetail(w, http.StatusNotFound, "widget %d not found", id)
		return
	}
	writeJSON(w, http.StatusOK, wd)
}

// updateWidget serves PUT (name required) and PATCH (any subset).
func (a *testApp) updateWidget(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(w, r, "widget_id")
	if !ok {
		return
	}
	var in widgetInput
	if !decodeBody(w, r, &in) {
		return
	}
	if r.Method == http.MethodPut && (in.Name == nil || *in.Name == "") {
		writeDetail(w, http.StatusUnprocessableEntity, "name is required")
		return
	}
	found := a.DB.SetWidget(id, in.apply)
	wd, _ := a.DB.Widget(id)
	a.hook(r)
	if !found {
		writeDetail(w, http.StatusNotFound, "widget %d not found", id)
		return
	}
	writeJSON(w, http.StatusOK, wd)
}

func (a *testApp) deleteWidget(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(w, r, "widget_id")
	if !ok {
		return
	}
	found := a.DB.DeleteWidget(id)
	a.hook(r)
	if !found {
		writeDetail(w, http.StatusNotFound, "widget %d not found", id)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "Widget deleted"})
}

func (a *testApp) listWidgets(w http.ResponseWriter, r *http.Request) {
	page, perPage, ok := pageParams(w, r)
	if !ok {
		return
	}
	l := a.DB.Widgets(page, perPage)
	a.hook(r)
	writeJSON(w, http.StatusOK, l)
}

var usernameRE = regexp.MustCompile(`^[a-z0-9]{2,20}$`)

func (a *testApp) createUser(w http.ResponseWriter, r *http.Request) {
	var in struct{ Username, Name string }
	if !decodeBody(w, r, &in) {
		return
	}
	if !usernameRE.MatchString(in.Username) {
		writeDetail(w, http.StatusUnprocessableEntity, "username must match ^[a-z0-9]{2,20}$")
		return
	}
	u, ok := a.DB.CreateUser(in.Username, in.Name)
	a.hook(r)
	if !ok {
		writeDetail(w, http.StatusConflict, "username %s is taken", in.Username)
		return
	}
	writeJSON(w, http.StatusCreated, u)
}

func (a *testApp) getUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("username")
	u, ok := a.DB.User(name)
	a.hook(r)
	if !ok {
		writeDetail(w, http.StatusNotFound, "user %s not found", name)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (a *testApp) createPost(w http.ResponseWriter, r *http.Request) {
	var in struct{ Title, Text string }
	if !decodeBody(w, r, &in) {
		return
	}
	if in.Title == "" {
		writeDetail(w, http.StatusUnprocessableEntity, "title is required")
		return
	}
	name := r.PathValue("username")
	p, ok := a.DB.CreatePost(name, in.Title, in.Text)
	a.hook(r)
	if !ok {
		writeDetail(w, http.StatusNotFound, "user %s not found", name)
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

func (a *testApp) listPosts(w http.ResponseWriter, r *http.Request) {
	page, perPage, ok := pageParams(w, r)
	if !ok {
		return
	}
	name := r.PathValue("username")
	l, found := a.DB.Posts(name, page, perPage)
	a.hook(r)
	if !found {
		writeDetail(w, http.StatusNotFound, "user %s not found", name)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (a *testApp) getPost(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(w, r, "id")
	if !ok {
		return
	}
	name := r.PathValue("username")
	p, found := a.DB.Post(name, id)
	a.hook(r)
	if !found {
		writeDetail(w, http.StatusNotFound, "post %d of %s not found", id, name)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (a *testApp) patchPost(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(w, r, "id")
	if !ok {
		return
	}
	var in struct{ Title, Text *string }
	if !decodeBody(w, r, &in) {
		return
	}
	name := r.PathValue("username")
	found := a.DB.SetPost(name, id, func(p *testPost) {
		if in.Title != nil {
			p.Title = *in.Title
		}
		if in.Text != nil {
			p.Text = *in.Text
		}
	})
	p, _ := a.DB.Post(name, id)
	a.hook(r)
	if !found {
		writeDetail(w, http.StatusNotFound, "post %d of %s not found", id, name)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (a *testApp) deletePost(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(w, r, "id")
	if !ok {
		return
	}
	name := r.PathValue("username")
	found := a.DB.DeletePost(name, id)
	a.hook(r)
	if !found {
		writeDetail(w, http.StatusNotFound, "post %d of %s not found", id, name)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "Post deleted"})
}

// --- store wrappers -----------------------------------------------------------

// newMemoryCache returns a Cache over a fresh memory store wrapped by wrap
// (nil: no wrapper), with cfg (its Backend and store fields are ignored).
func newMemoryCache(t testing.TB, cfg hoard.Config, wrap func(hoard.Store) hoard.Store) *hoard.Cache {
	t.Helper()
	m, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var s hoard.Store = m
	if wrap != nil {
		s = wrap(m)
	}
	c, err := hoard.New(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// countingStore counts the calls made to the Store it wraps.
type countingStore struct {
	hoard.Store
	calls atomic.Int64
}

func newCountingStore(s hoard.Store) *countingStore { return &countingStore{Store: s} }

// Calls returns how many Store calls were made (Close not counted).
func (s *countingStore) Calls() int64 { return s.calls.Load() }

func (s *countingStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	s.calls.Add(1)
	return s.Store.Get(ctx, key)
}

func (s *countingStore) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	s.calls.Add(1)
	return s.Store.GetMulti(ctx, keys)
}

func (s *countingStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.calls.Add(1)
	return s.Store.Set(ctx, key, value, ttl)
}

func (s *countingStore) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	s.calls.Add(1)
	return s.Store.Add(ctx, key, value, ttl)
}

func (s *countingStore) Delete(ctx context.Context, keys ...string) error {
	s.calls.Add(1)
	return s.Store.Delete(ctx, keys...)
}

func (s *countingStore) DeletePattern(ctx context.Context, pattern string) (int, error) {
	s.calls.Add(1)
	return s.Store.DeletePattern(ctx, pattern)
}

func (s *countingStore) Exists(ctx context.Context, key string) (bool, error) {
	s.calls.Add(1)
	return s.Store.Exists(ctx, key)
}

func (s *countingStore) Ping(ctx context.Context) error {
	s.calls.Add(1)
	return s.Store.Ping(ctx)
}

// errInjected is what a faultyStore's failing calls return.
var errInjected = errors.New("injected store failure")

// faultyStore makes chosen calls of the Store it wraps fail with
// errInjected. Set the flags at any time (they are atomic).
type faultyStore struct {
	hoard.Store
	// FailGet fails Get and GetMulti; FailSet fails Set and Add; FailDelete
	// fails Delete and DeletePattern.
	FailGet, FailSet, FailDelete atomic.Bool
}

func newFaultyStore(s hoard.Store) *faultyStore { return &faultyStore{Store: s} }

func (s *faultyStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if s.FailGet.Load() {
		return nil, false, errInjected
	}
	return s.Store.Get(ctx, key)
}

func (s *faultyStore) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	if s.FailGet.Load() {
		return nil, errInjected
	}
	return s.Store.GetMulti(ctx, keys)
}

func (s *faultyStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.FailSet.Load() {
		return errInjected
	}
	return s.Store.Set(ctx, key, value, ttl)
}

func (s *faultyStore) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if s.FailSet.Load() {
		return false, errInjected
	}
	return s.Store.Add(ctx, key, value, ttl)
}

func (s *faultyStore) Delete(ctx context.Context, keys ...string) error {
	if s.FailDelete.Load() {
		return errInjected
	}
	return s.Store.Delete(ctx, keys...)
}

func (s *faultyStore) DeletePattern(ctx context.Context, pattern string) (int, error) {
	if s.FailDelete.Load() {
		return 0, errInjected
	}
	return s.Store.DeletePattern(ctx, pattern)
}

// discardLogger returns a logger that drops everything, for tests that make
// the cache log store failures on purpose.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
