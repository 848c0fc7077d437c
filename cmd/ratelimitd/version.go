package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// libraryPath is the module of the rate-limiting library the service is built on.
const libraryPath = "github.com/go-ratelimit/ratelimit"

// versionLine returns what -version prints: the service's module version (a tag or
// pseudo-version when installed with go install, "(devel)" in a source tree), the VCS
// revision when the build recorded one, the library's version and the Go version.
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Sprintf("ratelimitd (unknown version) %s", runtime.Version())
	}
	v := "ratelimitd " + info.Main.Version
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			v += " " + s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			v += "+modified"
		}
	}
	lib := "(devel)"
	for _, d := range info.Deps {
		if d.Path == libraryPath {
			lib = d.Version
			if d.Replace != nil && d.Replace.Version != "" {
				lib = d.Replace.Version
			}
		}
	}
	return fmt.Sprintf("%s (library %s %s) %s", v, libraryPath, lib, runtime.Version())
}
