//go:build !linux

package sql

import "time"

// serverCPU is nil, which reports no server CPU metric: a server's CPU time is read from
// /proc, on Linux only.
func serverCPU(int) func() (time.Duration, error) { return nil }
