package main

import (
	"testing"

	"github.com/go-ratelimit/ratelimit/internal/adaptertest"
)

// TestExample runs the script every adapter's example server must pass.
func TestExample(t *testing.T) { adaptertest.RunExample(t, run) }
