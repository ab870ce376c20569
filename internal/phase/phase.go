// Package phase records when each phase of one plugin run ends, for the
// per-phase account of an accepted ADD (docs/performance.md): the plugin
// marks the end of each phase, and at exit appends one JSON line of the
// marks to the file named by FIBGUARD_PHASES. Without that variable every
// call is a branch on a boolean: nothing is timed or written.
//
// Marks carry the wall clock in nanoseconds, so that a harness can put
// its own times around them: when it started the process, when the
// process ended.
package phase

import (
	"encoding/json"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Env names the file the marks are appended to.
const Env = "FIBGUARD_PHASES"

// maxMarks bounds the marks of one run; more are dropped.
const maxMarks = 32

// Mark is the end of a phase: its name and when it ended.
type Mark struct {
	Name string `json:"name"`
	At   int64  `json:"at"` // Unix nanoseconds
}

var (
	path  = os.Getenv(Env)
	marks []Mark
	// spent accumulates the time of phases interleaved with others (the
	// kernel's route queries within the checks), by name. Both are made
	// only when marks are recorded: a plugin run without them allocates
	// nothing here.
	spent map[string]time.Duration
)

// Enabled reports whether marks are recorded.
func Enabled() bool { return path != "" }

// End marks the end of the phase name now.
func End(name string) {
	if path == "" || len(marks) == maxMarks {
		return
	}
	marks = append(marks, Mark{Name: name, At: time.Now().UnixNano()})
}

// Add counts d as time spent in the phase name, which happens in pieces
// within other phases; Flush reports the total.
func Add(name string, d time.Duration) {
	if path == "" {
		return
	}
	if spent == nil {
		spent = map[string]time.Duration{}
	}
	spent[name] += d
}

// Flush appends the run's marks, and the totals of Add, as one JSON line
// to the file, with one write (O_APPEND: runs in parallel do not
// interleave). Errors are dropped: the account must never change the
// plugin's outcome.
func Flush() {
	if path == "" {
		return
	}
	line, err := json.Marshal(struct {
		Marks []Mark                   `json:"marks"`
		Spent map[string]time.Duration `json:"spent,omitempty"`
	}{marks, spent})
	if err != nil {
		return
	}
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return
	}
	_, _ = unix.Write(fd, append(line, '\n'))
	_ = unix.Close(fd)
}
