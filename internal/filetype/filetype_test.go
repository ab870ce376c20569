package filetype

import (
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
