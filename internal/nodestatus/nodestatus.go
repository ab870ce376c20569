// Package nodestatus is the small file through which the node agent tells
// the plugin's STATUS command whether the node's pod network is tenable:
// the agent writes the node's verdict after each round of checks, and the
// plugin, when its entry says "nodeStatus": "on", reads it and fails
// STATUS while the node has a node-wide error, so that the runtime reports
// the node's network not ready (kubelet's NetworkReady=false) before pods
// are scheduled onto it.
package nodestatus

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/internal/filetype"
)

// DefaultPath is where the agent writes the verdict and the plugin reads
// it: on a tmpfs, so that a verdict never outlives a reboot.
const DefaultPath = "/run/fibguard/node-status.json"

// Version is the version of the format Write writes.
const Version = 1

// MaxSize bounds the file the plugin reads.
const MaxSize = 64 << 10

// MaxAge is how old a verdict may be and still count: the agent writes at
// least every resync (30 s by default); an older one means the agent is
// gone, and a verdict nobody keeps up to date must not keep a node out.
const MaxAge = 5 * time.Minute

// Status is the node's verdict.
type Status struct {
	Version int       `json:"version"`
	Time    time.Time `json:"time"`
	// Ready is false while a node-wide check has an error.
	Ready bool `json:"ready"`
	// Reason is the error findings, one line, when not Ready.
	Reason string `json:"reason,omitempty"`
}

// Write writes s to path atomically (a temporary file renamed over it),
// mode 0644, creating the directory if needed.
func Write(path string, s Status) error {
	s.Version = Version
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encoding the node status: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	f, err := os.CreateTemp(dir, ".node-status-*")
	if err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }() // gone after the rename
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing the node status: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		_ = f.Close()
		return fmt.Errorf("node status: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the node status: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	return nil
}

// ErrStale is returned by Read for a verdict older than MaxAge, or from
// the future.
var ErrStale = errors.New("the node status is stale: the agent has not written it for too long")

// Read reads the verdict at path, which must be a regular file (not a
// link) of at most MaxSize bytes, checked before it is opened and opened
// without blocking. A verdict older than MaxAge at now is ErrStale.
func Read(path string, now time.Time) (Status, error) {
	b, _, err := filetype.ReadFile(path, unix.O_RDONLY|unix.O_NOFOLLOW, MaxSize, func(st *unix.Stat_t) error {
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("node status %s is a %s, not a regular file", path, filetype.Name(st.Mode))
		}
		return nil
	})
	if errors.Is(err, filetype.ErrTooLarge) {
		return Status{}, fmt.Errorf("node status %s is larger than %d bytes", path, MaxSize)
	}
	if err != nil {
		return Status{}, err
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return Status{}, fmt.Errorf("node status %s: %w", path, err)
	}
	if s.Version != Version {
		return Status{}, fmt.Errorf("node status %s: version %d, want %d", path, s.Version, Version)
	}
	if age := now.Sub(s.Time); age > MaxAge || age < -time.Minute {
		return s, fmt.Errorf("%w (%s written at %s)", ErrStale, path, s.Time.Format(time.RFC3339))
	}
	return s, nil
}
