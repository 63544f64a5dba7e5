package hoard

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"sync"
)

// pendingFile keeps the pending set on disk (Config.PendingFile,
// CACHE_PENDING_FILE), so that a process killed during a store outage does
// not forget the invalidations it acknowledged: another instance, or this
// one restarted, would otherwise serve the entries they cover once the
// store is back. A failed invalidation's keys are appended, one quoted key
// per line, and synced before the write's status is sent; New reads them
// back into the pending set, which replays them as soon as the store
// answers; the file is emptied once nothing is pending.
//
// mu orders the set and the file: add and compact each hold it across both,
// so that a compaction cannot drop a key added after its snapshot.
type pendingFile struct {
	mu   sync.Mutex
	path string
	f    *os.File
	// collapsed says the file holds the epoch keys, which cover every key
	// added since (the set collapsed): nothing more is appended.
	collapsed bool
}

// openPendingFile opens (creating) the file at path and returns the keys it
// holds.
func openPendingFile(path string) (*pendingFile, []string, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("hoard: CACHE_PENDING_FILE (Config.PendingFile): %w; use a writable path on a local disk, or leave it empty to keep pending invalidations in memory only", err)
	}
	var keys []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, err := strconv.Unquote(sc.Text())
		if err != nil {
			continue // a line cut by a crash mid-write: its write was not acknowledged
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("hoard: reading CACHE_PENDING_FILE %s: %w", path, err)
	}
	return &pendingFile{path: path, f: f}, keys, nil
}

// add adds keys to the set and appends them (or, when the set collapses,
// its epoch keys once) to the file, synced. A nil file only adds.
func (pf *pendingFile) add(p *pendingSet, keys []string) (collapsed bool, err error) {
	if pf == nil {
		return p.add(keys), nil
	}
	pf.mu.Lock()
	defer pf.mu.Unlock()
	collapsed = p.add(keys)
	switch {
	case collapsed && pf.collapsed:
		return collapsed, nil
	case collapsed:
		keys = p.epochKeys
		pf.collapsed = true
	}
	var b []byte
	for _, k := range keys {
		b = strconv.AppendQuote(b, k)
		b = append(b, '\n')
	}
	if _, err := pf.f.Write(b); err != nil {
		return collapsed, err
	}
	return collapsed, pf.f.Sync()
}

// compact empties the file when nothing is pending any more. A file that
// holds keys already replayed is harmless (replaying them again costs
// misses), so it is only emptied, never rewritten.
func (pf *pendingFile) compact(p *pendingSet) error {
	if pf == nil || !p.empty() {
		return nil
	}
	pf.mu.Lock()
	defer pf.mu.Unlock()
	if !p.empty() { // a key was added meanwhile
		return nil
	}
	pf.collapsed = false
	if err := pf.f.Truncate(0); err != nil {
		return err
	}
	return pf.f.Sync()
}

func (pf *pendingFile) close() error {
	if pf == nil {
		return nil
	}
	return pf.f.Close()
}
