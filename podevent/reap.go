package podevent

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Subreap makes the calling process a child subreaper
// (PR_SET_CHILD_SUBREAPER) with on, and an ordinary process again
// without: while it is one, a process its children start and then leave
// behind — with setsid, a double fork, anything that leaves the event
// binary's process group — becomes its child instead of init's, so that
// ReapOrphans can find and end it. This matters only where Send could not
// give the event binary a PID namespace, which ends all of that by
// itself. Only for a process whose children are all event binaries and
// theirs: the plugin.
func Subreap(on bool) error {
	arg := uintptr(0)
	if on {
		arg = 1
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, arg, 0, 0, 0); err != nil {
		return fmt.Errorf("setting the child subreaper flag to %v: %w", on, err)
	}
	return nil
}

// ReapOrphans kills (SIGKILL) and reaps every child of the calling
// process, and every process that becomes one as they die, until there is
// none left, for at most timeout. It returns how many it ended. Call it
// after Subreap and after Send has returned: any child left then was
// started for an Event and must not outlive the command, and none is a
// child os/exec still waits for.
//
// Only children are signalled, never a process further down: a child's
// pid stays its own until its parent (this process) reaps it, whereas a
// grandchild's may be reused by then. Each round ends one generation; the
// next comes to this process as its parent dies.
func ReapOrphans(timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	ended := 0
	for {
		kids, err := children(os.Getpid())
		if err != nil || len(kids) == 0 {
			return ended, err
		}
		if time.Now().After(deadline) {
			return ended, fmt.Errorf("%d processes started for an Event still run after %v: %v", len(kids), timeout, kids)
		}
		for _, pid := range kids {
			_ = syscall.Kill(pid, syscall.SIGKILL) // a zombie already is fine
		}
		for _, pid := range kids {
			if reap(pid, deadline) {
				ended++
			}
		}
	}
}

// reap waits, until deadline, for the killed child pid to exit and
// collects it; false if it did not exit in time.
func reap(pid int, deadline time.Time) bool {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if got == pid || errors.Is(err, syscall.ECHILD) {
			return got == pid
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// children returns the processes whose parent is pid, from /proc: each
// /proc/PID/stat holds the parent's pid after the command name.
func children(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentOf(child); ok && ppid == pid {
			out = append(out, child)
		}
	}
	return out, nil
}

// parentOf reads a process's parent pid; false if it is gone.
func parentOf(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}
