// Package filetype names the type of a file from its stat mode, for the
// errors that refuse a path of the wrong type (a FIFO where a namespace or
// a log file is expected, say).
package filetype

import "golang.org/x/sys/unix"

// Name is the type of a file with the given st_mode, in words:
// "regular file", "directory", "named pipe (FIFO)", "socket",
// "character device", "block device" or "symbolic link".
func Name(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFIFO:
		return "named pipe (FIFO)"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFLNK:
		return "symbolic link"
	default:
		return "regular file"
	}
}
