package filetype

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// ErrTooLarge is ReadFile's error for a file past its limit; callers wrap
// it with the file and the limit in their own words.
var ErrTooLarge = errors.New("too large")

// ReadFile opens path as Open does (flags, check before and after a
// non-blocking open) and reads it whole: at most limit bytes. A file whose
// size is past limit is refused before anything is read, and one that
// grows past it while read (or a file of /proc, whose size says nothing)
// stops there; both return ErrTooLarge. It also returns the stat of what
// was opened.
func ReadFile(path string, flags int, limit int64, check func(*unix.Stat_t) error) ([]byte, unix.Stat_t, error) {
	fd, st, err := Open(path, flags, 0, check)
	if err != nil {
		return nil, st, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer func() { _ = f.Close() }() // read-only: nothing to lose
	if st.Size > limit {
		return nil, st, ErrTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, st, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, st, ErrTooLarge
	}
	return b, st, nil
}
