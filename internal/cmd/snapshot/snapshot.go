// Package snapshot is `fibguardctl snapshot`: it saves the model of a
// namespace to a file that `--snapshot` reads back.
package snapshot

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/fibguard/fibguard/internal/cmd/source"
)

// NewCommand returns `snapshot`.
func NewCommand() *cobra.Command {
	var src source.Flags
	var out string
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Write the model of a namespace as a versioned JSON snapshot",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := src.Validate(); err != nil {
				return err
			}
			m, err := src.Load()
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				return m.Encode(cmd.OutOrStdout())
			}
			return writeAtomic(out, func(f *os.File) error { return m.Encode(f) })
		},
	}
	src.Add(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "-", "file to write (written to a temporary file and renamed into place)")
	return cmd
}

// writeAtomic writes a file through a temporary file in the same directory
// and renames it into place, so a reader never sees half a snapshot.
func writeAtomic(path string, write func(*os.File) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// After a successful rename the temporary name is gone and Remove
	// fails harmlessly; after a failure it removes the partial file.
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := write(tmp); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
