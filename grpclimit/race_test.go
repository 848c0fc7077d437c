//go:build race

package grpclimit

// raceEnabled reports a build with the race detector, whose sync.Pool drops items at
// random: allocation counts do not hold under it.
const raceEnabled = true
