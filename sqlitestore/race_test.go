//go:build race

package sqlitestore

// The race detector slows the transpiled SQLite of modernc.org/sqlite more than fortyfold:
// the tests that make tens of thousands of calls (the conformance suite, the differential
// and multi-process tests) skip under it, and .ci/test runs them again without it.
const raceEnabled = true
