package stores_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/storefixture"
	"github.com/hoardcache/hoard/internal/testserver"
	"github.com/hoardcache/hoard/memcached"
	"github.com/hoardcache/hoard/memory"
	"github.com/hoardcache/hoard/redis"
	"github.com/hoardcache/hoard/stores"
)

func TestMain(m *testing.M) { storefixture.Main(m) }

// TestOpenEachBackend: Open builds the store Backend names, which bounds
// its calls by the Cache's Timeout, and the Cache over it works.
func TestOpenEachBackend(t *testing.T) {
	ctx := context.Background()
	for _, b := range storefixture.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			c := b.Open(t, b.Config(t))
			var want time.Duration
			switch s := c.Store().(type) {
			case *memory.Store:
				want = 0 // never blocks
			case *redis.Store:
				want = storefixture.Timeout
			case *memcached.Store:
				want = storefixture.Timeout
			default:
				t.Fatalf("Open built a %T", s)
			}
			if got := c.Store().(hoard.SelfTimed).CallTimeout(); got != want {
				t.Errorf("CallTimeout() = %v, want %v (Cache.Timeout)", got, want)
			}
			if err := c.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if v, found, err := c.Get(ctx, "k"); err != nil || !found || string(v) != "v" {
				t.Fatalf("Get = %q, %v, %v", v, found, err)
			}
		})
	}
}

// TestOpenDisabled: a disabled Cache builds no store, so it makes no
// connection even to an address where nothing listens.
func TestOpenDisabled(t *testing.T) {
	cfg := stores.Config{Cache: hoard.Config{Disabled: true}, Backend: stores.Redis}
	cfg.Redis.Addrs = []string{deadAddr(t)}
	c, err := stores.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Store() != nil || c.Enabled() {
		t.Fatalf("a disabled Cache has store %T, enabled %v", c.Store(), c.Enabled())
	}
}

func TestOpenInvalid(t *testing.T) {
	cfg := stores.Config{Backend: "sqlite"}
	cfg.Memcached.PoolSize = -1
	_, err := stores.Open(context.Background(), cfg)
	var fe *hoard.FieldError
	if !errors.As(err, &fe) || fe.Field != "Backend" {
		t.Fatalf("Open of a bad Config: %v, want FieldErrors starting with Backend", err)
	}
	if _, err := stores.NewStore(context.Background(), cfg); !errors.As(err, &fe) {
		t.Fatalf("NewStore of a bad Config: %v", err)
	}
}

// TestOpenEnvRedisTLSUser: the variables added for what a URL used to be
// needed for (an ACL user, TLS with a private CA) reach a real server.
func TestOpenEnvRedisTLSUser(t *testing.T) {
	srv := testserver.RedisT(t, testserver.RedisOptions{TLS: true, Username: "app", Password: "pw"})
	host, port, err := net.SplitHostPort(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"CACHE_BACKEND":           "redis",
		"CACHE_REDIS_HOST":        host,
		"CACHE_REDIS_PORT":        port,
		"CACHE_REDIS_USERNAME":    "app",
		"CACHE_REDIS_PASSWORD":    "pw",
		"CACHE_REDIS_TLS":         "true",
		"CACHE_REDIS_TLS_CA_FILE": srv.CAFile(),
		"CACHE_TIMEOUT":           storefixture.Timeout.String(),
		"CACHE_KEY_PREFIX":        storefixture.UniquePrefix(),
	} {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	c, err := stores.OpenEnv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "k", []byte("over TLS as app"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, found, err := c.Get(ctx, "k"); err != nil || !found || string(v) != "over TLS as app" {
		t.Fatalf("Get = %q, %v, %v", v, found, err)
	}

	// Without the CA file the server's certificate is not trusted: Open
	// fails (the server answered, so it does not connect in the background).
	t.Setenv("CACHE_REDIS_TLS_CA_FILE", "")
	if c, err := stores.OpenEnv(ctx); err == nil {
		c.Close()
		t.Fatal("OpenEnv trusted a certificate of an unknown CA")
	}
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}
