package memcached

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/hoardcache/hoard"
)

func TestExpiration(t *testing.T) {
	now := time.Unix(1_800_000_000, 600_000_000) // 2027-01-15, mid-second
	const day = 24 * time.Hour
	tests := []struct {
		ttl  time.Duration
		want int32
	}{
		// Relative seconds: rounded up, plus one for memcached's clock tick.
		{time.Nanosecond, 2},
		{999 * time.Millisecond, 2},
		{time.Second, 2},
		{1500 * time.Millisecond, 3},
		{time.Hour, 3601},
		{30*day - time.Second, 30 * 86400},
		// Over 30 days once the tick second is added: a Unix time.
		{30 * day, 1_800_000_000 + 30*86400 + 1},
		{40*day + time.Millisecond, 1_800_000_000 + 40*86400 + 2},
		// Past 2038: capped to the largest time the field carries.
		{100 * 365 * day, math.MaxInt32},
		{time.Duration(math.MaxInt64), math.MaxInt32},
	}
	for _, tt := range tests {
		got, err := expiration(tt.ttl, now)
		if err != nil || got != tt.want {
			t.Errorf("expiration(%v) = %d, %v; want %d", tt.ttl, got, err, tt.want)
		}
	}
	for _, ttl := range []time.Duration{0, -time.Nanosecond, math.MinInt64} {
		if _, err := expiration(ttl, now); !errors.Is(err, hoard.ErrInvalidTTL) {
			t.Errorf("expiration(%v): %v, want ErrInvalidTTL", ttl, err)
		}
	}
}
