package plugin

import (
	"fmt"
	"io"
	"os"

	"github.com/containernetworking/cni/pkg/types"
)

// MaxConfigSize bounds the network configuration read from stdin. A
// plugin configuration with a prevResult is a few KiB; 1 MiB leaves room
// for many interfaces and addresses while keeping a runaway writer from
// exhausting memory.
const MaxConfigSize = 1 << 20

// LimitStdin enforces MaxConfigSize (limit) before skel reads stdin with
// io.ReadAll, which has no bound. skel reads os.Stdin, an *os.File, so
// LimitStdin reads at most limit+1 bytes itself and replaces os.Stdin
// with a pipe that replays them. A larger stdin is refused with
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
