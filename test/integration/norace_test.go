//go:build !race

package integration

// raceEnabled reports whether the tests were built with -race; the server
// binary is then built with -race too.
const raceEnabled = false
