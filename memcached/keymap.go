package memcached

import (
	"crypto/sha256"
	"encoding/hex"
	"unicode/utf8"
)

// Memcached keys are 1 to 250 bytes, none of them a control character,
// space or DEL. Other keys are stored under a hashed form:
//
//	readable prefix + "#h:" + hex(sha256(key))
//
// where the prefix is the key's first hashPrefixLen bytes (cut at a UTF-8
// boundary) with every illegal byte replaced by '_'. The form is at most
// hashPrefixLen+3+64 = 217 bytes.
//
// The mapping is injective: a legal key is stored as itself unless it ends
// like a hashed form ("#h:" and 64 lowercase hex digits), in which case it
// is hashed too. So every stored key that ends like a hashed form is one,
// and it is produced only by the key whose SHA-256 it carries.
const (
	maxKeyLen     = 250
	hashPrefixLen = 150
	hashMarker    = "#h:"
	hashedSuffix  = len(hashMarker) + 2*sha256.Size
)

// storedKey returns the key under which key is stored in memcached.
func storedKey(key string) string {
	if legalKey(key) && !looksHashed(key) {
		return key
	}
	return hashedKey(key)
}

// legalKey reports whether memcached accepts key as it is.
func legalKey(key string) bool {
	if len(key) == 0 || len(key) > maxKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if !legalByte(key[i]) {
			return false
		}
	}
	return true
}

func legalByte(c byte) bool { return c > ' ' && c != 0x7f }

// looksHashed reports whether key ends like an output of hashedKey.
func looksHashed(key string) bool {
	if len(key) < hashedSuffix {
		return false
	}
	tail := key[len(key)-hashedSuffix:]
	if tail[:len(hashMarker)] != hashMarker {
		return false
	}
	for i := len(hashMarker); i < len(tail); i++ {
		if c := tail[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func hashedKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	n := min(len(key), hashPrefixLen)
	if n < len(key) {
		// Do not cut a UTF-8 sequence in two (the bytes are legal either
		// way; this only keeps the prefix readable).
		for back := 0; back < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(key[n]); back++ {
			n--
		}
	}
	b := make([]byte, 0, n+hashedSuffix)
	for i := range n {
		c := key[i]
		if !legalByte(c) {
			c = '_'
		}
		b = append(b, c)
	}
	b = append(b, hashMarker...)
	b = hex.AppendEncode(b, sum[:])
	return string(b)
}
