package filetype

import (
	"errors"
	"io/fs"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/internal/hostile"
)

// TestName stats real files of each type and names them.
func TestName(t *testing.T) {
	p := hostile.Make(t)
	for path, want := range map[string]string{
		p.Target: "regular file", p.Dir: "directory", p.FIFO: "named pipe (FIFO)", p.Link: "symbolic link",
		p.Socket: "socket", p.Device: "character device",
	} {
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			t.Fatal(err)
		}
		if got := Name(st.Mode); got != want {
			t.Errorf("Name(%s) = %q, want %q", path, got, want)
		}
	}
}

// TestOpen: check sees the file before and after the open; a FIFO is
// refused without blocking; an absent path is created only with O_CREAT.
func TestOpen(t *testing.T) {
	p := hostile.Make(t)
	regular := func(st *unix.Stat_t) error {
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return errors.New(Name(st.Mode))
		}
		return nil
	}
	for path, want := range map[string]string{p.FIFO: "named pipe (FIFO)", p.Dir: "directory", p.Device: "character device"} {
		if fd, _, err := Open(path, unix.O_RDONLY, 0, regular); err == nil || err.Error() != want {
			_ = unix.Close(fd)
			t.Errorf("Open(%s) = %v, want check's error %q", path, err, want)
		}
	}
	if _, _, err := Open(p.Link, unix.O_RDONLY|unix.O_NOFOLLOW, 0, regular); err == nil || err.Error() != "symbolic link" {
		t.Errorf("Open(link, O_NOFOLLOW) = %v, want the link refused by check", err)
	}
	fd, st, err := Open(p.Link, unix.O_RDONLY, 0, regular)
	if err != nil || st.Size != int64(len("kept\n")) {
		t.Fatalf("Open(link) = %v (size %d), want the target", err, st.Size)
	}
	_ = unix.Close(fd)
	absent := p.Target + ".new"
	var pe *fs.PathError
	if _, _, err := Open(absent, unix.O_RDONLY, 0, regular); !errors.As(err, &pe) || pe.Op != "stat" {
		t.Errorf("Open(absent) = %v, want a stat PathError", err)
	}
	fd, st, err = Open(absent, unix.O_WRONLY|unix.O_CREAT, 0o600, regular)
	if err != nil || st.Mode&0o777 != 0o600 {
		t.Fatalf("Open(absent, O_CREAT) = %v, mode %o", err, st.Mode&0o777)
	}
	_ = unix.Close(fd)
}
