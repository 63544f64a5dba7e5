package hoard

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/otel/metric"

	"github.com/hoardcache/hoard/internal/addr"
)

// Defaults of the cache-wide settings, filled in by
// Config.WithDefaults. Each store package defines its own defaults (such as
// memory.DefaultMaxBytes or redis.DefaultPoolSize).
const (
	DefaultTTL          = 3600 * time.Second
	DefaultTimeout      = 50 * time.Millisecond
	DefaultClientMaxAge = 60 * time.Second
	DefaultAPIPrefix    = "/api"
	DefaultPublicPrefix = "/static/"
	DefaultMaxKeyBytes  = 1024
	DefaultMissWait     = time.Second
	// DefaultCompressMinBytes is Config.CompressMinBytes's default: below
	// about a kilobyte, gzip saves little and its header costs a share.
	DefaultCompressMinBytes = 1024
)

// Config holds the cache-wide settings of a Cache and of the ClientCache
// middleware. The zero value is valid and means every default;
// WithDefaults fills the defaults in one place.
//
// Which store a Cache uses, and that store's own options, are not here:
// build the store with its package (memory.New, redis.New, memcached.New)
// and pass it to New, or let package stores build both from a
// stores.Config or from the CACHE_* environment (stores.OpenEnv), so that
// this package links no store client.
//
// Fields are documented with the environment variable that sets them when
// the configuration is read by stores.FromEnv.
type Config struct {
	// Disabled turns the cache off (CACHE_ENABLED=false): route middleware
	// passes requests through and the provider API always misses.
	Disabled bool
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
	// Timeout is the deadline of one store call (CACHE_TIMEOUT). 0 means
	// 50ms. The redis and memcached stores bound their calls themselves
	// (stores.Open gives them this Timeout unless their Options set one);
	// for other stores (those that are not SelfTimed) the Cache puts this
	// deadline on each call's context.
	Timeout time.Duration
	// MaxKeyBytes is the longest key hoard stores under, not counting
	// KeyPrefix (CACHE_MAX_KEY_BYTES): a route's key (resource, query and
	// caller) or a provider key. A GET whose key is longer is served
	// uncached (logged, and counted in Stats.KeysTooLong); the provider
	// API returns ErrKeyTooLong. It bounds what one request can make the
	// store and the pending invalidations hold. 0 means 1024.
	MaxKeyBytes int
	// StaleWhileRevalidate is the default of Route.StaleWhileRevalidate
	// (CACHE_STALE_WHILE_REVALIDATE, whole seconds): how long past its TTL
	// an entry whose generations are current is still served, while one
	// background run of the handler refreshes it. 0 means off.
	StaleWhileRevalidate time.Duration
	// StaleIfError is the default of Route.StaleIfError
	// (CACHE_STALE_IF_ERROR, whole seconds): how long past its TTL an entry
	// whose generations are current is served when the handler answers
	// 5xx or panics. 0 means off.
	StaleIfError time.Duration
	// MissWait is how long a miss waits for another instance that is
	// already running the handler for the same entry (CACHE_MISS_WAIT, a
	// duration such as 500ms; 0 there means off). The first instance to
	// miss takes a short lease in the store; the others poll for its entry
	// and answer from it, so that an expired hot key runs the handler once
	// across the fleet rather than once per instance. Past MissWait, or
	// when the leaseholder's answer is not stored, they run the handler
	// themselves. 0 means 1s; a negative value turns the lease off. A
	// store local to the process (the memory store: ProcessLocal) takes no
	// lease.
	MissWait time.Duration
	// CompressMinBytes is the default of Route.CompressMinBytes
	// (CACHE_COMPRESS_MIN_BYTES; 0 there means off): bodies of at least
	// this many bytes, of a type that compresses, are stored gzipped and
	// served as stored to clients that accept gzip. 0 means 1024; a
	// negative value turns compression off.
	CompressMinBytes int
	// PendingFile is a file that keeps failed invalidations across a
	// restart (CACHE_PENDING_FILE): each is appended and synced before the
	// write's status is sent, read back by New, replayed as soon as the
	// store answers, and the file is emptied once nothing is pending.
	// Without it (empty, the default), a process killed during a store
	// outage forgets them, and the entries they cover may be served until
	// their TTL. One file per process: two Caches must not share one.
	PendingFile string
	// Client configures the ClientCache middleware.
	Client ClientCacheConfig
	// Logger receives hoard's (rate-limited) error logs. nil means
	// slog.Default(). It has no environment variable.
	Logger *slog.Logger
	// MeterProvider receives hoard's metrics (metrics.go lists them: route
	// requests by result, store call durations, invalidations, the
	// breaker). nil means the global provider (otel.GetMeterProvider), as
	// OpenTelemetry instrumentation libraries do; without an SDK installed
	// that records nothing. It has no environment variable.
	MeterProvider metric.MeterProvider
}

// ClientCacheConfig configures the ClientCache middleware.
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
// It is idempotent. Slices are not copied, except that a nil
// Client.PublicPrefixes becomes a new ["/static/"].
func (c Config) WithDefaults() Config {
	if c.DefaultTTL == 0 {
		c.DefaultTTL = DefaultTTL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxKeyBytes == 0 {
		c.MaxKeyBytes = DefaultMaxKeyBytes
	}
	if c.MissWait == 0 {
		c.MissWait = DefaultMissWait
	}
	if c.CompressMinBytes == 0 {
		c.CompressMinBytes = DefaultCompressMinBytes
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

// A FieldError is one field of a configuration that cannot be used: a field
// of Config, or of a store package's Options. The Validate methods return one
// per bad field (or list element), joined with errors.Join, so that every
// mistake can be fixed at once, and so that code that filled the fields from
// elsewhere can say where each bad value came from: stores.FromEnv names the
// environment variable.
type FieldError struct {
	// Type is the configuration's type: "hoard.Config", "redis.Options", ...
	Type string
	// Field is the path of the field in Type, such as "Client.APIPrefix"
	// or "DB". For a list it names the list ("Servers").
	Field string
	// Value is the bad value; for a list, the bad element.
	Value any
	// Want says what the value must be, such as "must not be negative (0
	// means 1024)".
	Want string
}

func (e *FieldError) Error() string {
	v := fmt.Sprint(e.Value)
	if s, ok := e.Value.(string); ok {
		v = fmt.Sprintf("%q", s)
	}
	return e.Type + "." + e.Field + " = " + v + ": " + e.Want
}

// Rules of Validate, also used by ClientCache. Each returns "" for a good
// value, else what the value must be.

const (
	wantPrefix = `must start with "/", e.g. /static/`
	wantAPI    = `must be a path starting with "/", e.g. /api`
	wantKeyPfx = "must not contain whitespace or control characters"
)

func checkKeyPrefix(p string) string {
	if addr.HasSpaceOrControl(p) {
		return wantKeyPfx
	}
	return ""
}

func checkPublicPrefix(p string) string {
	if !strings.HasPrefix(p, "/") || addr.HasSpaceOrControl(p) {
		return wantPrefix
	}
	return ""
}

func checkAPIPrefix(p string) string {
	if !strings.HasPrefix(p, "/") || addr.HasSpaceOrControl(p) || strings.ContainsAny(p, "?#") {
		return wantAPI
	}
	return ""
}

// Validate reports every field of c that hoard cannot use, each as a
// *FieldError, joined with errors.Join. Zero values are valid (they mean
// the defaults). New calls it.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, want string) {
		if want != "" {
			errs = append(errs, &FieldError{Type: "hoard.Config", Field: field, Value: value, Want: want})
		}
	}
	if c.DefaultTTL < 0 {
		bad("DefaultTTL", c.DefaultTTL, "must not be negative (0 means 3600s)")
	}
	bad("KeyPrefix", c.KeyPrefix, checkKeyPrefix(c.KeyPrefix))
	if c.Timeout < 0 {
		bad("Timeout", c.Timeout, "must not be negative (0 means 50ms)")
	}
	if strings.ContainsFunc(c.PendingFile, unicode.IsControl) {
		bad("PendingFile", c.PendingFile, "must not contain control characters: a file path, or empty")
	}
	if c.StaleWhileRevalidate < 0 {
		bad("StaleWhileRevalidate", c.StaleWhileRevalidate, "must not be negative (0 means off)")
	}
	if c.StaleIfError < 0 {
		bad("StaleIfError", c.StaleIfError, "must not be negative (0 means off)")
	}
	if c.MissWait > time.Minute {
		bad("MissWait", c.MissWait, "must be at most 1m (0 means 1s; a negative value turns the lease off)")
	}
	if c.MaxKeyBytes < 0 {
		bad("MaxKeyBytes", c.MaxKeyBytes, "must not be negative (0 means 1024)")
	}
	for _, p := range c.Client.PublicPrefixes {
		bad("Client.PublicPrefixes", p, checkPublicPrefix(p))
	}
	if c.Client.APIPrefix != "" {
		bad("Client.APIPrefix", c.Client.APIPrefix, checkAPIPrefix(c.Client.APIPrefix))
	}
	return errors.Join(errs...)
}
