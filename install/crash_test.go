package install

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
)

// crashCycles is how many install/uninstall cycles TestCrashSafety runs
// per scenario, across all the killed children.
const crashCycles = 1000

// Environment of the helper process.
const (
	envHelper = "FIBGUARD_INSTALL_CRASH_HELPER"
	envRoot   = "FIBGUARD_INSTALL_CRASH_ROOT"
)

// eventBinary is the content of the crash test's event binary.
var eventBinary = bytes.Repeat([]byte("fibguard event binary\n"), 8192) // 176 KiB

// crashConfig is the installer configuration of the crash test, rooted at
// root: conf/, bin/, sa/ and the source binaries plugin.bin and event.bin.
func crashConfig(root string) Config {
	return Config{
		ConfDir:     filepath.Join(root, "conf"),
		BinDir:      filepath.Join(root, "bin"),
		Binary:      filepath.Join(root, "plugin.bin"),
		EventBinary: filepath.Join(root, "event.bin"),
		Entry:       testEntry,
		Kubeconfig: &Kubeconfig{
			Path:              filepath.Join(root, "conf", "fibguard-kubeconfig"),
			ServiceAccountDir: filepath.Join(root, "sa"),
			Server:            "https://10.96.0.1:443",
		},
		Resync:    time.Minute,
		TokenPoll: time.Minute,
	}
}

// TestHelperProcess is the child of TestCrashSafety, not a test: it runs
// install/uninstall cycles on the directories under $FIBGUARD_INSTALL_CRASH_ROOT
// until it is killed. It writes "s" on stdout when it starts, then "i"
// after each install and "u" after each uninstall on file descriptor 3, a
// regular file: a write to a pipe would wake the parent, and on a busy
// machine the woken parent preempts the child right after each mark, which
// would make most kills land in the two states that follow a mark.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		t.Skip("helper process of TestCrashSafety; runs only as its child")
	}
	in, err := New(crashConfig(os.Getenv(envRoot)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	marks := os.NewFile(3, "marks")
	// "s": started. Kills are timed from here, so they also land in the
	// first install, which finds what the previous child left.
	if _, err := os.Stdout.WriteString("s"); err != nil {
		os.Exit(4)
	}
	for {
		for _, step := range []struct {
			do   func() error
			mark string
		}{{in.Install, "i"}, {in.Uninstall, "u"}} {
			if err := step.do(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(3)
			}
			if _, err := marks.WriteString(step.mark); err != nil {
				os.Exit(4)
			}
		}
	}
}

// TestCrashSafety kills an installer with SIGKILL at random moments while
// it installs and uninstalls in a loop, crashCycles cycles in all, and
// after every kill checks what a container runtime would find: every CNI
// configuration in the directory complete and valid, the primary holding
// every plugin of the original in order (with fibguard's entry last or
// absent), the binary and the kubeconfig either absent or complete. At the
// end one uninstall must give back the original directory byte for byte.
func TestCrashSafety(t *testing.T) {
	if os.Getenv(envHelper) == "1" {
		t.Skip("running as the helper process")
	}
	if testing.Short() {
		t.Skip("-short: the kill -9 loop takes a few seconds")
	}
	tests := []struct {
		name  string
		files string // testdata/<files>/in
	}{
		{"conflist", "kindnet"},
		{"conf conversion", "conf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := crashRoot(t)
			cfg := crashConfig(root)
			copyDir(t, filepath.Join("testdata", tt.files, "in"), cfg.ConfDir)
			if err := os.Mkdir(cfg.BinDir, 0o755); err != nil {
				t.Fatal(err)
			}
			plugin := bytes.Repeat([]byte("fibguard plugin binary\n"), 4096) // 92 KiB
			if err := os.WriteFile(cfg.Binary, plugin, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfg.EventBinary, eventBinary, 0o755); err != nil {
				t.Fatal(err)
			}
			writeServiceAccount(t, cfg.Kubeconfig.ServiceAccountDir, fakeToken(t, time.Now(), time.Now().Add(time.Hour)))
			original := readDir(t, cfg.ConfDir)
			want := primaryPlugins(t, cfg.ConfDir)

			seed := uint64(time.Now().UnixNano())
			rng := rand.New(rand.NewPCG(seed, 0))
			t.Logf("seed %d", seed)
			start := time.Now()
			cycles, kills, states := 0, 0, map[string]int{}
			var worked time.Duration
			for cycles < crashCycles {
				// Kill at a uniformly random moment of the next few cycles,
				// scaled to how long a cycle takes on this machine now, so
				// that each child dies at a random point of a random step
				// without the test starting thousands of processes.
				cycle := 5 * time.Millisecond
				if cycles > 0 {
					cycle = min(max(worked/time.Duration(cycles), 100*time.Microsecond), 100*time.Millisecond)
				}
				delay := time.Duration(rng.Int64N(int64(4 * cycle)))
				done, err := runAndKill(root, delay)
				if err != nil {
					t.Fatal(err)
				}
				worked += delay
				cycles += done
				kills++
				state, err := checkCrashState(cfg, want, plugin)
				if err != nil {
					t.Fatalf("after kill %d (%d cycles done): %v\ndirectory: %s", kills, cycles, err, listDir(cfg.ConfDir))
				}
				states[state]++
			}
			t.Logf("%d cycles, %d kills in %v; states found after a kill:", cycles, kills, time.Since(start).Round(time.Millisecond))
			for _, s := range slices.Sorted(maps.Keys(states)) {
				t.Logf("%5d  %s", states[s], s)
			}

			in, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := in.Uninstall(); err != nil {
				t.Fatalf("final uninstall: %v", err)
			}
			assertSameDir(t, "after the final uninstall", readDir(t, cfg.ConfDir), original)
			if bin := readDir(t, cfg.BinDir); len(bin) != 0 {
				t.Errorf("bin dir not empty after uninstall: %v", keys(bin))
			}
		})
	}
}

// crashRoot returns a directory for the crash test, on tmpfs when there is
// one: a kill -9 does not lose the page cache, so flushing to a disk only
// makes the test measure the disk (several milliseconds a flush on a busy
// machine, a dozen flushes a cycle). The code under test is the same.
func crashRoot(t *testing.T) string {
	t.Helper()
	var st syscall.Statfs_t
	const tmpfsMagic = 0x01021994
	if err := syscall.Statfs("/dev/shm", &st); err != nil || st.Type != tmpfsMagic {
		t.Logf("no tmpfs at /dev/shm (%v): the test runs on the disk and is slower", err)
		return t.TempDir()
	}
	root, err := os.MkdirTemp("/dev/shm", "fibguard-install-crash-")
	if err != nil {
		t.Logf("cannot use /dev/shm (%v): the test runs on the disk and is slower", err)
		return t.TempDir()
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(root); err != nil {
			t.Errorf("removing %s: %v", root, err)
		}
	})
	return root
}

// runAndKill starts the helper, lets it work for delay once it has started,
// kills it with SIGKILL and returns how many cycles it finished.
func runAndKill(root string, delay time.Duration) (int, error) {
	marks, err := os.CreateTemp(root, "marks-")
	if err != nil {
		return 0, err
	}
	defer func() {
		_ = marks.Close()
		_ = os.Remove(marks.Name())
	}()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), envHelper+"=1", envRoot+"="+root)
	cmd.ExtraFiles = []*os.File{marks}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting the helper: %w", err)
	}
	if _, err := bufio.NewReader(out).ReadByte(); err != nil {
		_ = cmd.Wait()
		return 0, fmt.Errorf("helper died before it started: %w; stderr: %s", err, stderr.String())
	}
	time.Sleep(delay)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("killing the helper: %w", err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return 0, fmt.Errorf("helper ended with %w, not by SIGKILL; stderr: %s", err, stderr.String())
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		return 0, fmt.Errorf("helper ended with %w, not by SIGKILL; stderr: %s", err, stderr.String())
	}
	done, err := os.ReadFile(marks.Name())
	if err != nil {
		return 0, err
	}
	return strings.Count(string(done), "u"), nil
}

// checkCrashState checks the directories after a kill and names the state
// found: whether the primary has fibguard, and which files are around.
func checkCrashState(cfg Config, want []json.RawMessage, plugin []byte) (string, error) {
	entries, err := os.ReadDir(cfg.ConfDir)
	if err != nil {
		return "", err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if !isConfigName(e.Name()) || e.IsDir() {
			continue
		}
		if _, ok := loadConfig(filepath.Join(cfg.ConfDir, e.Name())); !ok {
			b, _ := os.ReadFile(filepath.Join(cfg.ConfDir, e.Name()))
			return "", fmt.Errorf("%s is not a valid CNI configuration:\n%s", e.Name(), b)
		}
	}
	p, err := FindPrimary(cfg.ConfDir)
	if err != nil {
		return "", err
	}
	list, err := libcni.NetworkConfFromFile(p.Path)
	if err != nil && p.List {
		return "", err
	}
	var got []json.RawMessage
	hasEntry := false
	if p.List {
		for i, pl := range list.Plugins {
			if pl.Network.Type == PluginType {
				if i != len(list.Plugins)-1 || !sameJSON(pl.Bytes, mustJSON(testEntry)) {
					return "", fmt.Errorf("%s: fibguard entry %d of %d is %s", p.Path, i, len(list.Plugins), pl.Bytes)
				}
				hasEntry = true
				continue
			}
			got = append(got, pl.Bytes)
		}
	} else {
		b, err := os.ReadFile(p.Path)
		if err != nil {
			return "", err
		}
		got = []json.RawMessage{b}
	}
	if len(got) != len(want) {
		return "", fmt.Errorf("primary %s has %d other plugins, want %d", p.Path, len(got), len(want))
	}
	for i := range want {
		if !sameJSON(got[i], want[i]) {
			return "", fmt.Errorf("primary %s plugin %d is %s, want %s", p.Path, i, got[i], want[i])
		}
	}
	if b, err := os.ReadFile(filepath.Join(cfg.BinDir, PluginType)); err == nil && !bytes.Equal(b, plugin) {
		return "", fmt.Errorf("installed binary has %d bytes, not the %d of the plugin", len(b), len(plugin))
	}
	if b, err := os.ReadFile(filepath.Join(cfg.BinDir, EventBinaryName)); err == nil && !bytes.Equal(b, eventBinary) {
		return "", fmt.Errorf("installed event binary has %d bytes, not the %d of the source", len(b), len(eventBinary))
	}
	if b, err := os.ReadFile(cfg.Kubeconfig.Path); err == nil {
		var kc kubeconfigFile
		if err := json.Unmarshal(b, &kc); err != nil || len(kc.Users) != 1 || kc.Users[0].User.Token == "" {
			return "", fmt.Errorf("kubeconfig is incomplete (%w):\n%s", err, b)
		}
	}
	state := "primary " + filepath.Base(p.Path) + " without fibguard:"
	if hasEntry {
		state = "primary " + filepath.Base(p.Path) + " with fibguard:"
	}
	for _, n := range names {
		if i := strings.Index(n, tmpMarker); i >= 0 {
			n = n[:i] + tmpMarker + "*"
		}
		state += " " + n
	}
	for _, f := range []string{filepath.Join(cfg.BinDir, EventBinaryName), filepath.Join(cfg.BinDir, PluginType), cfg.Kubeconfig.Path} {
		if _, err := os.Stat(f); err == nil && filepath.Dir(f) != cfg.ConfDir {
			state += " " + filepath.Base(f)
		}
	}
	return state, nil
}

// primaryPlugins returns the plugins of dir's primary configuration, a
// single-plugin file counting as its one plugin.
func primaryPlugins(t *testing.T, dir string) []json.RawMessage {
	t.Helper()
	p, err := FindPrimary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !p.List {
		b, err := os.ReadFile(p.Path)
		if err != nil {
			t.Fatal(err)
		}
		return []json.RawMessage{b}
	}
	list, err := libcni.NetworkConfFromFile(p.Path)
	if err != nil {
		t.Fatal(err)
	}
	var out []json.RawMessage
	for _, pl := range list.Plugins {
		out = append(out, pl.Bytes)
	}
	return out
}

func mustJSON(e Entry) []byte {
	b, err := e.json()
	if err != nil {
		panic(err)
	}
	return b
}

func listDir(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	var s []string
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			s = append(s, e.Name())
			continue
		}
		s = append(s, e.Name()+" ("+strconv.FormatInt(fi.Size(), 10)+" bytes)")
	}
	return strings.Join(s, ", ")
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
