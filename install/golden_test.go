package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

var update = flag.Bool("update", false, "rewrite the golden directories in testdata/")

// testEntry is the entry the golden files were made with.
var testEntry = Entry{
	Mode: ModeEnforce,
	Options: map[string]json.RawMessage{
		"serviceCIDRs": json.RawMessage(`["10.96.0.0/12"]`),
		"clusterCIDRs": json.RawMessage(`["10.244.0.0/16"]`),
		"kubeconfig":   json.RawMessage(`"/etc/cni/net.d/fibguard-kubeconfig"`),
	},
}

// TestGolden runs InsertEntry and RemoveEntry on the configuration
// directories of testdata/<case>/in and compares the whole directory with
// testdata/<case>/installed, then with testdata/<case>/uninstalled (the
// input itself when that directory does not exist: uninstalling gives back
// the original bytes). Run with -update to rewrite the golden directories,
// then review the diff.
func TestGolden(t *testing.T) {
	tests := []struct {
		name    string
		primary string // after install
		action  Action
		plugins []string // types of the primary's plugins after install
	}{
		{"kindnet", "10-kindnet.conflist", Inserted, []string{"ptp", "portmap", "fibguard"}},
		{"flannel", "10-flannel.conflist", Inserted, []string{"flannel", "portmap", "fibguard"}},
		{"calico", "10-calico.conflist", Inserted, []string{"calico", "portmap", "bandwidth", "fibguard"}},
		{"conf", "10-bridge.conflist", Converted, []string{"bridge", "fibguard"}},
		{"json", "20-containerd-net.conflist", Converted, []string{"bridge", "fibguard"}},
		{"has-fibguard", "10-pods.conflist", Updated, []string{"bridge", "portmap", "fibguard"}},
		{"invalid-first", "10-flannel.conflist", Inserted, []string{"flannel", "portmap", "fibguard"}},
		{"compact", "10-cilium.conflist", Inserted, []string{"cilium-cni", "fibguard"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := filepath.Join("testdata", tt.name, "in")
			dir := t.TempDir()
			copyDir(t, in, dir)

			ch, err := InsertEntry(dir, testEntry)
			if err != nil {
				t.Fatalf("InsertEntry: %v", err)
			}
			if want := (Change{filepath.Join(dir, tt.primary), tt.action}); ch != want {
				t.Errorf("InsertEntry = %+v, want %+v", ch, want)
			}
			compareGolden(t, dir, filepath.Join("testdata", tt.name, "installed"))
			assertPrimaryPlugins(t, dir, tt.primary, tt.plugins)
			if err := CheckEntry(dir, testEntry); err != nil {
				t.Errorf("CheckEntry after install: %v", err)
			}

			// Installing twice is installing once.
			installed := readDir(t, dir)
			ch, err = InsertEntry(dir, testEntry)
			if err != nil {
				t.Fatalf("second InsertEntry: %v", err)
			}
			if ch.Action != Unchanged {
				t.Errorf("second InsertEntry: action %s, want %s", ch.Action, Unchanged)
			}
			assertSameDir(t, "after a second install", readDir(t, dir), installed)

			if _, err := RemoveEntry(dir); err != nil {
				t.Fatalf("RemoveEntry: %v", err)
			}
			uninstalled := filepath.Join("testdata", tt.name, "uninstalled")
			switch {
			case *update && sameDirs(t, dir, in):
				if err := os.RemoveAll(uninstalled); err != nil {
					t.Fatal(err)
				}
			case *update:
				compareGolden(t, dir, uninstalled)
			default:
				want := uninstalled
				if _, err := os.Stat(want); err != nil {
					want = in
				}
				assertSameDir(t, "after uninstall, compared with "+want, readDir(t, dir), readDir(t, want))
			}
			if err := CheckEntry(dir, testEntry); err == nil {
				t.Error("CheckEntry after uninstall: nil, want an error")
			}
			changed, err := RemoveEntry(dir)
			if err != nil || len(changed) != 0 {
				t.Errorf("second RemoveEntry = %v, %v; want no change", changed, err)
			}
		})
	}
}

// assertPrimaryPlugins loads the primary the way the runtime does and checks
// its plugin types in order.
func assertPrimaryPlugins(t *testing.T, dir, primary string, want []string) {
	t.Helper()
	p, err := FindPrimary(dir)
	if err != nil {
		t.Fatalf("FindPrimary after install: %v", err)
	}
	if p.Path != filepath.Join(dir, primary) {
		t.Fatalf("primary after install = %s, want %s", p.Path, primary)
	}
	list, err := libcni.NetworkConfFromFile(p.Path)
	if err != nil {
		t.Fatalf("libcni cannot load the installed primary: %v", err)
	}
	var got []string
	for _, pl := range list.Plugins {
		got = append(got, pl.Network.Type)
	}
	if !slices.Equal(got, want) {
		t.Errorf("plugins of the installed primary = %v, want %v", got, want)
	}
}

// compareGolden compares the files of dir with the golden directory want,
// or with -update makes want a copy of dir.
func compareGolden(t *testing.T, dir, want string) {
	t.Helper()
	if *update {
		if err := os.RemoveAll(want); err != nil {
			t.Fatal(err)
		}
		copyDir(t, dir, want)
		return
	}
	assertSameDir(t, "compared with "+want, readDir(t, dir), readDir(t, want))
}

func sameDirs(t *testing.T, a, b string) bool {
	t.Helper()
	x, y := readDir(t, a), readDir(t, b)
	if len(x) != len(y) {
		return false
	}
	for k, v := range x {
		if w, ok := y[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func assertSameDir(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: %s is missing", what, name)
		case !bytes.Equal(g, want[name]):
			t.Errorf("%s: %s differs\ngot:\n%s\nwant:\n%s", what, name, g, want[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: unexpected file %s:\n%s", what, name, got[name])
		}
	}
}

// readDir returns every regular file under dir by relative path.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		files[rel] = b
		return err
	})
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	return files
}

// copyDir copies the tree src into dst, keeping file modes.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copying %s to %s: %v", src, dst, err)
	}
}

// TestFindPrimary checks which file is the primary configuration: the
// lexicographically first that the runtime's loaders accept.
func TestFindPrimary(t *testing.T) {
	tests := []struct {
		files map[string]string
		want  string // "" for ErrNoPrimary
	}{
		{map[string]string{}, ""},
		{map[string]string{"10-a.conflist": `{"name":"a","plugins":[{"type":"ptp"}]}`}, "10-a.conflist"},
		// Lexical order, not the extension, decides.
		{map[string]string{
			"10-a.conf":     `{"name":"a","type":"bridge"}`,
			"10-a.conflist": `{"name":"a","plugins":[{"type":"ptp"}]}`,
		}, "10-a.conf"},
		{map[string]string{
			"05-b.json":     `{"name":"b","type":"bridge"}`,
			"10-a.conflist": `{"name":"a","plugins":[{"type":"ptp"}]}`,
		}, "05-b.json"},
		// Byte order: upper case sorts before lower case.
		{map[string]string{
			"a.conflist": `{"name":"a","plugins":[{"type":"ptp"}]}`,
			"B.conflist": `{"name":"b","plugins":[{"type":"ptp"}]}`,
		}, "B.conflist"},
		// Invalid files are skipped, each for its own reason.
		{map[string]string{
			"00-truncated.conflist":  `{"name":"x","plugins":[{"type":"ptp"}`,
			"01-noname.conflist":     `{"plugins":[{"type":"ptp"}]}`,
			"02-empty.conflist":      `{"name":"x","plugins":[]}`,
			"03-notype.conflist":     `{"name":"x","plugins":[{"mtu":1}]}`,
			"04-list-in-conf.conf":   `{"name":"x","plugins":[{"type":"ptp"}]}`,
			"05-array.json":          `[{"type":"ptp"}]`,
			"06-badversion.conflist": `{"name":"x","cniVersion":7,"plugins":[{"type":"ptp"}]}`,
			"07-notjson.conf":        `name: x`,
			"08-other.txt":           `{"name":"x","type":"ptp"}`,
			"09-c.conflist.bak":      `{"name":"x","plugins":[{"type":"ptp"}]}`,
			"20-good.conflist":       `{"name":"good","plugins":[{"type":"ptp"}]}`,
		}, "20-good.conflist"},
		{map[string]string{"00-truncated.conflist": `{`}, ""},
	}
	for _, tt := range tests {
		names := slices.Sorted(maps.Keys(tt.files))
		t.Run(strings.Join(names, ","), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, body := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p, err := FindPrimary(dir)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("FindPrimary = %+v, want ErrNoPrimary", p)
				}
				if !errors.Is(err, ErrNoPrimary) {
					t.Fatalf("FindPrimary error %v, want ErrNoPrimary", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("FindPrimary: %v", err)
			}
			if p.Path != filepath.Join(dir, tt.want) {
				t.Errorf("FindPrimary = %s, want %s", filepath.Base(p.Path), tt.want)
			}
		})
	}
}
