package redis_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/redis"
)

// eachStore runs f against a standalone and a Cluster store.
func eachStore(t *testing.T, f func(t *testing.T, s *redis.Store)) {
	t.Helper()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			f(t, kind.open(t))
		})
	}
}

var storeKinds = []struct {
	name string
	open func(t testing.TB) *redis.Store
}{
	{"standalone", func(t testing.TB) *redis.Store { return NewStandaloneStore(t, redis.Options{}) }},
	{"cluster", func(t testing.TB) *redis.Store { return NewClusterStore(t, redis.Options{}) }},
}

var ctx = context.Background()

func mustSet(t *testing.T, s *redis.Store, key, val string) {
	t.Helper()
	if err := s.Set(ctx, key, []byte(val), time.Minute); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func TestGetSetAddExists(t *testing.T) {
	eachStore(t, func(t *testing.T, s *redis.Store) {
		p := t.Name() + ":"
		if v, found, err := s.Get(ctx, p+"absent"); err != nil || found || v != nil {
			t.Fatalf("Get(absent) = %q, %v, %v; want nil, false, nil", v, found, err)
		}
		bin := []byte{0, 1, 2, 255, '\r', '\n', 0}
		for _, tc := range []struct {
			key string
			val []byte
		}{
			{"bin", bin},
			{"empty", []byte{}},
			{"nilvalue", nil},
			{"big", bytes.Repeat([]byte("x"), 1<<20)},
			{"glob*?[x]\\", []byte("meta")},
		} {
			if err := s.Set(ctx, p+tc.key, tc.val, time.Minute); err != nil {
				t.Fatalf("Set(%q): %v", tc.key, err)
			}
			v, found, err := s.Get(ctx, p+tc.key)
			if err != nil || !found || !bytes.Equal(v, tc.val) {
				t.Fatalf("Get(%q) = %.20q, %v, %v; want %.20q, true, nil", tc.key, v, found, err, tc.val)
			}
			if v == nil {
				t.Fatalf("Get(%q) of a present empty value returned nil, want a non-nil empty slice", tc.key)
			}
		}

		// Set copies the value: the caller may reuse its buffer.
		buf := []byte("first")
		mustSetBytes(t, s, p+"reuse", buf)
		copy(buf, "XXXXX")
		if v, _, _ := s.Get(ctx, p+"reuse"); string(v) != "first" {
			t.Fatalf("after reusing the buffer Get = %q, want first", v)
		}

		added, err := s.Add(ctx, p+"add", []byte("one"), time.Minute)
		if err != nil || !added {
			t.Fatalf("Add(new) = %v, %v; want true, nil", added, err)
		}
		added, err = s.Add(ctx, p+"add", []byte("two"), time.Minute)
		if err != nil || added {
			t.Fatalf("Add(existing) = %v, %v; want false, nil", added, err)
		}
		if v, _, _ := s.Get(ctx, p+"add"); string(v) != "one" {
			t.Fatalf("Add overwrote: Get = %q, want one", v)
		}

		if ok, err := s.Exists(ctx, p+"add"); err != nil || !ok {
			t.Fatalf("Exists(present) = %v, %v", ok, err)
		}
		if ok, err := s.Exists(ctx, p+"absent"); err != nil || ok {
			t.Fatalf("Exists(absent) = %v, %v", ok, err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

func mustSetBytes(t *testing.T, s *redis.Store, key string, val []byte) {
	t.Helper()
	if err := s.Set(ctx, key, val, time.Minute); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func TestTTL(t *testing.T) {
	eachStore(t, func(t *testing.T, s *redis.Store) {
		p := t.Name() + ":"
		for _, ttl := range []time.Duration{0, -time.Second} {
			if err := s.Set(ctx, p+"k", []byte("v"), ttl); !errors.Is(err, hoard.ErrInvalidTTL) {
				t.Errorf("Set(ttl=%v) = %v, want ErrInvalidTTL", ttl, err)
			}
			if _, err := s.Add(ctx, p+"k", []byte("v"), ttl); !errors.Is(err, hoard.ErrInvalidTTL) {
				t.Errorf("Add(ttl=%v) = %v, want ErrInvalidTTL", ttl, err)
			}
		}
		if ok, _ := s.Exists(ctx, p+"k"); ok {
			t.Fatal("a rejected Set stored the key")
		}
		// Short TTLs, including below a millisecond, expire.
		if err := s.Set(ctx, p+"set", []byte("v"), 30*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Add(ctx, p+"add", []byte("v"), 500*time.Microsecond); err != nil {
			t.Fatal(err)
		}
		waitGone(t, s, p+"set")
		waitGone(t, s, p+"add")
		// The expired key can be added again.
		if added, err := s.Add(ctx, p+"add", []byte("v"), time.Minute); err != nil || !added {
			t.Fatalf("Add after expiry = %v, %v", added, err)
		}
	})
}

// waitGone waits until key has expired (Redis expires keys on access with
// millisecond precision; the bound only guards against a missing TTL).
func waitGone(t *testing.T, s *redis.Store, key string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, found, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q never expired: its TTL was not set", key)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGetMulti(t *testing.T) {
	eachStore(t, func(t *testing.T, s *redis.Store) {
		p := t.Name() + ":"
		// 200 keys spread over every slot range (and node on Cluster), every
		// third absent, some empty, one repeated.
		var keys []string
		var want [][]byte
		for i := range 200 {
			k := fmt.Sprintf("%sk%d", p, i)
			keys = append(keys, k)
			switch i % 3 {
			case 0:
				want = append(want, nil)
			case 1:
				mustSet(t, s, k, "v"+strconv.Itoa(i))
				want = append(want, []byte("v"+strconv.Itoa(i)))
			case 2:
				mustSet(t, s, k, "")
				want = append(want, []byte{})
			}
		}
		keys = append(keys, keys[1])
		want = append(want, want[1])

		got, err := s.GetMulti(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(keys) {
			t.Fatalf("GetMulti returned %d values for %d keys", len(got), len(keys))
		}
		for i := range keys {
			if !bytes.Equal(got[i], want[i]) || (got[i] == nil) != (want[i] == nil) {
				t.Fatalf("values[%d] (%s) = %#v, want %#v", i, keys[i], got[i], want[i])
			}
		}

		if got, err := s.GetMulti(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("GetMulti(nil) = %v, %v", got, err)
		}
	})
}

func TestDelete(t *testing.T) {
	eachStore(t, func(t *testing.T, s *redis.Store) {
		p := t.Name() + ":"
		// More keys than one UNLINK batch, across all slots, plus absent keys.
		var keys []string
		for i := range 2500 {
			keys = append(keys, fmt.Sprintf("%sk%d", p, i))
		}
		setMany(t, s, keys)
		mustSet(t, s, p+"keep", "v")
		if err := s.Delete(ctx, append(keys, p+"absent1", p+"absent2")...); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		vals, err := s.GetMulti(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if v != nil {
				t.Fatalf("%s survived Delete", keys[i])
			}
		}
		if ok, _ := s.Exists(ctx, p+"keep"); !ok {
			t.Fatal("Delete removed a key it was not given")
		}
		if err := s.Delete(ctx); err != nil {
			t.Fatalf("Delete() = %v", err)
		}
	})
}

// setMany sets every key to its own name, concurrently (auto-pipelined).
func setMany(t testing.TB, s *redis.Store, keys []string) {
	t.Helper()
	const workers = 16
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			var err error
			for i := w; i < len(keys) && err == nil; i += workers {
				err = s.Set(ctx, keys[i], []byte(keys[i]), 10*time.Minute)
			}
			errs <- err
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatalf("Set: %v", err)
		}
	}
}

func TestDeletePattern(t *testing.T) {
	eachStore(t, func(t *testing.T, s *redis.Store) {
		p := t.Name() + ":"
		// 12,000 matching keys (over every master on Cluster), and keys that
		// look alike but must survive.
		var match []string
		for i := range 12000 {
			match = append(match, fmt.Sprintf("%suser:%d:posts", p, i))
		}
		keep := []string{p + "user:1", p + "user:1:postsX", p + "users:1:posts", p + "other"}
		setMany(t, s, match)
		setMany(t, s, keep)

		n, err := s.DeletePattern(ctx, p+"user:*:posts")
		if err != nil {
			t.Fatalf("DeletePattern: %v", err)
		}
		if n != len(match) {
			t.Errorf("DeletePattern removed %d, want %d", n, len(match))
		}
		vals, err := s.GetMulti(ctx, match)
		if err != nil {
			t.Fatal(err)
		}
		left := 0
		for _, v := range vals {
			if v != nil {
				left++
			}
		}
		if left != 0 {
			t.Fatalf("%d matching keys survived DeletePattern", left)
		}
		for _, k := range keep {
			if ok, err := s.Exists(ctx, k); err != nil || !ok {
				t.Fatalf("non-matching %q was removed (%v)", k, err)
			}
		}
		// Nothing left to match.
		if n, err := s.DeletePattern(ctx, p+"user:*:posts"); err != nil || n != 0 {
			t.Fatalf("second DeletePattern = %d, %v; want 0, nil", n, err)
		}
	})
}

func TestDeletePatternMetacharacters(t *testing.T) {
	eachStore(t, func(t *testing.T, s *redis.Store) {
		p := t.Name() + ":"
		// Keys holding glob metacharacters; the pattern escapes them so they
		// match only themselves, then a trailing * as the real wildcard.
		keys := map[string]bool{ // key → must be deleted
			p + `a*b:1`:     true,
			p + `a*b:2`:     true,
			p + `aXb:1`:     false, // would match an unescaped a*b
			p + `q?:1`:      true,
			p + `qZ:1`:      false,
			p + `[x]:1`:     true,
			p + `x:1`:       false,
			p + `back\sl:1`: true,
			p + `backsl:1`:  false,
		}
		var all []string
		for k := range keys {
			all = append(all, k)
		}
		setMany(t, s, all)
		total := 0
		for _, pat := range []string{`a\*b:*`, `q\?:*`, `\[x\]:*`, `back\\sl:*`} {
			n, err := s.DeletePattern(ctx, escapeGlob(p)+pat)
			if err != nil {
				t.Fatalf("DeletePattern(%q): %v", pat, err)
			}
			total += n
		}
		want := 0
		for k, del := range keys {
			ok, err := s.Exists(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if ok == del {
				t.Errorf("key %q: present=%v after DeletePattern, want present=%v", k, ok, !del)
			}
			if del {
				want++
			}
		}
		if total != want {
			t.Errorf("DeletePattern removed %d in total, want %d", total, want)
		}
	})
}

// escapeGlob escapes Redis glob metacharacters of a literal.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func TestClose(t *testing.T) {
	eachStore(t, func(t *testing.T, s *redis.Store) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close = %v, want nil", err)
		}
		_, _, err1 := s.Get(ctx, "k")
		_, err2 := s.GetMulti(ctx, []string{"k"})
		err3 := s.Set(ctx, "k", nil, time.Second)
		_, err4 := s.Add(ctx, "k", nil, time.Second)
		err5 := s.Delete(ctx, "k")
		_, err6 := s.DeletePattern(ctx, "k*")
		_, err7 := s.Exists(ctx, "k")
		err8 := s.Ping(ctx)
		for i, err := range []error{err1, err2, err3, err4, err5, err6, err7, err8} {
			if !errors.Is(err, hoard.ErrClosed) {
				t.Errorf("call %d after Close = %v, want ErrClosed", i+1, err)
			}
		}
	})
}

func TestContextDeadline(t *testing.T) {
	// A context that is already done fails the call, whatever the Timeout.
	s := NewStandaloneStore(t, redis.Options{})
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.Get(c, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get(canceled ctx) = %v, want context.Canceled", err)
	}
}

func TestDBSelection(t *testing.T) {
	srv := StandaloneServer(t)
	s0 := NewStandaloneStore(t, redis.Options{})
	s3 := NewStandaloneStore(t, redis.Options{DB: 3})
	k := t.Name()
	mustSet(t, s3, k, "in db 3")
	if _, found, err := s0.Get(ctx, k); err != nil || found {
		t.Fatalf("DB 0 sees DB 3's key: found=%v err=%v", found, err)
	}
	if v, _, _ := s3.Get(ctx, k); string(v) != "in db 3" {
		t.Fatalf("DB 3 Get = %q", v)
	}
	// Check on the server side that the key really lives in DB 3.
	conn, err := srv.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Do("SELECT", "3"); err != nil {
		t.Fatal(err)
	}
	if v, err := conn.Do("GET", k); err != nil || v != "in db 3" {
		t.Fatalf("server DB 3 GET = %v, %v", v, err)
	}
	n, err := s3.DeletePattern(ctx, k)
	if err != nil || n != 1 {
		t.Fatalf("DeletePattern in DB 3 = %d, %v", n, err)
	}

	_, err = redis.New(ctx, redis.Options{Addrs: []string{srv.Addr}, DB: 100000, Timeout: testTimeout})
	t.Logf("DB out of range: %v", err)
	if err == nil || !strings.Contains(err.Error(), srv.Addr) || !strings.Contains(err.Error(), "DB") {
		t.Fatalf("New(DB out of range) error = %v; want one naming the address and DB", err)
	}
}

func TestAuth(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts testserver.RedisOptions
	}{
		{"password", testserver.RedisOptions{Password: "s3cret"}},
		{"username", testserver.RedisOptions{Username: "app", Password: "s3cret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.RedisT(t, tc.opts)
			s := newStore(t, redis.Options{Addrs: []string{srv.Addr}, Username: tc.opts.Username, Password: tc.opts.Password})
			mustSet(t, s, "k", "v")
			if v, _, err := s.Get(ctx, "k"); err != nil || string(v) != "v" {
				t.Fatalf("Get = %q, %v", v, err)
			}
			for _, bad := range []redis.Options{
				{Username: tc.opts.Username, Password: "wrong"},
				{Username: tc.opts.Username},
			} {
				bad.Addrs, bad.Timeout = []string{srv.Addr}, testTimeout
				s, err := redis.New(ctx, bad)
				if err == nil {
					s.Close()
					t.Fatalf("New with password %q succeeded", bad.Password)
				}
				t.Logf("error: %v", err)
				if msg := err.Error(); !strings.Contains(msg, srv.Addr) || !strings.Contains(msg, "Password") {
					t.Fatalf("New with a wrong password: error %q does not name the address and the Password", msg)
				}
			}
		})
	}
}

func TestTLS(t *testing.T) {
	srv := testserver.RedisT(t, testserver.RedisOptions{TLS: true, Password: "pw"})
	s := newStore(t, redis.Options{Addrs: []string{srv.Addr}, TLSConfig: srv.TLSConfig(), Password: "pw"})
	mustSet(t, s, "k", "over tls")
	if v, _, err := s.Get(ctx, "k"); err != nil || string(v) != "over tls" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if n, err := s.DeletePattern(ctx, "*"); err != nil || n != 1 {
		t.Fatalf("DeletePattern = %d, %v", n, err)
	}

	// Plain TCP to a TLS port, and TLS without trusting the CA, fail with a
	// message that says what to check.
	_, err := redis.New(ctx, redis.Options{Addrs: []string{srv.Addr}, Password: "pw", Timeout: time.Second})
	t.Logf("plain client on a TLS port: %v", err)
	if err == nil || !strings.Contains(err.Error(), srv.Addr) || !strings.Contains(err.Error(), "rediss://") {
		t.Fatalf("plain client on a TLS port: error %v; want one naming the address and rediss://", err)
	}
	_, err = redis.New(ctx, redis.Options{Addrs: []string{srv.Addr}, Password: "pw", TLSConfig: &tls.Config{ServerName: "127.0.0.1"}, Timeout: time.Second})
	t.Logf("untrusted certificate: %v", err)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: error %v; want one about the certificate", err)
	}
}

// TestNewErrors: options that cannot work and servers that answer but
// refuse the store fail New with what to change. (A server that does not
// answer at all does not fail New: see TestNewWhileUnreachable.)
func TestNewErrors(t *testing.T) {
	srv := StandaloneServer(t)
	for _, tc := range []struct {
		name string
		opts redis.Options
		want []string
	}{
		{"not host:port", redis.Options{Addrs: []string{"localhost"}}, []string{`"localhost"`, "host:port"}},
		{"cluster with DB", redis.Options{Addrs: []string{srv.Addr}, Cluster: true, DB: 2}, []string{"DB", "only database 0"}},
		{"cluster on standalone", redis.Options{Addrs: []string{srv.Addr}, Cluster: true}, []string{srv.Addr, "not a Redis Cluster node"}},
		{"negative timeout", redis.Options{Addrs: []string{srv.Addr}, Timeout: -1}, []string{"Timeout"}},
		{"negative pool", redis.Options{Addrs: []string{srv.Addr}, PoolSize: -1}, []string{"PoolSize"}},
		{"negative DB", redis.Options{Addrs: []string{srv.Addr}, DB: -1}, []string{"DB"}},
		{"negative MaxValueBytes", redis.Options{Addrs: []string{srv.Addr}, MaxValueBytes: -1}, []string{"MaxValueBytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.Timeout == 0 {
				tc.opts.Timeout = testTimeout
			}
			s, err := redis.New(ctx, tc.opts)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			t.Logf("error: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// slack is how much later than its Timeout a failing call may return on a
// loaded host; the test only checks that calls do not hang.
const slack = 3 * time.Second

// failFast runs op and checks that it fails within timeout+slack.
func failFast(t *testing.T, what string, timeout time.Duration, op func() error) {
	t.Helper()
	start := time.Now()
	err := op()
	if took := time.Since(start); took > timeout+slack {
		t.Errorf("%s took %v with the server down, want at most Timeout (%v) + slack", what, took, timeout)
	}
	if err == nil {
		t.Errorf("%s succeeded with the server down", what)
	}
	t.Logf("%s: %v after %v", what, err, time.Since(start).Round(time.Millisecond))
}

// recovers waits until the store answers again.
func recovers(t *testing.T, s *redis.Store) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := s.Set(ctx, "after", []byte("v"), time.Minute)
		if err == nil {
			if v, _, err := s.Get(ctx, "after"); err == nil && string(v) == "v" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// downOps are the calls checked against a dead or frozen server.
func downOps(s *redis.Store) map[string]func() error {
	return map[string]func() error{
		"Get":           func() error { _, _, err := s.Get(ctx, "k"); return err },
		"GetMulti":      func() error { _, err := s.GetMulti(ctx, []string{"k", "l"}); return err },
		"Set":           func() error { return s.Set(ctx, "k", []byte("v"), time.Minute) },
		"Add":           func() error { _, err := s.Add(ctx, "k", []byte("v"), time.Minute); return err },
		"Delete":        func() error { return s.Delete(ctx, "k", "l") },
		"DeletePattern": func() error { _, err := s.DeletePattern(ctx, "k*"); return err },
		"Exists":        func() error { _, err := s.Exists(ctx, "k"); return err },
		"Ping":          func() error { return s.Ping(ctx) },
	}
}

func TestKilledServer(t *testing.T) {
	srv := testserver.RedisT(t, testserver.RedisOptions{})
	const timeout = 200 * time.Millisecond
	s := newStore(t, redis.Options{Addrs: []string{srv.Addr}, Timeout: timeout})
	mustSet(t, s, "k", "v")
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	for name, op := range downOps(s) {
		failFast(t, name, timeout, op)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	recovers(t, s)
}

func TestPausedServer(t *testing.T) {
	srv := testserver.RedisT(t, testserver.RedisOptions{})
	const timeout = 200 * time.Millisecond
	s := newStore(t, redis.Options{Addrs: []string{srv.Addr}, Timeout: timeout})
	mustSet(t, s, "k", "v")
	mustSet(t, s, "survivor", "v") // no call touches it while paused
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	for name, op := range downOps(s) {
		failFast(t, name, timeout, op)
	}
	// Concurrent calls too (auto-pipelined on a shared connection).
	errs := make(chan error, 8)
	start := time.Now()
	for range 8 {
		go func() { _, _, err := s.Get(ctx, "k"); errs <- err }()
	}
	for range 8 {
		if err := <-errs; err == nil {
			t.Error("concurrent Get succeeded on a frozen server")
		}
	}
	if took := time.Since(start); took > timeout+slack {
		t.Errorf("concurrent Gets took %v on a frozen server", took)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	recovers(t, s)
	// The data survived the pause. ("k" may not have: a write that timed
	// out has an unknown outcome, and the Delete sent while the server was
	// frozen is pipelined, so the server runs it once it resumes.)
	if v, _, err := s.Get(ctx, "survivor"); err != nil || string(v) != "v" {
		t.Fatalf("after Resume Get = %q, %v", v, err)
	}
}
