package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fibguard/fibguard/internal/hostile"
)

// TestOpenLogFileRefuses: every logFile that is not a regular file, or is
// a link or one of the plugin's standard streams, gets an error that says
// what it is, at once (a FIFO must not block the open), and nothing is
// written anywhere.
func TestOpenLogFileRefuses(t *testing.T) {
	p := hostile.Make(t)
	stdout := filepath.Join(t.TempDir(), "stdout")
	out, err := os.Create(stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	for _, tc := range []struct{ class, path, want string }{
		{"FIFO (would block the open)", p.FIFO, "named pipe (FIFO)"},
		{"symbolic link to a file (root would append to its target)", p.Link, "symbolic link"},
		{"dangling symbolic link (root would create its target)", p.Dangling, "symbolic link"},
		{"directory", p.Dir, "directory"},
		{"character device", p.Device, "character device"},
		{"standard output through /dev/stdout (a link)", "/dev/stdout", "symbolic link"},
		{"socket", p.Socket, "socket"},
		{"the plugin's own standard output", stdout, "standard output"},
	} {
		t.Run(tc.class, func(t *testing.T) {
			start := time.Now()
			f, err := openLogFile(tc.path, nil, out, nil)
			if err == nil {
				_ = f.Close()
				t.Fatalf("openLogFile(%s) succeeded", tc.path)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q, want it to name %s and say %q", err, tc.path, tc.want)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	if b, err := os.ReadFile(p.Target); err != nil || string(b) != "kept\n" {
		t.Errorf("the link's target: %q, %v; want it untouched", b, err)
	}
	if _, err := os.Lstat(p.DanglingTarget); !os.IsNotExist(err) {
		t.Errorf("a file was created through the dangling link (%v)", err)
	}
}

// TestOpenLogFileAccepts: an absent file is created with mode 0600, an
// existing one is appended to and keeps its mode.
func TestOpenLogFileAccepts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fibguard.log")
	for i, line := range []string{"one\n", "two\n"} {
		f, err := openLogFile(path, os.Stdin, os.Stdout, os.Stderr)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("created log: %v, mode %v; want 0600", err, fi)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "one\ntwo\n" {
		t.Errorf("log %q, %v; want both lines appended", b, err)
	}
}
