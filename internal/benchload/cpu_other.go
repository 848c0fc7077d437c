//go:build !unix

package benchload

import "time"

// cpuTime reports false: the process's CPU time is not read on this system.
func cpuTime() (time.Duration, bool) { return 0, false }
