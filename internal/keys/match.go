package keys

import (
	"strings"
	"sync"
)

// Matching a key against a pattern template.
//
// The problem: list every string F such that F is the template with each
// placeholder replaced by an escaped value (a placeholder therefore stands
// for a run of unescaped-safe bytes and %XX escapes, never ":") and F, read
// as a Redis glob whose only metacharacters are the template's own "*" and
// "?", matches the key. Such a value is always a substring of the key (it
// holds no metacharacter, so it matches itself), which makes the set finite.
//
// It is solved as the enumeration of the distinct outputs of a
// nondeterministic transducer whose states are (token, key position, sub),
// read by a depth-first walk over output strings in which each step carries
// the set of states the output so far can be in (the subset construction, on
// the fly). The walk enters only states from which the end of the key is
// reachable ("live", decided lazily and memoised), so
// every branch it takes ends in at least one result: the walk costs
// O(results × |F| × states per step), never exponential, and a work budget
// bounds it anyway (exceeding it answers ok=false, which is safe).

type tokKind uint8

const (
	tLit   tokKind = iota // one literal byte
	tQuest                // the template's own "?": one key byte
	tStar                 // the template's own "*": any run of key bytes
	tPh                   // a placeholder: an escaped value
)

type token struct {
	kind tokKind
	b    byte // tLit
	name int  // tPh: index into Template.names
}

// matcher is the part of a Template used by AppendMatches, built at parse.
type matcher struct {
	toks    []token
	prefix  string   // literal text before the first non-literal token
	suffix  string   // literal text after the last non-literal token
	runs    []string // literal runs between them, in order
	minLen  int      // literal and "?" tokens: the shortest key that can match
	colons  int      // number of ":" a matching key has, or -1 if unknown
	literal bool     // no wildcard, no placeholder: only key == prefix matches
	repeats bool     // some placeholder name occurs twice
	src     string

	// The direct path, for templates whose (distinct) placeholders all come before
	// the first wildcard and are each followed by literal text holding a
	// byte no value holds (or end a wildcard-free template): there, a key
	// fixes every value, and the wildcard tail is a plain glob.
	direct bool
	wild   int    // index of the first wildcard token, or len(toks)
	tail   string // the template text from the first wildcard on
	hard   []int  // per token: for a placeholder, the offset of the first hard byte in the literal run after it, or -1
}

func (m *matcher) init(t *Template) {
	m.src = t.src
	seen := make([]bool, len(t.names))
	for _, p := range t.parts {
		if p.name >= 0 {
			if seen[p.name] {
				m.repeats = true
			}
			seen[p.name] = true
			m.toks = append(m.toks, token{kind: tPh, name: p.name})
			continue
		}
		for i := 0; i < len(p.lit); i++ {
			c := p.lit[i]
			switch {
			case t.pattern && c == '*':
				m.toks = append(m.toks, token{kind: tStar})
			case t.pattern && c == '?':
				m.toks = append(m.toks, token{kind: tQuest})
			default:
				m.toks = append(m.toks, token{kind: tLit, b: c})
			}
		}
	}
	first, last := -1, -1
	hasStar, hasQuest := false, false
	colons := 0
	for i, tk := range m.toks {
		switch tk.kind {
		case tLit:
			m.minLen++
			if tk.b == ':' {
				colons++
			}
			continue
		case tQuest:
			m.minLen++
			hasQuest = true
		case tStar:
			hasStar = true
		}
		if first < 0 {
			first = i
		}
		last = i
	}
	m.colons = -1
	if !hasStar && !hasQuest {
		// Placeholders never match ":", so every ":" of the key is one of
		// the template's.
		m.colons = colons
	}
	lits := func(ts []token) string {
		b := make([]byte, len(ts))
		for i, tk := range ts {
			b[i] = tk.b
		}
		return string(b)
	}
	if !m.repeats {
		m.initDirect()
	}
	if first < 0 {
		m.literal = true
		m.prefix = lits(m.toks)
		return
	}
	m.prefix = lits(m.toks[:first])
	m.suffix = lits(m.toks[last+1:])
	run := -1
	for i := first; i <= last+1; i++ {
		isLit := i <= last && m.toks[i].kind == tLit
		switch {
		case isLit && run < 0:
			run = i
		case !isLit && run >= 0:
			m.runs = append(m.runs, lits(m.toks[run:i]))
			run = -1
		}
	}
}

func (m *matcher) initDirect() {
	m.wild = len(m.toks)
	for i, tk := range m.toks {
		if tk.kind == tStar || tk.kind == tQuest {
			m.wild = i
			break
		}
	}
	var tail []byte
	for _, tk := range m.toks[m.wild:] {
		switch tk.kind {
		case tStar:
			tail = append(tail, '*')
		case tQuest:
			tail = append(tail, '?')
		case tLit:
			tail = append(tail, tk.b)
		case tPh:
			return // a placeholder after a wildcard
		}
	}
	m.tail = string(tail)
	m.hard = make([]int, m.wild)
	for i, tk := range m.toks[:m.wild] {
		if tk.kind != tPh {
			continue
		}
		h := -1
		for j := i + 1; j < m.wild && m.toks[j].kind == tLit; j++ {
			if hardSet[m.toks[j].b] {
				h = j - i - 1
				break
			}
		}
		if h < 0 {
			// Only the last placeholder of a wildcard-free template may
			// lack one: its value is the key less the literal suffix.
			for j := i + 1; j < len(m.toks); j++ {
				if m.toks[j].kind != tLit {
					return
				}
			}
		}
		m.hard[i] = h
	}
	m.direct = true
}

// matchDirect is AppendMatches for a direct template: at most one result.
func (m *matcher) matchDirect(dst []string, key string, max int) ([]string, bool) {
	pos := 0
	for i, tk := range m.toks[:m.wild] {
		if tk.kind == tLit {
			if pos >= len(key) || key[pos] != tk.b {
				return dst, true
			}
			pos++
			continue
		}
		var end int
		if h := m.hard[i]; h >= 0 {
			j := pos
			for j < len(key) && !hardSet[key[j]] {
				j++
			}
			end = j - h
		} else {
			end = len(key) - (len(m.toks) - i - 1)
		}
		if end < pos {
			return dst, true
		}
		for j := pos; j < end; {
			switch {
			case !escapeSet[key[j]]:
				j++
			case j+3 <= end && escapeAt(key, j):
				j += 3
			default:
				return dst, true
			}
		}
		pos = end
	}
	if !globTail(m.toks[m.wild:], key[pos:]) {
		return dst, true
	}
	if max < 1 {
		return dst, false
	}
	return append(dst, key[:pos]+m.tail), true
}

// globTail matches s against literal, "?" and "*" tokens: the classic
// iterative matcher that backtracks only to the last "*".
func globTail(toks []token, s string) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(toks) {
			switch tk := toks[p]; {
			case tk.kind == tQuest || (tk.kind == tLit && tk.b == s[i]):
				p++
				i++
				continue
			case tk.kind == tStar:
				starP, starI = p, i
				p++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		p = starP + 1
		starI++
		i = starI
	}
	for p < len(toks) && toks[p].kind == tStar {
		p++
	}
	return p == len(toks)
}

// mayMatch is the cheap test run before any matching: false means no
// pattern of the template matches key.
func (m *matcher) mayMatch(key string) bool {
	if len(key) < m.minLen {
		return false
	}
	if m.literal {
		return key == m.prefix
	}
	if !strings.HasPrefix(key, m.prefix) || !strings.HasSuffix(key, m.suffix) {
		return false
	}
	mid := key[len(m.prefix) : len(key)-len(m.suffix)]
	for _, r := range m.runs {
		i := strings.Index(mid, r)
		if i < 0 {
			return false
		}
		mid = mid[i+len(r):]
	}
	return m.colons < 0 || strings.Count(key, ":") == m.colons
}

// Limits of one AppendMatches call. Exceeding either answers ok=false, which
// makes the caller bypass the cache for that key: safe, and only an absurd
// key (or a hostile one) gets there.
const (
	// maxCells bounds the state table: (tokens+1) × (len(key)+1).
	maxCells = 1 << 20
	// maxWork bounds the states visited by the walk.
	maxWork = 1 << 18
	// maxCheckWork bounds the check of one result of a template with a
	// repeated placeholder; past it the result is kept (a spurious pattern
	// is harmless, a missing one is not).
	maxCheckWork = 1 << 12
)

// AppendMatches appends to dst every distinct pattern a write could format
// from t that, read as a glob, matches key: each way to fill the
// placeholders with escaped values (a placeholder matches a possibly empty
// run of bytes holding no ":" and no byte Escape would have escaped, other
// than its %XX escapes) such that the template's own "*" (any run, ":"
// included) and "?" (one byte) make the whole key match. Each result is the
// template with the values substituted and its "*" and "?" kept, exactly as
// AppendFormat would produce it. Results come in byte-wise lexical order.
//
// If there are more than max results, or the key is too long or too
// intricate to examine within a fixed work budget, AppendMatches returns dst
// unchanged and ok=false: the caller must then not serve or store the key
// from the cache. A key that matches nothing is cheap to reject.
//
// Soundness: if AppendFormat of t with any values gives a pattern that
// glob-matches key, that pattern is among the results (or ok is false).
// Every result glob-matches key. For a template that repeats a placeholder
// name, a result may rarely fill the repeats with different values; it still
// matches key.
func (t *Template) AppendMatches(dst []string, key string, max int) (out []string, ok bool) {
	m := &t.m
	if !m.mayMatch(key) {
		return dst, true
	}
	if m.literal {
		if max < 1 {
			return dst, false
		}
		return append(dst, t.src), true
	}
	if m.direct {
		return m.matchDirect(dst, key, max)
	}
	return t.appendMatchesWalk(dst, key, max)
}

// appendMatchesWalk is AppendMatches by the general walk.
func (t *Template) appendMatchesWalk(dst []string, key string, max int) ([]string, bool) {
	m := &t.m
	if (len(m.toks)+1)*(len(key)+1) > maxCells {
		return dst, false
	}
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	return s.run(m, t, dst, key, max)
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// emitted is one outgoing transition of the walk: byte c leads to node.
type emitted struct {
	c    byte
	node int32
}

// scratch holds the buffers of one AppendMatches call.
//
// A node is (t, pos, sub) encoded as ((t*w)+pos)<<2 | sub, w = len(key)+1.
// sub: for "*", 0 = before the "*" is output, 1 = inside its run; for a
// placeholder, 0 = at a value boundary, 1 = after "%", 2 = after "%X".
// cells[t*w+pos] holds the memoised liveness of (t, pos) and, while a
// closure is being built, the visited bits (cellSeen<<sub).
type scratch struct {
	m      *matcher
	t      *Template
	key    string
	w      int
	cells  []uint8
	stack  []int32
	pairs  []emitted
	prefix []byte
	out    []string
	count  int
	max    int
	work   int
	stop   bool
	ok     bool
	// consistency check of templates with repeated names
	bind  []string
	bound []bool
	cwork int
}

func (s *scratch) run(m *matcher, t *Template, dst []string, key string, max int) ([]string, bool) {
	s.m, s.t, s.key, s.out, s.max = m, t, key, dst, max
	s.count, s.work, s.stop, s.ok = 0, 0, false, true
	s.stack, s.pairs, s.prefix = s.stack[:0], s.pairs[:0], s.prefix[:0]
	s.w = len(key) + 1
	need := (len(m.toks) + 1) * s.w
	if cap(s.cells) < need {
		s.cells = make([]uint8, need)
	} else {
		s.cells = s.cells[:need]
		clear(s.cells)
	}
	if !s.push(0) {
		s.fail()
	} else {
		lo, hi, acc := s.closure(0)
		s.walk(lo, hi, acc)
	}
	out, ok := s.out, s.ok
	if !ok {
		clear(out[len(dst):])
		out = dst
	}
	s.m, s.t, s.key, s.out = nil, nil, "", nil
	if cap(s.cells) > maxCells/4 {
		s.cells = nil // don't pin a huge table in the pool
	}
	return out, ok
}

func (s *scratch) fail() {
	s.stop, s.ok = true, false
}

// Liveness. live(t, pos) reports whether the key from pos can be matched by
// toks[t:] starting in the main state of token t (sub 0; sub 1 for "*").
// It is evaluated lazily, only for the states the walk reaches, and
// memoised in cells. A placeholder's value runs and a "*" run are scanned
// iteratively, so the recursion is at most len(toks) deep.
const (
	cellKnown = 1
	cellLive  = 2
	cellSeen  = 0x10 // << sub: the node is in the closure being built
)

func (s *scratch) live(t, pos int) bool {
	toks, key := s.m.toks, s.key
	T, n := len(toks), len(key)
	if t == T {
		return pos == n
	}
	base := t * s.w
	if c := s.cells[base+pos]; c&cellKnown != 0 {
		return c&cellLive != 0
	}
	s.work++
	var r bool
	switch tk := toks[t]; tk.kind {
	case tLit:
		r = pos < n && key[pos] == tk.b && s.live(t+1, pos+1)
	case tQuest:
		r = pos < n && s.live(t+1, pos+1)
	case tStar:
		if t == T-1 {
			r = true // a trailing "*" takes the rest of the key
			break
		}
		// Live if the rest of the template matches from some p >= pos.
		p := pos
		for ; p <= n; p++ {
			if c := s.cells[base+p]; p > pos && c&cellKnown != 0 {
				r = c&cellLive != 0
				break
			}
			s.work++
			if s.live(t+1, p) {
				r = true
				p++ // mark p too
				break
			}
		}
		s.mark(base, pos, min(p, n+1), r)
		return r
	case tPh:
		// Live if the rest of the template matches after some value
		// boundary e >= pos; the boundaries are reached unit by unit
		// (a safe byte or a %XX escape) and stop at any other byte.
		e := pos
		for {
			if c := s.cells[base+e]; e > pos && c&cellKnown != 0 {
				r = c&cellLive != 0
				break
			}
			s.work++
			if s.live(t+1, e) {
				r = true
				break
			}
			if e < n && !escapeSet[key[e]] {
				e++
			} else if escapeAt(key, e) {
				e += 3
			} else {
				break
			}
		}
		// Mark the boundaries from pos up to e with the answer.
		for q := pos; ; {
			s.cells[base+q] |= cellKnown
			if r {
				s.cells[base+q] |= cellLive
			}
			if q >= e {
				break
			}
			if !escapeSet[key[q]] {
				q++
			} else {
				q += 3
			}
		}
		return r
	}
	c := uint8(cellKnown)
	if r {
		c |= cellLive
	}
	s.cells[base+pos] |= c
	return r
}

// mark records the answer r for the cells [lo, hi) of one row.
func (s *scratch) mark(base, lo, hi int, r bool) {
	c := uint8(cellKnown)
	if r {
		c |= cellLive
	}
	for q := lo; q < hi; q++ {
		s.cells[base+q] |= c
	}
}

// liveNode reports whether node id can reach the end of the key.
func (s *scratch) liveNode(id int32) bool {
	cell, sub := int(id>>2), int(id&3)
	t, pos := cell/s.w, cell%s.w
	if t < len(s.m.toks) && s.m.toks[t].kind == tPh {
		// After "%" two hex digits follow, after "%X" one; then a
		// boundary. (The escape was checked when "%" was output.)
		switch sub {
		case 1:
			return s.live(t, pos+2)
		case 2:
			return s.live(t, pos+1)
		}
	}
	return s.live(t, pos)
}

func (s *scratch) node(t, pos, sub int) int32 { return int32((t*s.w+pos)<<2 | sub) }

// push adds a live, not yet visited node to the current closure.
func (s *scratch) push(id int32) bool {
	cell, sub := int(id>>2), id&3
	if s.cells[cell]&(cellSeen<<sub) != 0 || !s.liveNode(id) {
		return s.work <= maxWork
	}
	s.cells[cell] |= cellSeen << sub
	s.stack = append(s.stack, id)
	s.work++
	return s.work <= maxWork
}

// closure completes the nodes pushed since lo with their ε-moves (a
// placeholder's value ends; a "*" run grows or ends) and reports whether
// the set accepts, i.e. whether the output so far is a result.
func (s *scratch) closure(lo int) (int, int, bool) {
	toks, T, n := s.m.toks, len(s.m.toks), len(s.key)
	accept := false
	for i := lo; i < len(s.stack) && !s.stop; i++ {
		id := s.stack[i]
		cell, sub := int(id>>2), int(id&3)
		t, pos := cell/s.w, cell%s.w
		if t == T {
			accept = true // live, so pos == n
			continue
		}
		ok := true
		switch toks[t].kind {
		case tPh:
			if sub == 0 {
				ok = s.push(s.node(t+1, pos, 0))
			}
		case tStar:
			if sub == 1 {
				if t == T-1 {
					accept = true // a trailing "*" takes the rest of the key
					continue
				}
				ok = s.push(s.node(t+1, pos, 0))
				if ok && pos < n {
					ok = s.push(s.node(t, pos+1, 1))
				}
			}
		}
		if !ok {
			s.fail()
		}
	}
	for _, id := range s.stack[lo:] {
		s.cells[id>>2] &^= cellSeen << (id & 3)
	}
	return lo, len(s.stack), accept
}

// walk visits the output prefix whose state set is stack[lo:hi].
func (s *scratch) walk(lo, hi int, accept bool) {
	if s.stop {
		return
	}
	if accept {
		s.result()
		if s.stop {
			return
		}
	}
	toks, key, n := s.m.toks, s.key, len(s.key)
	plo := len(s.pairs)
	for i := lo; i < hi; i++ {
		id := s.stack[i]
		cell, sub := int(id>>2), int(id&3)
		t, pos := cell/s.w, cell%s.w
		if t == len(toks) {
			continue
		}
		var c byte
		nx := int32(-1)
		switch tk := toks[t]; tk.kind {
		case tLit:
			c, nx = tk.b, s.node(t+1, pos+1, 0)
		case tQuest:
			c, nx = '?', s.node(t+1, pos+1, 0)
		case tStar:
			if sub == 0 {
				c, nx = '*', s.node(t, pos, 1)
			}
		case tPh:
			if pos < n {
				c = key[pos]
				switch sub {
				case 0:
					if !escapeSet[c] {
						nx = s.node(t, pos+1, 0)
					} else if escapeAt(key, pos) {
						nx = s.node(t, pos+1, 1)
					}
				case 1:
					nx = s.node(t, pos+1, 2)
				case 2:
					nx = s.node(t, pos+1, 0)
				}
			}
		}
		if nx >= 0 && s.liveNode(nx) {
			s.pairs = append(s.pairs, emitted{c, nx})
		}
	}
	phi := len(s.pairs)
	sortEmitted(s.pairs[plo:phi])
	for j := plo; j < phi && !s.stop; {
		c := s.pairs[j].c
		clo := len(s.stack)
		k := j
		for ; k < phi && s.pairs[k].c == c; k++ {
			if !s.push(s.pairs[k].node) {
				s.fail()
			}
		}
		if s.stop {
			break
		}
		_, chi, acc := s.closure(clo)
		s.prefix = append(s.prefix, c)
		s.walk(clo, chi, acc)
		s.prefix = s.prefix[:len(s.prefix)-1]
		s.stack = s.stack[:clo]
		j = k
	}
	s.pairs = s.pairs[:plo]
}

// sortEmitted sorts by byte; insertion sort, the sets are small.
func sortEmitted(p []emitted) {
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && p[j].c < p[j-1].c; j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
}

func (s *scratch) result() {
	f := s.prefix
	if s.m.repeats && !s.consistent(f) {
		return
	}
	if s.count == s.max {
		s.fail()
		return
	}
	s.count++
	s.out = append(s.out, string(f))
}

// consistent reports whether f can be read as the template with the same
// value at every occurrence of a name (or the check ran out of budget).
func (s *scratch) consistent(f []byte) bool {
	nn := len(s.t.names)
	if cap(s.bind) < nn {
		s.bind, s.bound = make([]string, nn), make([]bool, nn)
	}
	s.bind, s.bound = s.bind[:nn], s.bound[:nn]
	clear(s.bound)
	s.cwork = 0
	return s.parseF(string(f), 0, 0) != 0
}

// parseF returns 1 if f[fi:] reads as toks[ti:] under the current bindings,
// 0 if not, 2 if the budget ran out.
func (s *scratch) parseF(f string, ti, fi int) int {
	s.cwork++
	if s.cwork > maxCheckWork {
		return 2
	}
	toks := s.m.toks
	if ti == len(toks) {
		if fi == len(f) {
			return 1
		}
		return 0
	}
	var want byte
	switch tk := toks[ti]; tk.kind {
	case tLit:
		want = tk.b
	case tQuest:
		want = '?'
	case tStar:
		want = '*'
	case tPh:
		if s.bound[tk.name] {
			v := s.bind[tk.name]
			if !strings.HasPrefix(f[fi:], v) {
				return 0
			}
			return s.parseF(f, ti+1, fi+len(v))
		}
		s.bound[tk.name] = true
		defer func() { s.bound[tk.name] = false }()
		for e := fi; ; {
			s.bind[tk.name] = f[fi:e]
			if r := s.parseF(f, ti+1, e); r != 0 {
				return r
			}
			switch {
			case e < len(f) && !escapeSet[f[e]]:
				e++
			case escapeAt(f, e):
				e += 3
			default:
				return 0
			}
		}
	}
	if fi < len(f) && f[fi] == want {
		return s.parseF(f, ti+1, fi+1)
	}
	return 0
}
