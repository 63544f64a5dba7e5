package glob

// redisKeysMatch is what KEYS and SCAN MATCH decide for a key: they skip the
// matcher for the pattern "*" and call stringmatchlen otherwise.
func redisKeysMatch(pattern, s string) bool {
	return pattern == "*" || stringmatchlen(pattern, s)
}

// stringmatchlen is a line-by-line transliteration of Redis's recursive
// matcher (src/util.c, stringmatchlen_impl, case-sensitive), used as the
// reference the iterative Match is checked against. Reads past the end of
// the pattern see the NUL terminator that Redis's sds strings carry, and
// the nesting limit of 1000 is kept, so callers compare only patterns with
// fewer stars. Ranges compare bytes as unsigned (see the package doc).
func stringmatchlen(pattern, s string) bool {
	skip := false
	return stringmatchlenImpl(pattern, s, &skip, 0)
}

func stringmatchlenImpl(pat, str string, skipLongerMatches *bool, nesting int) bool {
	if nesting > 1000 {
		return false
	}
	// at reads the pattern as the NUL-terminated C string Redis sees.
	at := func(i int) byte {
		if i < len(pat) {
			return pat[i]
		}
		return 0
	}
	for len(pat) > 0 && len(str) > 0 {
		switch pat[0] {
		case '*':
			for len(pat) > 0 && at(1) == '*' {
				pat = pat[1:]
			}
			if len(pat) == 1 {
				return true
			}
			for len(str) > 0 {
				if stringmatchlenImpl(pat[1:], str, skipLongerMatches, nesting+1) {
					return true
				}
				if *skipLongerMatches {
					return false
				}
				str = str[1:]
			}
			*skipLongerMatches = true
			return false
		case '?':
			str = str[1:]
		case '[':
			pat = pat[1:]
			not := at(0) == '^'
			if not {
				pat = pat[1:]
			}
			match := false
			// Redis walks a pointer; here the pattern is re-sliced, and
			// "pattern--" at the end is modelled by keeping one byte back.
			back := false
			for {
				if at(0) == '\\' && len(pat) >= 2 {
					pat = pat[1:]
					if pat[0] == str[0] {
						match = true
					}
				} else if at(0) == ']' {
					break
				} else if len(pat) == 0 {
					back = true
					break
				} else if len(pat) >= 3 && pat[1] == '-' {
					start, end, c := pat[0], pat[2], str[0]
					if start > end {
						start, end = end, start
					}
					pat = pat[2:]
					if c >= start && c <= end {
						match = true
					}
				} else if pat[0] == str[0] {
					match = true
				}
				pat = pat[1:]
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			str = str[1:]
			if back {
				// pattern--, patternLen++, then the common pattern++ below:
				// the pattern is used up. Model it directly.
				pat = " "
			}
		case '\\':
			if len(pat) >= 2 {
				pat = pat[1:]
			}
			if pat[0] != str[0] {
				return false
			}
			str = str[1:]
		default:
			if pat[0] != str[0] {
				return false
			}
			str = str[1:]
		}
		pat = pat[1:]
		if len(str) == 0 {
			for at(0) == '*' {
				pat = pat[1:]
			}
			break
		}
	}
	return len(pat) == 0 && len(str) == 0
}
