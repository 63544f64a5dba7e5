package stores

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/addr"
	"github.com/hoardcache/hoard/memcached"
	"github.com/hoardcache/hoard/redis"
)

// envVars lists the variables FromEnv reads, in the order of its messages
// and of the README's Configuration table.
var envVars = []string{
	"CACHE_ENABLED",
	"CACHE_BACKEND",
	"DEFAULT_CACHE_EXPIRATION",
	"CACHE_STALE_WHILE_REVALIDATE",
	"CACHE_STALE_IF_ERROR",
	"CACHE_MISS_WAIT",
	"CACHE_COMPRESS_MIN_BYTES",
	"CACHE_KEY_PREFIX",
	"CACHE_PENDING_FILE",
	"CACHE_TIMEOUT",
	"CACHE_MEMORY_MAX_BYTES",
	"CACHE_MAX_KEY_BYTES",
	"CACHE_REDIS_URL",
	"CACHE_REDIS_HOST",
	"CACHE_REDIS_PORT",
	"CACHE_REDIS_DB",
	"CACHE_REDIS_USERNAME",
	"CACHE_REDIS_PASSWORD",
	"CACHE_REDIS_POOL_SIZE",
	"CACHE_REDIS_CLUSTER",
	"CACHE_REDIS_TLS",
	"CACHE_REDIS_TLS_CA_FILE",
	"CACHE_NEAR_CACHE",
	"CACHE_NEAR_MAX_BYTES",
	"CACHE_NEAR_TTL",
	"CACHE_NEAR_MAX_LAG",
	"CACHE_MEMCACHED_HOST",
	"CACHE_MEMCACHED_PORT",
	"CACHE_MEMCACHED_SERVERS",
	"CACHE_MEMCACHED_POOL_SIZE",
	"CACHE_MEMCACHED_MAX_VALUE_BYTES",
	"CLIENT_CACHE_ENABLED",
	"CLIENT_CACHE_MAX_AGE",
	"CLIENT_CACHE_PUBLIC_PREFIXES",
	"API_PREFIX",
}

// EnvVars lists the environment variables FromEnv reads (the README's Configuration table and the
// README's Configuration table).
func EnvVars() []string { return slices.Clone(envVars) }

// FromEnv reads a Config from the environment variables listed by EnvVars;
// unset or empty variables take their defaults. Every value that cannot be
// used is reported, each line naming its variable and what it accepts,
// joined with errors.Join so that all can be fixed at once.
//
// Forms accepted: booleans true/false (also 1/0, yes/no, on/off, any case);
// DEFAULT_CACHE_EXPIRATION, CACHE_STALE_WHILE_REVALIDATE,
// CACHE_STALE_IF_ERROR, CLIENT_CACHE_MAX_AGE and CACHE_NEAR_TTL (like
// the other lifetimes) in whole seconds;
// CACHE_TIMEOUT, CACHE_MISS_WAIT (0 = off) and CACHE_NEAR_MAX_LAG as Go durations with their unit, such as 50ms or 1s (a bare
// number is rejected: it would be ambiguous between seconds and
// milliseconds); comma-separated lists with optional spaces around entries.
//
// CACHE_REDIS_URL, when set, gives the Redis address(es), database,
// username and password (redis.ParseURL), overriding CACHE_REDIS_HOST,
// _PORT, _DB, _USERNAME and _PASSWORD; rediss:// turns TLS on, as does
// CACHE_REDIS_TLS=true. CACHE_REDIS_TLS_CA_FILE, a PEM file, is read here:
// its certificates replace the system's as the roots the server's
// certificate must chain to. CACHE_MEMCACHED_SERVERS, when set, overrides
// CACHE_MEMCACHED_HOST and _PORT.
//
// The Config returned has its defaults filled in (Config.WithDefaults) and
// passes Config.Validate.
func FromEnv() (Config, error) { return FromLookup(os.LookupEnv) }

// FromLookup is FromEnv reading variables through lookup, which reports
// whether a variable is set (like os.LookupEnv). It is meant for tests and
// for configuration kept elsewhere than in the process environment.
func FromLookup(lookup func(string) (string, bool)) (Config, error) {
	p := &envParser{raw: make(map[string]string), problems: make(map[string][]string), source: make(map[string]string)}
	for _, name := range envVars {
		if v, ok := lookup(name); ok && v != "" {
			p.raw[name] = v
		}
	}
	var c Config

	c.Cache.Disabled = !p.boolean("CACHE_ENABLED", true)
	c.Backend = Backend(strings.ToLower(strings.TrimSpace(p.raw["CACHE_BACKEND"])))
	c.Cache.DefaultTTL = p.seconds("DEFAULT_CACHE_EXPIRATION", 1)
	c.Cache.StaleWhileRevalidate = p.seconds("CACHE_STALE_WHILE_REVALIDATE", 0)
	c.Cache.StaleIfError = p.seconds("CACHE_STALE_IF_ERROR", 0)
	if d, err := time.ParseDuration(strings.TrimSpace(p.raw["CACHE_MISS_WAIT"])); strings.TrimSpace(p.raw["CACHE_MISS_WAIT"]) == "0" || err == nil && d == 0 {
		c.Cache.MissWait = -1 // off ("0", "0s"); the zero value would mean 1s
	} else {
		c.Cache.MissWait = p.duration("CACHE_MISS_WAIT")
	}
	if strings.TrimSpace(p.raw["CACHE_COMPRESS_MIN_BYTES"]) == "0" {
		c.Cache.CompressMinBytes = -1 // off; the zero value would mean 1024
	} else {
		c.Cache.CompressMinBytes = int(p.integer("CACHE_COMPRESS_MIN_BYTES", 1, math.MaxInt32, "must be a whole number of bytes (0 turns compression off)"))
	}
	c.Cache.KeyPrefix = p.raw["CACHE_KEY_PREFIX"]
	c.Cache.PendingFile = p.raw["CACHE_PENDING_FILE"]
	c.Cache.Timeout = p.duration("CACHE_TIMEOUT")
	c.Memory.MaxBytes = p.integer("CACHE_MEMORY_MAX_BYTES", 1, math.MaxInt64, "must be a whole number of bytes, at least 1")
	c.Cache.MaxKeyBytes = int(p.integer("CACHE_MAX_KEY_BYTES", 1, math.MaxInt32, "must be a whole number of bytes, at least 1"))

	p.redis(&c.Redis)
	p.memcached(&c.Memcached)

	c.Cache.Client.Disabled = !p.boolean("CLIENT_CACHE_ENABLED", true)
	if _, set := p.raw["CLIENT_CACHE_MAX_AGE"]; set {
		c.Cache.Client.MaxAge = p.seconds("CLIENT_CACHE_MAX_AGE", 0)
		if c.Cache.Client.MaxAge == 0 {
			c.Cache.Client.MaxAge = -time.Second // max-age=0; the zero value would mean 60s
		}
	}
	c.Cache.Client.PublicPrefixes = p.list("CLIENT_CACHE_PUBLIC_PREFIXES")
	c.Cache.Client.APIPrefix = strings.TrimSpace(p.raw["API_PREFIX"])

	// The rules on values are each package's own: report what they find
	// under the variable the value came from.
	if err := c.Validate(); err != nil {
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			p.fieldError(e)
		}
	}
	if err := p.err(); err != nil {
		return Config{}, err
	}
	return c.WithDefaults(), nil
}

// redis reads the CACHE_REDIS_* variables into o.
func (p *envParser) redis(o *redis.Options) {
	host := p.host("CACHE_REDIS_HOST", "CACHE_REDIS_PORT")
	port := p.port("CACHE_REDIS_PORT")
	db := int(p.integer("CACHE_REDIS_DB", 0, math.MaxInt32, "must be a whole number, at least 0"))
	cluster := p.boolean("CACHE_REDIS_CLUSTER", false)
	useTLS := p.boolean("CACHE_REDIS_TLS", false)
	if raw := strings.TrimSpace(p.raw["CACHE_REDIS_URL"]); raw != "" {
		parsed, want := parseRedisURL(raw)
		if want != "" {
			p.fail("CACHE_REDIS_URL", want)
		}
		*o = parsed
		p.source["redis.Options.Addrs"] = "CACHE_REDIS_URL"
		p.source["redis.Options.DB"] = "CACHE_REDIS_URL"
	} else {
		if (host != "" || port != 0) && p.ok("CACHE_REDIS_HOST", "CACHE_REDIS_PORT") {
			def := redis.DefaultAddr
			o.Addrs = []string{net.JoinHostPort(cmp.Or(host, addr.Host(def)), strconv.Itoa(cmp.Or(port, addr.Port(def))))}
		}
		o.DB = db
		o.Username = p.raw["CACHE_REDIS_USERNAME"]
		o.Password = p.raw["CACHE_REDIS_PASSWORD"]
	}
	o.Cluster = o.Cluster || cluster
	o.PoolSize = int(p.poolSize("CACHE_REDIS_POOL_SIZE"))
	o.NearCache = p.boolean("CACHE_NEAR_CACHE", false)
	o.NearMaxBytes = p.integer("CACHE_NEAR_MAX_BYTES", 1, math.MaxInt64, "must be a whole number of bytes, at least 1")
	o.NearTTL = p.seconds("CACHE_NEAR_TTL", 1)
	o.NearMaxLag = p.duration("CACHE_NEAR_MAX_LAG")
	if useTLS && o.TLSConfig == nil {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if file := strings.TrimSpace(p.raw["CACHE_REDIS_TLS_CA_FILE"]); file != "" {
		switch roots, want := readCAFile(file); {
		case want != "":
			p.fail("CACHE_REDIS_TLS_CA_FILE", want)
		case o.TLSConfig == nil:
			p.fail("CACHE_REDIS_TLS_CA_FILE", "needs TLS: set CACHE_REDIS_TLS=true or use a rediss:// URL")
		default:
			o.TLSConfig.RootCAs = roots
		}
	}
}

// memcached reads the CACHE_MEMCACHED_* variables into o.
func (p *envParser) memcached(o *memcached.Options) {
	host := p.host("CACHE_MEMCACHED_HOST", "CACHE_MEMCACHED_PORT")
	port := p.port("CACHE_MEMCACHED_PORT")
	if servers := p.list("CACHE_MEMCACHED_SERVERS"); len(servers) > 0 {
		o.Servers = servers
	} else if (host != "" || port != 0) && p.ok("CACHE_MEMCACHED_HOST", "CACHE_MEMCACHED_PORT") {
		def := memcached.DefaultServer
		o.Servers = []string{net.JoinHostPort(cmp.Or(host, addr.Host(def)), strconv.Itoa(cmp.Or(port, addr.Port(def))))}
		p.source["memcached.Options.Servers"] = "CACHE_MEMCACHED_HOST"
	}
	o.PoolSize = int(p.poolSize("CACHE_MEMCACHED_POOL_SIZE"))
	o.MaxValueBytes = int(p.integer("CACHE_MEMCACHED_MAX_VALUE_BYTES", 0, math.MaxInt32, "must be a whole number of bytes (0 means the store's default)"))
}

// fieldVar maps the fields that Validate may report to the variable that
// sets them, where it is always the same one (the others are in
// envParser.source).
var fieldVar = map[string]string{
	"hoard.Config.DefaultTTL":            "DEFAULT_CACHE_EXPIRATION",
	"hoard.Config.StaleWhileRevalidate":  "CACHE_STALE_WHILE_REVALIDATE",
	"hoard.Config.StaleIfError":          "CACHE_STALE_IF_ERROR",
	"hoard.Config.MissWait":              "CACHE_MISS_WAIT",
	"hoard.Config.CompressMinBytes":      "CACHE_COMPRESS_MIN_BYTES",
	"hoard.Config.KeyPrefix":             "CACHE_KEY_PREFIX",
	"hoard.Config.PendingFile":           "CACHE_PENDING_FILE",
	"hoard.Config.Timeout":               "CACHE_TIMEOUT",
	"hoard.Config.MaxKeyBytes":           "CACHE_MAX_KEY_BYTES",
	"hoard.Config.Client.PublicPrefixes": "CLIENT_CACHE_PUBLIC_PREFIXES",
	"hoard.Config.Client.APIPrefix":      "API_PREFIX",
	"stores.Config.Backend":              "CACHE_BACKEND",
	"memory.Options.MaxBytes":            "CACHE_MEMORY_MAX_BYTES",
	"redis.Options.Addrs":                "CACHE_REDIS_HOST",
	"redis.Options.DB":                   "CACHE_REDIS_DB",
	"redis.Options.PoolSize":             "CACHE_REDIS_POOL_SIZE",
	"redis.Options.Timeout":              "CACHE_TIMEOUT",
	"redis.Options.NearMaxBytes":         "CACHE_NEAR_MAX_BYTES",
	"redis.Options.NearTTL":              "CACHE_NEAR_TTL",
	"redis.Options.NearMaxLag":           "CACHE_NEAR_MAX_LAG",
	"stores.Config.Redis.NearCache":      "CACHE_NEAR_CACHE",
	"memcached.Options.Servers":          "CACHE_MEMCACHED_SERVERS",
	"memcached.Options.PoolSize":         "CACHE_MEMCACHED_POOL_SIZE",
	"memcached.Options.MaxValueBytes":    "CACHE_MEMCACHED_MAX_VALUE_BYTES",
	"memcached.Options.Timeout":          "CACHE_TIMEOUT",
}

// listVars are the variables that hold comma-separated lists, with what an
// entry must be.
var listVars = map[string]string{
	"CACHE_MEMCACHED_SERVERS":      "a comma-separated list of host:port, e.g. cache1:11211,cache2:11211",
	"CLIENT_CACHE_PUBLIC_PREFIXES": "a comma-separated list of paths, e.g. /static/,/assets/",
}

// envParser converts raw environment values, collecting the problems of
// each variable; err reports them, one line per variable, in the form
// VAR="value": what it accepts.
type envParser struct {
	raw      map[string]string   // the variables set, not empty
	problems map[string][]string // by variable
	// source maps a field (Type.Field, as in hoard.FieldError) to the
	// variable that set it, where that depends on which were set.
	source map[string]string
}

func (p *envParser) fail(name, want string) {
	p.problems[name] = append(p.problems[name], want)
}

// ok reports whether none of the named variables had a problem.
func (p *envParser) ok(names ...string) bool {
	for _, n := range names {
		if len(p.problems[n]) > 0 {
			return false
		}
	}
	return true
}

// fieldError files an error of Config.Validate under its variable.
func (p *envParser) fieldError(err error) {
	var fe *hoard.FieldError
	if !errors.As(err, &fe) {
		p.fail("CACHE_BACKEND", err.Error()) // not reached: every Validate reports FieldErrors
		return
	}
	key := fe.Type + "." + fe.Field
	name := cmp.Or(p.source[key], fieldVar[key])
	switch {
	case name == "":
		p.fail("CACHE_BACKEND", fe.Error()) // a field no variable sets: not reached
	case name == "CACHE_REDIS_URL" || name == "CACHE_MEMCACHED_HOST" || name == "CACHE_REDIS_HOST":
		// One variable that sets several fields, or a field built from
		// several variables: say which.
		p.fail(name, fmt.Sprintf("%s %v: %s", fe.Field, fe.Value, fe.Want))
	case listVars[name] != "":
		p.fail(name, fmt.Sprintf("entry %q %s", fmt.Sprint(fe.Value), fe.Want))
	default:
		p.fail(name, fe.Want)
	}
}

// err joins the problems, one line per variable in the order of envVars.
func (p *envParser) err() error {
	var errs []error
	for _, name := range envVars {
		probs := p.problems[name]
		if len(probs) == 0 {
			continue
		}
		msg := strings.Join(probs, "; ")
		if hint := listVars[name]; hint != "" {
			msg += "; must be " + hint
		}
		errs = append(errs, fmt.Errorf("%s=%q: %s", name, p.shown(name), msg))
	}
	return errors.Join(errs...)
}

// shown is the value of a variable as an error may quote it: a URL
// without its password, no password at all.
func (p *envParser) shown(name string) string {
	switch name {
	case "CACHE_REDIS_URL":
		return redactURL(p.raw[name])
	case "CACHE_REDIS_PASSWORD":
		return "xxxxx"
	}
	return p.raw[name]
}

func (p *envParser) boolean(name string, def bool) bool {
	raw, set := p.raw[name]
	if !set {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "true", "1", "yes", "on", "t", "y":
		return true
	case "false", "0", "no", "off", "f", "n":
		return false
	}
	p.fail(name, "must be true or false")
	return def
}

// integer parses a whole number in [lo, hi]; unset is 0.
func (p *envParser) integer(name string, lo, hi int64, want string) int64 {
	raw, set := p.raw[name]
	if !set {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil || n < lo || n > hi {
		p.fail(name, want)
		return 0
	}
	return n
}

// maxSeconds bounds TTLs and max-age: the largest delta-seconds RFC 9111
// asks caches to honour, and far from overflowing a time.Duration even when
// doubled or converted to milliseconds.
const maxSeconds = math.MaxInt32

// seconds parses a whole number of seconds in [lo, maxSeconds].
func (p *envParser) seconds(name string, lo int64) time.Duration {
	n := p.integer(name, lo, maxSeconds, fmt.Sprintf("must be a whole number of seconds, %d to %d", lo, maxSeconds))
	return time.Duration(n) * time.Second
}

func (p *envParser) duration(name string) time.Duration {
	raw, set := p.raw[name]
	if !set {
		return 0
	}
	s := strings.TrimSpace(raw)
	if _, err := strconv.ParseFloat(s, 64); err == nil && s != "0" {
		p.fail(name, "must be a duration with a unit, such as 50ms or 1s")
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		p.fail(name, "must be a duration such as 50ms or 1s (positive)")
		return 0
	}
	return d
}

func (p *envParser) port(name string) int {
	return int(p.integer(name, 1, 65535, addr.WantPort))
}

func (p *envParser) poolSize(name string) int64 {
	return p.integer(name, 1, math.MaxInt32, "must be a whole number, at least 1")
}

// host reads a host name or IP address; portName is its port's variable.
func (p *envParser) host(name, portName string) string {
	raw, set := p.raw[name]
	if !set {
		return ""
	}
	h := strings.TrimSpace(raw)
	if want := addr.CheckHost(h); want != "" {
		if strings.Contains(h, ":") {
			want += " (set the port in " + portName + ")"
		}
		p.fail(name, want)
		return ""
	}
	return h
}

// list splits a comma-separated value, trimming spaces around entries, and
// reports empty entries. Unset is nil.
func (p *envParser) list(name string) []string {
	raw, set := p.raw[name]
	if !set {
		return nil
	}
	var entries []string
	for i, e := range strings.Split(raw, ",") {
		if e = strings.TrimSpace(e); e == "" {
			p.fail(name, fmt.Sprintf("entry %d is empty", i+1))
			continue
		}
		entries = append(entries, e)
	}
	return entries
}

// parseRedisURL parses a Redis URL with redis.ParseURL, the parser the
// store's users call too. It returns what is wrong with it, if anything,
// without the URL's password.
func parseRedisURL(s string) (redis.Options, string) {
	if l := strings.ToLower(s); !strings.HasPrefix(l, "redis://") && !strings.HasPrefix(l, "rediss://") {
		return redis.Options{}, "must start with redis:// or rediss://"
	}
	o, err := redis.ParseURL(s)
	if err != nil {
		return redis.Options{}, redactPassword(strings.TrimPrefix(err.Error(), "redis: "), s)
	}
	return o, ""
}

// maxCAFile bounds what readCAFile reads: a bundle of every public CA is
// about 200 KiB.
const maxCAFile = 4 << 20

// readCAFile reads a PEM file of CA certificates.
func readCAFile(name string) (*x509.CertPool, string) {
	f, err := os.Open(name)
	if err != nil {
		return nil, "cannot be read: " + err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, "must be a PEM file of CA certificates"
	}
	pem, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, "cannot be read: " + err.Error()
	}
	if len(pem) > maxCAFile {
		return nil, "must be a PEM file of CA certificates (this one is over 4 MiB)"
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, "holds no PEM certificate; it must be a PEM file of CA certificates"
	}
	return roots, ""
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
