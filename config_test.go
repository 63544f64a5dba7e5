package hoard

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	got := Config{}.WithDefaults()
	// Spot-check the documented defaults themselves, so that a wrong constant is
	// caught too.
	checks := []struct {
		name      string
		got, want any
	}{
		{"Disabled", got.Disabled, false},
		{"DefaultTTL", got.DefaultTTL, 3600 * time.Second},
		{"KeyPrefix", got.KeyPrefix, ""},
		{"Timeout", got.Timeout, 50 * time.Millisecond},
		{"MaxKeyBytes", got.MaxKeyBytes, 1024},
		{"Client.Disabled", got.Client.Disabled, false},
		{"Client.MaxAge", got.Client.MaxAge, 60 * time.Second},
		{"Client.PublicPrefixes", got.Client.PublicPrefixes, []string{"/static/"}},
		{"Client.APIPrefix", got.Client.APIPrefix, "/api"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("default %s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestConfigWithDefaultsIdempotent(t *testing.T) {
	for _, c := range []Config{
		{},
		{DefaultTTL: time.Minute, Timeout: time.Second, MaxKeyBytes: 10, KeyPrefix: "p:", MissWait: time.Millisecond, CompressMinBytes: 1,
			Client: ClientCacheConfig{MaxAge: -time.Second, PublicPrefixes: []string{}, APIPrefix: "/"}},
	} {
		once := c.WithDefaults()
		if twice := once.WithDefaults(); !reflect.DeepEqual(once, twice) {
			t.Errorf("WithDefaults not idempotent:\n%+v\n%+v", once, twice)
		}
		if err := once.Validate(); err != nil {
			t.Errorf("defaults do not validate: %v", err)
		}
		if c.Timeout != 0 && !reflect.DeepEqual(c, once) {
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
		{"negative TTL", Config{DefaultTTL: -time.Second}, "hoard.Config.DefaultTTL = -1s: must not be negative"},
		{"negative timeout", Config{Timeout: -1}, "hoard.Config.Timeout = -1ns"},
		{"negative max key", Config{MaxKeyBytes: -1}, "hoard.Config.MaxKeyBytes = -1"},
		{"miss wait off", Config{MissWait: -1}, ""},
		{"long miss wait", Config{MissWait: 2 * time.Minute}, "hoard.Config.MissWait = 2m0s: must be at most 1m"},
		{"key prefix", Config{KeyPrefix: "a\nb"}, `hoard.Config.KeyPrefix = "a\nb": must not contain whitespace`},
		{"public prefix", Config{Client: ClientCacheConfig{PublicPrefixes: []string{"/ok/", "static"}}}, `hoard.Config.Client.PublicPrefixes = "static": must start with "/"`},
		{"api prefix", Config{Client: ClientCacheConfig{APIPrefix: "api"}}, "hoard.Config.Client.APIPrefix"},
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
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
		})
	}
}

func TestConfigValidateJoinsAllErrors(t *testing.T) {
	err := Config{DefaultTTL: -1, Timeout: -1, KeyPrefix: " "}.Validate()
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 3 {
		t.Fatalf("want 3 joined errors, got %v", err)
	}
	for _, e := range joined.Unwrap() {
		if _, ok := e.(*FieldError); !ok {
			t.Errorf("%T %v is not a *FieldError", e, e)
		}
	}
}

// A Config that validates never makes ClientCache panic.
func TestConfigValidClientCache(t *testing.T) {
	for _, cc := range []ClientCacheConfig{
		{},
		{APIPrefix: "/", PublicPrefixes: []string{}},
		{APIPrefix: "/v2/", PublicPrefixes: []string{"/favicon.ico", "/assets"}},
	} {
		if err := (Config{Client: cc}).Validate(); err != nil {
			t.Fatalf("%+v: %v", cc, err)
		}
		if _, err := newClientCachePolicy(cc.withDefaults()); err != nil {
			t.Fatalf("ClientCache would panic on %+v, which Validate accepts: %v", cc, err)
		}
	}
}
