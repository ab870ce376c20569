package install

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// debounce is how long the watch waits after the last change in a burst
// before it reconciles: a primary CNI plugin writing a temporary file and
// renaming it, or writing its file in several calls, makes several events,
// and a half-written file in between must not be taken for the whole one.
const debounce = 100 * time.Millisecond

// watchMask: every way a file in the directory can appear, change or go,
// and the directory itself going away.
const watchMask = unix.IN_CREATE | unix.IN_CLOSE_WRITE | unix.IN_MODIFY | unix.IN_MOVED_TO |
	unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_ATTRIB |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// Watch calls reconcile once, then again after every change in dirs (a
// burst of changes counts once), and at least every resync. It returns nil
// when ctx is done; an error of reconcile is logged and the call retried
// at the next change or resync.
//
// Changes are seen with inotify, through golang.org/x/sys/unix, which the
// module already uses: fsnotify would add a dependency for the few lines
// that matter here. inotify alone is not enough: a directory that is
// removed and created again (on the host, under the hostPath mount), or an
// overflowing event queue, loses events, so the periodic resync is the
// safety net — and a directory that cannot be watched is only resynced.
// The installer's own writes cause events too; they cost one reconcile
// that finds nothing to do.
func Watch(ctx context.Context, dirs []string, resync time.Duration, log *slog.Logger, reconcile func() error) error {
	w, err := newInotify()
	if err != nil {
		return err
	}
	events := make(chan struct{}, 1)
	lost := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.read(events, lost)
	}()
	defer func() {
		_ = w.f.Close() // ends the reader
		<-done
	}()

	watched := w.add(dirs, log)
	// delay is how long changes settle before a reconcile: debounce, or,
	// after failures, a doubling backoff — a failed reconcile's own temp
	// files are changes too, and must not make it retry ten times a second.
	delay := debounce
	run := func() {
		if err := reconcile(); err != nil {
			delay = min(max(2*delay, time.Second), maxBackoff)
			log.Error("reconcile failed; retrying at the next change", "err", err, "after", delay)
			return
		}
		delay = debounce
	}
	run()
	ticker := time.NewTicker(resync)
	defer ticker.Stop()
	var settle <-chan time.Time
	for {
		// Checked first: select picks at random among ready cases, and a
		// tick ready with the cancellation would start another pass.
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-events:
			settle = time.After(delay)
		case <-lost:
			watched = false
			settle = time.After(delay)
		case <-settle:
			settle = nil
			run()
		case <-ticker.C:
			if !watched {
				watched = w.add(dirs, log)
			}
			run()
		}
	}
}

// maxBackoff bounds the delay between reconciles that keep failing.
const maxBackoff = 30 * time.Second

// inotify is an inotify instance read through the runtime's poller, so that
// closing it unblocks the reader.
type inotify struct {
	f *os.File
}

func newInotify() (*inotify, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	return &inotify{f: os.NewFile(uintptr(fd), "inotify")}, nil
}

// add watches dirs and reports whether all of them are watched; a
// directory that cannot be is logged and left to the resync.
func (w *inotify) add(dirs []string, log *slog.Logger) bool {
	rc, err := w.f.SyscallConn()
	if err != nil {
		log.Warn("cannot watch; polling only", "err", err)
		return false
	}
	all := true
	for _, d := range dirs {
		var addErr error
		if err := rc.Control(func(fd uintptr) {
			_, addErr = unix.InotifyAddWatch(int(fd), d, watchMask)
		}); err != nil {
			addErr = err
		}
		if addErr != nil {
			log.Warn("cannot watch directory; relying on the periodic resync", "dir", d, "err", addErr)
			all = false
		}
	}
	return all
}

// read turns inotify events into signals on events (something changed) and
// lost (a watched directory went away or events were dropped) until the
// file is closed.
func (w *inotify) read(events, lost chan<- struct{}) {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				signal(lost)
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := binary.NativeEndian.Uint32(buf[off+12:])
			off += unix.SizeofInotifyEvent + int(nameLen)
			if mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_Q_OVERFLOW) != 0 {
				signal(lost)
			}
			signal(events)
		}
	}
}

// signal sends on a channel of capacity one without blocking: one pending
// signal stands for any number.
func signal(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
