package nodestatus

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fibguard/fibguard/internal/hostile"
)

// TestWriteRead: what is written is read back; old, future, hostile and
// malformed files are refused with a reason.
func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "node-status.json")
	now := time.Now().Truncate(time.Second)
	if err := Write(path, Status{Time: now, Ready: false, Reason: "FG050 pod network 127.16.0.0/16 …"}); err != nil {
		t.Fatal(err)
	}
	s, err := Read(path, now.Add(time.Minute))
	if err != nil || s.Ready || !strings.HasPrefix(s.Reason, "FG050") || s.Version != Version {
		t.Fatalf("Read = %+v, %v", s, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if _, err := Read(path, now.Add(MaxAge+time.Second)); !errors.Is(err, ErrStale) {
		t.Errorf("an old verdict: %v, want ErrStale", err)
	}
	if _, err := Read(path, now.Add(-time.Hour)); !errors.Is(err, ErrStale) {
		t.Errorf("a verdict from the future: %v, want ErrStale", err)
	}
	p := hostile.Make(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tt := range []struct{ class, path, want string }{
		{"a FIFO", p.FIFO, "named pipe (FIFO)"},
		{"a symbolic link", p.Link, "symbolic link"},
		{"a directory", p.Dir, "directory"},
		{"a device", p.Device, "character device"},
		{"too large", write("big", `{"x":"`+strings.Repeat("a", MaxSize)+`"}`), "larger than"},
		{"not JSON", write("junk", "{"), "node status"},
		{"another version", write("v2", `{"version":2}`), "version 2"},
		{"missing", filepath.Join(dir, "none"), "no such file"},
	} {
		if _, err := Read(tt.path, now); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error containing %q", tt.class, err, tt.want)
		}
	}
}

// FuzzRead: whatever the status file holds, Read never panics, and a
// verdict it accepts is of this version and fresh.
func FuzzRead(f *testing.F) {
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	f.Add(`{"version":1,"time":"2026-12-05T00:00:00Z","ready":false,"reason":"FG050"}`)
	f.Add(`{"version":1,"time":"2026-12-04T00:00:00Z","ready":true}`)
	f.Add(`{"version":2}`)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		path := filepath.Join(dir, "status.json")
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := Read(path, now)
		if err != nil {
			return
		}
		if st.Version != Version || now.Sub(st.Time) > MaxAge || st.Time.Sub(now) > time.Minute {
			t.Fatalf("accepted %q as %+v", s, st)
		}
	})
}
