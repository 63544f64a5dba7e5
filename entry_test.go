package hoard

import (
	"bytes"
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestEntryRoundTrip(t *testing.T) {
	gens := [][]byte{newGeneration(), {}, newGeneration()}
	at := time.UnixMilli(1_700_000_000_123)
	hdr := []headerField{{"Content-Type", "application/json"}, {"X-A", ""}, {"X-A", "two"}}
	for _, body := range [][]byte{nil, {}, []byte("[]"), bytes.Repeat([]byte{0, 255, 'x'}, 1000)} {
		b := encodeHTTP(gens, at, 90*time.Second, 203, hdr, body)
		e, err := decodeEntry(b, kindHTTP)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if e.status != 203 || e.storedAt != at.UnixMilli() || e.ttl != 90_000 {
			t.Fatalf("got status %d storedAt %d ttl %d", e.status, e.storedAt, e.ttl)
		}
		if !bytes.Equal(e.body, body) || len(e.header) != 3 || e.header[2] != hdr[2] {
			t.Fatalf("body or header differ: %q %v", e.body, e.header)
		}
		if !e.current(gens) {
			t.Fatal("entry not current for the generations it recorded")
		}
		if _, err := decodeEntry(b, kindRaw); err == nil {
			t.Fatal("an HTTP entry decoded as a raw value")
		}
	}
	raw := encodeRaw(gens[:1], at, time.Minute, []byte("v"))
	e, err := decodeEntry(raw, kindRaw)
	if err != nil || string(e.body) != "v" {
		t.Fatalf("raw: %v %q", err, e.body)
	}
}

func TestEntryCurrent(t *testing.T) {
	g1, g2 := newGeneration(), newGeneration()
	e, _ := decodeEntry(encodeRaw([][]byte{g1, g2}, time.Now(), time.Minute, nil), kindRaw)
	cases := []struct {
		name string
		now  [][]byte
		want bool
	}{
		{"same", [][]byte{g1, g2}, true},
		{"bumped", [][]byte{g1, newGeneration()}, false},
		{"missing generation", [][]byte{g1, nil}, false},
		{"fewer", [][]byte{g1}, false},
		{"more", [][]byte{g1, g2, g2}, false},
	}
	for _, c := range cases {
		if got := e.current(c.now); got != c.want {
			t.Errorf("%s: current = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestEntryAgeAndRemaining(t *testing.T) {
	at := time.Now()
	e := entry{storedAt: at.UnixMilli(), ttl: 10_000}
	if got := e.remaining(at.Add(4 * time.Second)); got != 6*time.Second {
		t.Errorf("remaining = %v", got)
	}
	if got := e.remaining(at.Add(time.Hour)); got != 0 {
		t.Errorf("remaining after expiry = %v", got)
	}
	if got := e.age(at.Add(-time.Second)); got != 0 {
		t.Errorf("age with a clock behind = %v", got)
	}
}

// Every truncation of a valid entry is rejected, never half-decoded.
func TestEntryTruncated(t *testing.T) {
	b := encodeHTTP([][]byte{newGeneration()}, time.Now(), time.Minute, 200,
		[]headerField{{"Content-Type", "text/plain"}}, nil)
	for i := 0; i < len(b); i++ {
		if _, err := decodeEntry(b[:i], kindHTTP); err == nil {
			t.Fatalf("truncated to %d of %d bytes decoded", i, len(b))
		}
	}
}

// FuzzDecodeEntry: bytes from the store (corrupt, truncated, foreign) never
// panic; whatever decodes re-encodes to the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeHTTP([][]byte{newGeneration()}, time.UnixMilli(1), time.Minute, 200,
		[]headerField{{"Content-Type", "application/json"}}, []byte(`{"id":1}`)))
	f.Add(encodeRaw(nil, time.UnixMilli(5), time.Second, []byte("x")))
	f.Add([]byte("h\x01\x02\xff\xff\xff\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, kind := range []byte{kindHTTP, kindRaw} {
			e, err := decodeEntry(b, kind)
			if err != nil {
				continue
			}
			var again []byte
			if kind == kindHTTP {
				again = encodeHTTP(e.generations(), time.UnixMilli(e.storedAt), time.Duration(e.ttl)*time.Millisecond, e.status, e.header, e.body)
			} else {
				again = encodeRaw(e.generations(), time.UnixMilli(e.storedAt), time.Duration(e.ttl)*time.Millisecond, e.body)
			}
			e2, err := decodeEntry(again, kind)
			if err != nil || e2.status != e.status || !bytes.Equal(e2.body, e.body) || e2.ngens != e.ngens {
				t.Fatalf("re-encoded entry differs: %v", err)
			}
		}
	})
}

func TestApplyHeader(t *testing.T) {
	b := encodeHTTP(nil, time.Now(), time.Minute, 200, []headerField{
		{"Content-Type", "application/json"}, {"Link", "<a>"}, {"Link", "<b>"}, {"X-Pre", "stored"},
	}, nil)
	e, err := decodeEntry(b, kindHTTP)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"X-Pre": {"set by middleware"}, "Age": {"old"}}
	e.applyHeader(h, "Age", "3", "Cache-Status", "hoard; hit")
	want := http.Header{
		"Content-Type": {"application/json"}, "Link": {"<a>", "<b>"},
		"X-Pre": {"set by middleware", "stored"}, "Age": {"3"}, "Cache-Status": {"hoard; hit"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("header = %v\nwant %v", h, want)
	}
	// Values are capped slices: appending to one never overwrites another.
	h["Content-Type"] = append(h["Content-Type"], "x")
	if h["Link"][0] != "<a>" {
		t.Fatal("append to one header overwrote another")
	}
}
