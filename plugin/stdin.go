package plugin

import (
	"fmt"
	"io"
	"os"

	"github.com/containernetworking/cni/pkg/types"
	"golang.org/x/sys/unix"
)

// MaxConfigSize bounds the network configuration read from stdin. A
// plugin configuration with a prevResult is a few KiB; 1 MiB leaves room
// for many interfaces and addresses while keeping a runaway writer from
// exhausting memory.
const MaxConfigSize = 1 << 20

// LimitStdin enforces MaxConfigSize (limit) before skel reads stdin with
// io.ReadAll, which has no bound. skel reads os.Stdin, an *os.File, so
// LimitStdin reads at most limit+1 bytes itself and replaces os.Stdin
// with a file that replays them: an anonymous memory file (memfd), which
// takes three system calls, or, where the kernel has none, a pipe fed by
// a goroutine. A larger stdin is refused with
// ErrIOFailure ("failed to read network config bytes from stdin"), before
// any command runs. Commands skel does not read stdin for (none set,
// VERSION) are left alone, so a person running the binary by hand is
// not kept waiting.
func LimitStdin(command string, limit int64) *types.Error {
	if command == "" || command == "VERSION" {
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(os.Stdin, limit+1))
	if err != nil {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("fibguard: read stdin: %v", err), "")
	}
	if int64(len(data)) > limit {
		return types.NewError(types.ErrIOFailure,
			fmt.Sprintf("fibguard: network configuration on stdin is larger than %d bytes", limit), "")
	}
	if f, err := memFile(data); err == nil {
		os.Stdin = f
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("fibguard: replay stdin: %v", err), "")
	}
	go func() {
		// skel reads until EOF; an error here means the process is
		// exiting and nobody reads any more.
		_, _ = w.Write(data)
		_ = w.Close()
	}()
	os.Stdin = r
	return nil
}

// memFile returns an anonymous memory file holding data, positioned at its
// start.
func memFile(data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("fibguard-stdin", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "stdin")
	if _, err := f.Write(data); err != nil {
		_ = f.Close() // unusable anyway
		return nil, fmt.Errorf("write memfd: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		_ = f.Close() // unusable anyway
		return nil, fmt.Errorf("seek memfd: %w", err)
	}
	return f, nil
}
