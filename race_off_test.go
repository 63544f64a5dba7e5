//go:build !race

package hoard_test

// raceEnabled reports whether the race detector is on (its shadow memory
// inflates RSS, so TestFlood does not bound RSS under it).
const raceEnabled = false
