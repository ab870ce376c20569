package install

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// binaryPerm is the mode of the installed plugin, as the other binaries in
// /opt/cni/bin.
const binaryPerm = 0o755

// CopyBinary installs the plugin binary src as binDir/fibguard. The runtime
// may execute the plugin at any moment, so the copy is written next to it
// and renamed over it: an ADD runs the old binary or the new one, never a
// partly written file ("text file busy" cannot happen either, as the old
// inode is not written to). An identical binary already in place is left
// alone. It returns whether it wrote the file.
func CopyBinary(src, binDir string) (bool, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return false, fmt.Errorf("reading the plugin binary: %w", err)
	}
	dst := filepath.Join(binDir, PluginType)
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
	if err := removeTemps(binDir, "."+PluginType+tmpMarker+"*"); err != nil {
		return false, err
	}
	if err := writeFile(dst, data, binaryPerm, -1, -1, nil); err != nil {
		return false, fmt.Errorf("installing the plugin binary: %w", err)
	}
	return true, nil
}

// binaryInstalled reports whether binDir/fibguard looks like src: it exists
// with src's size. The watch loop checks this on every pass; comparing the
// bytes, as CopyBinary does, is left to CopyBinary.
func binaryInstalled(src, binDir string) (bool, error) {
	want, err := os.Stat(src)
	if err != nil {
		return false, fmt.Errorf("reading the plugin binary: %w", err)
	}
	got, err := os.Stat(filepath.Join(binDir, PluginType))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking the installed plugin: %w", err)
	}
	return got.Mode().IsRegular() && got.Size() == want.Size(), nil
}

// RemoveBinary removes binDir/fibguard. Remove the entries first
// (RemoveEntry): a conflist naming a missing plugin fails every pod.
func RemoveBinary(binDir string) error {
	unlock, err := lockDir(binDir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := removeTemps(binDir, "."+PluginType+tmpMarker+"*"); err != nil {
		return err
	}
	return removeFile(filepath.Join(binDir, PluginType))
}
