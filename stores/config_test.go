package stores

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"maps"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/memcached"
	"github.com/hoardcache/hoard/memory"
	"github.com/hoardcache/hoard/redis"
)

// cfgLookup turns a map into the lookup function FromLookup takes.
func cfgLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFromLookupDefaultsAreZeroConfigDefaults(t *testing.T) {
	got, err := FromLookup(cfgLookup(nil))
	if err != nil {
		t.Fatalf("FromLookup(empty) error: %v", err)
	}
	want := Config{}.WithDefaults()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FromLookup(empty) =\n%+v\nConfig{}.WithDefaults() =\n%+v", got, want)
	}
	// Spot-check the documented defaults themselves, so that a wrong constant in
	// both places is caught too.
	checks := []struct {
		name      string
		got, want any
	}{
		{"Cache.Disabled", got.Cache.Disabled, false},
		{"Backend", got.Backend, Memory},
		{"Cache.DefaultTTL", got.Cache.DefaultTTL, 3600 * time.Second},
		{"Cache.KeyPrefix", got.Cache.KeyPrefix, ""},
		{"Cache.Timeout", got.Cache.Timeout, 50 * time.Millisecond},
		{"Cache.MaxKeyBytes", got.Cache.MaxKeyBytes, 1024},
		{"Cache.MissWait", got.Cache.MissWait, time.Second},
		{"Cache.CompressMinBytes", got.Cache.CompressMinBytes, 1024},
		{"Memory.MaxBytes", got.Memory.MaxBytes, int64(67108864)},
		{"Redis.Addrs", got.Redis.Addrs, []string{"localhost:6379"}},
		{"Redis.DB", got.Redis.DB, 0},
		{"Redis.Username", got.Redis.Username, ""},
		{"Redis.Password", got.Redis.Password, ""},
		{"Redis.PoolSize", got.Redis.PoolSize, 10},
		{"Redis.Cluster", got.Redis.Cluster, false},
		{"Redis.TLSConfig", got.Redis.TLSConfig == nil, true},
		{"Redis.Timeout", got.Redis.Timeout, 50 * time.Millisecond},
		{"Memcached.Servers", got.Memcached.Servers, []string{"localhost:11211"}},
		{"Memcached.PoolSize", got.Memcached.PoolSize, 10},
		{"Memcached.Timeout", got.Memcached.Timeout, 50 * time.Millisecond},
		{"Memcached.MaxValueBytes", got.Memcached.MaxValueBytes, 1<<20 - 512},
		{"Cache.Client.Disabled", got.Cache.Client.Disabled, false},
		{"Cache.Client.MaxAge", got.Cache.Client.MaxAge, 60 * time.Second},
		{"Cache.Client.PublicPrefixes", got.Cache.Client.PublicPrefixes, []string{"/static/"}},
		{"Cache.Client.APIPrefix", got.Cache.Client.APIPrefix, "/api"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("default %s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

// envCases has, for every variable FromEnv reads, good values with the Config
// they produce and bad values with a piece of the message they produce.
var envCases = []struct {
	name, value string
	check       func(Config) any // nil for bad values
	want        any              // for good values: what check returns
	wantErr     string           // for bad values: besides NAME="value"
}{
	{"CACHE_ENABLED", "false", func(c Config) any { return c.Cache.Disabled }, true, ""},
	{"CACHE_ENABLED", "TRUE", func(c Config) any { return c.Cache.Disabled }, false, ""},
	{"CACHE_ENABLED", "0", func(c Config) any { return c.Cache.Disabled }, true, ""},
	{"CACHE_ENABLED", " off ", func(c Config) any { return c.Cache.Disabled }, true, ""},
	{"CACHE_ENABLED", "maybe", nil, nil, "must be true or false"},

	{"CACHE_BACKEND", "redis", func(c Config) any { return c.Backend }, Redis, ""},
	{"CACHE_BACKEND", "Memcached", func(c Config) any { return c.Backend }, Memcached, ""},
	{"CACHE_BACKEND", "memory", func(c Config) any { return c.Backend }, Memory, ""},
	{"CACHE_BACKEND", "foo", nil, nil, "must be one of memory, redis, memcached"},

	{"DEFAULT_CACHE_EXPIRATION", "600", func(c Config) any { return c.Cache.DefaultTTL }, 600 * time.Second, ""},
	{"DEFAULT_CACHE_EXPIRATION", "1", func(c Config) any { return c.Cache.DefaultTTL }, time.Second, ""},
	{"DEFAULT_CACHE_EXPIRATION", "0", nil, nil, "whole number of seconds, 1 to"},
	{"DEFAULT_CACHE_EXPIRATION", "-5", nil, nil, "whole number of seconds, 1 to"},
	{"DEFAULT_CACHE_EXPIRATION", "1h", nil, nil, "whole number of seconds"},
	{"DEFAULT_CACHE_EXPIRATION", "99999999999999", nil, nil, "whole number of seconds"},
	{"CACHE_STALE_WHILE_REVALIDATE", "30", func(c Config) any { return c.Cache.StaleWhileRevalidate }, 30 * time.Second, ""},
	{"CACHE_STALE_WHILE_REVALIDATE", "-1", nil, nil, "whole number of seconds, 0 to"},
	{"CACHE_STALE_IF_ERROR", "600", func(c Config) any { return c.Cache.StaleIfError }, 600 * time.Second, ""},
	{"CACHE_STALE_IF_ERROR", "1m", nil, nil, "whole number of seconds"},
	{"CACHE_MISS_WAIT", "250ms", func(c Config) any { return c.Cache.MissWait }, 250 * time.Millisecond, ""},
	{"CACHE_MISS_WAIT", "0", func(c Config) any { return c.Cache.MissWait }, time.Duration(-1), ""},
	{"CACHE_MISS_WAIT", "0s", func(c Config) any { return c.Cache.MissWait }, time.Duration(-1), ""},
	{"CACHE_MISS_WAIT", "2", nil, nil, "duration with a unit"},
	{"CACHE_MISS_WAIT", "5m", nil, nil, "at most 1m"},
	{"CACHE_COMPRESS_MIN_BYTES", "4096", func(c Config) any { return c.Cache.CompressMinBytes }, 4096, ""},
	{"CACHE_COMPRESS_MIN_BYTES", "0", func(c Config) any { return c.Cache.CompressMinBytes }, -1, ""},
	{"CACHE_COMPRESS_MIN_BYTES", "1KB", nil, nil, "whole number of bytes"},

	{"CACHE_KEY_PREFIX", "myapp:", func(c Config) any { return c.Cache.KeyPrefix }, "myapp:", ""},
	{"CACHE_PENDING_FILE", "/var/lib/app/hoard-pending", func(c Config) any { return c.Cache.PendingFile }, "/var/lib/app/hoard-pending", ""},
	{"CACHE_PENDING_FILE", "pending\n", nil, nil, "control characters"},
	{"CACHE_KEY_PREFIX", "my app", nil, nil, "must not contain whitespace"},
	{"CACHE_KEY_PREFIX", "app\r", nil, nil, "control characters"},

	{"CACHE_TIMEOUT", "200ms", func(c Config) any { return c.Cache.Timeout }, 200 * time.Millisecond, ""},
	{"CACHE_TIMEOUT", "1s", func(c Config) any { return c.Cache.Timeout }, time.Second, ""},
	{"CACHE_TIMEOUT", "fast", nil, nil, "must be a duration such as 50ms or 1s"},
	{"CACHE_TIMEOUT", "50", nil, nil, "must be a duration with a unit"},
	{"CACHE_TIMEOUT", "0", nil, nil, "positive"},
	{"CACHE_TIMEOUT", "-1s", nil, nil, "positive"},

	{"CACHE_MEMORY_MAX_BYTES", "1048576", func(c Config) any { return c.Memory.MaxBytes }, int64(1 << 20), ""},
	{"CACHE_MEMORY_MAX_BYTES", "0", nil, nil, "whole number of bytes, at least 1"},
	{"CACHE_MEMORY_MAX_BYTES", "64MB", nil, nil, "whole number of bytes"},
	{"CACHE_MAX_KEY_BYTES", "300", func(c Config) any { return c.Cache.MaxKeyBytes }, 300, ""},
	{"CACHE_MAX_KEY_BYTES", "0", nil, nil, "whole number of bytes, at least 1"},
	{"CACHE_MAX_KEY_BYTES", "1k", nil, nil, "whole number of bytes"},
	{"CACHE_MEMCACHED_MAX_VALUE_BYTES", "2097152", func(c Config) any { return c.Memcached.MaxValueBytes }, 2 << 20, ""},
	{"CACHE_MEMCACHED_MAX_VALUE_BYTES", "-1", nil, nil, "whole number of bytes"},

	{"CACHE_REDIS_URL", "redis://cache:6380/2", func(c Config) any { return []any{c.Redis.Addrs, c.Redis.DB} }, []any{[]string{"cache:6380"}, 2}, ""},
	{"CACHE_REDIS_URL", "rediss://u:p@cache", func(c Config) any { return c.Redis.Addrs }, []string{"cache:6379"}, ""},
	{"CACHE_REDIS_URL", "http://x", nil, nil, "must start with redis:// or rediss://"},
	{"CACHE_REDIS_URL", "redis://x:70000", nil, nil, "not a number from 1 to 65535"},
	{"CACHE_REDIS_URL", "redis://x/db1", nil, nil, "not a database number"},
	{"CACHE_REDIS_URL", "redis://x?db=-1", nil, nil, "only parameter is cluster"},
	{"CACHE_REDIS_URL", "redis://x?addr=y:0", nil, nil, "only parameter is cluster"},
	{"CACHE_REDIS_URL", "redis://x:y:z", nil, nil, "expected redis://"},
	{"CACHE_REDIS_URL", "redis://a:7000,b:7001?cluster=true", func(c Config) any { return c.Redis.Addrs }, []string{"a:7000", "b:7001"}, ""},

	{"CACHE_REDIS_HOST", "redis.internal", func(c Config) any { return c.Redis.Addrs }, []string{"redis.internal:6379"}, ""},
	{"CACHE_REDIS_HOST", "::1", func(c Config) any { return c.Redis.Addrs }, []string{"[::1]:6379"}, ""},
	{"CACHE_REDIS_HOST", "redis:6379", nil, nil, "without a port"},
	{"CACHE_REDIS_HOST", "redis://redis", nil, nil, "host name or IP address"},

	{"CACHE_REDIS_PORT", "6380", func(c Config) any { return c.Redis.Addrs }, []string{"localhost:6380"}, ""},
	{"CACHE_REDIS_PORT", "70000", nil, nil, "must be a port number 1-65535"},
	{"CACHE_REDIS_PORT", "0", nil, nil, "must be a port number 1-65535"},
	{"CACHE_REDIS_PORT", "http", nil, nil, "must be a port number 1-65535"},

	{"CACHE_REDIS_DB", "3", func(c Config) any { return c.Redis.DB }, 3, ""},
	{"CACHE_REDIS_DB", "-1", nil, nil, "whole number, at least 0"},
	{"CACHE_REDIS_DB", "one", nil, nil, "whole number, at least 0"},
	{"CACHE_REDIS_URL", "redis://u:pw@cache", func(c Config) any { return []string{c.Redis.Username, c.Redis.Password} }, []string{"u", "pw"}, ""},

	{"CACHE_REDIS_PASSWORD", "s3cret with spaces", func(c Config) any { return c.Redis.Password }, "s3cret with spaces", ""},
	{"CACHE_REDIS_USERNAME", "app", func(c Config) any { return c.Redis.Username }, "app", ""},

	{"CACHE_REDIS_TLS", "true", func(c Config) any {
		return c.Redis.TLSConfig != nil && c.Redis.TLSConfig.MinVersion == tls.VersionTLS12
	}, true, ""},
	{"CACHE_REDIS_TLS", "false", func(c Config) any { return c.Redis.TLSConfig }, (*tls.Config)(nil), ""},
	{"CACHE_REDIS_TLS", "tls", nil, nil, "must be true or false"},

	// A good CACHE_REDIS_TLS_CA_FILE needs CACHE_REDIS_TLS too: TestFromLookupRedisTLS.
	{"CACHE_REDIS_TLS_CA_FILE", "/nonexistent/ca.pem", nil, nil, "cannot be read"},
	{"CACHE_REDIS_TLS_CA_FILE", "/dev/zero", nil, nil, "must be a PEM file"},
	{"CACHE_REDIS_TLS_CA_FILE", "config_test.go", nil, nil, "holds no PEM certificate"},

	{"CACHE_REDIS_POOL_SIZE", "50", func(c Config) any { return c.Redis.PoolSize }, 50, ""},
	{"CACHE_REDIS_POOL_SIZE", "-1", nil, nil, "whole number, at least 1"},
	{"CACHE_REDIS_POOL_SIZE", "0", nil, nil, "whole number, at least 1"},

	{"CACHE_REDIS_CLUSTER", "true", func(c Config) any { return c.Redis.Cluster }, true, ""},
	{"CACHE_REDIS_CLUSTER", "cluster", nil, nil, "must be true or false"},

	// Alone, CACHE_NEAR_CACHE=true meets the default memory backend: an
	// error (TestNearCacheBackends covers the others).
	{"CACHE_NEAR_CACHE", "false", func(c Config) any { return c.Redis.NearCache }, false, ""},
	{"CACHE_NEAR_CACHE", "true", nil, nil, "memory store is already in process"},
	{"CACHE_NEAR_CACHE", "maybe", nil, nil, "must be true or false"},
	{"CACHE_NEAR_MAX_BYTES", "1048576", func(c Config) any { return c.Redis.NearMaxBytes }, int64(1 << 20), ""},
	{"CACHE_NEAR_MAX_BYTES", "0", nil, nil, "whole number of bytes, at least 1"},
	{"CACHE_NEAR_MAX_BYTES", "64MB", nil, nil, "whole number of bytes"},
	{"CACHE_NEAR_TTL", "5", func(c Config) any { return c.Redis.NearTTL }, 5 * time.Second, ""},
	{"CACHE_NEAR_TTL", "0", nil, nil, "whole number of seconds"},
	{"CACHE_NEAR_TTL", "5s", nil, nil, "whole number of seconds"},
	{"CACHE_NEAR_MAX_LAG", "5ms", func(c Config) any { return c.Redis.NearMaxLag }, 5 * time.Millisecond, ""},
	{"CACHE_NEAR_MAX_LAG", "5", nil, nil, "duration with a unit"},

	{"CACHE_MEMCACHED_HOST", "mc", func(c Config) any { return c.Memcached.Servers }, []string{"mc:11211"}, ""},
	{"CACHE_MEMCACHED_HOST", "mc:11211", nil, nil, "without a port"},

	{"CACHE_MEMCACHED_PORT", "11212", func(c Config) any { return c.Memcached.Servers }, []string{"localhost:11212"}, ""},
	{"CACHE_MEMCACHED_PORT", "65536", nil, nil, "must be a port number 1-65535"},

	{"CACHE_MEMCACHED_SERVERS", "a:1, b:2,[::1]:3", func(c Config) any { return c.Memcached.Servers }, []string{"a:1", "b:2", "[::1]:3"}, ""},
	{"CACHE_MEMCACHED_SERVERS", "a:1,b", nil, nil, `entry "b" must be host:port`},
	{"CACHE_MEMCACHED_SERVERS", "a:1,b:99999", nil, nil, `entry "b:99999" must be host:port with a port 1-65535, e.g. localhost:11211 or [::1]:11211; must be a comma-separated list of host:port`},
	{"CACHE_MEMCACHED_SERVERS", "a:1,", nil, nil, "entry 2 is empty"},
	{"CACHE_MEMCACHED_SERVERS", "a:1,a:1", nil, nil, "listed twice"},
	{"CACHE_MEMCACHED_SERVERS", ":11211", nil, nil, "must be host:port"},
	{"CACHE_MEMCACHED_SERVERS", "[fe80::1%eth0]:11211", func(c Config) any { return c.Memcached.Servers }, []string{"[fe80::1%eth0]:11211"}, ""},

	{"CACHE_MEMCACHED_POOL_SIZE", "2", func(c Config) any { return c.Memcached.PoolSize }, 2, ""},
	{"CACHE_MEMCACHED_POOL_SIZE", "-3", nil, nil, "whole number, at least 1"},

	{"CLIENT_CACHE_ENABLED", "false", func(c Config) any { return c.Cache.Client.Disabled }, true, ""},
	{"CLIENT_CACHE_ENABLED", "nope", nil, nil, "must be true or false"},

	{"CLIENT_CACHE_MAX_AGE", "300", func(c Config) any { return c.Cache.Client.MaxAge }, 300 * time.Second, ""},
	{"CLIENT_CACHE_MAX_AGE", "0", func(c Config) any { return c.Cache.Client.MaxAge }, -time.Second, ""}, // sends max-age=0
	{"CLIENT_CACHE_MAX_AGE", "-1", nil, nil, "whole number of seconds, 0 to"},
	{"CLIENT_CACHE_MAX_AGE", "1m", nil, nil, "whole number of seconds"},

	{"CLIENT_CACHE_PUBLIC_PREFIXES", "/static/, /assets", func(c Config) any { return c.Cache.Client.PublicPrefixes }, []string{"/static/", "/assets"}, ""},
	{"CLIENT_CACHE_PUBLIC_PREFIXES", "/static/,assets/", nil, nil, `entry "assets/" must start with "/"`},
	{"CLIENT_CACHE_PUBLIC_PREFIXES", "/static/,,/x/", nil, nil, "entry 2 is empty"},

	{"API_PREFIX", "/v2", func(c Config) any { return c.Cache.Client.APIPrefix }, "/v2", ""},
	{"API_PREFIX", "api", nil, nil, `must be a path starting with "/"`},
}

func TestFromLookupEachVariable(t *testing.T) {
	for _, tc := range envCases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			c, err := FromLookup(cfgLookup(map[string]string{tc.name: tc.value}))
			if tc.check != nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got := tc.check(c); !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("got %#v, want %#v", got, tc.want)
				}
				if err := c.Validate(); err != nil {
					t.Fatalf("FromLookup returned a Config that Validate rejects: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want one containing %q", tc.wantErr)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tc.name+"=") {
				t.Errorf("error %q does not start with %s=", msg, tc.name)
			}
			if !strings.Contains(msg, tc.wantErr) {
				t.Errorf("error %q does not contain %q", msg, tc.wantErr)
			}
			if strings.Count(msg, "\n") != 0 {
				t.Errorf("one bad variable gave several errors: %q", msg)
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Errorf("a failed FromLookup returned a non-zero Config %+v", c)
			}
		})
	}
}

// TestConfigEnvCasesCoverEveryVariable keeps the table above honest: every
// variable FromEnv reads has a good value and (except the username and
// password, which accept anything) a bad one.
func TestConfigEnvCasesCoverEveryVariable(t *testing.T) {
	vars := EnvVars()
	if len(vars) != 35 {
		t.Errorf("EnvVars() has %d variables, want 35: %v", len(vars), vars)
	}
	for _, v := range vars {
		var good, bad bool
		for _, tc := range envCases {
			if tc.name == v {
				good = good || tc.check != nil
				bad = bad || tc.check == nil
			}
		}
		if !good && v != "CACHE_REDIS_TLS_CA_FILE" {
			t.Errorf("%s: no good value in envCases", v)
		}
		if !bad && v != "CACHE_REDIS_PASSWORD" && v != "CACHE_REDIS_USERNAME" {
			t.Errorf("%s: no bad value in envCases", v)
		}
	}
}

func TestFromLookupEmptyMeansDefault(t *testing.T) {
	empty := map[string]string{}
	for _, v := range EnvVars() {
		empty[v] = ""
	}
	got, err := FromLookup(cfgLookup(empty))
	if err != nil {
		t.Fatalf("all variables set to \"\": %v", err)
	}
	if want := (Config{}).WithDefaults(); !reflect.DeepEqual(got, want) {
		t.Fatalf("all variables empty gave %+v, want the defaults %+v", got, want)
	}
}

func TestFromLookupCollectsAllErrors(t *testing.T) {
	_, err := FromLookup(cfgLookup(map[string]string{
		"CACHE_BACKEND":           "foo",
		"CACHE_REDIS_PORT":        "70000",
		"CACHE_TIMEOUT":           "fast",
		"CLIENT_CACHE_ENABLED":    "maybe",
		"CACHE_REDIS_POOL_SIZE":   "-2",
		"CACHE_MEMCACHED_SERVERS": "a:1,b,a:1,",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`CACHE_BACKEND="foo": must be one of memory, redis, memcached`,
		`CACHE_REDIS_PORT="70000": must be a port number 1-65535`,
		`CACHE_TIMEOUT="fast": must be a duration such as 50ms or 1s`,
		`CLIENT_CACHE_ENABLED="maybe": must be true or false`,
		`CACHE_REDIS_POOL_SIZE="-2": must be a whole number, at least 1`,
		`CACHE_MEMCACHED_SERVERS="a:1,b,a:1,": entry 4 is empty; entry "b" must be host:port`,
		`entry "a:1" is listed twice`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q; got:\n%v", want, err)
		}
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 6 {
		t.Errorf("got %d joined errors, want 6 (one per variable):\n%v", n, err)
	}
}

func TestFromLookupRedisURLOverridesHostPort(t *testing.T) {
	c, err := FromLookup(cfgLookup(map[string]string{
		"CACHE_BACKEND":         "redis",
		"CACHE_REDIS_URL":       "redis://:pw@primary:7000,seed2:7001,seed3:6379?cluster=true",
		"CACHE_REDIS_HOST":      "ignored",
		"CACHE_REDIS_PORT":      "1234",
		"CACHE_REDIS_PASSWORD":  "ignored",
		"CACHE_REDIS_POOL_SIZE": "20",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"primary:7000", "seed2:7001", "seed3:6379"}
	if got := c.Redis.Addrs; !slices.Equal(got, want) {
		t.Fatalf("Redis.Addrs = %v, want %v (the URL overrides host/port)", got, want)
	}
	if c.Redis.Password != "pw" || !c.Redis.Cluster || c.Redis.PoolSize != 20 {
		t.Fatalf("Redis = %+v, want the URL's password and cluster, and the pool size", c.Redis)
	}
}

func TestFromLookupMemcachedServersOverrideHostPort(t *testing.T) {
	c, err := FromLookup(cfgLookup(map[string]string{
		"CACHE_MEMCACHED_SERVERS": "mc1:11211,mc2:11212",
		"CACHE_MEMCACHED_HOST":    "ignored",
		"CACHE_MEMCACHED_PORT":    "1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Memcached.Servers, []string{"mc1:11211", "mc2:11212"}; !slices.Equal(got, want) {
		t.Fatalf("Memcached.Servers = %v, want %v", got, want)
	}
}

func TestFromLookupClusterNeedsDB0(t *testing.T) {
	for env, wantVar := range map[*map[string]string]string{
		{"CACHE_REDIS_CLUSTER": "true", "CACHE_REDIS_DB": "2"}:                         "CACHE_REDIS_DB=",
		{"CACHE_REDIS_CLUSTER": "true", "CACHE_REDIS_URL": "redis://seed:7000/2"}:      "CACHE_REDIS_URL=",
		{"CACHE_REDIS_URL": "redis://seed:7000/2?cluster=true", "CACHE_REDIS_DB": "0"}: "CACHE_REDIS_URL=",
	} {
		_, err := FromLookup(cfgLookup(*env))
		if err == nil || !strings.Contains(err.Error(), "Redis Cluster only has DB 0") && !strings.Contains(err.Error(), "Redis Cluster has only database 0") {
			t.Errorf("%v: error %v, want one about Cluster and database 0", *env, err)
		} else if !strings.HasPrefix(err.Error(), wantVar) {
			t.Errorf("%v: error %v, want it under %s", *env, err, wantVar)
		}
	}
	if _, err := FromLookup(cfgLookup(map[string]string{"CACHE_REDIS_CLUSTER": "true", "CACHE_REDIS_URL": "redis://seed:7000/0"})); err != nil {
		t.Errorf("cluster with database 0: %v", err)
	}
}

func TestFromLookupRedisTLS(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, testCA(t), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, env := range []map[string]string{
		{"CACHE_REDIS_TLS": "true", "CACHE_REDIS_TLS_CA_FILE": caFile, "CACHE_REDIS_HOST": "cache.internal", "CACHE_REDIS_USERNAME": "app"},
		{"CACHE_REDIS_URL": "rediss://app@cache.internal:6379", "CACHE_REDIS_TLS_CA_FILE": caFile},
	} {
		c, err := FromLookup(cfgLookup(env))
		if err != nil {
			t.Fatalf("%v: %v", env, err)
		}
		r := c.Redis
		if r.TLSConfig == nil || r.TLSConfig.RootCAs == nil || r.Username != "app" || !slices.Equal(r.Addrs, []string{"cache.internal:6379"}) {
			t.Errorf("%v: Redis = %+v, want TLS with the CA file's roots, user app, cache.internal:6379", env, r)
		}
	}
	_, err := FromLookup(cfgLookup(map[string]string{"CACHE_REDIS_TLS_CA_FILE": caFile}))
	if err == nil || !strings.Contains(err.Error(), "CACHE_REDIS_TLS_CA_FILE=") || !strings.Contains(err.Error(), "CACHE_REDIS_TLS=true") {
		t.Errorf("a CA file without TLS: %v, want an error naming CACHE_REDIS_TLS=true", err)
	}
}

// testCA returns a self-signed CA certificate in PEM.
func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hoard test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestFromLookupNeverPrintsRedisPassword(t *testing.T) {
	for _, u := range []string{
		"http://user:hunter2@x",
		"redis://user:hunter2@x:99999",
		"redis://:hunter2@x:bad port/0",
		"redis://:hunter2@x/zero",
	} {
		_, err := FromLookup(cfgLookup(map[string]string{"CACHE_REDIS_URL": u}))
		if err == nil {
			t.Errorf("%q: no error", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
		if !strings.HasPrefix(err.Error(), "CACHE_REDIS_URL=") {
			t.Errorf("error does not name CACHE_REDIS_URL: %v", err)
		}
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv("CACHE_BACKEND", "memcached")
	t.Setenv("CACHE_MEMCACHED_SERVERS", "10.0.0.1:11211,10.0.0.2:11211")
	t.Setenv("DEFAULT_CACHE_EXPIRATION", "120")
	t.Setenv("CACHE_TIMEOUT", "80ms")
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend != Memcached || c.Cache.DefaultTTL != 2*time.Minute || len(c.Memcached.Servers) != 2 {
		t.Fatalf("FromEnv() = %+v", c)
	}
	if c.Cache.Timeout != 80*time.Millisecond || c.Memcached.Timeout != 80*time.Millisecond || c.Redis.Timeout != 80*time.Millisecond {
		t.Fatalf("CACHE_TIMEOUT=80ms gave %v, %v, %v; want it for the Cache and the stores", c.Cache.Timeout, c.Memcached.Timeout, c.Redis.Timeout)
	}
	t.Setenv("CACHE_BACKEND", "sqlite")
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), "CACHE_BACKEND") {
		t.Fatalf("FromEnv with a bad CACHE_BACKEND: %v", err)
	}
}

func TestConfigWithDefaultsIdempotent(t *testing.T) {
	for _, c := range []Config{
		{},
		{Backend: Redis, Cache: hoard.Config{DefaultTTL: time.Minute, Timeout: time.Second, MaxKeyBytes: 10, MissWait: -1, CompressMinBytes: -1,
			Client: hoard.ClientCacheConfig{MaxAge: -time.Second, PublicPrefixes: []string{}, APIPrefix: "/"}},
			Memory:    memory.Options{MaxBytes: 1, MaxValueBytes: 1},
			Redis:     redis.Options{Addrs: []string{"r:1"}, DB: 2, PoolSize: 3, Timeout: time.Second, MaxValueBytes: 9, NearMaxBytes: 5, NearTTL: time.Second, NearMaxLag: time.Millisecond},
			Memcached: memcached.Options{Servers: []string{"a:1"}, PoolSize: 4, Timeout: time.Second, Backoff: time.Second, MaxValueBytes: 9}},
	} {
		once := c.WithDefaults()
		if twice := once.WithDefaults(); !reflect.DeepEqual(once, twice) {
			t.Errorf("WithDefaults not idempotent:\n%+v\n%+v", once, twice)
		}
		if err := once.Validate(); err != nil {
			t.Errorf("defaults do not validate: %v", err)
		}
		if c.Backend != "" && !reflect.DeepEqual(c, once) {
			t.Errorf("WithDefaults changed set values:\n%+v\n%+v", c, once)
		}
	}
	// The stores' zero Timeouts take the Cache's.
	c := Config{Cache: hoard.Config{Timeout: time.Second}, Redis: redis.Options{Timeout: 2 * time.Second}}.WithDefaults()
	if c.Redis.Timeout != 2*time.Second || c.Memcached.Timeout != time.Second {
		t.Errorf("Timeouts: redis %v (want its own 2s), memcached %v (want the Cache's 1s)", c.Redis.Timeout, c.Memcached.Timeout)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" = valid
	}{
		{"zero", Config{}, ""},
		{"bad backend", Config{Backend: "sqlite"}, `stores.Config.Backend = "sqlite": must be one of`},
		{"cache", Config{Cache: hoard.Config{Timeout: -1}}, "hoard.Config.Timeout"},
		{"memory", Config{Memory: memory.Options{MaxBytes: -1}}, "memory.Options.MaxBytes = -1"},
		{"redis addr", Config{Redis: redis.Options{Addrs: []string{"x"}}}, `redis.Options.Addrs = "x": must be host:port`},
		{"redis db", Config{Redis: redis.Options{DB: -1}}, "redis.Options.DB"},
		{"redis cluster db", Config{Redis: redis.Options{DB: 1, Cluster: true}}, "only database 0"},
		{"redis pool", Config{Redis: redis.Options{PoolSize: -1}}, "redis.Options.PoolSize"},
		{"memcached server", Config{Memcached: memcached.Options{Servers: []string{"a:1", "b"}}}, `memcached.Options.Servers = "b"`},
		{"memcached duplicate", Config{Memcached: memcached.Options{Servers: []string{"a:1", "a:1"}}}, "listed twice"},
		{"memcached pool", Config{Memcached: memcached.Options{PoolSize: -1}}, "memcached.Options.PoolSize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigValidateJoinsAllErrors(t *testing.T) {
	err := Config{Backend: "x", Cache: hoard.Config{Timeout: -1}, Redis: redis.Options{PoolSize: -1, DB: -1}}.Validate()
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 4 {
		t.Fatalf("want 4 joined errors, got %v", err)
	}
	for _, e := range joined.Unwrap() {
		if _, ok := e.(*hoard.FieldError); !ok {
			t.Errorf("%T %v is not a *hoard.FieldError", e, e)
		}
	}
}

func TestConfigRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://host":               "redis://host",
		"redis://u:pw@host/0":        "redis://u:xxxxx@host/0",
		"redis://u:pw@host:bad":      "redis://u:xxxxx@host:bad",
		"redis://:p@w@host:bad port": "redis://:xxxxx@host:bad port",
		"no scheme:pw@x":             "no scheme:pw@x",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzFromLookup feeds FromLookup an environment written as KEY=VALUE
// lines. It must never panic and always give the same answer; an error must
// name, at the start of each of its lines, a variable FromEnv reads, and
// never show a Redis password (CACHE_REDIS_PASSWORD, or the one in
// CACHE_REDIS_URL); a success must be a valid Config with its defaults
// filled in and usable addresses. (CACHE_REDIS_TLS_CA_FILE is left out: it
// names a file to read.)
func FuzzFromLookup(f *testing.F) {
	f.Add("CACHE_BACKEND=redis\nCACHE_REDIS_URL=redis://u:p@h:1/2")
	f.Add("CACHE_TIMEOUT=50\nCACHE_ENABLED=maybe")
	f.Add("CACHE_MEMCACHED_SERVERS=a:1,[::1]:2,b\nCACHE_MEMCACHED_PORT=0")
	f.Add("CLIENT_CACHE_MAX_AGE=0\nCLIENT_CACHE_PUBLIC_PREFIXES=/a,b\nAPI_PREFIX=/")
	f.Add("DEFAULT_CACHE_EXPIRATION=2147483648\nCACHE_REDIS_CLUSTER=1\nCACHE_REDIS_DB=1")
	f.Add("CACHE_REDIS_URL=redis://u:s3cret@h:99999/0\nCACHE_REDIS_PASSWORD=hunter22\nCACHE_REDIS_PORT=x")
	f.Add("CACHE_REDIS_URL=redis://:p%40ss@h/x?addr=b\nCACHE_BACKEND=redis")
	f.Add("CACHE_REDIS_TLS=yes\nCACHE_REDIS_USERNAME=app\nCACHE_REDIS_HOST=::1")
	vars := EnvVars()
	f.Fuzz(func(t *testing.T, data string) {
		env := map[string]string{}
		for line := range strings.SplitSeq(data, "\n") {
			k, v, _ := strings.Cut(line, "=")
			env[k] = v
		}
		delete(env, "CACHE_REDIS_TLS_CA_FILE")
		c, err := FromLookup(cfgLookup(env))
		if again, err2 := FromLookup(cfgLookup(env)); !reflect.DeepEqual(c, again) || (err == nil) != (err2 == nil) {
			t.Fatalf("FromLookup is not deterministic: %+v, %v / %+v, %v", c, err, again, err2)
		}
		if err != nil {
			checkPasswordsHidden(t, env, err)
			for line := range strings.SplitSeq(err.Error(), "\n") {
				name, _, ok := strings.Cut(line, "=")
				if !ok || !slices.Contains(vars, name) {
					t.Fatalf("error line %q does not start with a variable name and '='; error:\n%v", line, err)
				}
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Fatalf("error but non-zero Config %+v", c)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("FromLookup accepted a Config that Validate rejects: %v", err)
		}
		if d := c.WithDefaults(); !reflect.DeepEqual(c, d) {
			t.Fatalf("FromLookup result lacks defaults:\n%+v\n%+v", c, d)
		}
		if len(c.Redis.Addrs) == 0 || len(c.Memcached.Servers) == 0 {
			t.Fatalf("no addresses: %v %v", c.Redis.Addrs, c.Memcached.Servers)
		}
		cc := c.Cache
		if cc.DefaultTTL <= 0 || cc.Timeout <= 0 || c.Memory.MaxBytes <= 0 || cc.Client.MaxAge == 0 {
			t.Fatalf("non-positive durations or sizes: %+v", c)
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("ClientCache panics on a Config FromLookup accepted: %v", r)
				}
			}()
			hoard.ClientCache(cc.Client)
		}()
	})
}

// checkPasswordsHidden fails if err shows a password of env: the error is
// computed again with each password replaced by another string, and a
// password that appears only when it is set has leaked.
func checkPasswordsHidden(t *testing.T, env map[string]string, err error) {
	t.Helper()
	other := func(p string) string {
		q := strings.Repeat("Q", len(p))
		if q == p {
			q = strings.Repeat("R", len(p))
		}
		return q
	}
	leaked := func(pw string, with map[string]string) {
		_, err2 := FromLookup(cfgLookup(with))
		if strings.Contains(err.Error(), pw) && (err2 == nil || !strings.Contains(err2.Error(), pw)) {
			t.Fatalf("the error shows the password %q:\n%v", pw, err)
		}
	}
	if pw := env["CACHE_REDIS_PASSWORD"]; pw != "" {
		with := maps.Clone(env)
		with["CACHE_REDIS_PASSWORD"] = other(pw)
		leaked(pw, with)
	}
	if u, perr := url.Parse(env["CACHE_REDIS_URL"]); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" && strings.Count(env["CACHE_REDIS_URL"], ":"+pw+"@") == 1 {
			with := maps.Clone(env)
			with["CACHE_REDIS_URL"] = strings.Replace(env["CACHE_REDIS_URL"], ":"+pw+"@", ":"+other(pw)+"@", 1)
			leaked(pw, with)
		}
	}
}

// TestReadmeListsEveryVariable: the README's Configuration table has a row
// for every variable FromEnv reads, and no other (a row may name several
// as "CACHE_REDIS_HOST / _PORT / _DB").
func TestReadmeListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(readme), "## Configuration")
	table, _, _ = strings.Cut(table, "\n## ")
	var listed []string
	for line := range strings.SplitSeq(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			continue
		}
		names := strings.Split(strings.TrimSpace(cells[1]), " / ")
		first := names[0]
		if first == "variable" || strings.HasPrefix(first, "---") {
			continue
		}
		listed = append(listed, first)
		for _, n := range names[1:] {
			listed = append(listed, first[:strings.LastIndex(first, "_")]+n)
		}
	}
	slices.Sort(listed)
	want := EnvVars()
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("README's Configuration table lists\n%v\nFromEnv reads\n%v", listed, want)
	}
}

// TestNearCacheBackends: CACHE_NEAR_CACHE=true reaches redis.Options with
// the redis backend, and is refused, saying why, with the others.
func TestNearCacheBackends(t *testing.T) {
	c, err := FromLookup(cfgLookup(map[string]string{
		"CACHE_BACKEND": "redis", "CACHE_NEAR_CACHE": "yes",
		"CACHE_NEAR_MAX_BYTES": "1000000", "CACHE_NEAR_TTL": "30",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Redis; !r.NearCache || r.NearMaxBytes != 1000000 || r.NearTTL != 30*time.Second {
		t.Fatalf("redis.Options: NearCache %v, NearMaxBytes %d, NearTTL %v", r.NearCache, r.NearMaxBytes, r.NearTTL)
	}
	if c, err := FromLookup(cfgLookup(map[string]string{"CACHE_BACKEND": "redis"})); err != nil ||
		c.Redis.NearCache || c.Redis.NearMaxBytes != redis.DefaultNearMaxBytes || c.Redis.NearTTL != redis.DefaultNearTTL {
		t.Fatalf("defaults: %+v, %v", c.Redis, err)
	}
	for backend, want := range map[string]string{
		"memcached": `CACHE_NEAR_CACHE="true": must be false with the memcached backend: Memcached has no invalidation push, so a near cache could serve stale data; use the redis backend`,
		"memory":    `CACHE_NEAR_CACHE="true": must be false with the memory backend: the memory store is already in process`,
		"":          `CACHE_NEAR_CACHE="true": must be false with the memory backend`,
	} {
		_, err := FromLookup(cfgLookup(map[string]string{"CACHE_BACKEND": backend, "CACHE_NEAR_CACHE": "true"}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CACHE_BACKEND=%q CACHE_NEAR_CACHE=true: error %v, want %q", backend, err, want)
		}
		cfg := Config{Backend: Backend(backend), Redis: redis.Options{NearCache: true}}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "stores.Config.Redis.NearCache = true: must be false") {
			t.Errorf("Config{Backend: %q, NearCache}.Validate() = %v", backend, err)
		}
	}
	if err := (Config{Backend: Redis, Redis: redis.Options{NearCache: true}}).Validate(); err != nil {
		t.Errorf("redis backend with NearCache: %v", err)
	}
}
