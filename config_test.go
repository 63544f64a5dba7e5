package hoard

import (
	"errors"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
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
	// Spot-check the spec §5 table itself, so that a wrong constant in
	// both places is caught too.
	checks := []struct {
		name      string
		got, want any
	}{
		{"Disabled", got.Disabled, false},
		{"Backend", got.Backend, BackendMemory},
		{"DefaultTTL", got.DefaultTTL, 3600 * time.Second},
		{"KeyPrefix", got.KeyPrefix, ""},
		{"Timeout", got.Timeout, 50 * time.Millisecond},
		{"MemoryMaxBytes", got.MemoryMaxBytes, int64(67108864)},
		{"Redis.URL", got.Redis.URL, ""},
		{"Redis.Host", got.Redis.Host, "localhost"},
		{"Redis.Port", got.Redis.Port, 6379},
		{"Redis.DB", got.Redis.DB, 0},
		{"Redis.Password", got.Redis.Password, ""},
		{"Redis.PoolSize", got.Redis.PoolSize, 10},
		{"Redis.Cluster", got.Redis.Cluster, false},
		{"Memcached.Host", got.Memcached.Host, "localhost"},
		{"Memcached.Port", got.Memcached.Port, 11211},
		{"Memcached.Servers", len(got.Memcached.Servers), 0},
		{"Memcached.PoolSize", got.Memcached.PoolSize, 10},
		{"Client.Disabled", got.Client.Disabled, false},
		{"Client.MaxAge", got.Client.MaxAge, 60 * time.Second},
		{"Client.PublicPrefixes", got.Client.PublicPrefixes, []string{"/static/"}},
		{"Client.APIPrefix", got.Client.APIPrefix, "/api"},
		{"RedisAddrs", got.RedisAddrs(), []string{"localhost:6379"}},
		{"MemcachedServers", got.MemcachedServers(), []string{"localhost:11211"}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("default %s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

// envCases has, for every variable of spec §5, good values with the Config
// they produce and bad values with a piece of the message they produce.
var envCases = []struct {
	name, value string
	check       func(Config) any // nil for bad values
	want        any              // for good values: what check returns
	wantErr     string           // for bad values: besides NAME="value"
}{
	{"CACHE_ENABLED", "false", func(c Config) any { return c.Disabled }, true, ""},
	{"CACHE_ENABLED", "TRUE", func(c Config) any { return c.Disabled }, false, ""},
	{"CACHE_ENABLED", "0", func(c Config) any { return c.Disabled }, true, ""},
	{"CACHE_ENABLED", " off ", func(c Config) any { return c.Disabled }, true, ""},
	{"CACHE_ENABLED", "maybe", nil, nil, "must be true or false"},

	{"CACHE_BACKEND", "redis", func(c Config) any { return c.Backend }, BackendRedis, ""},
	{"CACHE_BACKEND", "Memcached", func(c Config) any { return c.Backend }, BackendMemcached, ""},
	{"CACHE_BACKEND", "memory", func(c Config) any { return c.Backend }, BackendMemory, ""},
	{"CACHE_BACKEND", "foo", nil, nil, "must be one of memory, redis, memcached"},

	{"DEFAULT_CACHE_EXPIRATION", "600", func(c Config) any { return c.DefaultTTL }, 600 * time.Second, ""},
	{"DEFAULT_CACHE_EXPIRATION", "1", func(c Config) any { return c.DefaultTTL }, time.Second, ""},
	{"DEFAULT_CACHE_EXPIRATION", "0", nil, nil, "whole number of seconds, 1 to"},
	{"DEFAULT_CACHE_EXPIRATION", "-5", nil, nil, "whole number of seconds, 1 to"},
	{"DEFAULT_CACHE_EXPIRATION", "1h", nil, nil, "whole number of seconds"},
	{"DEFAULT_CACHE_EXPIRATION", "99999999999999", nil, nil, "whole number of seconds"},

	{"CACHE_KEY_PREFIX", "myapp:", func(c Config) any { return c.KeyPrefix }, "myapp:", ""},
	{"CACHE_KEY_PREFIX", "my app", nil, nil, "must not contain whitespace"},
	{"CACHE_KEY_PREFIX", "app\r", nil, nil, "control characters"},

	{"CACHE_TIMEOUT", "200ms", func(c Config) any { return c.Timeout }, 200 * time.Millisecond, ""},
	{"CACHE_TIMEOUT", "1s", func(c Config) any { return c.Timeout }, time.Second, ""},
	{"CACHE_TIMEOUT", "fast", nil, nil, "must be a duration such as 50ms or 1s"},
	{"CACHE_TIMEOUT", "50", nil, nil, "must be a duration with a unit"},
	{"CACHE_TIMEOUT", "0", nil, nil, "positive"},
	{"CACHE_TIMEOUT", "-1s", nil, nil, "positive"},

	{"CACHE_MEMORY_MAX_BYTES", "1048576", func(c Config) any { return c.MemoryMaxBytes }, int64(1 << 20), ""},
	{"CACHE_MEMORY_MAX_BYTES", "0", nil, nil, "whole number of bytes, at least 1"},
	{"CACHE_MEMORY_MAX_BYTES", "64MB", nil, nil, "whole number of bytes"},
	{"CACHE_MAX_KEY_BYTES", "300", func(c Config) any { return c.MaxKeyBytes }, 300, ""},
	{"CACHE_MAX_KEY_BYTES", "0", nil, nil, "whole number of bytes, at least 1"},
	{"CACHE_MAX_KEY_BYTES", "1k", nil, nil, "whole number of bytes"},
	{"CACHE_MEMCACHED_MAX_VALUE_BYTES", "2097152", func(c Config) any { return c.Memcached.MaxValueBytes }, 2 << 20, ""},
	{"CACHE_MEMCACHED_MAX_VALUE_BYTES", "-1", nil, nil, "whole number of bytes"},

	{"CACHE_REDIS_URL", "redis://cache:6380/2", func(c Config) any { return c.Redis.URL }, "redis://cache:6380/2", ""},
	{"CACHE_REDIS_URL", "rediss://u:p@cache", func(c Config) any { return c.RedisAddrs() }, []string{"cache:6379"}, ""},
	{"CACHE_REDIS_URL", "http://x", nil, nil, "must start with redis:// or rediss://"},
	{"CACHE_REDIS_URL", "redis://x:70000", nil, nil, "not a number from 1 to 65535"},
	{"CACHE_REDIS_URL", "redis://x/db1", nil, nil, "not a database number"},
	{"CACHE_REDIS_URL", "redis://x?db=-1", nil, nil, "only parameter is cluster"},
	{"CACHE_REDIS_URL", "redis://x?addr=y:0", nil, nil, "only parameter is cluster"},
	{"CACHE_REDIS_URL", "redis://x:y:z", nil, nil, "expected redis://"},
	{"CACHE_REDIS_URL", "redis://a:7000,b:7001?cluster=true", func(c Config) any { return c.RedisAddrs() }, []string{"a:7000", "b:7001"}, ""},

	{"CACHE_REDIS_HOST", "redis.internal", func(c Config) any { return c.Redis.Host }, "redis.internal", ""},
	{"CACHE_REDIS_HOST", "::1", func(c Config) any { return c.RedisAddrs() }, []string{"[::1]:6379"}, ""},
	{"CACHE_REDIS_HOST", "redis:6379", nil, nil, "without a port"},
	{"CACHE_REDIS_HOST", "redis://redis", nil, nil, "host name or IP address"},

	{"CACHE_REDIS_PORT", "6380", func(c Config) any { return c.Redis.Port }, 6380, ""},
	{"CACHE_REDIS_PORT", "70000", nil, nil, "must be a port number 1-65535"},
	{"CACHE_REDIS_PORT", "0", nil, nil, "must be a port number 1-65535"},
	{"CACHE_REDIS_PORT", "http", nil, nil, "must be a port number 1-65535"},

	{"CACHE_REDIS_DB", "3", func(c Config) any { return c.Redis.DB }, 3, ""},
	{"CACHE_REDIS_DB", "-1", nil, nil, "whole number, at least 0"},
	{"CACHE_REDIS_DB", "one", nil, nil, "whole number, at least 0"},

	{"CACHE_REDIS_PASSWORD", "s3cret with spaces", func(c Config) any { return c.Redis.Password }, "s3cret with spaces", ""},

	{"CACHE_REDIS_POOL_SIZE", "50", func(c Config) any { return c.Redis.PoolSize }, 50, ""},
	{"CACHE_REDIS_POOL_SIZE", "-1", nil, nil, "whole number, at least 1"},
	{"CACHE_REDIS_POOL_SIZE", "0", nil, nil, "whole number, at least 1"},

	{"CACHE_REDIS_CLUSTER", "true", func(c Config) any { return c.Redis.Cluster }, true, ""},
	{"CACHE_REDIS_CLUSTER", "cluster", nil, nil, "must be true or false"},

	{"CACHE_MEMCACHED_HOST", "mc", func(c Config) any { return c.MemcachedServers() }, []string{"mc:11211"}, ""},
	{"CACHE_MEMCACHED_HOST", "mc:11211", nil, nil, "without a port"},

	{"CACHE_MEMCACHED_PORT", "11212", func(c Config) any { return c.MemcachedServers() }, []string{"localhost:11212"}, ""},
	{"CACHE_MEMCACHED_PORT", "65536", nil, nil, "must be a port number 1-65535"},

	{"CACHE_MEMCACHED_SERVERS", "a:1, b:2,[::1]:3", func(c Config) any { return c.Memcached.Servers }, []string{"a:1", "b:2", "[::1]:3"}, ""},
	{"CACHE_MEMCACHED_SERVERS", "a:1,b", nil, nil, `entry "b" is not host:port`},
	{"CACHE_MEMCACHED_SERVERS", "a:1,b:99999", nil, nil, `entry "b:99999" is not host:port with a port 1-65535; must be a comma-separated list of host:port`},
	{"CACHE_MEMCACHED_SERVERS", "a:1,", nil, nil, "entry 2 is empty"},
	{"CACHE_MEMCACHED_SERVERS", "a:1,a:1", nil, nil, "listed twice"},
	{"CACHE_MEMCACHED_SERVERS", ":11211", nil, nil, "is not host:port"},
	{"CACHE_MEMCACHED_SERVERS", "[fe80::1%eth0]:11211", func(c Config) any { return c.MemcachedServers() }, []string{"[fe80::1%eth0]:11211"}, ""},

	{"CACHE_MEMCACHED_POOL_SIZE", "2", func(c Config) any { return c.Memcached.PoolSize }, 2, ""},
	{"CACHE_MEMCACHED_POOL_SIZE", "-3", nil, nil, "whole number, at least 1"},

	{"CLIENT_CACHE_ENABLED", "false", func(c Config) any { return c.Client.Disabled }, true, ""},
	{"CLIENT_CACHE_ENABLED", "nope", nil, nil, "must be true or false"},

	{"CLIENT_CACHE_MAX_AGE", "300", func(c Config) any { return c.Client.MaxAge }, 300 * time.Second, ""},
	{"CLIENT_CACHE_MAX_AGE", "0", func(c Config) any { return c.Client.MaxAge }, -time.Second, ""}, // sends max-age=0
	{"CLIENT_CACHE_MAX_AGE", "-1", nil, nil, "whole number of seconds, 0 to"},
	{"CLIENT_CACHE_MAX_AGE", "1m", nil, nil, "whole number of seconds"},

	{"CLIENT_CACHE_PUBLIC_PREFIXES", "/static/, /assets", func(c Config) any { return c.Client.PublicPrefixes }, []string{"/static/", "/assets"}, ""},
	{"CLIENT_CACHE_PUBLIC_PREFIXES", "/static/,assets/", nil, nil, `entry "assets/" does not start with "/"`},
	{"CLIENT_CACHE_PUBLIC_PREFIXES", "/static/,,/x/", nil, nil, "entry 2 is empty"},

	{"API_PREFIX", "/v2", func(c Config) any { return c.Client.APIPrefix }, "/v2", ""},
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

// TestEnvCasesCoverEveryVariable keeps the table above honest: every
// variable FromEnv reads has a good value and (except the password, which
// accepts anything) a bad one.
func TestConfigEnvCasesCoverEveryVariable(t *testing.T) {
	vars := EnvVars()
	if len(vars) != 23 {
		t.Errorf("EnvVars() has %d variables, want 23: %v", len(vars), vars)
	}
	for _, v := range vars {
		var good, bad bool
		for _, tc := range envCases {
			if tc.name == v {
				good = good || tc.check != nil
				bad = bad || tc.check == nil
			}
		}
		if !good {
			t.Errorf("%s: no good value in envCases", v)
		}
		if !bad && v != "CACHE_REDIS_PASSWORD" {
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
		"CACHE_BACKEND":         "foo",
		"CACHE_REDIS_PORT":      "70000",
		"CACHE_TIMEOUT":         "fast",
		"CLIENT_CACHE_ENABLED":  "maybe",
		"CACHE_REDIS_POOL_SIZE": "-2",
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
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q; got:\n%v", want, err)
		}
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 5 {
		t.Errorf("got %d joined errors, want 5:\n%v", n, err)
	}
}

func TestFromLookupRedisURLOverridesHostPort(t *testing.T) {
	c, err := FromLookup(cfgLookup(map[string]string{
		"CACHE_BACKEND":    "redis",
		"CACHE_REDIS_URL":  "redis://:pw@primary:7000,seed2:7001,seed3:6379?cluster=true",
		"CACHE_REDIS_HOST": "ignored",
		"CACHE_REDIS_PORT": "1234",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"primary:7000", "seed2:7001", "seed3:6379"}
	if got := c.RedisAddrs(); !slices.Equal(got, want) {
		t.Fatalf("RedisAddrs() = %v, want %v (the URL overrides host/port)", got, want)
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
	if got, want := c.MemcachedServers(), []string{"mc1:11211", "mc2:11212"}; !slices.Equal(got, want) {
		t.Fatalf("MemcachedServers() = %v, want %v", got, want)
	}
}

func TestFromLookupClusterNeedsDB0(t *testing.T) {
	for _, env := range []map[string]string{
		{"CACHE_REDIS_CLUSTER": "true", "CACHE_REDIS_DB": "2"},
		{"CACHE_REDIS_CLUSTER": "true", "CACHE_REDIS_URL": "redis://seed:7000/2"},
	} {
		_, err := FromLookup(cfgLookup(env))
		if err == nil || !strings.Contains(err.Error(), "Redis Cluster has only database 0") {
			t.Errorf("%v: error %v, want one about Cluster and database 0", env, err)
		}
	}
	if _, err := FromLookup(cfgLookup(map[string]string{"CACHE_REDIS_CLUSTER": "true", "CACHE_REDIS_URL": "redis://seed:7000/0"})); err != nil {
		t.Errorf("cluster with database 0: %v", err)
	}
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
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend != BackendMemcached || c.DefaultTTL != 2*time.Minute || len(c.MemcachedServers()) != 2 {
		t.Fatalf("FromEnv() = %+v", c)
	}
	t.Setenv("CACHE_BACKEND", "sqlite")
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), "CACHE_BACKEND") {
		t.Fatalf("FromEnv with a bad CACHE_BACKEND: %v", err)
	}
}

func TestConfigWithDefaultsIdempotent(t *testing.T) {
	for _, c := range []Config{
		{},
		{Backend: BackendRedis, DefaultTTL: time.Minute, Timeout: time.Second, MemoryMaxBytes: 1, MaxKeyBytes: 10,
			Redis:     RedisConfig{Host: "r", Port: 1, DB: 2, PoolSize: 3},
			Memcached: MemcachedConfig{Host: "m", Port: 2, Servers: []string{"a:1"}, PoolSize: 4},
			Client:    ClientCacheConfig{MaxAge: -time.Second, PublicPrefixes: []string{}, APIPrefix: "/"}},
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
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" = valid
	}{
		{"zero", Config{}, ""},
		{"sub-second TTL", Config{DefaultTTL: 500 * time.Millisecond}, ""},
		{"negative MaxAge means max-age=0", Config{Client: ClientCacheConfig{MaxAge: -1}}, ""},
		{"bad backend", Config{Backend: "sqlite"}, `Config.Backend = "sqlite" (CACHE_BACKEND): must be one of`},
		{"negative TTL", Config{DefaultTTL: -time.Second}, "Config.DefaultTTL"},
		{"negative timeout", Config{Timeout: -1}, "Config.Timeout"},
		{"negative memory", Config{MemoryMaxBytes: -1}, "Config.MemoryMaxBytes"},
		{"key prefix", Config{KeyPrefix: "a\nb"}, "Config.KeyPrefix"},
		{"redis url", Config{Redis: RedisConfig{URL: "tcp://x"}}, "Config.Redis.URL"},
		{"redis url password hidden", Config{Redis: RedisConfig{URL: "http://u:hunter2@x"}}, "xxxxx"},
		{"redis host with port", Config{Redis: RedisConfig{Host: "x:1"}}, "Config.Redis.Host"},
		{"redis port", Config{Redis: RedisConfig{Port: 65536}}, "Config.Redis.Port = 65536 (CACHE_REDIS_PORT): must be a port number 1-65535"},
		{"redis db", Config{Redis: RedisConfig{DB: -1}}, "Config.Redis.DB"},
		{"redis cluster db", Config{Redis: RedisConfig{DB: 1, Cluster: true}}, "only database 0"},
		{"redis cluster url db", Config{Redis: RedisConfig{URL: "redis://x/1", Cluster: true}}, "only database 0"},
		{"redis pool", Config{Redis: RedisConfig{PoolSize: -1}}, "Config.Redis.PoolSize"},
		{"memcached host", Config{Memcached: MemcachedConfig{Host: "a b"}}, "Config.Memcached.Host"},
		{"memcached port", Config{Memcached: MemcachedConfig{Port: -1}}, "Config.Memcached.Port"},
		{"memcached server", Config{Memcached: MemcachedConfig{Servers: []string{"a:1", "b"}}}, `Config.Memcached.Servers = "b"`},
		{"memcached duplicate", Config{Memcached: MemcachedConfig{Servers: []string{"a:1", "a:1"}}}, "listed twice"},
		{"memcached pool", Config{Memcached: MemcachedConfig{PoolSize: -1}}, "Config.Memcached.PoolSize"},
		{"public prefix", Config{Client: ClientCacheConfig{PublicPrefixes: []string{"static"}}}, "Config.Client.PublicPrefixes"},
		{"api prefix", Config{Client: ClientCacheConfig{APIPrefix: "api"}}, "Config.Client.APIPrefix"},
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
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

func TestConfigValidateJoinsAllErrors(t *testing.T) {
	err := Config{Backend: "x", Timeout: -1, Redis: RedisConfig{Port: -1}}.Validate()
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 3 {
		t.Fatalf("want 3 joined errors, got %v", err)
	}
}

func TestConfigRedisAddrs(t *testing.T) {
	tests := []struct {
		redis RedisConfig
		want  []string
	}{
		{RedisConfig{}, []string{"localhost:6379"}},
		{RedisConfig{Host: "r", Port: 7000}, []string{"r:7000"}},
		{RedisConfig{Host: "::1"}, []string{"[::1]:6379"}},
		{RedisConfig{URL: "rediss://[::1]:7000/0", Host: "x"}, []string{"[::1]:7000"}},
		{RedisConfig{URL: "redis://a,a:7001,b:6379?cluster=true"}, []string{"a:6379", "a:7001", "b:6379"}},
		{RedisConfig{URL: "redis://a?addr=b"}, nil}, // Validate says why
	}
	for _, tt := range tests {
		if got := (Config{Redis: tt.redis}).RedisAddrs(); !slices.Equal(got, tt.want) {
			t.Errorf("%+v: RedisAddrs() = %v, want %v", tt.redis, got, tt.want)
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
// filled in and usable addresses.
func FuzzFromLookup(f *testing.F) {
	f.Add("CACHE_BACKEND=redis\nCACHE_REDIS_URL=redis://u:p@h:1/2")
	f.Add("CACHE_TIMEOUT=50\nCACHE_ENABLED=maybe")
	f.Add("CACHE_MEMCACHED_SERVERS=a:1,[::1]:2,b\nCACHE_MEMCACHED_PORT=0")
	f.Add("CLIENT_CACHE_MAX_AGE=0\nCLIENT_CACHE_PUBLIC_PREFIXES=/a,b\nAPI_PREFIX=/")
	f.Add("DEFAULT_CACHE_EXPIRATION=2147483648\nCACHE_REDIS_CLUSTER=1\nCACHE_REDIS_DB=1")
	f.Add("CACHE_REDIS_URL=redis://u:s3cret@h:99999/0\nCACHE_REDIS_PASSWORD=hunter22\nCACHE_REDIS_PORT=x")
	f.Add("CACHE_REDIS_URL=redis://:p%40ss@h/x?addr=b\nCACHE_BACKEND=redis")
	vars := EnvVars()
	f.Fuzz(func(t *testing.T, data string) {
		env := map[string]string{}
		for line := range strings.SplitSeq(data, "\n") {
			k, v, _ := strings.Cut(line, "=")
			env[k] = v
		}
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
		if len(c.RedisAddrs()) == 0 || len(c.MemcachedServers()) == 0 {
			t.Fatalf("no addresses: %v %v", c.RedisAddrs(), c.MemcachedServers())
		}
		if c.DefaultTTL <= 0 || c.Timeout <= 0 || c.MemoryMaxBytes <= 0 || c.Client.MaxAge == 0 {
			t.Fatalf("non-positive durations or sizes: %+v", c)
		}
		newClientCachePolicyOrFail(t, c.Client)
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

func newClientCachePolicyOrFail(t *testing.T, cc ClientCacheConfig) {
	t.Helper()
	if _, err := newClientCachePolicy(cc.withDefaults()); err != nil {
		t.Fatalf("ClientCache would panic on a Config FromLookup accepted: %v", err)
	}
}
