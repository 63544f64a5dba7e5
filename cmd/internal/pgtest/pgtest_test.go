package pgtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestServer(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	if s.Port == 5432 || s.Host != "127.0.0.1" {
		t.Fatalf("listens on %s; want 127.0.0.1 and never 5432", s.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	u1 := s.NewDatabase(t)
	u2 := s.NewDatabase(t)
	if u1 == u2 {
		t.Fatalf("NewDatabase returned %s twice", u1)
	}
	// Databases are separate: a table made in one is absent from the other.
	exec := func(u, sql string) error {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(u1, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := exec(u2, "SELECT * FROM t"); err == nil {
		t.Fatal("table t of one database is visible in another")
	}

	// Kill and Restart keep the data.
	s.Kill()
	if err := exec(u1, "SELECT 1"); err == nil {
		t.Fatal("query succeeded on a killed server")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, u1)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after Restart: count = %d, %v; want 1", n, err)
	}
	conn.Close(ctx)

	dir := s.Dir
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Stop left %s behind (%v)", dir, err)
	}
	if err := s.ping(ctx); err == nil {
		t.Fatal("server answers after Stop")
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestFindBin(t *testing.T) {
	d, err := FindBin()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"initdb", "postgres"} {
		if !isExec(d + "/" + b) {
			t.Errorf("%s/%s is not executable", d, b)
		}
	}
}
