//go:build race

package compat

// raceEnabled builds vmcp with -race when the suite runs under -race, so a
// data race inside the gateway shows up in its log.
const raceEnabled = true
