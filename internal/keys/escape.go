package keys

// escapeSet[b] reports whether Escape percent-encodes byte b: the key
// structure bytes ":" (segment), "&" and "=" (query part), "#" (hoard's
// internal keys), the glob metacharacters "* ? [ ] \", the template braces
// "{ }", "%" itself (so that escaping is injective), space, control bytes and
// DEL. Everything else, including UTF-8 bytes >= 0x80, is kept.
var escapeSet = func() (s [256]bool) {
	for b := 0; b <= 0x20; b++ {
		s[b] = true
	}
	s[0x7f] = true
	for _, b := range []byte(`:*?[]\{}%&=#`) {
		s[b] = true
	}
	return s
}()

// hardSet[b] reports whether b can never occur in an escaped value: the
// bytes of escapeSet except "%", which introduces every escape.
var hardSet = func() (s [256]bool) {
	s = escapeSet
	s['%'] = false
	return s
}()

const upperHex = "0123456789ABCDEF"

// AppendEscape appends v to dst with every byte of the escape set written as
// %XX (upper-case hex): ": * ? [ ] \ { } % & = #", bytes <= 0x20 and 0x7f.
// Letters, digits, "-_.~/@+," and UTF-8 bytes >= 0x80 are kept as they are,
// so ordinary ids stay readable. An escaped value never contains ":", "&",
// "=", "#" or a glob metacharacter, and distinct values escape to distinct
// strings.
func AppendEscape(dst []byte, v string) []byte {
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !escapeSet[c] {
			continue
		}
		dst = append(dst, v[start:i]...)
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		start = i + 1
	}
	return append(dst, v[start:]...)
}

// Escape returns v escaped as AppendEscape does. It returns v itself, without
// allocating, when nothing needs escaping.
func Escape(v string) string {
	for i := 0; i < len(v); i++ {
		if escapeSet[v[i]] {
			return string(AppendEscape(make([]byte, 0, len(v)+16), v))
		}
	}
	return v
}

// unhex returns the value of an upper-case hex digit, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// escapeAt reports whether s[i:] starts with an escape that Escape can
// produce: "%" and two upper-case hex digits naming a byte of the escape set.
func escapeAt(s string, i int) bool {
	if i+2 >= len(s) || s[i] != '%' {
		return false
	}
	hi, lo := unhex(s[i+1]), unhex(s[i+2])
	return hi >= 0 && lo >= 0 && escapeSet[hi<<4|lo]
}
