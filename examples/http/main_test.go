package main

import (
	"testing"

	"github.com/go-ratelimit/ratelimit/internal/adaptertest"
)

// TestExample runs the server on a loopback port through the request script every example
// server passes: the per-IP and login limits, unlimited health checks, a clean shutdown and
// the rejection of bad flags.
func TestExample(t *testing.T) { adaptertest.RunExample(t, run) }
