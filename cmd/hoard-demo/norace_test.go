//go:build !race

package main

// raceEnabled: the tests run with -race.
const raceEnabled = false
