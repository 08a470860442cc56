//go:build race

package sqltest

// raceEnabled: the race detector slows modernc.org/sqlite (C translated to
// Go) about tenfold, so the largest volume tests scale down under -race.
const raceEnabled = true
