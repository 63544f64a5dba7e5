package main

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// The demo's resources, as JSON.

type widget struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Price       float64   `json:"price"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

type user struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
}

type post struct {
	ID              int64     `json:"id"`
	Title           string    `json:"title"`
	Text            string    `json:"text"`
	CreatedByUserID int64     `json:"created_by_user_id"`
	CreatedAt       time.Time `json:"created_at"`
}

type list[T any] struct {
	Data         []T   `json:"data"`
	TotalCount   int64 `json:"total_count"`
	Page         int   `json:"page"`
	ItemsPerPage int   `json:"items_per_page"`
	HasMore      bool  `json:"has_more"`
}

// Field rules.
var (
	widgetName        = textRule{min: 1, max: 100}
	widgetDescription = textRule{min: 0, max: 1000, multiline: true}
	userName          = textRule{min: 1, max: 100}
	postTitle         = textRule{min: 1, max: 100}
	postText          = textRule{min: 1, max: 10000, multiline: true}
)

const maxPrice = 1e9

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

const widgetColumns = `id, name, price, description, created_at, updated_at`

func scanWidget(s scanner) (widget, error) {
	var w widget
	err := s.Scan(&w.ID, &w.Name, &w.Price, &w.Description, &w.CreatedAt, &w.UpdatedAt)
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	return w, err
}

const postColumns = `id, title, text, created_by_user_id, created_at`

func scanPost(s scanner) (post, error) {
	var p post
	err := s.Scan(&p.ID, &p.Title, &p.Text, &p.CreatedByUserID, &p.CreatedAt)
	p.CreatedAt = p.CreatedAt.UTC()
	return p, err
}

func widgetID(r *http.Request) (int64, error) { return parseID("widget_id", r.PathValue("widget_id")) }

func widgetNotFound(id int64) error { return notFound("widget %d not found", id) }

// --- widgets ------------------------------------------------------------------

func (s *server) createWidget(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	obj, err := readObject(w, r, "name", "price", "description")
	if err != nil {
		return err
	}
	name, err := obj.str("name", true, widgetName)
	if err != nil {
		return err
	}
	price, err := obj.number("price", true, 0, maxPrice)
	if err != nil {
		return err
	}
	desc, err := obj.str("description", false, widgetDescription)
	if err != nil {
		return err
	}
	if desc == nil {
		desc = new(string)
	}
	now := dbNow()
	wd, err := scanWidget(s.db.QueryRowContext(r.Context(),
		`INSERT INTO widgets (name, price, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING `+widgetColumns,
		*name, *price, *desc, now))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/widgets/"+strconv.FormatInt(wd.ID, 10))
	writeJSON(w, http.StatusCreated, wd)
	return nil
}

func (s *server) getWidget(w http.ResponseWriter, r *http.Request) error {
	id, err := widgetID(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	wd, err := scanWidget(s.db.QueryRowContext(r.Context(), `SELECT `+widgetColumns+` FROM widgets WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return widgetNotFound(id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wd)
	return nil
}

// putWidget replaces a widget: name and price are required, a missing
// description becomes "".
func (s *server) putWidget(w http.ResponseWriter, r *http.Request) error {
	return s.updateWidget(w, r, true)
}

// patchWidget changes the fields given (at least one).
func (s *server) patchWidget(w http.ResponseWriter, r *http.Request) error {
	return s.updateWidget(w, r, false)
}

func (s *server) updateWidget(w http.ResponseWriter, r *http.Request, replace bool) error {
	id, err := widgetID(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	obj, err := readObject(w, r, "name", "price", "description")
	if err != nil {
		return err
	}
	name, err := obj.str("name", replace, widgetName)
	if err != nil {
		return err
	}
	price, err := obj.number("price", replace, 0, maxPrice)
	if err != nil {
		return err
	}
	desc, err := obj.str("description", false, widgetDescription)
	if err != nil {
		return err
	}
	if replace && desc == nil {
		desc = new(string)
	}
	if name == nil && price == nil && desc == nil {
		return invalid("request body: nothing to change; give at least one of name, price, description")
	}
	// COALESCE keeps the columns a PATCH leaves out; one statement, so it
	// has committed when the response is written.
	wd, err := scanWidget(s.db.QueryRowContext(r.Context(),
		`UPDATE widgets SET name = COALESCE($1, name), price = COALESCE($2, price),
			description = COALESCE($3, description), updated_at = $4
		WHERE id = $5 RETURNING `+widgetColumns,
		name, price, desc, dbNow(), id))
	if errors.Is(err, sql.ErrNoRows) {
		return widgetNotFound(id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wd)
	return nil
}

func (s *server) deleteWidget(w http.ResponseWriter, r *http.Request) error {
	id, err := widgetID(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	res, err := s.db.ExecContext(r.Context(), `DELETE FROM widgets WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return widgetNotFound(id)
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "widget " + strconv.FormatInt(id, 10) + " deleted"})
	return nil
}

func (s *server) listWidgets(w http.ResponseWriter, r *http.Request) error {
	page, perPage, err := paging(r)
	if err != nil {
		return err
	}
	out, err := queryPage(r.Context(), s.db, page, perPage, scanWidget,
		`SELECT COUNT(*) FROM widgets`,
		`SELECT `+widgetColumns+` FROM widgets ORDER BY id LIMIT $1 OFFSET $2`)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// queryPage reads one page of a listing: the total from countSQL, the rows
// from pageSQL, whose last two placeholders are LIMIT and OFFSET (args fill
// the ones before, in both queries).
func queryPage[T any](ctx context.Context, db *sql.DB, page, perPage int, scan func(scanner) (T, error),
	countSQL, pageSQL string, args ...any) (list[T], error) {
	out := list[T]{Data: []T{}, Page: page, ItemsPerPage: perPage}
	if err := db.QueryRowContext(ctx, countSQL, args...).Scan(&out.TotalCount); err != nil {
		return out, err
	}
	offset := int64(page-1) * int64(perPage)
	rows, err := db.QueryContext(ctx, pageSQL, append(args, perPage, offset)...)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return out, err
		}
		out.Data = append(out.Data, v)
	}
	if err := rows.Err(); err != nil {
		return out, err
	}
	out.HasMore = offset+int64(len(out.Data)) < out.TotalCount
	return out, nil
}

// --- users --------------------------------------------------------------------

func (s *server) createUser(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	obj, err := readObject(w, r, "username", "name")
	if err != nil {
		return err
	}
	username, err := obj.str("username", true, textRule{min: 2, max: 20})
	if err != nil {
		return err
	}
	if err := checkUsername("username", *username); err != nil {
		return err
	}
	name, err := obj.str("name", true, userName)
	if err != nil {
		return err
	}
	u := user{Username: *username, Name: *name}
	err = s.db.QueryRowContext(r.Context(),
		`INSERT INTO users (username, name) VALUES ($1, $2) ON CONFLICT (username) DO NOTHING RETURNING id`,
		u.Username, u.Name).Scan(&u.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return errorf(http.StatusConflict, "username %s is taken", quote(u.Username))
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/users/"+u.Username)
	writeJSON(w, http.StatusCreated, u)
	return nil
}

// pathUser validates {username} and looks the user up (404 when absent).
func (s *server) pathUser(r *http.Request) (user, error) {
	u := user{Username: r.PathValue("username")}
	if err := checkUsername("username", u.Username); err != nil {
		return u, err
	}
	err := s.db.QueryRowContext(r.Context(), `SELECT id, name FROM users WHERE username = $1`, u.Username).Scan(&u.ID, &u.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return u, notFound("user %s not found", quote(u.Username))
	}
	return u, err
}

func (s *server) getUser(w http.ResponseWriter, r *http.Request) error {
	if err := checkUsername("username", r.PathValue("username")); err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	u, err := s.pathUser(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

// --- posts --------------------------------------------------------------------

// postPath validates {username} and {id} (422) before anything is read.
func postPath(r *http.Request) (int64, error) {
	if err := checkUsername("username", r.PathValue("username")); err != nil {
		return 0, err
	}
	return parseID("id", r.PathValue("id"))
}

func postNotFound(u user, id int64) error {
	return notFound("post %d of user %s not found", id, quote(u.Username))
}

func (s *server) createPost(w http.ResponseWriter, r *http.Request) error {
	if err := checkUsername("username", r.PathValue("username")); err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	obj, err := readObject(w, r, "title", "text")
	if err != nil {
		return err
	}
	title, err := obj.str("title", true, postTitle)
	if err != nil {
		return err
	}
	text, err := obj.str("text", true, postText)
	if err != nil {
		return err
	}
	u, err := s.pathUser(r)
	if err != nil {
		return err
	}
	p, err := scanPost(s.db.QueryRowContext(r.Context(),
		`INSERT INTO posts (title, text, created_by_user_id, created_at) VALUES ($1, $2, $3, $4) RETURNING `+postColumns,
		*title, *text, u.ID, dbNow()))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/users/"+u.Username+"/posts/"+strconv.FormatInt(p.ID, 10))
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func (s *server) listPosts(w http.ResponseWriter, r *http.Request) error {
	if err := checkUsername("username", r.PathValue("username")); err != nil {
		return err
	}
	page, perPage, err := paging(r)
	if err != nil {
		return err
	}
	u, err := s.pathUser(r)
	if err != nil {
		return err
	}
	out, err := queryPage(r.Context(), s.db, page, perPage, scanPost,
		`SELECT COUNT(*) FROM posts WHERE created_by_user_id = $1`,
		`SELECT `+postColumns+` FROM posts WHERE created_by_user_id = $1 ORDER BY id LIMIT $2 OFFSET $3`, u.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) getPost(w http.ResponseWriter, r *http.Request) error {
	id, err := postPath(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	u, err := s.pathUser(r)
	if err != nil {
		return err
	}
	// A post is found only under its own user: /users/bob/posts/{id} of
	// alice's post is 404.
	p, err := scanPost(s.db.QueryRowContext(r.Context(),
		`SELECT `+postColumns+` FROM posts WHERE id = $1 AND created_by_user_id = $2`, id, u.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return postNotFound(u, id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *server) patchPost(w http.ResponseWriter, r *http.Request) error {
	id, err := postPath(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	obj, err := readObject(w, r, "title", "text")
	if err != nil {
		return err
	}
	title, err := obj.str("title", false, postTitle)
	if err != nil {
		return err
	}
	text, err := obj.str("text", false, postText)
	if err != nil {
		return err
	}
	if title == nil && text == nil {
		return invalid("request body: nothing to change; give at least one of title, text")
	}
	u, err := s.pathUser(r)
	if err != nil {
		return err
	}
	p, err := scanPost(s.db.QueryRowContext(r.Context(),
		`UPDATE posts SET title = COALESCE($1, title), text = COALESCE($2, text)
		WHERE id = $3 AND created_by_user_id = $4 RETURNING `+postColumns,
		title, text, id, u.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return postNotFound(u, id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *server) deletePost(w http.ResponseWriter, r *http.Request) error {
	id, err := postPath(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	u, err := s.pathUser(r)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(r.Context(), `DELETE FROM posts WHERE id = $1 AND created_by_user_id = $2`, id, u.ID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return postNotFound(u, id)
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "post " + strconv.FormatInt(id, 10) + " deleted"})
	return nil
}
