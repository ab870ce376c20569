package install

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEntryValidate(t *testing.T) {
	tests := []struct {
		name    string
		entry   Entry
		wantErr []string
	}{
		{name: "enforce", entry: Entry{Mode: ModeEnforce}},
		{name: "warn with options", entry: Entry{Mode: ModeWarn, Options: map[string]json.RawMessage{"checks": json.RawMessage(`{"FG040":"off"}`)}}},
		{name: "every problem at once",
			entry: Entry{Mode: "audit", Options: map[string]json.RawMessage{
				"type":       json.RawMessage(`"other"`),
				"cniVersion": json.RawMessage(`"1.0.0"`),
				"logFile":    json.RawMessage(`/var/log`),
			}},
			wantErr: []string{`mode "audit"`, `option "type"`, `option "cniVersion"`, `option "logFile": not valid JSON`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.entry.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate: nil, want an error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{in: "", want: 0},
		{in: "  ", want: 0},
		{in: `{"serviceCIDRs":["10.96.0.0/12"],"events":"off"}`, want: 2},
		{in: `null`, wantErr: true},
		{in: `["x"]`, wantErr: true},
		{in: `{"a":`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseOptions(tt.in)
		if (err != nil) != tt.wantErr || len(got) != tt.want {
			t.Errorf("ParseOptions(%q) = %v, %v; want %d options, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := crashConfig("/r")
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	bad := Config{ConfDir: "etc/cni/net.d", EventBinary: "fibguard-event", Entry: Entry{Mode: "x"}, Kubeconfig: &Kubeconfig{Path: "kc"}}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate: nil, want an error")
	}
	for _, w := range []string{"conf dir", "bin dir: not set", "plugin binary: not set", `event binary "fibguard-event"`, `mode "x"`, "kubeconfig path", "service account dir", "API server URL", "resync", "token poll"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if _, err := New(bad); err == nil {
		t.Error("New accepted an invalid configuration")
	}
}

// writeBinaries writes the source binaries of cfg.
func writeBinaries(t *testing.T, cfg Config) {
	t.Helper()
	for path, body := range map[string]string{cfg.Binary: "plugin", cfg.EventBinary: "event binary"} {
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestInstallerRun runs the installer as the DaemonSet does and plays the
// node around it: the primary CNI plugin writes its configuration late and
// rewrites it, someone deletes the binary, the kubelet rotates the token.
// Then SIGTERM (the context) and uninstall must give the node back as it
// was.
func TestInstallerRun(t *testing.T) {
	root := t.TempDir()
	cfg := crashConfig(root)
	cfg.Resync = time.Hour // changes must be seen by the watch
	cfg.TokenPoll = 20 * time.Millisecond
	cfg.Log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	cfg.Heartbeat = filepath.Join(root, "heartbeat")
	for _, d := range []string{cfg.ConfDir, cfg.BinDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeBinaries(t, cfg)
	sa := writeServiceAccount(t, cfg.Kubeconfig.ServiceAccountDir, fakeToken(t, time.Now(), time.Now().Add(time.Hour)))
	in, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Install(); !errors.Is(err, ErrNoPrimary) {
		t.Fatalf("Install before the primary CNI wrote its file: %v, want ErrNoPrimary", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = in.Run(ctx) })
	defer func() {
		cancel()
		wg.Wait()
	}()
	waitCheck := func(what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for err := in.Check(); err != nil; err = in.Check() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not ready within 5s: %v", what, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	waitStatus(t, cfg.Heartbeat, "no primary yet", func(st Status) bool {
		return !st.Installed && strings.Contains(st.Error, "no valid CNI configuration") && st.Reinserts == 0
	})

	// The primary CNI plugin comes up after the installer.
	copyDir(t, filepath.Join("testdata", "calico", "in"), cfg.ConfDir)
	original := readDir(t, filepath.Join("testdata", "calico", "in"))
	waitCheck("primary written late")
	waitStatus(t, cfg.Heartbeat, "chained", func(st Status) bool { return st.Installed && st.Error == "" && st.Reinserts == 0 })

	for n := uint64(1); n <= 2; n++ {
		if err := os.WriteFile(filepath.Join(cfg.ConfDir, "10-calico.conflist"), original["10-calico.conflist"], 0o644); err != nil {
			t.Fatal(err)
		}
		waitCheck("primary rewritten")
		waitStatus(t, cfg.Heartbeat, "rewritten", func(st Status) bool { return st.Installed && st.Reinserts == n })
	}

	for _, name := range []string{PluginType, EventBinaryName} {
		if err := os.Remove(filepath.Join(cfg.BinDir, name)); err != nil {
			t.Fatal(err)
		}
		waitCheck(name + " deleted")
	}

	next := fakeToken(t, time.Now(), time.Now().Add(2*time.Hour))
	rotateToken(t, sa, next)
	waitForToken(t, cfg.Kubeconfig.Path, next, time.Now().Add(5*time.Second))

	cancel()
	wg.Wait()
	if runErr != nil {
		t.Fatalf("Run: %v", runErr)
	}
	if err := in.Uninstall(); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	assertSameDir(t, "after uninstall", readDir(t, cfg.ConfDir), original)
	if bin := readDir(t, cfg.BinDir); len(bin) != 0 {
		t.Errorf("bin dir after uninstall: %v", keys(bin))
	}
	if err := in.Check(); err == nil {
		t.Error("Check after uninstall: nil, want an error")
	}
}

// waitStatus waits up to 5 s for the heartbeat file at path to satisfy ok.
func waitStatus(t *testing.T, path, what string, ok func(Status) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := ReadStatus(path)
		if err == nil && ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: heartbeat %+v (err %v) not as expected within 5s", what, st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUninstallKeepsBinaryWhenAnEntryStays: uninstall puts back the
// fibguard entries someone else wrote, byte for byte, in the primary and
// elsewhere; they name the plugin, so the binaries stay. A list whose only
// plugin is the installer's entry cannot lose it: that is an error, and
// the binaries stay too.
func TestUninstallKeepsBinaryWhenAnEntryStays(t *testing.T) {
	hand := []byte(`{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"ptp"},{"type":"fibguard","mode":"warn"}]}`)
	tests := []struct {
		name, file string
		content    []byte
		wantErr    string
	}{
		{"a hand-written entry in another list", "50-other.conflist", hand, ""},
		{"a hand-written entry in the primary", "01-primary.conflist", hand, ""},
		{"a hand-written single plugin", "50-single.conf", []byte(`{"cniVersion":"1.0.0","name":"x","type":"fibguard"}`), ""},
		{"the installer's entry alone", "50-alone.conflist",
			[]byte(`{"cniVersion":"1.0.0","name":"x","plugins":[` + string(mustJSON(testEntry)) + `]}`), "only plugin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			cfg := crashConfig(root)
			cfg.Kubeconfig = nil
			for _, d := range []string{cfg.ConfDir, cfg.BinDir} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			writeBinaries(t, cfg)
			copyDir(t, filepath.Join("testdata", "flannel", "in"), cfg.ConfDir)
			path := filepath.Join(cfg.ConfDir, tt.file)
			if err := os.WriteFile(path, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			original := readDir(t, cfg.ConfDir)
			in, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := in.Install(); err != nil {
				t.Fatal(err)
			}
			err = in.Uninstall()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Uninstall error %v, want %q", err, tt.wantErr)
			}
			assertSameDir(t, "after uninstall", readDir(t, cfg.ConfDir), original)
			for _, name := range []string{PluginType, EventBinaryName} {
				if _, err := os.Stat(filepath.Join(cfg.BinDir, name)); err != nil {
					t.Errorf("%s removed although %s still names fibguard: %v", name, tt.file, err)
				}
			}
		})
	}
}
