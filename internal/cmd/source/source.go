// Package source holds the flags that choose which node a command models:
// a live namespace, a snapshot file, the `ip -j` dumps of a node, or the
// built-in example.
package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/fib/live"
	"github.com/fibguard/fibguard/internal/cmd/cli"
	"github.com/fibguard/fibguard/internal/examplenode"
	"github.com/fibguard/fibguard/internal/filetype"
)

// Flags are --netns, --snapshot, --ip-dump and --example.
type Flags struct {
	Netns    string
	Snapshot string
	IPDump   string
	Example  bool
	// Stdin is what --snapshot - reads; nil is os.Stdin.
	Stdin io.Reader
}

// Add registers the flags on a command.
func (f *Flags) Add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.Netns, "netns", "", "network namespace to model: a name under /var/run/netns or a path (default: the current one)")
	cmd.Flags().StringVar(&f.Snapshot, "snapshot", "", "model the node saved in this snapshot file instead of a live namespace (- reads standard input)")
	cmd.Flags().StringVar(&f.IPDump, "ip-dump", "", "model the node from the ip -j dumps in `DIR`: link.json, addr.json, route.json, route6.json, rule.json, rule6.json (see docs/fibguardctl.md)")
	cmd.Flags().BoolVar(&f.Example, "example", false, "model the built-in example node: eth0 10.0.0.10/24 and a bridge cni0 given 127.16.0.1/16")
}

// Validate reports conflicting flags, naming those given.
func (f *Flags) Validate() error {
	var set []string
	for _, fl := range []struct {
		name string
		set  bool
	}{{"--netns", f.Netns != ""}, {"--snapshot", f.Snapshot != ""}, {"--ip-dump", f.IPDump != ""}, {"--example", f.Example}} {
		if fl.set {
			set = append(set, fl.name)
		}
	}
	if len(set) > 1 {
		return fmt.Errorf("%s exclude each other: give one node", strings.Join(set, " and "))
	}
	return nil
}

// Live reports whether the model comes from a live namespace.
func (f *Flags) Live() bool { return f.Snapshot == "" && f.IPDump == "" && !f.Example }

// Load builds the model the flags name.
func (f *Flags) Load() (*fib.Model, error) {
	switch {
	case f.Example:
		return examplenode.LoopbackBridge(), nil
	case f.Snapshot == "-":
		return f.decodeStdin()
	case f.Snapshot != "":
		return decodeFile(f.Snapshot)
	case f.IPDump != "":
		return LoadIPDump(f.IPDump)
	}
	return LoadLive(f.Netns)
}

// LoadLive reads the model of a live namespace ("" is the current one);
// an error names the namespace once.
func LoadLive(netns string) (*fib.Model, error) {
	m, err := live.Load(netns)
	if err == nil {
		return m, nil
	}
	if netns == "" {
		return nil, fmt.Errorf("read the current network namespace: %w", err)
	}
	return nil, cli.PathError("network namespace", netns, err)
}

// decodeStdin reads a snapshot from standard input; fib.Decode stops at
// fib.MaxSnapshotSize, so an endless stream is an error, not a hang.
func (f *Flags) decodeStdin() (*fib.Model, error) {
	in := f.Stdin
	if in == nil {
		in = os.Stdin
	}
	m, err := fib.Decode(in)
	if err != nil {
		return nil, fmt.Errorf("standard input: %w", err)
	}
	return m, nil
}

// decodeFile reads the snapshot file at path: a regular file (OpenRegular),
// read at most up to fib.MaxSnapshotSize, whose own size is checked first.
func decodeFile(path string) (*fib.Model, error) {
	file, err := OpenRegular("snapshot", path)
	var nr *NotRegularError
	if errors.As(err, &nr) {
		return nil, fmt.Errorf("%w (--snapshot - reads standard input)", err)
	}
	if err != nil {
		return nil, cli.PathError("snapshot", path, err)
	}
	// Read-only: a failed Close loses nothing.
	defer func() { _ = file.Close() }()
	m, err := fib.Decode(file)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, cli.Unparse(err))
	}
	return m, nil
}

// NotRegularError is OpenRegular's refusal of a path that is not a
// regular file (or a link to one).
type NotRegularError struct {
	What, Path string
	// Type is what the path is, in words: "named pipe (FIFO)", "directory"...
	Type string
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s %s is a %s, not a regular file", e.What, e.Path, e.Type)
}

// OpenRegular opens path for reading as what ("snapshot", "conflist"): it
// must be a regular file, or a link to one. Its type is checked before a
// non-blocking open and again on what was opened (filetype.Open), so that
// a FIFO, a socket, a device or a directory named by mistake is a
// *NotRegularError at once instead of a hang or a read without end.
func OpenRegular(what, path string) (*os.File, error) {
	fd, _, err := filetype.Open(path, unix.O_RDONLY, 0, regularAs(what, path))
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// regularAs refuses, as a *NotRegularError, what is not a regular file.
func regularAs(what, path string) func(*unix.Stat_t) error {
	return func(st *unix.Stat_t) error {
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return &NotRegularError{What: what, Path: path, Type: filetype.Name(st.Mode)}
		}
		return nil
	}
}

// ErrTooLarge is ReadFile's error for a file past its limit; the error
// wrapping it names the file and the limit.
var ErrTooLarge = filetype.ErrTooLarge

// ReadFile reads the regular file at path (OpenRegular) whole, as what: at
// most limit bytes. A larger file is refused by its size before anything
// is read, and one that grows past limit while read (or a file of /proc,
// whose size says nothing) stops there; both are errors wrapping
// ErrTooLarge that name what, the path and the limit.
func ReadFile(what, path string, limit int64) ([]byte, error) {
	b, _, err := filetype.ReadFile(path, unix.O_RDONLY, limit, regularAs(what, path))
	if errors.Is(err, filetype.ErrTooLarge) {
		return nil, fmt.Errorf("%s %s: %w: larger than %d bytes, the most fibguardctl reads", what, path, ErrTooLarge, limit)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return nil, cli.PathError(what, path, err)
	}
	return b, err
}
