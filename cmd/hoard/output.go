package main

import (
	"encoding/json"
	"fmt"
	"io"
)

// output prints a command's result as text or, with -json, as one JSON
// object; errors go to stderr as text, or to stdout as {"error": ...}.
type output struct {
	json           bool
	stdout, stderr io.Writer
}

// done prints v (-json) or text, and returns exitOK.
func (o *output) done(v any, text string) int {
	if o.json {
		b, err := json.Marshal(v)
		if err != nil {
			return o.fail(exitFailed, err)
		}
		fmt.Fprintf(o.stdout, "%s\n", b)
		return exitOK
	}
	fmt.Fprintln(o.stdout, text)
	return exitOK
}

// fail reports err and returns status.
func (o *output) fail(status int, err error) int {
	if o.json {
		b, _ := json.Marshal(map[string]string{"error": err.Error()})
		fmt.Fprintf(o.stdout, "%s\n", b)
	}
	fmt.Fprintf(o.stderr, "hoard: %v\n", err)
	return status
}

// usageError reports a bad command line with the usage.
func (o *output) usageError(msg string) int {
	fmt.Fprintf(o.stderr, "hoard: %s\n%s", msg, usage)
	return exitUsage
}
