package filetype

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// Open opens path with flags, adding O_NONBLOCK, O_NOCTTY and O_CLOEXEC,
// once check has accepted what path is — before the open, because opening
// a FIFO blocks until the other end comes and opening a device can act on
// it — and again on what was opened, in case the path changed in between.
// The first look follows a final symbolic link unless flags has
// O_NOFOLLOW; a path that does not exist goes to the open only when flags
// has O_CREAT. Errors from the system are *fs.PathError; check's are
// returned as they are. It returns the raw descriptor (an *os.File costs
// an epoll registration, which the plugin's hot path avoids) and the
// opened file's stat; the caller closes the descriptor.
func Open(path string, flags int, perm uint32, check func(*unix.Stat_t) error) (int, unix.Stat_t, error) {
	var st unix.Stat_t
	stat := unix.Stat
	if flags&unix.O_NOFOLLOW != 0 {
		stat = unix.Lstat
	}
	switch err := stat(path, &st); {
	case err == nil:
		if err := check(&st); err != nil {
			return -1, st, err
		}
	case errors.Is(err, unix.ENOENT) && flags&unix.O_CREAT != 0:
	default:
		return -1, st, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	fd, err := unix.Open(path, flags|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, perm)
	if err != nil {
		return -1, st, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd) // nothing read or written yet
		return -1, st, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if err := check(&st); err != nil {
		_ = unix.Close(fd) // nothing read or written yet
		return -1, st, err
	}
	return fd, st, nil
}
