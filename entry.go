package hoard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"net/http"
	"time"
	"unsafe"
)

// The stored envelope. Every value a Cache writes is wrapped in one, so that
// a read can tell whether the value is still current: the envelope records
// the generation values its writer saw before producing it (design.md, "Why
// generations"). Layout, all integers varint-encoded:
//
//	magic 'h', version 1, kind
//	n, then n × (len, generation bytes)
//	stored-at (unix ms), ttl (ms)
//	kind raw:  payload (the rest)
//	kind http: status, header count, count × (len, name, len, value), body (the rest)
//	kind http-gzip: as http, with the identity body's length after the
//	                status, and the body gzipped (compress.go)
//
// A value that does not decode is treated as a miss and overwritten by the
// next store, never served.
const (
	entryMagic   = 'h'
	entryVersion = 1

	kindRaw  = 1
	kindHTTP = 2
	// kindHTTPGzip is a response stored compressed. A kind of its own, so
	// that a version of hoard that does not know it reads it as corrupt (a
	// miss) rather than replay its gzip bytes to every client.
	kindHTTPGzip = 3
)

var errCorruptEntry = errors.New("hoard: corrupt cache entry")

// entry is a decoded envelope. Slices and header strings alias the buffer
// it was decoded from, without copying: a Store never modifies a slice it
// returned (the Store contract), so the buffer is immutable.
type entry struct {
	ngens    int
	gens     []byte // ngens × (uvarint len, bytes), checked by decodeEntry
	storedAt int64  // unix milliseconds
	ttl      int64  // milliseconds
	status   int
	header   []headerField
	body     []byte // payload for kindRaw
	gzipped  bool   // kindHTTPGzip: body is gzipped (compress.go)
	plainLen int    // kindHTTPGzip: the length of the identity body
}

type headerField struct{ name, value string }

// age is how long ago the entry was stored, never negative.
func (e *entry) age(now time.Time) time.Duration {
	d := now.UnixMilli() - e.storedAt
	if d < 0 {
		d = 0
	}
	return time.Duration(d) * time.Millisecond
}

// overdue is how long past its TTL the entry is at now: negative while it
// is fresh.
func (e *entry) overdue(now time.Time) time.Duration {
	return time.Duration(now.UnixMilli()-(e.storedAt+e.ttl)) * time.Millisecond
}

// remaining is the TTL left at now, never negative.
func (e *entry) remaining(now time.Time) time.Duration {
	d := e.storedAt + e.ttl - now.UnixMilli()
	if d < 0 {
		d = 0
	}
	return time.Duration(d) * time.Millisecond
}

// current reports whether the generations recorded in the entry are exactly
// the ones read now. A missing current generation (nil) never matches.
func (e *entry) current(gens [][]byte) bool {
	if e.ngens != len(gens) {
		return false
	}
	d := entryDecoder{b: e.gens}
	for _, g := range gens {
		if g == nil || !bytes.Equal(d.bytes(), g) {
			return false
		}
	}
	return !d.err
}

// generations returns copies of the recorded generations (for tests and
// re-encoding).
func (e *entry) generations() [][]byte {
	out := make([][]byte, e.ngens)
	d := entryDecoder{b: e.gens}
	for i := range out {
		out[i] = bytes.Clone(d.bytes())
	}
	return out
}

func appendEntryHead(dst []byte, kind byte, gens [][]byte, storedAt time.Time, ttl time.Duration) []byte {
	dst = append(dst, entryMagic, entryVersion, kind)
	dst = binary.AppendUvarint(dst, uint64(len(gens)))
	for _, g := range gens {
		dst = binary.AppendUvarint(dst, uint64(len(g)))
		dst = append(dst, g...)
	}
	dst = binary.AppendVarint(dst, storedAt.UnixMilli())
	dst = binary.AppendUvarint(dst, uint64(ttl.Milliseconds()))
	return dst
}

// castagnoli is the CRC-32C table (hardware-accelerated on amd64 and arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// entrySumLen is the length of the checksum that ends every envelope.
const entrySumLen = 4

// appendEntryTail appends the payload (length-prefixed) and the checksum of
// the whole envelope.
func appendEntryTail(dst, payload []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	dst = append(dst, payload...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst, castagnoli))
}

// encodeRaw wraps a provider-API value.
// maxEntryTTL is the largest TTL in milliseconds that a time.Duration can
// hold, so the largest an encoder can have written; a bigger one is corrupt.
const maxEntryTTL = uint64(math.MaxInt64 / int64(time.Millisecond))

func encodeRaw(gens [][]byte, storedAt time.Time, ttl time.Duration, value []byte) []byte {
	dst := make([]byte, 0, 40+len(value)+len(gens)*10)
	dst = appendEntryHead(dst, kindRaw, gens, storedAt, ttl)
	return appendEntryTail(dst, value)
}

// encodeHTTP wraps a captured response. header fields are written in the
// order given; the caller has already dropped what must not be stored.
func encodeHTTP(gens [][]byte, storedAt time.Time, ttl time.Duration, status int, header []headerField, body []byte) []byte {
	return encodeResponse(kindHTTP, gens, storedAt, ttl, status, 0, header, body)
}

// encodeHTTPGzip wraps a captured response whose body gz is gzipped from
// plainLen bytes.
func encodeHTTPGzip(gens [][]byte, storedAt time.Time, ttl time.Duration, status, plainLen int, header []headerField, gz []byte) []byte {
	return encodeResponse(kindHTTPGzip, gens, storedAt, ttl, status, plainLen, header, gz)
}

func encodeResponse(kind byte, gens [][]byte, storedAt time.Time, ttl time.Duration, status, plainLen int, header []headerField, body []byte) []byte {
	n := 66 + len(body) + len(gens)*10
	for _, h := range header {
		n += len(h.name) + len(h.value) + 4
	}
	dst := make([]byte, 0, n)
	dst = appendEntryHead(dst, kind, gens, storedAt, ttl)
	dst = binary.AppendUvarint(dst, uint64(status))
	if kind == kindHTTPGzip {
		dst = binary.AppendUvarint(dst, uint64(plainLen))
	}
	dst = binary.AppendUvarint(dst, uint64(len(header)))
	for _, h := range header {
		dst = binary.AppendUvarint(dst, uint64(len(h.name)))
		dst = append(dst, h.name...)
		dst = binary.AppendUvarint(dst, uint64(len(h.value)))
		dst = append(dst, h.value...)
	}
	return appendEntryTail(dst, body)
}

// entryDecoder reads an envelope with bounds checks on every step.
type entryDecoder struct {
	b   []byte
	err bool
}

func (d *entryDecoder) uvarint() uint64 {
	if d.err {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *entryDecoder) varint() int64 {
	if d.err {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *entryDecoder) bytes() []byte {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// maxEntryGens bounds the generation list so that a corrupt count cannot
// make the decoder allocate without limit.
const maxEntryGens = 64

// maxEntryHeaders bounds the header list for the same reason.
const maxEntryHeaders = 256

// decodeEntry decodes an envelope. want is the kind the caller expects
// (kindHTTP takes kindHTTPGzip too); any other kind, a truncated or
// corrupt value (wrong checksum, lengths that do not add up to exactly the
// value's length) is errCorruptEntry.
func decodeEntry(b []byte, want byte) (entry, error) {
	var e entry
	if len(b) < 3+entrySumLen || b[0] != entryMagic || b[1] != entryVersion ||
		b[2] != want && !(want == kindHTTP && b[2] == kindHTTPGzip) {
		return e, errCorruptEntry
	}
	e.gzipped = b[2] == kindHTTPGzip
	sumAt := len(b) - entrySumLen
	if crc32.Checksum(b[:sumAt], castagnoli) != binary.BigEndian.Uint32(b[sumAt:]) {
		return e, errCorruptEntry
	}
	d := entryDecoder{b: b[3:sumAt]}
	n := d.uvarint()
	if n > maxEntryGens {
		return e, errCorruptEntry
	}
	e.ngens = int(n)
	start := d.b
	for i := uint64(0); i < n && !d.err; i++ {
		d.bytes()
	}
	if !d.err {
		e.gens = start[:len(start)-len(d.b)]
	}
	e.storedAt = d.varint()
	ttl := d.uvarint()
	if ttl > maxEntryTTL {
		d.err = true // no time.Duration encodes it: not written by hoard
	}
	e.ttl = int64(ttl)
	if want == kindHTTP {
		status := d.uvarint()
		if status < 100 || status > 999 {
			d.err = true
		}
		e.status = int(status)
		if e.gzipped {
			n := d.uvarint()
			if n > math.MaxInt32 {
				d.err = true
			}
			e.plainLen = int(n)
		}
		nh := d.uvarint()
		if nh > maxEntryHeaders {
			d.err = true
		}
		if nh > 0 && !d.err {
			e.header = make([]headerField, nh)
			for i := range e.header {
				e.header[i].name = unsafeString(d.bytes())
				e.header[i].value = unsafeString(d.bytes())
			}
		}
	}
	e.body = d.bytes()
	if d.err || len(d.b) != 0 {
		return entry{}, errCorruptEntry
	}
	return e, nil
}

// unsafeString views b as a string without copying; b must never change.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// applyHeader copies the stored header fields into h, plus extra values
// (name, value pairs) that replace what h holds under their names. All
// values share one backing array: one allocation however many fields.
func (e *entry) applyHeader(h http.Header, extra ...string) {
	vals := make([]string, len(e.header)+len(extra)/2)
	for i, f := range e.header {
		vals[i] = f.value
		if cur, ok := h[f.name]; ok && len(cur) > 0 {
			h[f.name] = append(cur, f.value)
			continue
		}
		h[f.name] = vals[i : i+1 : i+1]
	}
	for j, k := 0, len(e.header); j+1 < len(extra); j, k = j+2, k+1 {
		vals[k] = extra[j+1]
		h[extra[j]] = vals[k : k+1 : k+1]
	}
}
