// Package hostile makes the paths a hardened reader must refuse, for
// tests: a FIFO (an open for reading blocks until a writer comes), a
// socket, a symbolic link to a file and one to nothing, a directory and a
// device — every kind of file a node, a runtime or a misconfiguration may
// hand fibguard where it expects a regular file.
package hostile

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Paths are the hostile paths of one directory, and Target, the regular
// file Link points to.
type Paths struct {
	FIFO, Socket, Link, Dangling, Dir, Device string
	// Target is the file Link points to; Dangling points to DanglingTarget,
	// which does not exist.
	Target, DanglingTarget string
}

// Make creates them in a new temporary directory of t; everything goes
// with it (the socket's listener is closed at the end of the test).
func Make(t testing.TB) Paths {
	t.Helper()
	dir := t.TempDir()
	p := Paths{
		FIFO: filepath.Join(dir, "fifo"), Socket: filepath.Join(dir, "sock"),
		Link: filepath.Join(dir, "link"), Dangling: filepath.Join(dir, "dangling"),
		Dir: filepath.Join(dir, "dir"), Device: "/dev/null",
		Target: filepath.Join(dir, "target"), DanglingTarget: filepath.Join(dir, "created-through-link"),
	}
	if err := os.WriteFile(p.Target, []byte("kept\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(p.FIFO, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p.Target, p.Link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p.DanglingTarget, p.Dangling); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", p.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return p
}
