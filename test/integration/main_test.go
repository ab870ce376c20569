// Package integration runs fibguard the way a container runtime does: real
// conflists through libcni (the library containerd and CRI-O use), with the
// reference bridge, ptp, host-local and loopback plugins, against the real
// kernel. Each test makes its own "host" namespace, standing in for the
// node, and "pod" namespaces; plugins are executed from a thread inside the
// host namespace, so nothing touches the machine's own namespace.
//
// The reference plugins come from hack/cni-plugins.sh (pinned version); the
// tests look in $FIBGUARD_CNI_BIN, else in the script's default cache
// directory, and run the script when a plugin is missing. cmd/fibguard is
// built once per run into a temporary directory, and cmd/fibguard-event
// next to it when a test records Events.
//
// The Events tests run against a real kube-apiserver (internal/apiservertest,
// hack/control-plane.sh); they skip and say why when its prerequisites are
// missing.
//
// The tests need root (network namespaces) and ping(8); without them they
// skip and say why.
package integration

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	// The tests exec a fibguard binary built from cmd/fibguard, which go
	// test cannot see; importing its package makes a cached test result
	// depend on the plugin's sources, as it should.
	_ "github.com/fibguard/fibguard/plugin"

	"github.com/fibguard/fibguard/internal/apiservertest"
)

// requiredPlugins are the reference plugins the tests and benchmarks
// execute.
var requiredPlugins = []string{"bridge", "host-local", "ptp", "loopback", "tuning"}

// cniPluginsVersion must equal the version hack/cni-plugins.sh builds
// (and go.mod's github.com/containernetworking/plugins).
const cniPluginsVersion = "v1.10.0"

// setup is what TestMain found; tests read it through needPlugins and
// needFibguard.
var setup struct {
	pluginDir string
	pluginErr error // why the reference plugins are unavailable
	fgDir     string
	fgErr     error // why cmd/fibguard could not be built
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() == 0 {
		setup.pluginDir, setup.pluginErr = findPlugins()
		dir, err := os.MkdirTemp("", "fibguard-it-")
		if err != nil {
			fmt.Fprintf(os.Stderr, "integration: %v\n", err)
			return 1
		}
		defer os.RemoveAll(dir)
		setup.fgDir = dir
		setup.fgErr = buildFibguard(dir)
	}
	code := m.Run()
	// The API server of the Events tests, if one was started.
	if err := apiservertest.Down(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// findPlugins returns the directory holding the reference plugins, running
// hack/cni-plugins.sh when one is missing.
func findPlugins() (string, error) {
	dir := os.Getenv("FIBGUARD_CNI_BIN")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("no FIBGUARD_CNI_BIN and no cache directory: %w", err)
		}
		dir = filepath.Join(cache, "fibguard", "cni-plugins", cniPluginsVersion)
	}
	if missingPlugins(dir) == nil {
		return dir, nil
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "hack", "cni-plugins.sh"))
	if err != nil {
		return "", fmt.Errorf("locating hack/cni-plugins.sh: %w", err)
	}
	fmt.Fprintf(os.Stderr, "integration: reference CNI plugins missing in %s; running %s\n", dir, script)
	cmd := exec.Command(script)
	cmd.Env = append(os.Environ(), "FIBGUARD_CNI_BIN="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = io.MultiWriter(os.Stderr, &stderr)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", script, err, bytes.TrimSpace(stderr.Bytes()))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	dir = lines[len(lines)-1]
	if missing := missingPlugins(dir); missing != nil {
		return "", fmt.Errorf("%s ran, yet %s still lacks %s", script, dir, strings.Join(missing, ", "))
	}
	return dir, nil
}

// missingPlugins lists the required plugins that are not executable files
// in dir.
func missingPlugins(dir string) []string {
	var missing []string
	for _, p := range requiredPlugins {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, p)
		}
	}
	return missing
}

// buildFibguard builds cmd/fibguard into dir as the reference plugins are
// built (hack/cni-plugins.sh): static, CGO_ENABLED=0, so that the benchmark
// compares like with like; with the race detector, which needs cgo, when
// the tests run with it, so that it watches the plugin too.
func buildFibguard(dir string) error {
	args := []string{"build", "-o", filepath.Join(dir, "fibguard")}
	cgo := "CGO_ENABLED=0"
	if raceEnabled {
		args = append(args, "-race")
		cgo = "CGO_ENABLED=1"
	}
	cmd := exec.Command("go", append(args, "github.com/fibguard/fibguard/cmd/fibguard")...)
	cmd.Env = append(os.Environ(), cgo)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// needPlugins skips the test when the reference plugins are unavailable.
func needPlugins(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("integration: needs root to create network namespaces (euid %d)", os.Geteuid())
	}
	if setup.pluginErr != nil {
		t.Skipf("integration: reference CNI plugins unavailable: %v", setup.pluginErr)
	}
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skipf("integration: ping(8) is not installed (iputils-ping): %v", err)
	}
}

// needFibguard is needPlugins plus the fibguard binary, which must build.
func needFibguard(t testing.TB) {
	t.Helper()
	needPlugins(t)
	if setup.fgErr != nil {
		t.Fatalf("integration: %v", setup.fgErr)
	}
}

// TestPinnedVersion keeps the three places that name the reference
// plugins' version in step: hack/cni-plugins.sh builds the plugins the
// tests exec, go.mod pins the module whose pkg/ns the tests link, and
// cniPluginsVersion names the default cache directory.
func TestPinnedVersion(t *testing.T) {
	gomod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?github\.com/containernetworking/plugins\s+(\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod does not require github.com/containernetworking/plugins")
	}
	if got := string(m[1]); got != cniPluginsVersion {
		t.Errorf("go.mod requires github.com/containernetworking/plugins %s, the tests expect %s", got, cniPluginsVersion)
	}
	script, err := os.ReadFile(filepath.Join("..", "..", "hack", "cni-plugins.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `CNI_PLUGINS_VERSION="${CNI_PLUGINS_VERSION:-` + cniPluginsVersion + `}"`; !strings.Contains(string(script), want) {
		t.Errorf("hack/cni-plugins.sh does not default to %s (want the line %s)", cniPluginsVersion, want)
	}
}
