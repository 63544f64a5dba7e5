// Command hoard is the admin CLI of a hoard cache: it reaches the store
// your services share, configured by the same CACHE_* environment
// (stores.FromEnv), and does what an operator needs by hand.
//
//	go install github.com/hoardcache/hoard/cmd/hoard@latest
//
//	hoard [-json] ping
//	hoard [-json] get KEY                  a provider value, or a route entry ("widget:42", "widgets:page_1:items_per_page:10")
//	hoard [-json] invalidate KEY...        what a write route does for a resource
//	hoard [-json] invalidate-pattern PATTERN   what a write route's InvalidatePatterns entry does ("alice_posts:*")
//	hoard [-json] delete-pattern GLOB      delete the keys of this namespace matching GLOB (Redis only)
//	hoard [-json] clear                    every value of this namespace becomes a miss
//	hoard [-json] stats                    keys and bytes of this namespace, and the servers' own figures
//
// Keys are given without CACHE_KEY_PREFIX, as routes and the provider API
// name them. Exit status: 0 done, 1 the store failed or the key is not
// there, 2 a bad command line or configuration. With -json every command
// prints one JSON object.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/hoardcache/hoard"
	"github.com/hoardcache/hoard/stores"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailed  = 1 // the store failed, or get found nothing
	exitUsage   = 2 // a bad command line or configuration
	callTimeout = 30 * time.Second
)

// usage is printed for -h and after a bad command line.
const usage = `usage: hoard [-json] COMMAND [ARGS]

  ping                        check that every server of the store answers
  get KEY                     show a provider value or a route entry (status, headers, age, TTL left, current or not)
  invalidate KEY...           invalidate resources, as a write route does ("widget:42")
  invalidate-pattern PATTERN  invalidate a pattern, as a write route's InvalidatePatterns does ("alice_posts:*")
  delete-pattern GLOB         delete this namespace's keys matching GLOB (Redis; Memcached cannot list keys)
  clear                       make every value of this namespace a miss
  stats                       keys and bytes of this namespace, and the servers' own figures

The store is the one the CACHE_* environment describes (CACHE_BACKEND, CACHE_REDIS_URL,
CACHE_MEMCACHED_SERVERS, CACHE_KEY_PREFIX, ...), as for the services that use it.
Keys are given without CACHE_KEY_PREFIX.
`

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hoard", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		fmt.Fprintf(stderr, "hoard: %v\n%s", err, usage)
		return exitUsage
	}
	out := &output{json: *asJSON, stdout: stdout, stderr: stderr}
	if fs.NArg() == 0 {
		return out.usageError("no command")
	}
	cmd, ok := commands[fs.Arg(0)]
	if !ok {
		return out.usageError(fmt.Sprintf("unknown command %q", fs.Arg(0)))
	}
	operands := fs.Args()[1:]
	if msg := cmd.check(operands); msg != "" {
		return out.usageError(fs.Arg(0) + ": " + msg)
	}
	cfg, err := stores.FromLookup(lookup)
	if err != nil {
		return out.fail(exitUsage, fmt.Errorf("bad configuration:\n%w", err))
	}
	if cfg.Backend == stores.Memory {
		return out.fail(exitUsage, errors.New("CACHE_BACKEND is memory (the default): that store lives inside each service's process and cannot be reached from here; "+
			"set CACHE_BACKEND=redis or memcached and the same CACHE_* variables as your services"))
	}
	// The CLI's own notices would only repeat the error it prints.
	cfg.Cache.Logger = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	c, err := stores.Open(ctx, cfg)
	if err != nil {
		return out.fail(exitFailed, err)
	}
	defer c.Close()
	return cmd.run(ctx, c, operands, out)
}

// command is one subcommand: check validates its operands (returning what
// is wrong, or ""), run does it.
type command struct {
	check func(operands []string) string
	run   func(ctx context.Context, c *hoard.Cache, operands []string, out *output) int
}

// exactly returns a check that wants n operands, described by what.
func exactly(n int, what string) func([]string) string {
	return func(ops []string) string {
		if len(ops) != n {
			if n == 0 {
				return "takes no operand"
			}
			return "wants " + what
		}
		return ""
	}
}

var commands = map[string]command{
	"ping":               {exactly(0, ""), ping},
	"get":                {exactly(1, "one KEY"), get},
	"invalidate":         {atLeastOne, invalidate},
	"invalidate-pattern": {exactly(1, "one PATTERN"), invalidatePattern},
	"delete-pattern":     {exactly(1, "one GLOB"), deletePattern},
	"clear":              {exactly(0, ""), clearAll},
	"stats":              {exactly(0, ""), stats},
}

func atLeastOne(ops []string) string {
	if len(ops) == 0 {
		return "wants at least one KEY"
	}
	return ""
}
