//go:build race

package main

// raceEnabled says the tests run with the race detector, so the deerd they
// build gets it too: a data race in the real process fails its test.
const raceEnabled = true
