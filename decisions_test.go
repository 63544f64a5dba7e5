package hoard_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/internal/faultstore"
	"github.com/hoardcache/hoard/internal/testlog"
)

// jsonLines returns the JSON log lines written to logs so far, decoded,
// and empties it.
func jsonLines(t *testing.T, logs *testlog.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(logs.Take()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestDebugDecisions: every decision other than a hit or a plain miss is
// logged at debug level, through the Config's Logger, with the route, the
// path and the reason; hits and plain misses are not, and nothing is at
// the default level.
func TestDebugDecisions(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		t.Run(level.String(), func(t *testing.T) {
			logs := &testlog.Buffer{}
			logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level}))
			c, s := newFaultCache(t, hoard.Config{Logger: logger})
			const pattern = "GET /d/{id}"
			mux, _ := localMux(t, c, miniRoute{pattern: pattern, rt: &hoard.Route{KeyPrefix: "d"}, h: func(w http.ResponseWriter, r *http.Request) {
				if r.PathValue("id") == "missing" {
					http.NotFound(w, r)
					return
				}
				fmt.Fprint(w, "d")
			}})
			for _, step := range []struct {
				path, header, result, reason string
			}{
				{"/d/1", "", "", ""}, // miss
				{"/d/1", "", "", ""}, // hit
				{"/d/missing", "", "uncacheable", "status"},
				{"/d/1", "X-Http-Method-Override", "bypass", "method-override"},
				{"/d/2", "down", "error", "test store: down"},
			} {
				var header []string
				switch step.header {
				case "down":
					s.Inject(faultstore.Fault{Err: errors.New("test store: down")})
				case "":
				default:
					header = []string{step.header, "PATCH"}
				}
				serveLocal(t, mux, http.MethodGet, step.path, header...)
				s.Inject()
				var debug []map[string]any
				for _, l := range jsonLines(t, logs) {
					if l["level"] == "DEBUG" {
						debug = append(debug, l)
					}
				}
				if step.result == "" || level != slog.LevelDebug {
					if len(debug) != 0 {
						t.Errorf("GET %s at %v: debug lines %v; want none", step.path, level, debug)
					}
					continue
				}
				if len(debug) != 1 || debug[0]["msg"] != "hoard: "+step.result || debug[0]["route"] != pattern ||
					debug[0]["path"] != step.path || !strings.Contains(fmt.Sprint(debug[0]["reason"]), step.reason) {
					t.Errorf("GET %s: debug lines %v; want one \"hoard: %s\" for route %q with a reason naming %q", step.path, debug, step.result, pattern, step.reason)
				}
			}
		})
	}
}
