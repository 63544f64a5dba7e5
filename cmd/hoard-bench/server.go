package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hoardcache/hoard"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go
)

// The bench serves its own copy of the demo's widget routes: the demo's
// handlers live in package main (cmd/hoard-demo) and cannot be imported.
// The routes below use the demo's hoard.Route options, its SQLite settings
// (DSN pragmas, 4 connections) and its JSON encoding (json.Marshal plus a
// newline, Content-Type and Content-Length), over a widgets table of its own.

// widgetRoute and putRoute are the demo's options for
// GET/PUT /api/v1/widgets/{widget_id} (cmd/hoard-demo/app.go).
var (
	widgetRoute = hoard.Route{KeyPrefix: "widget", ResourceID: "widget_id", TTL: 600 * time.Second}
	putRoute    = hoard.Route{KeyPrefix: "widget", ResourceID: "widget_id", InvalidatePatterns: []string{"widgets:*"}}
)

const (
	getPattern = "GET /api/v1/widgets/{widget_id}"
	putPattern = "PUT /api/v1/widgets/{widget_id}"
	widgetPath = "/api/v1/widgets/"
)

// widget is the demo's widget (spec §6); the timestamps are kept as the
// text the database holds.
type widget struct {
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	Price       float64 `json:"price"`
	Description string  `json:"description"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
}

const widgetColumns = `id, name, price, description, created_at, updated_at`

func scanWidget(row interface{ Scan(...any) error }) (widget, error) {
	var w widget
	err := row.Scan(&w.ID, &w.Name, &w.Price, &w.Description, &w.CreatedAt, &w.UpdatedAt)
	return w, err
}

// encodeWidget is the demo's writeJSON body: JSON and a newline.
func encodeWidget(w widget) []byte {
	b, _ := json.Marshal(w)
	return append(b, '\n')
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func writeDetail(w http.ResponseWriter, status int, detail string) {
	b, _ := json.Marshal(map[string]string{"detail": detail})
	writeBody(w, status, append(b, '\n'))
}

// widgetDB is the SQLite database of the working set.
type widgetDB struct {
	db *sql.DB
	n  int
	// bodies[id-1] is widget id's JSON as the GET handler writes it (the
	// ceiling handler serves these bytes).
	bodies [][]byte
}

// openWidgetDB creates an SQLite file in dir with n widgets, ids 1..n, with
// the demo's DSN pragmas and pool size.
func openWidgetDB(ctx context.Context, dir string, n int) (*widgetDB, error) {
	path := filepath.Join(dir, "bench.db")
	dsn := path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(0)
	if _, err := db.ExecContext(ctx, `CREATE TABLE widgets (
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		name        TEXT NOT NULL,
		price       REAL NOT NULL,
		description TEXT NOT NULL DEFAULT '',
		created_at  TEXT NOT NULL,
		updated_at  TEXT NOT NULL)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("create widgets in %s: %w", path, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		db.Close()
		return nil, err
	}
	defer tx.Rollback()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).Format(time.RFC3339Nano)
	for i := 1; i <= n; i++ {
		if _, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, name, price, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			i, fmt.Sprintf("Widget %d", i), float64(i%10000)/100+0.99, "A widget of the benchmark's working set, with a description of typical length.", now, now); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		db.Close()
		return nil, err
	}
	w := &widgetDB{db: db, n: n, bodies: make([][]byte, n)}
	rows, err := db.QueryContext(ctx, `SELECT `+widgetColumns+` FROM widgets ORDER BY id`)
	if err != nil {
		db.Close()
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		wd, err := scanWidget(rows)
		if err != nil {
			db.Close()
			return nil, err
		}
		w.bodies[wd.ID-1] = encodeWidget(wd)
	}
	if err := rows.Err(); err != nil {
		db.Close()
		return nil, err
	}
	return w, nil
}

func (d *widgetDB) Close() error { return d.db.Close() }

// id parses the widget_id wildcard; ok is false (and a 404 written) when it
// is not a widget of the working set.
func (d *widgetDB) id(w http.ResponseWriter, r *http.Request) (int, bool) {
	id, err := strconv.Atoi(r.PathValue("widget_id"))
	if err != nil || id < 1 || id > d.n {
		writeDetail(w, http.StatusNotFound, "widget not found")
		return 0, false
	}
	return id, true
}

// getWidget is the demo's GET handler: one SELECT by primary key, encoded.
func (d *widgetDB) getWidget(w http.ResponseWriter, r *http.Request) {
	id, ok := d.id(w, r)
	if !ok {
		return
	}
	wd, err := scanWidget(d.db.QueryRowContext(r.Context(), `SELECT `+widgetColumns+` FROM widgets WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		writeDetail(w, http.StatusNotFound, "widget not found")
		return
	}
	if err != nil {
		writeDetail(w, http.StatusServiceUnavailable, "database: "+err.Error())
		return
	}
	writeBody(w, http.StatusOK, encodeWidget(wd))
}

// putWidget replaces a widget's name, price and description, in one
// statement, and answers the new widget.
func (d *widgetDB) putWidget(w http.ResponseWriter, r *http.Request) {
	id, ok := d.id(w, r)
	if !ok {
		return
	}
	var in struct {
		Name        string  `json:"name"`
		Price       float64 `json:"price"`
		Description string  `json:"description"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil || in.Name == "" {
		writeDetail(w, http.StatusUnprocessableEntity, "request body: want {\"name\": …, \"price\": …}")
		return
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	wd, err := scanWidget(d.db.QueryRowContext(r.Context(),
		`UPDATE widgets SET name = $1, price = $2, description = $3, updated_at = $4 WHERE id = $5 RETURNING `+widgetColumns,
		in.Name, in.Price, in.Description, now, id))
	if err != nil {
		writeDetail(w, http.StatusServiceUnavailable, "database: "+err.Error())
		return
	}
	writeBody(w, http.StatusOK, encodeWidget(wd))
}

// ceiling writes the same bytes as a cached widget, with no database and no
// middleware.
func (d *widgetDB) ceiling(w http.ResponseWriter, r *http.Request) {
	id, ok := d.id(w, r)
	if !ok {
		return
	}
	writeBody(w, http.StatusOK, d.bodies[id-1])
}

// rawGet is a handler that does one bare store GET per request (get) and
// writes the bytes it got: the cost of the store itself.
func (d *widgetDB) rawGet(get func(ctx context.Context, id int) ([]byte, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := d.id(w, r)
		if !ok {
			return
		}
		b, err := get(r.Context(), id)
		if err != nil {
			writeDetail(w, http.StatusBadGateway, "store: "+err.Error())
			return
		}
		writeBody(w, http.StatusOK, b)
	}
}

// liveServer is an HTTP server under test on a free loopback port, in this
// process.
type liveServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

func startServer(h http.Handler) (*liveServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &liveServer{
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln)
	}()
	return s, nil
}

func (s *liveServer) URL() string { return "http://" + s.ln.Addr().String() }

func (s *liveServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.done
}
