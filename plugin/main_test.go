package plugin

import (
	"bytes"
	"errors"
	"fmt"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fibguard/fibguard/internal/nstest"
	"github.com/fibguard/fibguard/podevent"
)

// binDir holds the fibguard binary the tests run as a runtime does, and
// the event binary next to it, where the plugin looks for it; both are
// built once, on first use, so fuzzing and unit tests do not pay for them.
var (
	binDir  string
	binOnce sync.Once
	errBin  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fibguard-plugin-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugin tests:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "plugin tests: remove", dir, ":", err)
	}
	os.Exit(code)
}

// fibguardBin returns the path of the fibguard binary, building it and
// the event binary with the go command of the toolchain running the tests.
func fibguardBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		goCmd, err := exec.LookPath("go")
		if err != nil {
			goCmd = filepath.Join(build.Default.GOROOT, "bin", "go")
		}
		cmd := exec.Command(goCmd, "build", "-o", binDir+"/",
			"github.com/fibguard/fibguard/cmd/fibguard", "github.com/fibguard/fibguard/cmd/fibguard-event")
		if out, err := cmd.CombinedOutput(); err != nil {
			errBin = fmt.Errorf("go build ./cmd/fibguard ./cmd/fibguard-event: %w\n%s", err, out)
		}
	})
	if errBin != nil {
		t.Fatal(errBin)
	}
	return filepath.Join(binDir, "fibguard")
}

// eventBin returns the path of the event binary, cmd/fibguard-event.
func eventBin(t testing.TB) string {
	t.Helper()
	return filepath.Join(filepath.Dir(fibguardBin(t)), podevent.EventBinary)
}

// invocation is one execution of the plugin, as a runtime makes it.
type invocation struct {
	// env holds the CNI_* variables; an empty value removes a variable.
	env   map[string]string
	stdin []byte
	// in runs the plugin inside this namespace (ip netns exec), nil in
	// the test's own (for inputs refused before any namespace is read).
	in *nstest.NS
}

// outcome is what the plugin did.
type outcome struct {
	stdout, stderr []byte
	exit           int
}

// cniEnv is a complete ADD environment; tests override single variables.
func cniEnv(command, netns string) map[string]string {
	return map[string]string{
		"CNI_COMMAND":     command,
		"CNI_CONTAINERID": "4f1f5c7e2a0b",
		"CNI_NETNS":       netns,
		"CNI_IFNAME":      "eth0",
		"CNI_PATH":        "/opt/cni/bin",
		"CNI_ARGS":        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
	}
}

// run executes the plugin with a clean environment (PATH and the CNI
// variables only).
func (inv invocation) run(t testing.TB) outcome {
	t.Helper()
	bin := fibguardBin(t)
	var cmd *exec.Cmd
	if inv.in != nil {
		cmd = exec.Command("ip", "netns", "exec", inv.in.Name(), bin)
	} else {
		cmd = exec.Command(bin)
	}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range inv.env {
		if v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Stdin = bytes.NewReader(inv.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	exit := 0
	switch {
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	case err != nil:
		t.Fatalf("run fibguard: %v", err)
	}
	out := outcome{stdout: stdout.Bytes(), stderr: stderr.Bytes(), exit: exit}
	if s := stderr.String(); strings.Contains(s, "panic") || strings.Contains(s, "goroutine ") {
		t.Errorf("stderr shows a panic:\n%s", s)
	}
	return out
}
