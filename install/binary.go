package install

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/fibguard/fibguard/podevent"
)

// binaryPerm is the mode of the installed plugin, as the other binaries in
// /opt/cni/bin.
const binaryPerm = 0o755

// EventBinaryName is the name of the event binary in the CNI bin dir,
// next to the plugin, where the plugin looks for it.
const EventBinaryName = podevent.EventBinary

// CopyBinary installs the binary src as binDir/name: the plugin
// (PluginType) or the event binary (EventBinaryName). The runtime may
// execute the plugin, and the plugin the event binary, at any moment, so
// the copy is written next to it and renamed over it: a run gets the old
// binary or the new one, never a partly written file ("text file busy"
// cannot happen either, as the old inode is not written to). An identical
// binary already in place is left alone. It returns whether it wrote the
// file.
func CopyBinary(src, binDir, name string) (bool, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return false, fmt.Errorf("reading the binary to install as %s: %w", name, err)
	}
	dst := filepath.Join(binDir, name)
	if cur, err := os.ReadFile(dst); err == nil && bytes.Equal(cur, data) {
		if fi, err := os.Stat(dst); err == nil && fi.Mode().Perm() == binaryPerm {
			return false, nil
		}
	}
	unlock, err := lockDir(binDir)
	if err != nil {
		return false, err
	}
	defer unlock()
	if err := removeTemps(binDir, "."+name+tmpMarker+"*"); err != nil {
		return false, err
	}
	if err := writeFile(dst, data, binaryPerm, -1, -1, nil); err != nil {
		return false, fmt.Errorf("installing %s: %w", dst, err)
	}
	return true, nil
}

// binaryInstalled reports whether binDir/name looks like src: it exists
// with src's size. The watch loop checks this on every pass; comparing the
// bytes, as CopyBinary does, is left to CopyBinary.
func binaryInstalled(src, binDir, name string) (bool, error) {
	want, err := os.Stat(src)
	if err != nil {
		return false, fmt.Errorf("reading the binary to install as %s: %w", name, err)
	}
	got, err := os.Stat(filepath.Join(binDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking the installed %s: %w", name, err)
	}
	return got.Mode().IsRegular() && got.Size() == want.Size(), nil
}

// RemoveBinary removes binDir/name. Remove the entries first
// (RemoveEntry): a conflist naming a missing plugin fails every pod.
func RemoveBinary(binDir, name string) error {
	unlock, err := lockDir(binDir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := removeTemps(binDir, "."+name+tmpMarker+"*"); err != nil {
		return err
	}
	return removeFile(filepath.Join(binDir, name))
}
