package install

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startWatch runs Watch on dir with InsertEntry as the reconcile until the
// test ends, and returns a counter of the reconciles that changed a file.
func startWatch(t *testing.T, dir string, resync time.Duration) *atomic.Int64 {
	t.Helper()
	var changes atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var err error
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	wg.Go(func() {
		err = Watch(ctx, []string{dir}, resync, log, func() error {
			ch, err := InsertEntry(dir, testEntry)
			if err == nil && ch.Action != Unchanged {
				changes.Add(1)
			}
			return err
		})
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	return &changes
}

// waitInstalled waits until the primary of dir chains fibguard.
func waitInstalled(t *testing.T, dir, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := CheckEntry(dir, testEntry)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: fibguard not (re)inserted within 5s: %v\ndirectory: %s", what, err, listDir(dir))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWatchReinserts plays the primary CNI plugin rewriting its
// configuration in the ways plugins do, and checks that the watch puts
// fibguard back each time, through inotify (the resync is an hour), and
// that its own writes do not make it loop.
func TestWatchReinserts(t *testing.T) {
	dir := t.TempDir()
	original, err := os.ReadFile(filepath.Join("testdata", "flannel", "in", "10-flannel.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	primary := filepath.Join(dir, "10-flannel.conflist")
	if err := os.WriteFile(primary, original, 0o644); err != nil {
		t.Fatal(err)
	}
	changes := startWatch(t, dir, time.Hour)
	waitInstalled(t, dir, "start")

	rewrites := []struct {
		name string
		do   func() error
	}{
		{"write a temporary file and rename it over", func() error {
			tmp := filepath.Join(dir, ".flannel.tmp")
			if err := os.WriteFile(tmp, original, 0o644); err != nil {
				return err
			}
			return os.Rename(tmp, primary)
		}},
		{"truncate and write in place", func() error {
			return os.WriteFile(primary, original, 0o644)
		}},
		{"remove and create", func() error {
			if err := os.Remove(primary); err != nil {
				return err
			}
			return os.WriteFile(primary, original, 0o644)
		}},
		{"a new primary sorting first", func() error {
			return os.WriteFile(filepath.Join(dir, "05-new.conflist"), []byte(`{"cniVersion":"1.0.0","name":"new","plugins":[{"type":"ptp"}]}`), 0o644)
		}},
	}
	for _, rw := range rewrites {
		if err := CheckEntry(dir, testEntry); err != nil {
			t.Fatalf("before %q: %v", rw.name, err)
		}
		before := changes.Load()
		if err := rw.do(); err != nil {
			t.Fatalf("%s: %v", rw.name, err)
		}
		waitInstalled(t, dir, rw.name)
		// The counter moves just after the file does.
		for deadline := time.Now().Add(time.Second); changes.Load() == before; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no reconcile changed anything, yet fibguard is back?", rw.name)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// Quiet: no change means no write, so the watch's own writes do not
	// feed a loop.
	settled := changes.Load()
	time.Sleep(4 * debounce)
	if n := changes.Load() - settled; n != 0 {
		t.Errorf("%d writes while nothing changed", n)
	}
}

// TestWatchResync removes the watched directory and creates it again: the
// inotify watch goes with it, and the periodic resync puts the entry back.
func TestWatchResync(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "net.d")
	copyDir(t, filepath.Join("testdata", "kindnet", "in"), dir)
	startWatch(t, dir, 100*time.Millisecond)
	waitInstalled(t, dir, "start")

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * debounce) // the reconciles in between fail: no directory
	copyDir(t, filepath.Join("testdata", "kindnet", "in"), dir)
	waitInstalled(t, dir, "directory created again")
}

// TestWatchBacksOff: a reconcile that fails and, like a failed write,
// leaves changes in the watched directory must not spin: after a failure
// the next attempt waits a doubling delay.
func TestWatchBacksOff(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	calls := 0
	err := Watch(ctx, []string{dir}, time.Hour, slog.New(slog.DiscardHandler), func() error {
		calls++
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf(".tmp-%d", calls)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		return errors.New("refused")
	})
	if err != nil {
		t.Fatal(err)
	}
	// Without backoff a 100 ms debounce gives ~25 calls in 2.5 s; with it:
	// at 0, ~1 s and ~3 s.
	if calls < 2 || calls > 4 {
		t.Errorf("%d reconciles in 2.5 s, want 2 to 4", calls)
	}
}
