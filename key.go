package hoard

import "github.com/hoardcache/hoard/internal/keys"

// Key formats a resource name the way a route does: prefix, then ":" and
// the escaped id, so that code outside routes can Invalidate exactly what a
// route cached. Key("widget", "42") is "widget:42"; an id such as "a:b*" is
// escaped ("a%3Ab%2A") and can never widen an invalidation. prefix is used
// as is.
func Key(prefix, id string) string {
	return string(keys.AppendID([]byte(prefix), id))
}

// Escape escapes one value for use in a key or pattern (percent-encoding of
// ':', glob metacharacters, braces, '%', '&', '=', '#', whitespace and control
// bytes), as routes do with every value they put into a key.
func Escape(v string) string { return keys.Escape(v) }
