package source

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/internal/nstest"
)

// goodDump captures the six dumps of a small namespace (a bridge with
// IPv4 and IPv6 addresses, a custom rule) with the real ip(8) and returns
// their contents by file name.
func goodDump(t *testing.T) map[string][]byte {
	t.Helper()
	ns := nstest.NewWithLoUp(t)
	if err := ns.Batch([]string{
		"link add br0 type bridge", "link set br0 up", "addr add 10.244.0.1/24 dev br0",
		"addr add fd00:10:244::1/64 dev br0 nodad", "rule add pref 100 fwmark 1 lookup 100",
		"route add blackhole 10.99.0.0/16 table 100",
	}); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range DumpFiles {
		out, err := ns.IP(strings.Fields(f.Command)[1:]...)
		if err != nil {
			t.Fatalf("%s: %v", f.Command, err)
		}
		files[f.Name] = out
	}
	return files
}

// writeDump writes the files into a new directory.
func writeDump(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// replace puts something else in place of one dump file.
func replace(t *testing.T, dir, name string, make func(path string) error) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := make(path); err != nil {
		t.Fatal(err)
	}
}

// TestIPDumpInputs: --ip-dump reads the six dumps of a real namespace,
// and refuses at once, naming the file and what was expected, a missing
// file, one of another type (a FIFO must not block, a link is not
// followed), an empty or oversized file, bad JSON, a JSON value that is
// not an array, an item iproute2 would not print, and dumps of different
// nodes.
func TestIPDumpInputs(t *testing.T) {
	good := goodDump(t)
	with := func(name, content string) func(t *testing.T) string {
		return func(t *testing.T) string {
			files := map[string][]byte{}
			for k, v := range good {
				files[k] = v
			}
			files[name] = []byte(content)
			return writeDump(t, files)
		}
	}
	replaced := func(name string, make func(path string) error) func(t *testing.T) string {
		return func(t *testing.T) string {
			dir := writeDump(t, good)
			replace(t, dir, name, make)
			return dir
		}
	}
	tests := []struct {
		class string
		dir   func(t *testing.T) string
		want  []string // parts of the error; none: the model is read
	}{
		{"the dumps of a namespace", func(t *testing.T) string { return writeDump(t, good) }, nil},
		{"no such directory", func(t *testing.T) string { return filepath.Join(t.TempDir(), "none") }, []string{"--ip-dump", "none: does not exist"}},
		{"a file instead of the directory", func(t *testing.T) string { return filepath.Join(writeDump(t, good), "link.json") }, []string{"link.json is a regular file: want the directory that holds the six dumps (link.json, addr.json, route.json, route6.json, rule.json, rule6.json)"}},
		{"a missing file", replaced("route6.json", func(string) error { return nil }), []string{"route6.json is missing: want the output of `ip -j -d -6 route show table all` there"}},
		{"a FIFO", replaced("route.json", func(p string) error { return unix.Mkfifo(p, 0o600) }), []string{"route.json is a named pipe (FIFO): want a regular file holding the output of `ip -j -d route show table all`"}},
		{"a directory", replaced("rule.json", func(p string) error { return os.Mkdir(p, 0o700) }), []string{"rule.json is a directory: want a regular file"}},
		{"a link to a dump", replaced("addr.json", func(p string) error { return os.Symlink(filepath.Join(filepath.Dir(p), "link.json"), p) }), []string{"addr.json is a symbolic link: want a regular file"}},
		{"a link to an endless device", replaced("link.json", func(p string) error { return os.Symlink("/dev/zero", p) }), []string{"link.json is a symbolic link"}},
		{"a socket", replaced("rule6.json", listenUnix(t)), []string{"rule6.json is a socket"}},
		{"a 10 GB file", replaced("route.json", func(p string) error { return sparse(p, 10<<30) }), []string{"route.json", "too large", "at most 268435456 bytes"}},
		{"an empty file", with("rule6.json", ""), []string{"rule6.json: empty: want the output of `ip -j -6 rule show`, a JSON array ([] when there is nothing)"}},
		{"bad JSON", with("addr.json", "[{\"ifindex\": 1,\n \"ifname\": lo}]"), []string{"addr.json: not valid JSON at line 2, column 12"}},
		{"an object", with("link.json", `{"ifindex": 1}`), []string{"link.json: a JSON object, not an array"}},
		{"a bad route", with("route.json", `[{"dst": "10.0.0.300/24", "dev": "br0"}]`), []string{`route.json: route 0 ("dst":"10.0.0.300/24"): bad prefix: "10.0.0.300" is not a valid address (a number above 255)`}},
		{"an unknown table name", with("route.json", `[{"dst": "10.0.0.0/24", "dev": "br0", "table": "cilium"}]`), []string{"route.json: route 0", "cilium"}},
		{"dumps of two nodes", with("link.json", `[{"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK","UP","LOWER_UP"], "link_type": "loopback"}]`), []string{"do not describe one node", "br0"}},
	}
	for _, tt := range tests {
		t.Run(tt.class, func(t *testing.T) {
			dir := tt.dir(t)
			m, err := bounded(t, 10*time.Second, func() (any, error) { return LoadIPDump(dir) })
			if tt.want == nil {
				if err != nil || m == nil {
					t.Fatalf("LoadIPDump: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadIPDump read %s", tt.class)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LoadIPDump: %v; want it to say %q", err, w)
				}
			}
			if strings.Count(err.Error(), dir) > 1 || strings.ContainsAny(err.Error(), "\t\n") || strings.Contains(err.Error(), "Parse") {
				t.Errorf("LoadIPDump: %q: want the directory once, on one line, in our words", err)
			}
		})
	}
}

// TestIPDumpTooLarge: a dump past the limit is an error wrapping
// ErrTooLarge.
func TestIPDumpTooLarge(t *testing.T) {
	dir := t.TempDir()
	for _, f := range DumpFiles {
		if err := os.WriteFile(filepath.Join(dir, f.Name), []byte("[]"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := sparse(filepath.Join(dir, "link.json"), MaxDumpSize+1); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIPDump(dir); !errors.Is(err, ErrTooLarge) {
		t.Errorf("LoadIPDump: %v, want ErrTooLarge", err)
	}
}

// TestIPDumpFlags: --ip-dump excludes the other sources and is not live.
func TestIPDumpFlags(t *testing.T) {
	f := Flags{IPDump: "x", Snapshot: "y"}
	if err := f.Validate(); err == nil || !strings.Contains(err.Error(), "exclude each other") {
		t.Errorf("Validate: %v", err)
	}
	if (&Flags{IPDump: "x"}).Live() {
		t.Error("--ip-dump is live")
	}
}

func sparse(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// listenUnix returns a maker of a listening socket, closed with the test.
func listenUnix(t *testing.T) func(string) error {
	return func(p string) error {
		l, err := net.Listen("unix", p)
		if err != nil {
			return err
		}
		t.Cleanup(func() { _ = l.Close() })
		return nil
	}
}
