package live

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/internal/filetype"
)

// OpenNetns opens path, which must be a network namespace — an nsfs file
// such as /run/netns/NAME (a bind mount) or /proc/PID/ns/net — and returns
// its file descriptor, which the caller closes. Whatever else path names,
// it returns an error saying what it is, and never blocks (filetype.Open
// checks the type before and after the open).
func OpenNetns(path string) (int, error) {
	if path == "" {
		return -1, fmt.Errorf("empty path")
	}
	fd, _, err := filetype.Open(path, unix.O_RDONLY, 0, nsfsLike)
	if err != nil {
		return -1, err
	}
	kind, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err == nil && kind != unix.CLONE_NEWNET {
		err = fmt.Errorf("not a network namespace")
	} else if err != nil {
		err = fmt.Errorf("not a namespace: %w", err)
	}
	if err != nil {
		_ = unix.Close(fd) // read-only: nothing to lose
		return -1, err
	}
	return fd, nil
}

// nsfsLike refuses what cannot be a namespace file: nsfs files are
// regular (and empty) to stat.
func nsfsLike(st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		return nil
	}
	return fmt.Errorf("a %s, not a network namespace", filetype.Name(st.Mode))
}
