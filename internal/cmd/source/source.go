// Package source holds the flags that choose which node a command models:
// a live namespace, a snapshot file, or the built-in example.
package source

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/fib/live"
	"github.com/fibguard/fibguard/internal/examplenode"
	"github.com/fibguard/fibguard/internal/filetype"
)

// Flags are --netns, --snapshot and --example.
type Flags struct {
	Netns    string
	Snapshot string
	Example  bool
}

// Add registers the flags on a command.
func (f *Flags) Add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.Netns, "netns", "", "network namespace to model: a name under /var/run/netns or a path (default: the current one)")
	cmd.Flags().StringVar(&f.Snapshot, "snapshot", "", "model the node saved in this snapshot file instead of a live namespace (- reads standard input)")
	cmd.Flags().BoolVar(&f.Example, "example", false, "model the built-in example node: eth0 10.0.0.10/24 and a bridge cni0 given 127.16.0.1/16")
}

// Validate reports conflicting flags.
func (f *Flags) Validate() error {
	n := 0
	for _, set := range []bool{f.Netns != "", f.Snapshot != "", f.Example} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("--netns, --snapshot and --example exclude each other")
	}
	return nil
}

// Live reports whether the model comes from a live namespace.
func (f *Flags) Live() bool { return f.Snapshot == "" && !f.Example }

// Load builds the model the flags name.
func (f *Flags) Load() (*fib.Model, error) {
	switch {
	case f.Example:
		return examplenode.LoopbackBridge(), nil
	case f.Snapshot != "":
		file, err := openSnapshot(f.Snapshot)
		if err != nil {
			return nil, err
		}
		// Read-only: a failed Close loses nothing.
		defer func() { _ = file.Close() }()
		m, err := fib.Decode(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Snapshot, err)
		}
		return m, nil
	}
	m, err := live.Load(f.Netns)
	if err != nil {
		return nil, fmt.Errorf("load namespace: %w", err)
	}
	return m, nil
}

// openSnapshot opens the snapshot file path: standard input for "-",
// otherwise a regular file (through links), checked before the open and
// opened without blocking, so that a FIFO, a device or a directory named
// by mistake is an error at once instead of a hang; fib.Decode bounds
// what it reads.
func openSnapshot(path string) (*os.File, error) {
	if path == "-" {
		return os.Stdin, nil
	}
	fd, _, err := filetype.Open(path, unix.O_RDONLY, 0, func(st *unix.Stat_t) error {
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("snapshot %s is a %s, not a regular file (use --snapshot - to read standard input)", path, filetype.Name(st.Mode))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open snapshot: %w", err)
	}
	return os.NewFile(uintptr(fd), path), nil
}
