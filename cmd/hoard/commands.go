package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hoardcache/hoard"
)

// ping checks that every server of the store answers.
func ping(ctx context.Context, c *hoard.Cache, _ []string, out *output) int {
	if err := c.Ping(ctx); err != nil {
		return out.fail(exitFailed, err)
	}
	return out.done(map[string]any{"ok": true}, "ok")
}

// entryJSON is get's -json output.
type entryJSON struct {
	Found       bool        `json:"found"`
	Key         string      `json:"key"`
	StoreKey    string      `json:"store_key,omitempty"`
	Kind        string      `json:"kind,omitempty"` // "route" or "value"
	Status      int         `json:"status,omitempty"`
	Header      http.Header `json:"header,omitempty"`
	Stored      *time.Time  `json:"stored,omitempty"`
	AgeS        float64     `json:"age_s"`
	TTLS        float64     `json:"ttl_s"`
	RemainingS  float64     `json:"remaining_s"` // negative past the TTL (kept for a stale window)
	Current     bool        `json:"current"`
	Generations int         `json:"generations"`
	Checked     int         `json:"generations_checked"`
	Compressed  bool        `json:"compressed"`            // stored gzipped (Route.CompressMinBytes)
	StoredBytes int         `json:"stored_bytes"`          // what the store holds, envelope included
	Body        string      `json:"body,omitempty"`        // when it is UTF-8
	BodyBytes   []byte      `json:"body_base64,omitempty"` // when it is not
}

// get shows what the store holds under a key.
func get(ctx context.Context, c *hoard.Cache, ops []string, out *output) int {
	e, found, err := c.Inspect(ctx, ops[0])
	if err != nil {
		return out.fail(exitFailed, err)
	}
	if !found {
		out.done(entryJSON{Key: ops[0]}, fmt.Sprintf("%s: not found", ops[0]))
		return exitFailed
	}
	j := entryJSON{Found: true, Key: e.Key, StoreKey: e.StoreKey, Kind: "value", Status: e.Status, Header: e.Header,
		Stored: &e.Stored, AgeS: time.Since(e.Stored).Seconds(), TTLS: e.TTL.Seconds(), RemainingS: e.Remaining.Seconds(),
		Current: e.Current, Generations: e.Generations, Checked: e.Checked, Compressed: e.Compressed, StoredBytes: e.StoredBytes}
	if e.Route {
		j.Kind = "route"
	}
	if utf8.Valid(e.Body) {
		j.Body = string(e.Body)
	} else {
		j.BodyBytes = e.Body
	}
	var b strings.Builder
	fmt.Fprintf(&b, "key        %s (stored as %s)\n", e.Key, e.StoreKey)
	if e.Route {
		fmt.Fprintf(&b, "kind       route entry, status %d\n", e.Status)
		for _, name := range slices.Sorted(maps.Keys(e.Header)) {
			for _, v := range e.Header[name] {
				fmt.Fprintf(&b, "header     %s: %s\n", name, v)
			}
		}
	} else {
		fmt.Fprintf(&b, "kind       provider value\n")
	}
	fmt.Fprintf(&b, "stored     %s (%s ago), %d bytes in the store", e.Stored.UTC().Format(time.RFC3339), time.Since(e.Stored).Round(time.Second), e.StoredBytes)
	if e.Compressed {
		fmt.Fprintf(&b, ", gzipped (%d bytes decompressed)", len(e.Body))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "ttl        %s, %s\n", e.TTL, remaining(e.Remaining))
	current := "yes, as far as checked"
	if !e.Current {
		current = "no: a write or Clear made it stale; it is never served"
	}
	fmt.Fprintf(&b, "current    %s (%d of its %d generations checked; a route also checks its patterns')\n", current, e.Checked, e.Generations)
	body := j.Body
	if j.BodyBytes != nil {
		body = fmt.Sprintf("(%d bytes, not UTF-8)", len(e.Body))
	} else if len(body) > 2048 {
		body = body[:2048] + fmt.Sprintf("… (%d bytes)", len(e.Body))
	}
	fmt.Fprintf(&b, "body       %s", body)
	return out.done(j, b.String())
}

// remaining describes the TTL left, or how far past it the entry is.
func remaining(d time.Duration) string {
	if d >= 0 {
		return d.Round(time.Second).String() + " left"
	}
	return (-d).Round(time.Second).String() + " past it (kept for a stale window)"
}

// invalidate invalidates resources.
func invalidate(ctx context.Context, c *hoard.Cache, ops []string, out *output) int {
	for _, k := range ops {
		if isPattern(k) {
			return out.fail(exitUsage, fmt.Errorf("invalidate %q: that is a pattern; use invalidate-pattern", k))
		}
	}
	if err := c.Invalidate(ctx, ops...); err != nil {
		return out.fail(exitFailed, err)
	}
	return out.done(map[string]any{"invalidated": ops}, fmt.Sprintf("invalidated %d resource(s)", len(ops)))
}

// invalidatePattern invalidates a pattern as a write route's
// InvalidatePatterns entry does.
func invalidatePattern(ctx context.Context, c *hoard.Cache, ops []string, out *output) int {
	if !isPattern(ops[0]) {
		return out.fail(exitUsage, fmt.Errorf("invalidate-pattern %q: no * ? or [ in it; for one resource use invalidate", ops[0]))
	}
	if err := c.Invalidate(ctx, ops[0]); err != nil {
		return out.fail(exitFailed, err)
	}
	return out.done(map[string]any{"invalidated": ops}, "invalidated "+ops[0])
}

func isPattern(s string) bool { return strings.ContainsAny(s, "*?[") }

// deletePattern deletes the namespace's keys that match a glob.
func deletePattern(ctx context.Context, c *hoard.Cache, ops []string, out *output) int {
	n, err := c.DeletePattern(ctx, ops[0])
	if errors.Is(err, hoard.ErrPatternNotSupported) {
		return out.fail(exitFailed, fmt.Errorf("delete-pattern: %w; invalidate-pattern or clear work on every store", err))
	}
	if err != nil {
		return out.fail(exitFailed, err)
	}
	return out.done(map[string]any{"deleted": n}, fmt.Sprintf("deleted %d key(s)", n))
}

// clearAll makes every value of the namespace a miss.
func clearAll(ctx context.Context, c *hoard.Cache, _ []string, out *output) int {
	if err := c.Clear(ctx); err != nil {
		return out.fail(exitFailed, err)
	}
	return out.done(map[string]any{"cleared": c.Config().KeyPrefix}, "cleared namespace "+fmt.Sprintf("%q", c.Config().KeyPrefix))
}

// statsJSON is stats' -json output.
type statsJSON struct {
	Namespace string                       `json:"namespace"`
	Keys      int64                        `json:"keys"`  // -1: the store cannot tell
	Bytes     int64                        `json:"bytes"` // -1: the store cannot tell
	Servers   map[string]map[string]string `json:"servers"`
}

// stats reports the namespace's keys and bytes and the servers' figures.
func stats(ctx context.Context, c *hoard.Cache, _ []string, out *output) int {
	d, ok := c.Store().(hoard.Describer)
	if !ok {
		return out.fail(exitFailed, fmt.Errorf("stats: the %T store cannot describe its contents", c.Store()))
	}
	ns := c.Config().KeyPrefix
	desc, err := d.Describe(ctx, ns)
	if err != nil {
		return out.fail(exitFailed, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "namespace  %q\n", ns)
	if desc.Keys >= 0 {
		fmt.Fprintf(&b, "keys       %d\nbytes      %d\n", desc.Keys, desc.Bytes)
	} else {
		fmt.Fprintf(&b, "keys       unknown (the store cannot list its keys)\n")
	}
	for _, addr := range slices.Sorted(maps.Keys(desc.Servers)) {
		figures := desc.Servers[addr]
		fmt.Fprintf(&b, "server     %s\n", addr)
		for _, name := range slices.Sorted(maps.Keys(figures)) {
			fmt.Fprintf(&b, "  %-20s %s\n", name, figures[name])
		}
	}
	return out.done(statsJSON{Namespace: ns, Keys: desc.Keys, Bytes: desc.Bytes, Servers: desc.Servers}, strings.TrimRight(b.String(), "\n"))
}
