package source

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/examplenode"
	"github.com/fibguard/fibguard/internal/hostile"
)

// TestSnapshotRefusals: a snapshot path that is not a regular file is an
// error at once, naming what it is — a FIFO must not block — and a link
// to a snapshot is followed; a stream longer than the limit is refused
// naming it, without reading on.
func TestSnapshotRefusals(t *testing.T) {
	p := hostile.Make(t)
	for _, tt := range []struct{ class, path, want string }{
		{"a FIFO", p.FIFO, "named pipe (FIFO), not a regular file"},
		{"a directory", p.Dir, "directory, not a regular file"},
		{"a device", p.Device, "character device, not a regular file"},
		{"a socket", p.Socket, "socket, not a regular file"},
		{"missing", filepath.Join(t.TempDir(), "none"), "no such file"},
	} {
		f := Flags{Snapshot: tt.path}
		if _, err := f.Load(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error containing %q", tt.class, err, tt.want)
		}
	}
	var b bytes.Buffer
	if err := examplenode.LoopbackBridge().Encode(&b); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	snap := filepath.Join(dir, "node.json")
	if err := os.WriteFile(snap, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(snap, filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Flags{Snapshot: filepath.Join(dir, "link.json")}).Load(); err != nil {
		t.Errorf("a link to a snapshot: %v", err)
	}
	endless := io.MultiReader(strings.NewReader(`{"version":"`), zeros{})
	if _, err := fib.Decode(endless); err == nil || !strings.Contains(err.Error(), "the most a snapshot may be") {
		t.Errorf("an endless stream: %v, want the limit", err)
	}
}

// zeros is an endless stream of '0'.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}
