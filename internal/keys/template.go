// Package keys builds hoard's cache keys and matches them against pattern
// templates.
//
// A template is literal text with {name} placeholders ("widget",
// "{username}_posts:page_{page}"). Formatting a template escapes every value
// it puts in (see Escape), so a value can never add a segment separator ":",
// a glob metacharacter or another placeholder's text: "never one user's data
// served to another" starts here. A key is
//
//	prefix[:id][:q=<query>][:u=<caller>]
//
// (prefix[:id][:q=…][:u=…]), appended part by part into one buffer: the prefix by
// Template.AppendFormat, then AppendID, AppendQuery (with the pairs of
// ParseQuery) and AppendCaller, each part left out when the route has none.
// Given one template, the key tells every part apart: an escaped id never
// holds ":" or "=", so it cannot pass for a ":q=" or ":u=" segment, and the
// prefix has as many ":"-separated segments as the template's literal text.
//
// Pattern templates (the routes' InvalidatePatterns) may also hold the glob
// wildcards "*" and "?"; Template.AppendMatches lists every pattern a write
// could format from such a template that would match a given key, so that a
// reader can record the generation of each one (design.md, "Why
// generations").
package keys

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Template is a parsed key or pattern template. It is immutable and safe for
// concurrent use.
type Template struct {
	src     string
	pattern bool
	parts   []part
	names   []string // distinct placeholder names, in order of first use
	m       matcher
}

// part is a run of literal text (name < 0) or a placeholder (index into
// Template.names).
type part struct {
	lit  string
	name int
}

// SyntaxError reports a template that does not parse. Its message says what
// to change.
type SyntaxError struct {
	Template string // the template as given
	Pattern  bool   // whether it was parsed as a pattern template
	Offset   int    // byte offset of the problem in Template
	Msg      string // what is wrong and how to fix it
}

func (e *SyntaxError) Error() string {
	kind := "key template"
	if e.Pattern {
		kind = "pattern template"
	}
	if e.Template == "" {
		return "hoard: " + kind + " is empty; " + e.Msg
	}
	return fmt.Sprintf("hoard: %s %q: %s", kind, e.Template, e.Msg)
}

// MissingError reports a placeholder that a lookup could not fill.
type MissingError struct {
	Template string // the template being formatted
	Name     string // the placeholder without braces
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("hoard: no value for placeholder {%s} in template %q; "+
		"supply it as a path wildcard or query parameter, or give the route a default for it",
		e.Name, e.Template)
}

// ParseKey parses a key template: the KeyPrefix of a route, the prefix and id
// of an InvalidateKeys entry. Besides the rules of all templates (not empty,
// balanced braces, valid placeholder names, no whitespace or control
// characters, no leading "#", which is reserved for hoard's internal keys), a
// key template cannot hold "* ? [ ] \", and two placeholders must be
// separated by literal text holding ":" (or "=", "&", "#"), a byte no value
// can contain: "{a}_{b}" is rejected because a="x_y",b="z" and a="x",b="y_z"
// would make the same key.
func ParseKey(s string) (*Template, error) { return parse(s, false) }

// ParsePattern parses a pattern template (a route's InvalidatePatterns
// entry). Its literal text may hold the glob wildcards "*" (any run of bytes,
// ":" included) and "?" (one byte); "[", "]" and "\" are rejected. Values
// filled into a pattern are escaped, so only the template's own "*" and "?"
// are wildcards.
func ParsePattern(s string) (*Template, error) { return parse(s, true) }

func parse(s string, pattern bool) (*Template, error) {
	fail := func(off int, format string, args ...any) (*Template, error) {
		return nil, &SyntaxError{Template: s, Pattern: pattern, Offset: off, Msg: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return fail(0, `give a literal such as "widget" or a template such as "{username}_posts"`)
	}
	if s[0] == '#' {
		return fail(0, `a leading "#" is reserved for hoard's internal keys; remove it or put it after the first character`)
	}
	// Whitespace, control characters and invalid UTF-8 first: they are wrong
	// wherever they are.
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return fail(i, "invalid UTF-8 at byte %d; templates must be UTF-8 text", i)
		case r == ' ':
			return fail(i, `space at byte %d; keys cannot hold whitespace: remove it or use "_"`, i)
		case unicode.IsSpace(r) || unicode.IsControl(r) || r == 0x7f:
			return fail(i, `whitespace or control character %U at byte %d; remove it (use "_" to separate words)`, r, i)
		}
	}
	t := &Template{src: s, pattern: pattern}
	lit := 0 // start of the current literal run
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '{':
			end := -1
			for j := i + 1; j < len(s); j++ {
				if s[j] == '{' {
					return fail(j, `nested "{" at byte %d inside the placeholder opened at byte %d; placeholders cannot nest: close the first with "}"`, j, i)
				}
				if s[j] == '}' {
					end = j
					break
				}
			}
			if end < 0 {
				return fail(i, `unbalanced "{" at byte %d; close it with "}"`, i)
			}
			name := s[i+1 : end]
			if name == "" {
				return fail(i, `empty placeholder "{}" at byte %d; name it, e.g. "{id}", or remove it`, i)
			}
			if !validName(name) {
				return fail(i+1, `invalid placeholder name %q at byte %d; a name is a letter or "_" followed by letters, digits or "_"`, name, i+1)
			}
			if lit < i {
				t.parts = append(t.parts, part{lit: s[lit:i], name: -1})
			}
			idx := slices.Index(t.names, name)
			if idx < 0 {
				idx = len(t.names)
				t.names = append(t.names, name)
			}
			t.parts = append(t.parts, part{name: idx})
			i = end
			lit = end + 1
		case '}':
			return fail(i, `unbalanced "}" at byte %d; remove it or open the placeholder with "{"`, i)
		case '*', '?':
			if !pattern {
				return fail(i, `glob character %q at byte %d; key templates cannot hold * ? [ ] \ (a wildcard belongs in an invalidation pattern)`, c, i)
			}
		case '[', ']', '\\':
			if pattern {
				return fail(i, `%q at byte %d; pattern templates support only the wildcards "*" and "?" (no character classes or backslash escapes): remove it`, c, i)
			}
			return fail(i, `glob character %q at byte %d; key templates cannot hold * ? [ ] \: remove it`, c, i)
		}
	}
	if lit < len(s) {
		t.parts = append(t.parts, part{lit: s[lit:], name: -1})
	}
	// With its leading placeholders empty, the template must not start
	// with "#" either.
	off := 0
	for _, p := range t.parts {
		if p.name < 0 {
			if p.lit[0] == '#' {
				return fail(off, `"#" at byte %d starts the key when the placeholders before it are empty, and a leading "#" is reserved for hoard's internal keys; put a literal character first, e.g. "x%s"`, off, s)
			}
			break
		}
		off += len(t.names[p.name]) + 2
	}
	if !pattern {
		// Two placeholders must be separated by a byte that no escaped
		// value holds, or the key would not tell their values apart.
		prev, prevOff, at := -1, 0, 0
		for k, p := range t.parts {
			if p.name >= 0 {
				if prev >= 0 {
					sep := ""
					if k == prev+2 {
						sep = t.parts[prev+1].lit
					}
					if !strings.ContainsFunc(sep, func(r rune) bool { return r < utf8.RuneSelf && hardSet[r] }) {
						a, b := t.names[t.parts[prev].name], t.names[p.name]
						how := fmt.Sprintf("separated only by %q, which a value can contain too", sep)
						if sep == "" {
							how = "adjacent"
						}
						return fail(at, `placeholders {%s} (byte %d) and {%s} (byte %d) are %s, so different values could make the same key; put ":" between them, e.g. "{%s}:{%s}"`,
							a, prevOff, b, at, how, a, b)
					}
				}
				prev, prevOff = k, at
				at += len(t.names[p.name]) + 2
			} else {
				at += len(p.lit)
			}
		}
	}
	t.m.init(t)
	return t, nil
}

func validName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return name != ""
}

// String returns the template as it was written.
func (t *Template) String() string { return t.src }

// Names returns the placeholder names without braces, each once, in order of
// first use.
func (t *Template) Names() []string { return slices.Clone(t.names) }

// AppendFormat appends the template to dst with each placeholder replaced by
// its value from lookup, escaped (see AppendEscape). Literal text, including
// a pattern's own "*" and "?", is copied as is. If lookup cannot fill a
// placeholder, AppendFormat returns dst unchanged and a *MissingError naming
// it.
//
// lookup is only called, never retained, so a closure passed here need not
// escape to the heap.
func (t *Template) AppendFormat(dst []byte, lookup func(name string) (string, bool)) ([]byte, error) {
	n := len(dst)
	for _, p := range t.parts {
		if p.name < 0 {
			dst = append(dst, p.lit...)
			continue
		}
		v, ok := lookup(t.names[p.name])
		if !ok {
			return dst[:n], &MissingError{Template: t.src, Name: t.names[p.name]}
		}
		dst = AppendEscape(dst, v)
	}
	return dst, nil
}

// AppendValue appends the template formatted as one value, as an id is: the
// result is Escape of the text with the raw values substituted, literal text
// included. Thus the InvalidateKeys id template "{username}" and a route
// whose id is the path value username give the same key, and a literal id
// such as "global" stays "global". Errors are as for AppendFormat.
func (t *Template) AppendValue(dst []byte, lookup func(name string) (string, bool)) ([]byte, error) {
	n := len(dst)
	for _, p := range t.parts {
		if p.name < 0 {
			dst = AppendEscape(dst, p.lit)
			continue
		}
		v, ok := lookup(t.names[p.name])
		if !ok {
			return dst[:n], &MissingError{Template: t.src, Name: t.names[p.name]}
		}
		dst = AppendEscape(dst, v)
	}
	return dst, nil
}
