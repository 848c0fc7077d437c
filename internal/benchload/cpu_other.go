//go:build !unix

package benchload

import "time"

// CPUTime reports false: the process's CPU time is not read on this system.
func CPUTime() (time.Duration, bool) { return 0, false }
