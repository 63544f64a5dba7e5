package hoard

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caarlos0/env/v11"

	"github.com/hoardcache/hoard/redis"
)

// Backend names the store that holds a Cache's entries (CACHE_BACKEND).
type Backend string

// The backends hoard can build from a Config.
const (
	// BackendMemory is the in-process store, bounded by MemoryMaxBytes. It is
	// the default: nothing to run, but every process has its own cache.
	BackendMemory Backend = "memory"
	// BackendRedis is a Redis server or Redis Cluster (Config.Redis).
	BackendRedis Backend = "redis"
	// BackendMemcached is a pool of Memcached servers (Config.Memcached).
	BackendMemcached Backend = "memcached"
)

// Defaults of spec §5, filled in by Config.WithDefaults.
const (
	DefaultTTL            = 3600 * time.Second
	DefaultTimeout        = 50 * time.Millisecond
	DefaultMemoryMaxBytes = 64 << 20 // 67108864
	DefaultRedisHost      = "localhost"
	DefaultRedisPort      = 6379
	DefaultMemcachedHost  = "localhost"
	DefaultMemcachedPort  = 11211
	DefaultPoolSize       = 10
	DefaultClientMaxAge   = 60 * time.Second
	DefaultAPIPrefix      = "/api"
	DefaultPublicPrefix   = "/static/"
	DefaultMaxKeyBytes    = 1024
)

// Config configures hoard: the cache, its store and the client cache
// middleware. The zero value is valid and means every default of spec §5
// (an enabled in-memory cache); WithDefaults fills the defaults in one place,
// and FromEnv reads the whole Config from the environment.
//
// Fields are documented with the environment variable that sets them.
type Config struct {
	// Disabled turns the cache off (CACHE_ENABLED=false): route middleware
	// passes requests through and the provider API always misses.
	Disabled bool
	// Backend is the store to build (CACHE_BACKEND). "" means BackendMemory.
	Backend Backend
	// DefaultTTL is the lifetime of an entry stored without an explicit TTL
	// (DEFAULT_CACHE_EXPIRATION, whole seconds). 0 means 3600 s.
	DefaultTTL time.Duration
	// KeyPrefix is put before every key, so that several applications can
	// share one server (CACHE_KEY_PREFIX). Clear only removes this namespace.
	// End it with a separator such as ':' ("shop:"): prefixes that are
	// prefixes of each other ("shop" and "shopfront") are not separate
	// namespaces on a shared server, since "shop*" also matches the other's
	// keys, so Clear deletes its stored values too (they become misses; a
	// value is never served across namespaces, as every entry records its
	// own namespace's generations).
	KeyPrefix string
	// Timeout is the deadline of one store call (CACHE_TIMEOUT). 0 means 50ms.
	Timeout time.Duration
	// MaxKeyBytes is the longest key hoard stores under, not counting
	// KeyPrefix (CACHE_MAX_KEY_BYTES): a route's key (resource, query and
	// caller) or a provider key. A GET whose key is longer is served
	// uncached (logged, and counted in Stats.KeysTooLong); the provider
	// API returns ErrKeyTooLong. It bounds what one request can make the
	// store and the pending invalidations hold. 0 means 1024.
	MaxKeyBytes int
	// MemoryMaxBytes bounds the in-process store (CACHE_MEMORY_MAX_BYTES).
	// 0 means 64 MiB.
	MemoryMaxBytes int64
	// Redis configures BackendRedis.
	Redis RedisConfig
	// Memcached configures BackendMemcached.
	Memcached MemcachedConfig
	// Client configures the ClientCache middleware.
	Client ClientCacheConfig
	// Logger receives hoard's (rate-limited) error logs. nil means
	// slog.Default(). It has no environment variable.
	Logger *slog.Logger
}

// RedisConfig says where the Redis server or Cluster is.
type RedisConfig struct {
	// URL, when set, overrides Host, Port, DB and Password
	// (CACHE_REDIS_URL): redis://[user:password@]host[:port][/db], or
	// rediss:// for TLS. Further Cluster seeds may be given as
	// ?addr=host:port query parameters, as in rueidis.ParseURL.
	URL string
	// Host is the server's host name or IP address (CACHE_REDIS_HOST).
	// "" means localhost.
	Host string
	// Port is the server's TCP port (CACHE_REDIS_PORT). 0 means 6379.
	Port int
	// DB is the database number (CACHE_REDIS_DB). Redis Cluster has only 0.
	DB int
	// Password authenticates the connection (CACHE_REDIS_PASSWORD).
	Password string
	// PoolSize is the size of the connection pool for blocking commands
	// (CACHE_REDIS_POOL_SIZE). 0 means 10.
	PoolSize int
	// Cluster says that the address(es) are Redis Cluster seeds
	// (CACHE_REDIS_CLUSTER).
	Cluster bool
}

// MemcachedConfig says where the Memcached servers are.
type MemcachedConfig struct {
	// Host is the server's host name or IP address (CACHE_MEMCACHED_HOST).
	// "" means localhost.
	Host string
	// Port is the server's TCP port (CACHE_MEMCACHED_PORT). 0 means 11211.
	Port int
	// Servers, when not empty, overrides Host and Port: the pool of
	// servers as host:port entries (CACHE_MEMCACHED_SERVERS, comma
	// separated). Keys are spread over them by consistent hashing.
	Servers []string
	// PoolSize is the number of connections per server
	// (CACHE_MEMCACHED_POOL_SIZE): the idle ones kept, and the most calls
	// one server gets at once (a call waits up to Timeout for a free
	// connection rather than dialing one that would be closed right after).
	// 0 means 10.
	PoolSize int
	// MaxValueBytes is the largest value the store sends to a server
	// (CACHE_MEMCACHED_MAX_VALUE_BYTES); a larger one is not stored (the
	// response is served uncached), and so is one a server refuses. Raise
	// it with memcached's item size (-I). 0 means the store's default,
	// which fits memcached's default 1 MiB items.
	MaxValueBytes int
}

// ClientCacheConfig configures the ClientCache middleware (spec §4).
type ClientCacheConfig struct {
	// Disabled turns the middleware off (CLIENT_CACHE_ENABLED=false): it
	// then returns the next handler unchanged and sets no header.
	Disabled bool
	// MaxAge is the max-age sent for paths under PublicPrefixes
	// (CLIENT_CACHE_MAX_AGE, whole seconds; shorter durations are rounded
	// down to whole seconds). 0 means 60 s; a negative value sends
	// max-age=0 (CLIENT_CACHE_MAX_AGE=0 is read as -1s for that reason).
	MaxAge time.Duration
	// PublicPrefixes are the path prefixes whose responses browsers and
	// shared caches may keep (CLIENT_CACHE_PUBLIC_PREFIXES, comma separated).
	// Each starts with "/". A prefix ending in "/" matches the paths that
	// start with it; one without matches itself and the paths below it
	// ("/favicon.ico", "/assets" → "/assets/x" but not "/assets2").
	// nil means ["/static/"]; an empty non-nil slice means none.
	PublicPrefixes []string
	// APIPrefix is the path prefix of the API (API_PREFIX), whose responses
	// must never be kept by browsers: it matches itself and the paths below
	// it. "" means "/api"; "/" makes every path an API path.
	APIPrefix string
}

// WithDefaults returns c with every zero value replaced by its default
// (spec §5). It is idempotent. Slices are not copied, except that a nil
// Client.PublicPrefixes becomes a new ["/static/"].
func (c Config) WithDefaults() Config {
	if c.Backend == "" {
		c.Backend = BackendMemory
	}
	if c.DefaultTTL == 0 {
		c.DefaultTTL = DefaultTTL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxKeyBytes == 0 {
		c.MaxKeyBytes = DefaultMaxKeyBytes
	}
	if c.MemoryMaxBytes == 0 {
		c.MemoryMaxBytes = DefaultMemoryMaxBytes
	}
	if c.Redis.Host == "" {
		c.Redis.Host = DefaultRedisHost
	}
	if c.Redis.Port == 0 {
		c.Redis.Port = DefaultRedisPort
	}
	if c.Redis.PoolSize == 0 {
		c.Redis.PoolSize = DefaultPoolSize
	}
	if c.Memcached.Host == "" {
		c.Memcached.Host = DefaultMemcachedHost
	}
	if c.Memcached.Port == 0 {
		c.Memcached.Port = DefaultMemcachedPort
	}
	if c.Memcached.PoolSize == 0 {
		c.Memcached.PoolSize = DefaultPoolSize
	}
	c.Client = c.Client.withDefaults()
	return c
}

func (c ClientCacheConfig) withDefaults() ClientCacheConfig {
	if c.MaxAge == 0 {
		c.MaxAge = DefaultClientMaxAge
	}
	if c.PublicPrefixes == nil {
		c.PublicPrefixes = []string{DefaultPublicPrefix}
	}
	if c.APIPrefix == "" {
		c.APIPrefix = DefaultAPIPrefix
	}
	return c
}

// RedisAddrs returns the address(es) of the Redis server or Cluster seeds as
// host:port: those of Redis.URL when it is set (parsed by redis.ParseURL, the
// parser Open uses: "redis://h1:7000,h2:7001?cluster=true" names two seeds),
// else Redis.Host and Redis.Port with defaults filled in. It returns nil for a
// URL that does not parse; Validate reports why.
func (c Config) RedisAddrs() []string {
	c = c.WithDefaults()
	if c.Redis.URL == "" {
		return []string{net.JoinHostPort(c.Redis.Host, strconv.Itoa(c.Redis.Port))}
	}
	o, err := redis.ParseURL(c.Redis.URL)
	if err != nil {
		return nil
	}
	return o.Addrs
}

// MemcachedServers returns the Memcached servers as host:port: Servers when
// it is not empty, else Host and Port with defaults filled in.
func (c Config) MemcachedServers() []string {
	if len(c.Memcached.Servers) > 0 {
		return c.Memcached.Servers
	}
	c = c.WithDefaults()
	return []string{net.JoinHostPort(c.Memcached.Host, strconv.Itoa(c.Memcached.Port))}
}

// Rules shared by Validate and FromLookup. Each returns "" for a good value,
// else what the value must be.

const (
	wantBool    = "must be true or false"
	wantBackend = "must be one of memory, redis, memcached"
	wantPort    = "must be a port number 1-65535"
	wantHost    = "must be a host name or IP address, without a port or scheme"
	wantServer  = "must be host:port with a port 1-65535, e.g. cache1:11211"
	wantPrefix  = `must start with "/", e.g. /static/`
	wantAPI     = `must be a path starting with "/", e.g. /api`
	wantKeyPfx  = "must not contain whitespace or control characters"
	wantCluster = "must be 0 when CACHE_REDIS_CLUSTER=true: Redis Cluster has only database 0"
)

func checkBackend(b Backend) string {
	switch b {
	case BackendMemory, BackendRedis, BackendMemcached:
		return ""
	}
	return wantBackend
}

func checkHost(h string) string {
	if h == "" || strings.ContainsAny(h, "/@?#[]") || hasSpaceOrControl(h) {
		return wantHost
	}
	if strings.Contains(h, ":") {
		if _, err := netip.ParseAddr(h); err != nil {
			return wantHost // a port, or a malformed IPv6 address
		}
	}
	return ""
}

func checkPort(p int) string {
	if p < 1 || p > 65535 {
		return wantPort
	}
	return ""
}

func checkServer(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || checkHost(host) != "" {
		return wantServer
	}
	if n, err := strconv.Atoi(port); err != nil || checkPort(n) != "" {
		return wantServer
	}
	return ""
}

func checkKeyPrefix(p string) string {
	if hasSpaceOrControl(p) {
		return wantKeyPfx
	}
	return ""
}

func checkPublicPrefix(p string) string {
	if !strings.HasPrefix(p, "/") || hasSpaceOrControl(p) {
		return wantPrefix
	}
	return ""
}

func checkAPIPrefix(p string) string {
	if !strings.HasPrefix(p, "/") || hasSpaceOrControl(p) || strings.ContainsAny(p, "?#") {
		return wantAPI
	}
	return ""
}

// checkRedisURL checks a Redis URL with redis.ParseURL, the parser Open
// uses, so that what Validate accepts Open accepts too. It returns the
// database the URL selects.
func checkRedisURL(s string) (db int, want string) {
	if l := strings.ToLower(s); !strings.HasPrefix(l, "redis://") && !strings.HasPrefix(l, "rediss://") {
		return 0, "must start with redis:// or rediss://"
	}
	o, err := redis.ParseURL(s)
	if err != nil {
		return 0, redactPassword(strings.TrimPrefix(err.Error(), "redis: "), s)
	}
	return o.DB, ""
}

// redactPassword replaces the password of a redis:// URL wherever it
// appears in msg (URL parse errors quote the raw URL).
func redactPassword(msg, rawURL string) string {
	_, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return msg
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return msg
	}
	_, pw, ok := strings.Cut(rest[:at], ":")
	if !ok || pw == "" {
		return msg
	}
	return strings.ReplaceAll(msg, pw, "xxxxx")
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

func hasSpaceOrControl(s string) bool {
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			return true
		}
	}
	return false
}

// Validate reports every field of c that hoard cannot use, joined with
// errors.Join. Zero values are valid (they mean the defaults). New and Open
// call it; configurations from FromEnv are already valid.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, want string) {
		if want != "" {
			errs = append(errs, fmt.Errorf("Config.%s = %#v (%s): %s", field, value, envNameOf[field], want))
		}
	}
	if c.Backend != "" {
		bad("Backend", string(c.Backend), checkBackend(c.Backend))
	}
	if c.DefaultTTL < 0 {
		bad("DefaultTTL", c.DefaultTTL.String(), "must not be negative (0 means 3600s)")
	}
	bad("KeyPrefix", c.KeyPrefix, checkKeyPrefix(c.KeyPrefix))
	if c.Timeout < 0 {
		bad("Timeout", c.Timeout.String(), "must not be negative (0 means 50ms)")
	}
	if c.MemoryMaxBytes < 0 {
		bad("MemoryMaxBytes", c.MemoryMaxBytes, "must not be negative (0 means 64 MiB)")
	}
	if c.MaxKeyBytes < 0 {
		bad("MaxKeyBytes", c.MaxKeyBytes, "must not be negative (0 means 1024)")
	}

	r := c.Redis
	if r.URL != "" {
		db, want := checkRedisURL(r.URL)
		bad("Redis.URL", redactURL(r.URL), want)
		if want == "" && r.Cluster && db != 0 {
			bad("Redis.URL", redactURL(r.URL), "the database "+wantCluster)
		}
	}
	if r.Host != "" {
		bad("Redis.Host", r.Host, checkHost(r.Host))
	}
	if r.Port != 0 {
		bad("Redis.Port", r.Port, checkPort(r.Port))
	}
	if r.DB < 0 {
		bad("Redis.DB", r.DB, "must not be negative")
	} else if r.DB != 0 && r.Cluster && r.URL == "" {
		bad("Redis.DB", r.DB, wantCluster)
	}
	if r.PoolSize < 0 {
		bad("Redis.PoolSize", r.PoolSize, "must not be negative (0 means 10)")
	}

	m := c.Memcached
	if m.Host != "" {
		bad("Memcached.Host", m.Host, checkHost(m.Host))
	}
	if m.Port != 0 {
		bad("Memcached.Port", m.Port, checkPort(m.Port))
	}
	seen := make(map[string]bool, len(m.Servers))
	for _, s := range m.Servers {
		bad("Memcached.Servers", s, checkServer(s))
		if seen[s] {
			bad("Memcached.Servers", s, "is listed twice")
		}
		seen[s] = true
	}
	if m.PoolSize < 0 {
		bad("Memcached.PoolSize", m.PoolSize, "must not be negative (0 means 10)")
	}
	if m.MaxValueBytes < 0 {
		bad("Memcached.MaxValueBytes", m.MaxValueBytes, "must not be negative (0 means the store's default)")
	}

	cc := c.Client
	for _, p := range cc.PublicPrefixes {
		bad("Client.PublicPrefixes", p, checkPublicPrefix(p))
	}
	if cc.APIPrefix != "" {
		bad("Client.APIPrefix", cc.APIPrefix, checkAPIPrefix(cc.APIPrefix))
	}
	return errors.Join(errs...)
}

// envNameOf maps Config field paths to their environment variables, for
// Validate's messages.
var envNameOf = map[string]string{
	"Backend":                 "CACHE_BACKEND",
	"DefaultTTL":              "DEFAULT_CACHE_EXPIRATION",
	"KeyPrefix":               "CACHE_KEY_PREFIX",
	"Timeout":                 "CACHE_TIMEOUT",
	"MemoryMaxBytes":          "CACHE_MEMORY_MAX_BYTES",
	"MaxKeyBytes":             "CACHE_MAX_KEY_BYTES",
	"Redis.URL":               "CACHE_REDIS_URL",
	"Redis.Host":              "CACHE_REDIS_HOST",
	"Redis.Port":              "CACHE_REDIS_PORT",
	"Redis.DB":                "CACHE_REDIS_DB",
	"Redis.PoolSize":          "CACHE_REDIS_POOL_SIZE",
	"Memcached.Host":          "CACHE_MEMCACHED_HOST",
	"Memcached.Port":          "CACHE_MEMCACHED_PORT",
	"Memcached.Servers":       "CACHE_MEMCACHED_SERVERS",
	"Memcached.PoolSize":      "CACHE_MEMCACHED_POOL_SIZE",
	"Memcached.MaxValueBytes": "CACHE_MEMCACHED_MAX_VALUE_BYTES",
	"Client.PublicPrefixes":   "CLIENT_CACHE_PUBLIC_PREFIXES",
	"Client.APIPrefix":        "API_PREFIX",
	"Client.MaxAge":           "CLIENT_CACHE_MAX_AGE",
}

// rawEnv is the environment as caarlos0/env reads it: every variable of
// spec §5 with its default. Values stay strings so that FromLookup, not the
// env package, reports bad values, each naming its variable and the form it
// accepts. A variable set to "" takes its default.
type rawEnv struct {
	Enabled        string `env:"CACHE_ENABLED" envDefault:"true"`
	Backend        string `env:"CACHE_BACKEND" envDefault:"memory"`
	Expiration     string `env:"DEFAULT_CACHE_EXPIRATION" envDefault:"3600"`
	KeyPrefix      string `env:"CACHE_KEY_PREFIX"`
	Timeout        string `env:"CACHE_TIMEOUT" envDefault:"50ms"`
	MemoryMaxBytes string `env:"CACHE_MEMORY_MAX_BYTES" envDefault:"67108864"`
	MaxKeyBytes    string `env:"CACHE_MAX_KEY_BYTES" envDefault:"1024"`

	RedisURL      string `env:"CACHE_REDIS_URL"`
	RedisHost     string `env:"CACHE_REDIS_HOST" envDefault:"localhost"`
	RedisPort     string `env:"CACHE_REDIS_PORT" envDefault:"6379"`
	RedisDB       string `env:"CACHE_REDIS_DB" envDefault:"0"`
	RedisPassword string `env:"CACHE_REDIS_PASSWORD"`
	RedisPoolSize string `env:"CACHE_REDIS_POOL_SIZE" envDefault:"10"`
	RedisCluster  string `env:"CACHE_REDIS_CLUSTER" envDefault:"false"`

	MemcachedHost     string `env:"CACHE_MEMCACHED_HOST" envDefault:"localhost"`
	MemcachedPort     string `env:"CACHE_MEMCACHED_PORT" envDefault:"11211"`
	MemcachedServers  string `env:"CACHE_MEMCACHED_SERVERS"`
	MemcachedPoolSize string `env:"CACHE_MEMCACHED_POOL_SIZE" envDefault:"10"`
	MemcachedMaxValue string `env:"CACHE_MEMCACHED_MAX_VALUE_BYTES" envDefault:"0"`

	ClientEnabled        string `env:"CLIENT_CACHE_ENABLED" envDefault:"true"`
	ClientMaxAge         string `env:"CLIENT_CACHE_MAX_AGE" envDefault:"60"`
	ClientPublicPrefixes string `env:"CLIENT_CACHE_PUBLIC_PREFIXES" envDefault:"/static/"`
	APIPrefix            string `env:"API_PREFIX" envDefault:"/api"`
}

// EnvVars lists the environment variables FromEnv reads (spec §5).
func EnvVars() []string {
	params, err := env.GetFieldParams(&rawEnv{})
	if err != nil {
		panic("hoard: bad env tags: " + err.Error()) // a bug in this file, caught by tests
	}
	names := make([]string, len(params))
	for i, p := range params {
		names[i] = p.Key
	}
	return names
}

// FromEnv reads a Config from the environment variables of spec §5 (see
// EnvVars); unset or empty variables take their defaults. Every value
// hoard cannot use is reported, each naming its variable and what it
// accepts, joined with errors.Join so that all can be fixed at once.
//
// Forms accepted: booleans true/false (also 1/0, yes/no, on/off, any case);
// DEFAULT_CACHE_EXPIRATION and CLIENT_CACHE_MAX_AGE in whole seconds;
// CACHE_TIMEOUT as a Go duration with its unit, such as 50ms or 1s (a bare
// number is rejected: it would be ambiguous between seconds and
// milliseconds); comma-separated lists with optional spaces around entries.
func FromEnv() (Config, error) { return FromLookup(os.LookupEnv) }

// FromLookup is FromEnv reading variables through lookup, which reports
// whether a variable is set (like os.LookupEnv). It is meant for tests and
// for configuration kept elsewhere than in the process environment.
func FromLookup(lookup func(string) (string, bool)) (Config, error) {
	environ := make(map[string]string)
	for _, name := range EnvVars() {
		if v, ok := lookup(name); ok {
			environ[name] = v
		}
	}
	var raw rawEnv
	if err := env.ParseWithOptions(&raw, env.Options{Environment: environ}); err != nil {
		// Cannot happen with string fields; keep the promise of naming
		// the variables anyway.
		return Config{}, fmt.Errorf("CACHE_*/CLIENT_*/API_PREFIX/DEFAULT_CACHE_EXPIRATION: %w", err)
	}
	p := envParser{}
	var c Config

	c.Disabled = !p.boolean("CACHE_ENABLED", raw.Enabled)
	c.Backend = Backend(strings.ToLower(strings.TrimSpace(raw.Backend)))
	p.check("CACHE_BACKEND", raw.Backend, checkBackend(c.Backend))
	c.DefaultTTL = p.seconds("DEFAULT_CACHE_EXPIRATION", raw.Expiration, 1)
	c.KeyPrefix = raw.KeyPrefix
	p.check("CACHE_KEY_PREFIX", raw.KeyPrefix, checkKeyPrefix(raw.KeyPrefix))
	c.Timeout = p.duration("CACHE_TIMEOUT", raw.Timeout)
	c.MemoryMaxBytes = p.integer("CACHE_MEMORY_MAX_BYTES", raw.MemoryMaxBytes, 1, math.MaxInt64, "must be a whole number of bytes, at least 1")
	c.MaxKeyBytes = int(p.integer("CACHE_MAX_KEY_BYTES", raw.MaxKeyBytes, 1, math.MaxInt32, "must be a whole number of bytes, at least 1"))

	c.Redis.URL = strings.TrimSpace(raw.RedisURL)
	c.Redis.Host = p.host("CACHE_REDIS_HOST", raw.RedisHost, "CACHE_REDIS_PORT")
	c.Redis.Port = p.port("CACHE_REDIS_PORT", raw.RedisPort)
	c.Redis.DB = int(p.integer("CACHE_REDIS_DB", raw.RedisDB, 0, math.MaxInt32, "must be a whole number, at least 0"))
	c.Redis.Password = raw.RedisPassword
	c.Redis.PoolSize = p.poolSize("CACHE_REDIS_POOL_SIZE", raw.RedisPoolSize)
	c.Redis.Cluster = p.boolean("CACHE_REDIS_CLUSTER", raw.RedisCluster)
	if c.Redis.URL != "" {
		db, want := checkRedisURL(c.Redis.URL)
		p.checkRedacted("CACHE_REDIS_URL", redactURL(raw.RedisURL), want)
		if want == "" && c.Redis.Cluster && db != 0 {
			p.checkRedacted("CACHE_REDIS_URL", redactURL(raw.RedisURL), "the database "+wantCluster)
		}
	} else if c.Redis.Cluster && c.Redis.DB != 0 {
		p.check("CACHE_REDIS_DB", raw.RedisDB, wantCluster)
	}

	c.Memcached.Host = p.host("CACHE_MEMCACHED_HOST", raw.MemcachedHost, "CACHE_MEMCACHED_PORT")
	c.Memcached.Port = p.port("CACHE_MEMCACHED_PORT", raw.MemcachedPort)
	c.Memcached.Servers = p.servers("CACHE_MEMCACHED_SERVERS", raw.MemcachedServers)
	c.Memcached.PoolSize = p.poolSize("CACHE_MEMCACHED_POOL_SIZE", raw.MemcachedPoolSize)
	c.Memcached.MaxValueBytes = int(p.integer("CACHE_MEMCACHED_MAX_VALUE_BYTES", raw.MemcachedMaxValue, 0, math.MaxInt32, "must be a whole number of bytes (0 means the store's default)"))

	c.Client.Disabled = !p.boolean("CLIENT_CACHE_ENABLED", raw.ClientEnabled)
	c.Client.MaxAge = p.seconds("CLIENT_CACHE_MAX_AGE", raw.ClientMaxAge, 0)
	if c.Client.MaxAge == 0 {
		c.Client.MaxAge = -time.Second // max-age=0; the zero value would mean 60s
	}
	c.Client.PublicPrefixes = p.publicPrefixes("CLIENT_CACHE_PUBLIC_PREFIXES", raw.ClientPublicPrefixes)
	c.Client.APIPrefix = strings.TrimSpace(raw.APIPrefix)
	p.check("API_PREFIX", raw.APIPrefix, checkAPIPrefix(c.Client.APIPrefix))

	if len(p.errs) > 0 {
		return Config{}, errors.Join(p.errs...)
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err // a rule FromLookup misses; the fuzz test looks for these
	}
	return c, nil
}

// envParser converts raw environment values, collecting one error per bad
// variable in the form VAR="value": what it accepts.
type envParser struct{ errs []error }

func (p *envParser) check(name, raw, want string) {
	if want != "" {
		p.errs = append(p.errs, fmt.Errorf("%s=%q: %s", name, raw, want))
	}
}

// checkRedacted is check for a value already made safe to print.
func (p *envParser) checkRedacted(name, shown, want string) {
	if want != "" {
		p.errs = append(p.errs, fmt.Errorf("%s=%q: %s", name, shown, want))
	}
}

func (p *envParser) boolean(name, raw string) bool {
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "true", "1", "yes", "on", "t", "y":
		return true
	case "false", "0", "no", "off", "f", "n":
		return false
	}
	p.check(name, raw, wantBool)
	return false
}

// integer parses a whole number in [lo, hi].
func (p *envParser) integer(name, raw string, lo, hi int64, want string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil || n < lo || n > hi {
		p.check(name, raw, want)
		return 0
	}
	return n
}

// maxSeconds bounds TTLs and max-age: the largest delta-seconds RFC 9111
// asks caches to honour, and far from overflowing a time.Duration even when
// doubled or converted to milliseconds.
const maxSeconds = math.MaxInt32

// seconds parses a whole number of seconds in [lo, maxSeconds].
func (p *envParser) seconds(name, raw string, lo int64) time.Duration {
	n := p.integer(name, raw, lo, maxSeconds,
		fmt.Sprintf("must be a whole number of seconds, %d to %d", lo, maxSeconds))
	return time.Duration(n) * time.Second
}

func (p *envParser) duration(name, raw string) time.Duration {
	s := strings.TrimSpace(raw)
	if _, err := strconv.ParseFloat(s, 64); err == nil && s != "0" {
		p.check(name, raw, "must be a duration with a unit, such as 50ms or 1s")
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		p.check(name, raw, "must be a duration such as 50ms or 1s (positive)")
		return 0
	}
	return d
}

func (p *envParser) port(name, raw string) int {
	return int(p.integer(name, raw, 1, 65535, wantPort))
}

func (p *envParser) poolSize(name, raw string) int {
	return int(p.integer(name, raw, 1, math.MaxInt32, "must be a whole number, at least 1"))
}

func (p *envParser) host(name, raw, portName string) string {
	h := strings.TrimSpace(raw)
	want := checkHost(h)
	if want != "" && strings.Contains(h, ":") {
		want += " (set the port in " + portName + ")"
	}
	p.check(name, raw, want)
	return h
}

// list splits a comma-separated value, trimming spaces around entries.
func list(raw string) []string {
	parts := strings.Split(raw, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func (p *envParser) servers(name, raw string) []string {
	if strings.TrimSpace(raw) == "" {
		return nil
	}
	servers := list(raw)
	var problems []string
	seen := make(map[string]bool, len(servers))
	for i, s := range servers {
		switch {
		case s == "":
			problems = append(problems, fmt.Sprintf("entry %d is empty", i+1))
		case checkServer(s) != "":
			problems = append(problems, fmt.Sprintf("entry %q is not host:port with a port 1-65535", s))
		case seen[s]:
			problems = append(problems, fmt.Sprintf("entry %q is listed twice", s))
		}
		seen[s] = true
	}
	if problems != nil {
		p.check(name, raw, strings.Join(problems, "; ")+"; must be a comma-separated list of host:port, e.g. cache1:11211,cache2:11211")
	}
	return servers
}

func (p *envParser) publicPrefixes(name, raw string) []string {
	prefixes := list(raw)
	var problems []string
	for i, s := range prefixes {
		switch {
		case s == "":
			problems = append(problems, fmt.Sprintf("entry %d is empty", i+1))
		case checkPublicPrefix(s) != "":
			problems = append(problems, fmt.Sprintf("entry %q does not start with \"/\"", s))
		}
	}
	if problems != nil {
		p.check(name, raw, strings.Join(problems, "; ")+"; must be a comma-separated list of paths, e.g. /static/,/assets/")
	}
	return prefixes
}

// redactURL hides the password of a URL, even one that does not parse.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	scheme := strings.Index(s, "://")
	at := strings.LastIndex(s, "@")
	if scheme < 0 || at < scheme {
		return s
	}
	user := s[scheme+3 : at]
	if i := strings.Index(user, ":"); i >= 0 {
		user = user[:i+1] + "xxxxx"
	}
	return s[:scheme+3] + user + s[at:]
}
