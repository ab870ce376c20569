package source

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fibguard/fibguard/internal/examplenode"
	"github.com/fibguard/fibguard/internal/hostile"
)

// bounded runs f and fails the test if it has not returned within limit:
// a refusal must come at once, and a hang must fail the test rather than
// stop it.
func bounded[T any](t *testing.T, limit time.Duration, f func() (T, error)) (T, error) {
	t.Helper()
	type answer struct {
		v   T
		err error
	}
	done := make(chan answer, 1)
	go func() {
		v, err := f()
		done <- answer{v, err}
	}()
	select {
	case a := <-done:
		return a.v, a.err
	case <-time.After(limit):
		t.Fatalf("no answer after %v: it hangs", limit)
		panic("unreachable")
	}
}

// snapshotFile writes the example node's snapshot to a file and returns
// its path.
func snapshotFile(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	if err := examplenode.LoopbackBridge().Encode(&b); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "node.json")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeSnapshot writes a snapshot file of the given content.
func writeSnapshot(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "node.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sparseFile makes a file of size bytes that takes no room on disk.
func sparseFile(t *testing.T, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "huge")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return path
}

// linkTo makes a symbolic link to target and returns its path.
func linkTo(t *testing.T, target string) string {
	t.Helper()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// zeros is an endless stream of '0'.
type zeros struct{}

var zeroBlock = bytes.Repeat([]byte{'0'}, 64<<10)

func (zeros) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], zeroBlock)
	}
	return n, nil
}

// TestSnapshotInputs: --snapshot refuses, at once and naming what it got,
// every path that is not a regular file (a FIFO must not block, /dev/zero
// must not be read without end), a file larger than fib.MaxSnapshotSize
// (by its size, before reading) and an endless standard input (at the
// limit); a link to a snapshot, and a snapshot on standard input, are
// read.
func TestSnapshotInputs(t *testing.T) {
	p := hostile.Make(t)
	good := snapshotFile(t)
	encoded, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		class string
		flags Flags
		want  []string // parts of the error; none: the model is read
	}{
		{"a FIFO", Flags{Snapshot: p.FIFO}, []string{p.FIFO, "named pipe (FIFO), not a regular file", "--snapshot - reads standard input"}},
		{"a link to a FIFO", Flags{Snapshot: linkTo(t, p.FIFO)}, []string{"named pipe (FIFO), not a regular file"}},
		{"a directory", Flags{Snapshot: p.Dir}, []string{p.Dir, "directory, not a regular file"}},
		{"a device", Flags{Snapshot: p.Device}, []string{p.Device, "character device, not a regular file"}},
		{"an endless device", Flags{Snapshot: "/dev/zero"}, []string{"/dev/zero", "character device, not a regular file"}},
		{"a socket", Flags{Snapshot: p.Socket}, []string{p.Socket, "socket, not a regular file"}},
		{"missing", Flags{Snapshot: p.DanglingTarget}, []string{p.DanglingTarget, "does not exist"}},
		{"a dangling link", Flags{Snapshot: p.Dangling}, []string{p.Dangling, "does not exist"}},
		{"a 10 GB file", Flags{Snapshot: sparseFile(t, 10<<30)}, []string{"huge", "256 MiB", "the most a snapshot may be"}},
		{"an endless standard input", Flags{Snapshot: "-", Stdin: io.MultiReader(strings.NewReader(`{"version":"`), zeros{})}, []string{"standard input", "256 MiB"}},
		{"a bad address", Flags{Snapshot: writeSnapshot(t, `{"version": "fibguard.snapshot/v1", "addrs": [{"prefix": "1.2.3.400/24", "link": "lo"}]}`)}, []string{`addrs[0]: "1.2.3.400/24" is not a valid prefix (a number above 255)`}},
		{"a link to a snapshot", Flags{Snapshot: linkTo(t, good)}, nil},
		{"a snapshot on standard input", Flags{Snapshot: "-", Stdin: bytes.NewReader(encoded)}, nil},
	} {
		t.Run(tt.class, func(t *testing.T) {
			m, err := bounded(t, 10*time.Second, tt.flags.Load)
			if tt.want == nil {
				if err != nil || m == nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load read %s", tt.class)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load: %v; want it to say %q", err, w)
				}
			}
		})
	}
}

// TestReadFile: ReadFile refuses, at once and naming what, the path and
// the limit, every path that is not a regular file and every file past the
// limit — by its size, or, for a file whose size says nothing (/proc), by
// reading one byte more than the limit — and reads a file at the limit.
func TestReadFile(t *testing.T) {
	p := hostile.Make(t)
	dir := t.TempDir()
	write := func(name string, size int) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, bytes.Repeat([]byte{'x'}, size), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const limit = 1024
	atLimit, pastLimit := write("at", limit), write("past", limit+1)
	var notRegular *NotRegularError
	for _, tt := range []struct {
		class, path string
		is          func(error) bool
		want        []string // parts of the error; none: read
	}{
		{"a FIFO", p.FIFO, asNotRegular(&notRegular), []string{"conflist " + p.FIFO, "named pipe (FIFO)"}},
		{"a directory", p.Dir, asNotRegular(&notRegular), []string{"directory"}},
		{"an endless device", "/dev/zero", asNotRegular(&notRegular), []string{"character device"}},
		{"a socket", p.Socket, asNotRegular(&notRegular), []string{"socket"}},
		{"a dangling link", p.Dangling, isErr(os.ErrNotExist), []string{p.Dangling}},
		{"a file one byte past the limit", pastLimit, isErr(ErrTooLarge), []string{pastLimit, "larger than 1024 bytes"}},
		{"a 10 GB file", sparseFile(t, 10<<30), isErr(ErrTooLarge), []string{"larger than 1024 bytes"}},
		{"a /proc file past the limit, of size 0", "/proc/self/maps", isErr(ErrTooLarge), []string{"larger than 1024 bytes"}},
		{"a file at the limit", atLimit, nil, nil},
		{"a link to a file", linkTo(t, atLimit), nil, nil},
	} {
		t.Run(tt.class, func(t *testing.T) {
			b, err := bounded(t, 10*time.Second, func() ([]byte, error) { return ReadFile("conflist", tt.path, limit) })
			if tt.is == nil {
				if err != nil || len(b) != limit {
					t.Fatalf("ReadFile = %d bytes, %v; want %d", len(b), err, limit)
				}
				return
			}
			if !tt.is(err) {
				t.Fatalf("ReadFile: %v (%T), not the error of %s", err, err, tt.class)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ReadFile: %v; want it to say %q", err, w)
				}
			}
		})
	}
}

func asNotRegular(target **NotRegularError) func(error) bool {
	return func(err error) bool { return errors.As(err, target) }
}

func isErr(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}
