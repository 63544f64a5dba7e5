package hoard_test

// The widget fixture of the route tests: a versioned in-memory widget table
// and its routes, cached as the demo caches its widgets:
//
//	GET /widgets/{id}                   key widget:{id}, TTL 1 min (widgetApp.TTL)
//	PUT, PATCH, DELETE /widgets/{id}    invalidate widget:{id} and "widgets:*"
//	GET /widgets?page=&items_per_page=  key widgets:page_{page}:items_per_page:{items_per_page}
//	                                    (defaults 1 and 10), TTL 1 min (widgetApp.TTL)
//	POST /widgets                       invalidates "widgets:*"
//
// A widget's version grows by one on every committed write, so an answer
// (testResponse.version) tells exactly which write it reflects. newWidgetApp
// serves the routes on a real HTTP server; widgetApp.routes mounts them
// elsewhere (localMux, newMiniServer). userRoutes adds the demo's per-user
// routes, over echo.

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
)

// widget is one row of the table.
type widget struct {
	ID          int     `json:"id"`
	Name        string  `json:"name"`
	Price       float64 `json:"price"`
	Description string  `json:"description"`
	Version     int64   `json:"version"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
}

// widgetPage is one page of the listing.
type widgetPage struct {
	Data       []widget `json:"data"`
	TotalCount int      `json:"total_count"`
}

// widgetDB is the "database": safe for concurrent use; a write is committed
// when its method returns.
type widgetDB struct {
	mu     sync.Mutex
	w      map[int]widget
	lastID int
}

// newWidgetDB returns a table of widgets 1 to n, each at version 1.
func newWidgetDB(n int) *widgetDB {
	db := &widgetDB{w: map[int]widget{}}
	for range n {
		db.Add()
	}
	return db
}

// Add commits a new widget and returns it.
func (db *widgetDB) Add() widget {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.lastID++
	w := widget{
		ID:          db.lastID,
		Name:        "widget " + strconv.Itoa(db.lastID),
		Price:       9.99,
		Description: "a widget of the route tests",
		Version:     1,
		CreatedAt:   "2026-01-01T00:00:00Z",
		UpdatedAt:   "2026-01-01T00:00:00Z",
	}
	db.w[w.ID] = w
	return w
}

func (db *widgetDB) Get(id int) (widget, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	w, ok := db.w[id]
	return w, ok
}

// Version returns the committed version of widget id.
func (db *widgetDB) Version(id int) int64 {
	w, _ := db.Get(id)
	return w.Version
}

// Bump commits a new version of widget id and returns it. Tests call it
// to change a widget behind the cache's back.
func (db *widgetDB) Bump(id int) (widget, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	w, ok := db.w[id]
	if !ok {
		return w, false
	}
	w.Version++
	w.UpdatedAt = time.Unix(1767225600+w.Version, 0).UTC().Format(time.RFC3339)
	db.w[id] = w
	return w, true
}

// Delete commits the deletion of widget id; false if it was absent.
func (db *widgetDB) Delete(id int) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	_, ok := db.w[id]
	delete(db.w, id)
	return ok
}

// Page returns page page (from 1) of the widgets in id order.
func (db *widgetDB) Page(page, perPage int) widgetPage {
	db.mu.Lock()
	defer db.mu.Unlock()
	p := widgetPage{Data: []widget{}, TotalCount: len(db.w)}
	ids := slices.Sorted(maps.Keys(db.w))
	for _, id := range ids[min((page-1)*perPage, len(ids)):min(page*perPage, len(ids))] {
		p.Data = append(p.Data, db.w[id])
	}
	return p
}

// The patterns of the fixture's GET routes, for Runs.
const (
	widgetGet  = "GET /widgets/{id}"
	widgetList = "GET /widgets"
)

// widgetGetRoute caches GET /widgets/{id}.
var widgetGetRoute = hoard.Route{KeyPrefix: "widget", TTL: time.Minute}

// widgetApp serves DB through a Cache.
type widgetApp struct {
	DB *widgetDB
	// TTL, when positive, replaces the TTL of the cached routes (use ≥ 2 s:
	// Memcached counts TTLs in whole seconds).
	TTL time.Duration

	// afterRead, when set, runs in the GET handler after it read the
	// database and before it writes the response (to pause it).
	afterRead atomic.Pointer[func(r *http.Request, w widget)]

	// Set by newWidgetApp: the routes on a real HTTP server (Runs, Get, Do,
	// URL), and a keep-alive client for many concurrent requests (send).
	*miniServer
	Client *http.Client
}

// newWidgetApp serves db (a new one of 20 widgets when nil) through c on a
// real HTTP server.
func newWidgetApp(t testing.TB, c *hoard.Cache, db *widgetDB) *widgetApp {
	t.Helper()
	if db == nil {
		db = newWidgetDB(20)
	}
	a := &widgetApp{DB: db}
	a.miniServer = newMiniServer(t, c, a.routes()...)
	a.Client = keepAliveClient(t)
	return a
}

// routes returns the fixture's routes.
func (a *widgetApp) routes() []miniRoute {
	get := widgetGetRoute
	list := hoard.Route{KeyPrefix: "widgets:page_{page}:items_per_page:{items_per_page}",
		Defaults: map[string]string{"page": "1", "items_per_page": "10"}, TTL: time.Minute}
	if a.TTL > 0 {
		get.TTL, list.TTL = a.TTL, a.TTL
	}
	write := &hoard.Route{KeyPrefix: "widget", InvalidatePatterns: []string{"widgets:*"}}
	return []miniRoute{
		{pattern: widgetGet, rt: &get, h: a.getWidget},
		{pattern: "PUT /widgets/{id}", rt: write, h: a.writeWidget},
		{pattern: "PATCH /widgets/{id}", rt: write, h: a.writeWidget},
		{pattern: "DELETE /widgets/{id}", rt: write, h: a.writeWidget},
		{pattern: widgetList, rt: &list, h: a.listWidgets},
		{pattern: "POST /widgets", rt: &hoard.Route{InvalidatePatterns: []string{"widgets:*"}}, h: a.createWidget},
	}
}

var widgetNotFound = map[string]string{"detail": "widget not found"}

func (a *widgetApp) getWidget(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	wd, ok := a.DB.Get(id)
	if !ok {
		writeJSON(w, http.StatusNotFound, widgetNotFound)
		return
	}
	if h := a.afterRead.Load(); h != nil {
		(*h)(r, wd)
	}
	writeJSON(w, http.StatusOK, wd)
}

// writeWidget serves PUT and PATCH (a new version) and DELETE. It commits
// before it writes anything (the handler's side of read-your-writes).
func (a *widgetApp) writeWidget(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	if r.Method == http.MethodDelete {
		if !a.DB.Delete(id) {
			writeJSON(w, http.StatusNotFound, widgetNotFound)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"message": "widget deleted"})
		return
	}
	wd, ok := a.DB.Bump(id)
	if !ok {
		writeJSON(w, http.StatusNotFound, widgetNotFound)
		return
	}
	writeJSON(w, http.StatusOK, wd)
}

func (a *widgetApp) createWidget(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusCreated, a.DB.Add())
}

func (a *widgetApp) listWidgets(w http.ResponseWriter, r *http.Request) {
	page, perPage := 1, 10
	for name, v := range map[string]*int{"page": &page, "items_per_page": &perPage} {
		if s := r.URL.Query().Get(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"detail": name + " must be a positive integer"})
				return
			}
			*v = n
		}
	}
	writeJSON(w, http.StatusOK, a.DB.Page(page, perPage))
}

// widgetPath returns the path of widget id.
func widgetPath(id int) string { return "/widgets/" + strconv.Itoa(id) }

// version returns the version of the widget that an answer of the fixture
// holds, or -1 when it holds none (a listing, an error, a HEAD).
func (r testResponse) version() int64 {
	var w struct {
		Version *int64 `json:"version"`
	}
	if json.Unmarshal([]byte(r.Body), &w) != nil || w.Version == nil {
		return -1
	}
	return *w.Version
}

// send sends one request with the app's client; it is safe to call from
// any goroutine.
func (a *widgetApp) send(method, path string) (testResponse, error) {
	return sendRequest(a.Client, method, a.URL+path)
}

// get and put fail the test on a transport error or a non-200 answer; call
// them from the test goroutine only.
func (a *widgetApp) get(t testing.TB, id int) testResponse {
	t.Helper()
	return a.must(t, http.MethodGet, id)
}

func (a *widgetApp) put(t testing.TB, id int) testResponse {
	t.Helper()
	return a.must(t, http.MethodPut, id)
}

func (a *widgetApp) must(t testing.TB, method string, id int) testResponse {
	t.Helper()
	r, err := a.send(method, widgetPath(id))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != http.StatusOK {
		t.Fatalf("%s %s: %v", method, widgetPath(id), r)
	}
	return r
}

// keepAliveClient returns a client with room for many idle connections.
func keepAliveClient(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// userRoutes are the demo's per-user routes, answered by echo: a user
// (key user:{username}), the user's posts listing (key
// {username}_posts:page_{page}:items_per_page:{items_per_page}:{username}),
// one post (key {username}_post_cache:{id}), and creating a post, which
// invalidates "{username}_posts:*".
func userRoutes() []miniRoute {
	pages := map[string]string{"page": "1", "items_per_page": "10"}
	return []miniRoute{
		{pattern: "GET /users/{username}", rt: &hoard.Route{KeyPrefix: "user"}, h: echo("username")},
		{pattern: "GET /users/{username}/posts", h: echo("username"), rt: &hoard.Route{
			KeyPrefix: "{username}_posts:page_{page}:items_per_page:{items_per_page}", ResourceID: "username", Defaults: pages}},
		{pattern: "POST /users/{username}/posts", rt: &hoard.Route{InvalidatePatterns: []string{"{username}_posts:*"}}, h: echo("username")},
		{pattern: "GET /users/{username}/posts/{id}", rt: &hoard.Route{KeyPrefix: "{username}_post_cache"}, h: echo("username", "id")},
	}
}
