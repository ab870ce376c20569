// Package version says which build of fibguard a binary is: every command
// answers --version with the module version and the VCS commit that Go
// records in the binary (runtime/debug.ReadBuildInfo), so a support
// engineer can tell which code gave an answer.
//
// A build from a git checkout records the commit, its time and whether the
// tree had uncommitted changes; `go install module@version` records the
// version. A release build made without VCS stamping (-buildvcs=false)
// records neither and sets Release with -ldflags instead.
package version

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// Release is the release the binary was built as, stamped with
// -ldflags "-X github.com/fibguard/fibguard/internal/version.Release=v0.1.0";
// empty in other builds, which fall back to the module version.
var Release string

// Info is what a binary knows about its own build.
type Info struct {
	// Version is Release, else the main module's version ("(devel)" for a
	// build in a checkout), else "unknown".
	Version string `json:"version"`
	// Commit is the VCS revision, "" when the build did not record it.
	Commit string `json:"commit,omitempty"`
	// Time is the commit's time (RFC 3339), "" when not recorded.
	Time string `json:"time,omitempty"`
	// Modified is set when the tree had uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// Go is the toolchain that built the binary.
	Go string `json:"go,omitempty"`
}

// Get reads the build information of the running binary.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: orUnknown(Release)}
	}
	return fromBuildInfo(bi, Release)
}

// fromBuildInfo is Get on given build information and release stamp.
func fromBuildInfo(bi *debug.BuildInfo, release string) Info {
	in := Info{Version: release, Go: bi.GoVersion}
	if in.Version == "" {
		in.Version = bi.Main.Version
	}
	in.Version = orUnknown(in.Version)
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// String is one line: "v0.1.0, commit 0123abcd… (2026-12-05T08:00:00Z,
// modified), go1.26.8", leaving out what the build did not record.
func (in Info) String() string {
	parts := []string{in.Version}
	commit := "commit unknown"
	if in.Commit != "" {
		commit = "commit " + in.Commit
	}
	var notes []string
	if in.Time != "" {
		notes = append(notes, in.Time)
	}
	if in.Modified {
		notes = append(notes, "modified")
	}
	if len(notes) > 0 {
		commit += " (" + strings.Join(notes, ", ") + ")"
	}
	parts = append(parts, commit)
	if in.Go != "" {
		parts = append(parts, in.Go)
	}
	return strings.Join(parts, ", ")
}

// Requested reports whether the command line asks for the version:
// -version or --version (also =true) among the arguments before "--".
// The daemons and the CNI plugin check it before parsing anything else, so
// that --version answers whatever the environment holds.
func Requested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-version", "--version", "-version=true", "--version=true":
			return true
		}
	}
	return false
}

// Print writes "NAME VERSION-LINE" to w.
func Print(w io.Writer, name string) error {
	_, err := fmt.Fprintf(w, "%s %s\n", name, Get())
	return err
}

// ExitIfRequested prints the version on standard output and exits 0 when
// the arguments ask for it (Requested), and returns otherwise: the one
// line a command's main needs.
func ExitIfRequested(name string, args []string) {
	if !Requested(args) {
		return
	}
	if err := Print(os.Stdout, name); err != nil {
		fmt.Fprintf(os.Stderr, "%s: print the version: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}
