package hoard

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
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

// Every truncation of a valid entry is rejected, never half-decoded: a
// value cut short inside its body or its payload must not decode with a
// shorter one (version 1 of the envelope took the body as "the rest").
func TestEntryTruncated(t *testing.T) {
	for _, b := range [][]byte{
		encodeHTTP([][]byte{newGeneration()}, time.Now(), time.Minute, 200,
			[]headerField{{"Content-Type", "text/plain"}}, []byte("the whole body")),
		encodeHTTP([][]byte{newGeneration()}, time.Now(), time.Minute, 200,
			[]headerField{{"Content-Type", "text/plain"}}, nil),
		encodeRaw([][]byte{newGeneration()}, time.Now(), time.Minute, []byte("the whole value")),
	} {
		kind := b[2]
		if _, err := decodeEntry(b, kind); err != nil {
			t.Fatalf("valid entry: %v", err)
		}
		for i := 0; i < len(b); i++ {
			if e, err := decodeEntry(b[:i], kind); err == nil {
				t.Fatalf("truncated to %d of %d bytes decoded, body %q", i, len(b), e.body)
			}
		}
		// Bytes appended to a valid value are corruption too.
		if _, err := decodeEntry(append(bytes.Clone(b), 'x'), kind); err == nil {
			t.Fatal("a value with a trailing byte decoded")
		}
	}
}

// Every single-bit error anywhere in an entry, body included, is rejected.
func TestEntryCorruptBit(t *testing.T) {
	b := encodeHTTP([][]byte{newGeneration()}, time.Now(), time.Minute, 200,
		[]headerField{{"Content-Type", "application/json"}}, []byte(`{"id":1,"name":"a"}`))
	for i := range b {
		for bit := range 8 {
			c := bytes.Clone(b)
			c[i] ^= 1 << bit
			if e, err := decodeEntry(c, kindHTTP); err == nil {
				t.Fatalf("bit %d of byte %d flipped: decoded, body %q", bit, i, e.body)
			}
		}
	}
}

// reseal replaces the last 4 bytes of b (or appends them) with the checksum
// of the rest, so that the fuzzer's mutations reach the parser behind it.
func reseal(b []byte) []byte {
	body := b
	if len(b) >= entrySumLen {
		body = b[:len(b)-entrySumLen]
	}
	return binary.BigEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
}

// FuzzDecodeEntry: bytes from the store (corrupt, truncated, foreign) never
// panic; a value that decodes is consistent (re-encoding it gives a value
// that decodes to the same fields) and no truncation of it decodes. Each
// input is tried as given (almost always stopped by the checksum) and
// resealed with a valid checksum, so that the parser behind it is fuzzed too.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeHTTP([][]byte{newGeneration()}, time.UnixMilli(1), time.Minute, 200,
		[]headerField{{"Content-Type", "application/json"}}, []byte(`{"id":1}`)))
	f.Add(encodeRaw(nil, time.UnixMilli(5), time.Second, []byte("x")))
	f.Add(encodeHTTPGzip([][]byte{newGeneration()}, time.UnixMilli(1), time.Minute, 200, 8,
		[]headerField{{"Content-Encoding", "gzip"}}, []byte("\x1f\x8b")))
	f.Add([]byte("h\x02\x02\xff\xff\xff\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range [][]byte{b, reseal(b)} {
			for _, kind := range []byte{kindHTTP, kindRaw} {
				e, err := decodeEntry(in, kind)
				if err != nil {
					continue
				}
				var again []byte
				switch {
				case e.gzipped:
					again = encodeHTTPGzip(e.generations(), time.UnixMilli(e.storedAt), time.Duration(e.ttl)*time.Millisecond, e.status, e.plainLen, e.header, e.body)
				case kind == kindHTTP:
					again = encodeHTTP(e.generations(), time.UnixMilli(e.storedAt), time.Duration(e.ttl)*time.Millisecond, e.status, e.header, e.body)
				default:
					again = encodeRaw(e.generations(), time.UnixMilli(e.storedAt), time.Duration(e.ttl)*time.Millisecond, e.body)
				}
				e2, err := decodeEntry(again, kind)
				if err != nil || e2.status != e.status || !bytes.Equal(e2.body, e.body) || e2.ngens != e.ngens || e2.gzipped != e.gzipped || e2.plainLen != e.plainLen ||
					e2.storedAt != e.storedAt || e2.ttl != e.ttl || !reflect.DeepEqual(e2.header, e.header) ||
					!reflect.DeepEqual(e2.generations(), e.generations()) {
					t.Fatalf("re-encoded entry differs: %v", err)
				}
				for i := 0; i < len(again); i++ {
					if _, err := decodeEntry(again[:i], kind); err == nil {
						t.Fatalf("re-encoded entry truncated to %d of %d bytes decoded", i, len(again))
					}
				}
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
