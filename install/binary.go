package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/internal/filetype"
	"github.com/fibguard/fibguard/podevent"
)

// binaryPerm is the mode of the installed plugin, as the other binaries in
// /opt/cni/bin.
const binaryPerm = 0o755

// MaxBinary is the largest binary the installer copies: several times the
// plugin (about 4 MB) and the event binary (about 14 MB, with client-go),
// and a bound on the disk and time a wrong -binary can cost. Binaries are
// copied and compared in chunks, never held whole in memory.
const MaxBinary = 128 << 20

// EventBinaryName is the name of the event binary in the CNI bin dir,
// next to the plugin, where the plugin looks for it.
const EventBinaryName = podevent.EventBinary

// errSource marks an error about a binary to install (the image's copy),
// as opposed to the node's bin dir: the installer cannot work without it.
var errSource = errors.New("binary to install")

// CopyBinary installs the binary src as binDir/name: the plugin
// (PluginType) or the event binary (EventBinaryName). The runtime may
// execute the plugin, and the plugin the event binary, at any moment, so
// the copy is written next to it and renamed over it: a run gets the old
// binary or the new one, never a partly written file ("text file busy"
// cannot happen either, as the old inode is not written to). An identical
// binary already in place is left alone. It returns whether it wrote the
// file.
//
// src must be a regular file of at most MaxBinary bytes; a link to one is
// followed (it is the image's own file). binDir/name is never followed:
// anything there but a regular file (a link, a FIFO, a directory, a
// device) is someone else's, and is refused with an error saying what it
// is rather than opened, followed or replaced.
func CopyBinary(src, binDir, name string) (bool, error) {
	s, size, err := openSource(src, name)
	if err != nil {
		return false, err
	}
	defer func() { _ = s.Close() }() // read-only
	dst := filepath.Join(binDir, name)
	if same, err := sameBinary(s, size, dst); err != nil || same {
		return false, err
	}
	unlock, err := lockDir(binDir)
	if err != nil {
		return false, err
	}
	defer unlock()
	if err := removeTemps(binDir, "."+name+tmpMarker+"*"); err != nil {
		return false, err
	}
	// Checked again under the lock: the other installer pod may have put
	// something there meanwhile.
	if _, err := destination(dst); err != nil {
		return false, err
	}
	if _, err := s.Seek(0, io.SeekStart); err != nil {
		return false, fmt.Errorf("reading %s: %w", src, err)
	}
	if err := writeFileFrom(dst, copyExactly(s, size), binaryPerm, -1, -1, nil); err != nil {
		return false, fmt.Errorf("installing %s: %w", dst, err)
	}
	return true, nil
}

// openSource opens the binary to install and returns it with its size.
func openSource(src, name string) (*os.File, int64, error) {
	f, err := openRegular(src, true, MaxBinary)
	if err != nil {
		return nil, 0, fmt.Errorf("%w as %s: %w", errSource, name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close() // read-only
		return nil, 0, fmt.Errorf("%w as %s: %w", errSource, name, err)
	}
	return f, fi.Size(), nil
}

// copyExactly writes r's size bytes: a source that grows or shrinks while
// it is copied is an error rather than a truncated or oversized binary.
func copyExactly(r io.Reader, size int64) func(io.Writer) error {
	return func(w io.Writer) error {
		n, err := io.Copy(w, io.LimitReader(r, size+1))
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("the binary to install changed while it was copied: %d bytes, expected %d", n, size)
		}
		return nil
	}
}

// destination reports whether dst, in the node's bin dir, exists; it must
// be absent or a regular file. It is looked at with lstat, never opened.
func destination(dst string) (bool, error) {
	var st unix.Stat_t
	err := unix.Lstat(dst, &st)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking the installed %s: %w", dst, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, fmt.Errorf("%s is a %s, not a regular file: the installer neither follows, opens nor replaces it; remove it",
			dst, filetype.Name(st.Mode))
	}
	return true, nil
}

// sameBinary reports whether dst already is src (size bytes, read from its
// start) with the mode binaryPerm, comparing them chunk by chunk.
func sameBinary(src io.Reader, size int64, dst string) (bool, error) {
	ok, err := destination(dst)
	if err != nil || !ok {
		return false, err
	}
	d, err := openRegular(dst, false, MaxBinary)
	if err != nil {
		return false, nil // too large, or replaced meanwhile: rewritten under the lock
	}
	defer func() { _ = d.Close() }() // read-only
	fi, err := d.Stat()
	if err != nil || fi.Size() != size || fi.Mode().Perm() != binaryPerm {
		return false, nil // a stat failure is one more reason to rewrite it
	}
	a, b := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		n, errA := io.ReadFull(src, a)
		m, errB := io.ReadFull(d, b)
		if n != m || !bytes.Equal(a[:n], b[:m]) {
			return false, nil
		}
		if errA != nil || errB != nil {
			return errors.Is(errA, io.EOF) || errors.Is(errA, io.ErrUnexpectedEOF), nil
		}
	}
}

// binaryInstalled reports whether binDir/name looks like src: a regular
// file of src's size. The watch loop checks this on every pass; comparing
// the bytes, as CopyBinary does, is left to CopyBinary. Anything else than
// a regular file there is an error saying what it is.
func binaryInstalled(src, binDir, name string) (bool, error) {
	var want unix.Stat_t
	if err := unix.Stat(src, &want); err != nil {
		return false, fmt.Errorf("%w as %s: %w", errSource, name, &fs.PathError{Op: "stat", Path: src, Err: err})
	}
	if err := regularWithin(src, &want, MaxBinary); err != nil {
		return false, fmt.Errorf("%w as %s: %w", errSource, name, err)
	}
	dst := filepath.Join(binDir, name)
	ok, err := destination(dst)
	if err != nil || !ok {
		return false, err
	}
	fi, err := os.Lstat(dst)
	if err != nil {
		return false, fmt.Errorf("checking the installed %s: %w", dst, err)
	}
	return fi.Mode().IsRegular() && fi.Size() == want.Size, nil
}

// RemoveBinary removes binDir/name, if it is a regular file. Remove the
// entries first (RemoveEntry): a conflist naming a missing plugin fails
// every pod. Anything else of that name (a link, a FIFO, a directory) is
// not the installer's: it stays, and the error says so.
func RemoveBinary(binDir, name string) error {
	unlock, err := lockDir(binDir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := removeTemps(binDir, "."+name+tmpMarker+"*"); err != nil {
		return err
	}
	dst := filepath.Join(binDir, name)
	if _, err := destination(dst); err != nil {
		return fmt.Errorf("not removed: %w", err)
	}
	return removeFile(dst)
}
