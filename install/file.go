package install

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/internal/filetype"
)

// tmpMarker is in the name of every temporary file the installer writes:
// ".<name>.fibguard-tmp-<random>". Its extension is never one the runtimes
// read, so a temporary file left by a crash is ignored by them and removed
// by the installer's next run.
const tmpMarker = ".fibguard-tmp-"

// errConflict means a file changed between reading it and replacing it:
// someone else (the primary CNI plugin) wrote it meanwhile. The edit is
// retried on the new content rather than overwriting it.
var errConflict = errors.New("file changed while being edited")

// fileState identifies a version of a file: a rewrite by rename changes the
// inode, one in place changes the size or the modification time.
type fileState struct {
	ino   uint64
	size  int64
	mtime time.Time
	mode  fs.FileMode
	uid   int
	gid   int
}

func stateOf(fi fs.FileInfo) fileState {
	s := fileState{size: fi.Size(), mtime: fi.ModTime(), mode: fi.Mode(), uid: -1, gid: -1}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino, s.uid, s.gid = st.Ino, int(st.Uid), int(st.Gid)
	}
	return s
}

// MaxConfigFile is the largest CNI configuration file the installer
// reads: far more than any real conflist (a few KiB), and a bound on what
// one file can make it hold in memory.
const MaxConfigFile = 1 << 20

// readFile reads a regular file and the state of the version it read.
// Symlinks are refused: replacing one by rename would turn the link the
// other plugin maintains into a copy.
func readFile(path string) ([]byte, fileState, error) {
	return readRegular(path, false)
}

// readRegular reads path, which must be a regular file of at most
// MaxConfigFile bytes (followed through a symbolic link when follow is
// set), and the state of the version it read.
func readRegular(path string, follow bool) ([]byte, fileState, error) {
	return readLimited(path, follow, MaxConfigFile)
}

// readLimited reads path, which must be a regular file of at most limit
// bytes, and the state of the version it read (see openRegular).
func readLimited(path string, follow bool, limit int64) ([]byte, fileState, error) {
	f, err := openRegular(path, follow, limit)
	if err != nil {
		return nil, fileState{}, err
	}
	defer func() { _ = f.Close() }() // read-only; nothing to lose on close
	fi, err := f.Stat()
	if err != nil {
		return nil, fileState{}, fmt.Errorf("reading %s: %w", path, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fileState{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fileState{}, fmt.Errorf("%s is larger than %d bytes, the most the installer reads", path, limit)
	}
	return b, stateOf(fi), nil
}

// openRegular opens path for reading; it must be a regular file of at
// most limit bytes (followed through a symbolic link when follow is set).
// Anything else is an error saying what it is, at once: the type is
// checked before the open (a FIFO would block it, a device could act on
// it), the open does not block, and the type is checked again on what was
// opened. Errors from the system wrap *fs.PathError, so that
// errors.Is(err, fs.ErrNotExist) tells an absent file.
func openRegular(path string, follow bool, limit int64) (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW
	if follow {
		flags = unix.O_RDONLY
	}
	fd, _, err := filetype.Open(path, flags, 0, func(st *unix.Stat_t) error { return regularWithin(path, st, limit) })
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if err != nil {
		return nil, err
	}
	// A regular file: blocking reads are fine, and the descriptor is not
	// registered with the poller.
	if err := unix.SetNonblock(fd, false); err != nil {
		_ = unix.Close(fd) // nothing read yet
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// regularWithin refuses what is not a regular file of at most limit
// bytes.
func regularWithin(path string, st *unix.Stat_t, limit int64) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s is not a regular file (%s); the installer only reads and edits regular files", path, filetype.Name(st.Mode))
	}
	if st.Size > limit {
		return fmt.Errorf("%s is %d bytes, larger than %d bytes, the most the installer reads", path, st.Size, limit)
	}
	return nil
}

// writeFile replaces path with data so that a reader, or a crash at any
// point, sees either the old file or the whole new one (see
// writeFileFrom).
func writeFile(path string, data []byte, perm fs.FileMode, uid, gid int, expect *fileState) error {
	return writeFileFrom(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, perm, uid, gid, expect)
}

// writeFileFrom replaces path with what fill writes so that a reader, or
// a crash at any point, sees either the old file or the whole new one: it
// writes a temporary file in the same directory, gives it mode perm and
// the owner uid:gid (-1 keeps the writer's), flushes it, renames it over
// path and flushes the directory. When expect is not nil, path must still
// be that version right before the rename, otherwise nothing changes and
// the error is errConflict.
func writeFileFrom(path string, fill func(io.Writer) error, perm fs.FileMode, uid, gid int, expect *fileState) (err error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+tmpMarker+"*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			// The file is closed or being abandoned; a leftover is removed
			// by the next removeTemps anyway.
			_ = f.Close()
			if rmErr := os.Remove(tmp); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
				err = errors.Join(err, rmErr)
			}
		}
	}()
	if err = fill(f); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", tmp, err)
	}
	if uid >= 0 && gid >= 0 && (uid != os.Geteuid() || gid != os.Getegid()) {
		if err = f.Chown(uid, gid); err != nil {
			return fmt.Errorf("setting the owner of %s: %w", tmp, err)
		}
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("flushing %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if expect != nil {
		fi, statErr := os.Lstat(path)
		if statErr != nil || stateOf(fi) != *expect {
			err = fmt.Errorf("%s: %w", path, errConflict)
			return err
		}
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return syncDir(dir)
}

// removeFile removes path, if it exists, and flushes the directory.
func removeFile(path string) error {
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir flushes a directory, so that a rename or removal in it survives a
// power loss and not only a crash of the process.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }() // Sync reported what matters
	if err := d.Sync(); err != nil {
		return fmt.Errorf("flushing directory %s: %w", dir, err)
	}
	return nil
}

// removeTemps removes the temporary files named pattern (a filepath.Match
// pattern containing tmpMarker) that an interrupted run left in dir. The
// caller holds the directory's lock, so none is still being written.
func removeTemps(dir, pattern string) error {
	names, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		return fmt.Errorf("listing temporary files in %s: %w", dir, err)
	}
	var errs []error
	for _, n := range names {
		if err := os.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing leftover %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// lockWait bounds every wait for a directory lock. The installer's own
// holders (its goroutines, the other pod of a DaemonSet update) keep it for
// milliseconds of file work; a holder that keeps it longer is stuck, and
// waiting for it without bound would make the installer stuck too — deaf
// to SIGTERM, its uninstall never run. A pass that cannot get the lock
// fails, says who holds it, and is retried.
const lockWait = 3 * time.Second

// errLocked means a directory lock was held by someone else for longer
// than lockWait.
var errLocked = errors.New("directory locked by another process")

// lockDir takes an exclusive lock on dir (flock on the directory itself, so
// no lock file is left behind) and returns the function that releases it.
// Installers in two pods on the same node — during a DaemonSet update — and
// the goroutines of one installer take turns. The kernel drops the lock of
// a killed process. It waits at most lockWait, trying without blocking
// (a blocked flock cannot be abandoned), then fails with errLocked.
func lockDir(dir string) (unlock func(), err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	deadline := time.Now().Add(lockWait)
	for pause := time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
		err = unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			// Closing the descriptor releases the lock.
			return func() { _ = d.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			_ = d.Close() // nothing locked
			return nil, fmt.Errorf("locking %s: %w", dir, err)
		}
		if time.Now().After(deadline) {
			holder := lockHolder(d)
			_ = d.Close() // nothing locked
			return nil, fmt.Errorf("locking %s: %w for more than %v%s", dir, errLocked, lockWait, holder)
		}
		time.Sleep(pause)
	}
}

// lockHolder names the process holding the flock on d, from /proc/locks,
// for the error; "" if it cannot tell. The PID is as this process's PID
// namespace sees it (0 or absent for a holder outside it).
func lockHolder(d *os.File) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(d.Fd()), &st); err != nil {
		return ""
	}
	b, err := os.ReadFile("/proc/locks") // procfs: a regular file, never blocks
	if err != nil {
		return ""
	}
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		// "1: FLOCK  ADVISORY  WRITE 1234 00:2f:5678 0 EOF"
		if len(f) >= 6 && f[1] == "FLOCK" && f[5] == id {
			return " (held by process " + f[4] + ")"
		}
	}
	return ""
}
