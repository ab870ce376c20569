package live

import (
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/internal/filetype"
)

// OpenNetns opens path, which must be a network namespace — an nsfs file
// such as /run/netns/NAME (a bind mount) or /proc/PID/ns/net — and returns
// its file descriptor, which the caller closes. Whatever else path names,
// it returns an error saying what it is, and never blocks: the type is
// checked before the file is opened (opening a FIFO waits for a writer,
// opening a device can act on it), the open does not block or take a
// controlling terminal, and the type is checked again on what was opened,
// in case the path changed in between.
func OpenNetns(path string) (int, error) {
	if path == "" {
		return -1, fmt.Errorf("empty path")
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return -1, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if err := nsfsLike(st.Mode); err != nil {
		return -1, err
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	if err := checkNetnsFD(fd); err != nil {
		_ = unix.Close(fd) // read-only: nothing to lose
		return -1, err
	}
	return fd, nil
}

// checkNetnsFD verifies that an open file is a network namespace.
func checkNetnsFD(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if err := nsfsLike(st.Mode); err != nil {
		return err
	}
	kind, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("not a namespace: %w", err)
	}
	if kind != unix.CLONE_NEWNET {
		return fmt.Errorf("not a network namespace")
	}
	return nil
}

// nsfsLike refuses what cannot be a namespace file: nsfs files are
// regular (and empty) to stat.
func nsfsLike(mode uint32) error {
	if mode&unix.S_IFMT == unix.S_IFREG {
		return nil
	}
	return fmt.Errorf("a %s, not a network namespace", filetype.Name(mode))
}
