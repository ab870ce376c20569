package install

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/internal/hostile"
)

// TestInsertEntryRefusals: cases where editing would hurt someone else's
// file or leave the wrong primary, refused with the directory unchanged.
func TestInsertEntryRefusals(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		link    string // name of a symlink to the first file, if any
		wantErr string
	}{
		{
			name: "conversion target is someone else's file",
			files: map[string]string{
				"10-a.conf":     `{"name":"a","type":"bridge"}`,
				"10-a.conflist": `{"name":"other","plugins":[{"type":"macvlan"},{"type":"portmap"}]}`,
			},
			wantErr: "not fibguard's conversion",
		},
		{
			name: "a valid file between the .conf and its .conflist",
			files: map[string]string{
				"10-a.conf":        `{"name":"a","type":"bridge"}`,
				"10-a.conf-x.json": `{"name":"x","type":"ptp"}`,
			},
			wantErr: "would then be the primary",
		},
		{
			name:    "plugins not inline",
			files:   map[string]string{"10-a.conflist": `{"name":"a"}`, "a/p.conf": `{"type":"ptp"}`},
			wantErr: "no inline",
		},
		{
			name:    "primary is a symlink",
			files:   map[string]string{"real.txt": `{"name":"a","plugins":[{"type":"ptp"}]}`},
			link:    "10-a.conflist",
			wantErr: "not a regular file",
		},
		{
			name: "the entry would take the primary past the size limit",
			files: map[string]string{"10-a.conflist": `{"name":"a","pad":"` +
				strings.Repeat("x", MaxConfigFile-60) + `","plugins":[{"type":"ptp"}]}`},
			wantErr: "larger than 1048576",
		},
		{
			name:    "no primary",
			files:   map[string]string{"00-broken.conflist": `{`},
			wantErr: ErrNoPrimary.Error(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tt.files {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.link != "" {
				if err := os.Symlink("real.txt", filepath.Join(dir, tt.link)); err != nil {
					t.Fatal(err)
				}
			}
			before := readDir(t, dir)
			_, err := InsertEntry(dir, testEntry)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("InsertEntry error %v, want one containing %q", err, tt.wantErr)
			}
			assertSameDir(t, "after a refused InsertEntry", readDir(t, dir), before)
			// Uninstalling from such a directory is harmless.
			if changed, err := RemoveEntry(dir); err != nil || len(changed) != 0 {
				t.Errorf("RemoveEntry = %v, %v; want nothing to do", changed, err)
			}
			assertSameDir(t, "after RemoveEntry", readDir(t, dir), before)
		})
	}
}

// TestInsertEntryKeepsModeAndFollowsOwner: the rewritten file keeps the
// original's mode, and a primary CNI rewriting its .conf after the
// conversion gets its new version converted (and backed up).
func TestInsertEntryKeepsModeAndFollowsOwner(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "10-a.conf")
	if err := os.WriteFile(conf, []byte(`{"name":"a","type":"bridge","mtu":1400}`), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(conf, 0o640); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if _, err := InsertEntry(dir, testEntry); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "10-a.conflist")
	for _, f := range []string{list, conf + backupSuffix} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v (%v), want the original's 0640", f, fi.Mode().Perm(), err)
		}
	}

	v2 := `{"name":"a","type":"bridge","mtu":1450}`
	if err := os.WriteFile(conf, []byte(v2), 0o640); err != nil {
		t.Fatal(err)
	}
	ch, err := InsertEntry(dir, testEntry)
	if err != nil || ch.Action != Converted {
		t.Fatalf("InsertEntry after the owner's rewrite = %+v, %v; want a new conversion", ch, err)
	}
	b, err := os.ReadFile(list)
	if err != nil || !strings.Contains(string(b), `"mtu": 1450`) {
		t.Errorf("conversion does not hold the new version: %s (%v)", b, err)
	}
	if _, err := RemoveEntry(dir); err != nil {
		t.Fatal(err)
	}
	got := readDir(t, dir)
	if len(got) != 1 || string(got["10-a.conf"]) != v2 {
		t.Errorf("after uninstall: %v, want only 10-a.conf with the owner's latest version", got)
	}
}

// TestWriteFileConflict: a file that changed since it was read is not
// overwritten.
func TestWriteFileConflict(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.conflist")
	if err := os.WriteFile(path, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, st, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("v2, by its owner"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(path, []byte("ours"), 0o644, -1, -1, &st); !errors.Is(err, errConflict) {
		t.Fatalf("writeFile = %v, want errConflict", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "v2, by its owner" {
		t.Errorf("file is %q, the owner's write was lost", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary file left behind: %v", entries)
	}
}

// TestCheckEntryPlacement: the readiness check fails, saying why, while
// fibguard's entry is not the last plugin (a chained plugin checks the
// result of the plugins before it: first, it fails every ADD with "no
// prevResult"; in the middle, it checks only part of the chain) or is the
// only one; InsertEntry then moves it last, or refuses a list of nothing
// but fibguard and leaves it as it is.
func TestCheckEntryPlacement(t *testing.T) {
	entry, err := testEntry.json()
	if err != nil {
		t.Fatal(err)
	}
	fg := string(entry)
	tests := []struct {
		name, plugins string
		wantCheck     string
		wantInsert    string   // "": InsertEntry succeeds
		after         []string // the plugins after InsertEntry
	}{
		{"first", fg + `,{"type":"bridge"},{"type":"portmap"}`, "plugin 1 of 3, not the last", "", []string{"bridge", "portmap", "fibguard"}},
		{"middle", `{"type":"bridge"},` + fg + `,{"type":"portmap"}`, "plugin 2 of 3, not the last", "", []string{"bridge", "portmap", "fibguard"}},
		{"twice", fg + `,{"type":"bridge"},` + fg, "2 fibguard entries", "", []string{"bridge", "fibguard"}},
		{"alone", fg, "only plugin", "no prevResult", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "10-pods.conflist")
			if err := os.WriteFile(path, []byte(`{"cniVersion":"1.0.0","name":"pods","plugins":[`+tt.plugins+`]}`), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := CheckEntry(dir, testEntry); err == nil || !strings.Contains(err.Error(), tt.wantCheck) {
				t.Errorf("CheckEntry before: %v, want an error containing %q", err, tt.wantCheck)
			}
			before := readDir(t, dir)
			_, err := InsertEntry(dir, testEntry)
			if tt.wantInsert != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantInsert) {
					t.Fatalf("InsertEntry: %v, want an error containing %q", err, tt.wantInsert)
				}
				assertSameDir(t, "after a refused InsertEntry", readDir(t, dir), before)
				if err := CheckEntry(dir, testEntry); err == nil {
					t.Error("CheckEntry passes on a list of fibguard alone")
				}
				return
			}
			if err != nil {
				t.Fatalf("InsertEntry: %v", err)
			}
			assertPrimaryPlugins(t, dir, "10-pods.conflist", tt.after)
			if err := CheckEntry(dir, testEntry); err != nil {
				t.Errorf("CheckEntry after InsertEntry: %v", err)
			}
		})
	}
}

// TestHostileConfDir: files of the runtimes' names that are not regular
// files, or are too large, sort before the primary. The installer skips
// them at once — a FIFO must not block it, a device must not be read —
// installs into the primary, passes its check, uninstalls, and leaves them
// as they were.
func TestHostileConfDir(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mkfifo(filepath.Join(dir, "01-fifo.conflist"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "02-device.conflist")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "01-fifo.conflist"), filepath.Join(dir, "03-link-to-fifo.conf")); err != nil {
		t.Fatal(err)
	}
	big := `{"cniVersion":"1.0.0","name":"big","pad":"` + strings.Repeat("x", MaxConfigFile) + `","plugins":[{"type":"ptp"}]}`
	if err := os.WriteFile(filepath.Join(dir, "04-big.conflist"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	primary := filepath.Join(dir, "10-pods.conflist")
	if err := os.WriteFile(primary, []byte(`{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ch, err := InsertEntry(dir, testEntry)
		if err == nil && ch.Path != primary {
			err = fmt.Errorf("installed into %s, want %s", ch.Path, primary)
		}
		if err == nil {
			err = CheckEntry(dir, testEntry)
		}
		if err == nil {
			_, err = RemoveEntry(dir)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("install, check and uninstall still running after 10s: blocked on a hostile file")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "04-big.conflist")); err != nil || string(b) != big {
		t.Errorf("the oversized file changed (%v)", err)
	}
	fi, err := os.Lstat(filepath.Join(dir, "01-fifo.conflist"))
	if err != nil || fi.Mode().Type() != os.ModeNamedPipe {
		t.Errorf("the FIFO: %v, %v", fi, err)
	}
}

// TestReadRegularRefuses: what readRegular refuses, and that it says what
// it found, at once.
func TestReadRegularRefuses(t *testing.T) {
	p := hostile.Make(t)
	big := filepath.Join(t.TempDir(), "big.conflist")
	if err := os.WriteFile(big, make([]byte, MaxConfigFile+1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		class, path string
		follow      bool
		want        string
	}{
		{"FIFO", p.FIFO, false, "not a regular file"},
		{"FIFO behind a link, followed", p.FIFO, true, "not a regular file"},
		{"symbolic link, not followed", p.Link, false, "not a regular file"},
		{"directory", p.Dir, true, "not a regular file"},
		{"device", p.Device, true, "not a regular file"},
		{"socket", p.Socket, true, "not a regular file"},
		{"larger than the limit", big, false, "larger than 1048576 bytes"},
	} {
		t.Run(tc.class, func(t *testing.T) {
			_, _, err := readRegular(tc.path, tc.follow)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("readRegular(%s) = %v, want an error containing %q", tc.path, err, tc.want)
			}
		})
	}
	if b, _, err := readRegular(p.Link, true); err != nil || string(b) != "kept\n" {
		t.Errorf("a link to a regular file, followed: %q, %v", b, err)
	}
}
