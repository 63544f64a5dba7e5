package keys

import (
	"testing"
)

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"alice", "alice"},
		{"42", "42"},
		{"a-b_c.d~e/f@g+h,i", "a-b_c.d~e/f@g+h,i"},
		{"café", "café"},
		{"*", "%2A"},
		{"a:b", "a%3Ab"},
		{`:*?[]\{}%&=#`, "%3A%2A%3F%5B%5D%5C%7B%7D%25%26%3D%23"},
		{"a b\tc\n", "a%20b%09c%0A"},
		{"\x00\x7f", "%00%7F"},
		{"1&b=2", "1%26b%3D2"},
		{"%2A", "%252A"},
		{"\xff\x80", "\xff\x80"},
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := string(AppendEscape([]byte("x"), tt.in)); got != "x"+tt.want {
			t.Errorf("AppendEscape(x, %q) = %q, want %q", tt.in, got, "x"+tt.want)
		}
		back, err := unescape(tt.want)
		if err != nil || back != tt.in {
			t.Errorf("unescape(%q) = %q, %v; want %q", tt.want, back, err, tt.in)
		}
	}
}

func TestEscapeEveryByte(t *testing.T) {
	for b := 0; b < 256; b++ {
		v := string([]byte{byte(b)})
		e := Escape(v)
		if escapeSet[b] != (len(e) == 3) {
			t.Errorf("Escape(%q) = %q; escapeSet = %v", v, e, escapeSet[b])
		}
		for i := 0; i < len(e); i++ {
			if hardSet[e[i]] {
				t.Errorf("Escape(%q) = %q holds reserved byte %q", v, e, e[i])
			}
		}
		if !inL(e) {
			t.Errorf("Escape(%q) = %q is not a valid escaped value", v, e)
		}
	}
}

func TestEscapeNoAlloc(t *testing.T) {
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		_ = Escape("alice_42")
		buf = AppendEscape(buf[:0], "a:b*c")
	})
	if allocs != 0 {
		t.Errorf("Escape of a clean value / AppendEscape into a buffer allocated %v times", allocs)
	}
}
