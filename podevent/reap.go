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
// (PR_SET_CHILD_SUBREAPER): a process its children start and then leave
// behind — with setsid, a double fork, anything that leaves the event
// binary's process group — becomes its child instead of init's, so that
// ReapOrphans can find and end it. Only for a process whose children are
// all event binaries and theirs: the plugin.
func Subreap() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("becoming a child subreaper: %w", err)
	}
	return nil
}

// reapRounds bounds the rounds of ReapOrphans: each kills the children
// found, whose own children then become children in turn.
const reapRounds = 64

// ReapOrphans kills (SIGKILL) and reaps every child of the calling
// process, and every process that becomes one as they die, until there is
// none left, for at most timeout. It returns how many it ended. Call it
// after Subreap and after the event binary has been waited for: any child
// left then was started for an Event and must not outlive the command.
func ReapOrphans(timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	ended := 0
	for range reapRounds {
		kids, err := children(os.Getpid())
		if err != nil || len(kids) == 0 {
			return ended, err
		}
		for _, pid := range kids {
			_ = syscall.Kill(pid, syscall.SIGKILL) // gone already is fine
		}
		for _, pid := range kids {
			if reap(pid, deadline) {
				ended++
			}
		}
		if time.Now().After(deadline) {
			break
		}
	}
	left, _ := children(os.Getpid())
	if len(left) > 0 {
		return ended, fmt.Errorf("%d processes started for an Event still run after %v: %v", len(left), timeout, left)
	}
	return ended, nil
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
