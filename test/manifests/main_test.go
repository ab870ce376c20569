// Package manifests tests the Kubernetes manifests in manifests/ as users
// deploy them, with the tools they use:
//
//   - kustomize, through a kubectl of the API server's version (built by
//     hack/control-plane.sh build, as the CI's k8s build phase does),
//     renders the base and every overlay; the tests decode the objects
//     strictly (a misspelt field is an error) and check them: least
//     privilege, tolerations, priority, probes, mounts, security context;
//   - the real fibguard-install, built from cmd/fibguard-install, runs with
//     the DaemonSet's environment against a node in a temporary directory
//     laid out as the DaemonSet's mounts show it to the container, and the
//     DaemonSet's own readiness probe must pass;
//   - `kubectl apply -k manifests/base` against a real kube-apiserver
//     (internal/apiservertest), then `kubectl auth can-i --list` and API
//     calls with the service account's token, taken through the
//     kubeconfig the installer writes for the plugin.
//
// Without that kubectl, or without the control plane's prerequisites, the
// tests skip and say why.
package manifests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/fibguard/fibguard/internal/apiservertest"
)

// setup is what TestMain found; tests read it through needKubectl and
// needInstaller.
var setup struct {
	root       string // the repository root
	kubectl    string
	kubectlErr error // why there is no kubectl to render with
	installer  string
	flags      map[string]installerFlag // by flag name, from -help
	installErr error                    // why cmd/fibguard-install is unavailable
	agent      string
	agentFlags map[string]installerFlag // fibguard-agent's, from -help
	agentErr   error                    // why cmd/fibguard-agent is unavailable
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintf(os.Stderr, "manifests: %v\n", err)
		return 1
	}
	setup.root = root
	setup.kubectl, setup.kubectlErr = findKubectl(root)
	dir, err := os.MkdirTemp("", "fibguard-manifests-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "manifests: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	setup.installer, setup.flags, setup.installErr = buildCommand(dir, "fibguard-install",
		"conf-dir", "host-conf-dir", "bin-dir", "binary", "event-binary", "mode", "options", "service-account-dir", "kubeconfig-name")
	setup.agent, setup.agentFlags, setup.agentErr = buildCommand(dir, "fibguard-agent",
		"results-dir", "conf-dir", "node-name", "metrics-bind-address", "install-heartbeat-file", "node-status-file")
	code := m.Run()
	if err := apiservertest.Down(); err != nil {
		fmt.Fprintf(os.Stderr, "manifests: %v\n", err)
		code = 1
	}
	return code
}

// findKubectl returns the kubectl that hack/control-plane.sh builds: the
// machine's own may be missing or several minor versions older, with an
// older kustomize.
func findKubectl(root string) (string, error) {
	script := filepath.Join(root, "hack", "control-plane.sh")
	out, err := exec.Command(script, "env").Output()
	if err != nil {
		return "", fmt.Errorf("%s env: %w", script, err)
	}
	var path, version string
	for line := range strings.Lines(string(out)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "FIBGUARD_KUBECTL":
			path = v
		case "FIBGUARD_K8S_VERSION":
			version = v
		}
	}
	if path == "" {
		return "", fmt.Errorf("%s env names no FIBGUARD_KUBECTL", script)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("kubectl %s is not built at %s: run hack/control-plane.sh build (7-10 minutes; the CI's k8s build phase does it)", version, path)
	}
	return path, nil
}

// needKubectl skips the test when there is no kubectl to render with.
func needKubectl(t testing.TB) {
	t.Helper()
	if setup.kubectlErr != nil {
		t.Skipf("manifests: %v", setup.kubectlErr)
	}
}

// objects are the objects a kustomization renders: exactly one of each.
type objects struct {
	Namespace          corev1.Namespace
	ServiceAccount     corev1.ServiceAccount
	ClusterRole        rbacv1.ClusterRole
	ClusterRoleBinding rbacv1.ClusterRoleBinding
	Role               rbacv1.Role
	RoleBinding        rbacv1.RoleBinding
	DaemonSet          appsv1.DaemonSet
}

// render runs `kubectl kustomize` on dir (relative to the repository root)
// and decodes what it prints.
func render(t testing.TB, dir string) *objects {
	t.Helper()
	needKubectl(t)
	trackInputs(t)
	out, err := exec.Command(setup.kubectl, "kustomize", filepath.Join(setup.root, dir)).Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, exitErr.Stderr)
		}
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	o, err := decode(out)
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
	}
	return o
}

// trackInputs reads every file the tests' results depend on but the test
// binary does not open itself — kubectl reads the manifests, go build the
// installer's main package, the build script the image tool — so that go
// test knows a cached result depends on them.
func trackInputs(t testing.TB) {
	t.Helper()
	for _, dir := range []string{"manifests", "charts", "cmd/fibguard-install", "hack/imagebuild", "hack/build-image.sh", "hack/release.sh"} {
		err := filepath.WalkDir(filepath.Join(setup.root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			_, err = os.ReadFile(path)
			return err
		})
		if err != nil {
			t.Fatalf("reading the tests' inputs: %v", err)
		}
	}
}

// decode reads a multi-document YAML stream into objects. Every document
// must be one of the expected kinds, once, and decode without unknown
// fields: a misspelt field would otherwise vanish silently, here and in
// the API server.
func decode(data []byte) (*objects, error) {
	o, seen, err := decodeSome(data)
	if err != nil {
		return nil, err
	}
	if len(seen) != 7 {
		return nil, fmt.Errorf("want a Namespace, ServiceAccount, ClusterRole, ClusterRoleBinding, Role, RoleBinding and DaemonSet; got %d of them", len(seen))
	}
	return o, nil
}

// decodeSome is decode without requiring every kind: it returns the
// objects and the kinds it found ("v1, Kind=Namespace"...).
func decodeSome(data []byte) (*objects, map[string]bool, error) {
	o := &objects{}
	seen := map[string]bool{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("splitting the documents: %w", err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		j, err := utilyaml.ToJSON(doc)
		if err != nil {
			return nil, nil, fmt.Errorf("converting a document to JSON: %w", err)
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(j, &tm); err != nil {
			return nil, nil, fmt.Errorf("reading a document's kind: %w", err)
		}
		key := tm.APIVersion + ", Kind=" + tm.Kind
		var into any
		switch key {
		case "v1, Kind=Namespace":
			into = &o.Namespace
		case "v1, Kind=ServiceAccount":
			into = &o.ServiceAccount
		case "rbac.authorization.k8s.io/v1, Kind=ClusterRole":
			into = &o.ClusterRole
		case "rbac.authorization.k8s.io/v1, Kind=ClusterRoleBinding":
			into = &o.ClusterRoleBinding
		case "rbac.authorization.k8s.io/v1, Kind=Role":
			into = &o.Role
		case "rbac.authorization.k8s.io/v1, Kind=RoleBinding":
			into = &o.RoleBinding
		case "apps/v1, Kind=DaemonSet":
			into = &o.DaemonSet
		default:
			return nil, nil, fmt.Errorf("unexpected object %s", key)
		}
		if seen[key] {
			return nil, nil, fmt.Errorf("more than one %s", key)
		}
		seen[key] = true
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.DisallowUnknownFields()
		if err := dec.Decode(into); err != nil {
			return nil, nil, fmt.Errorf("decoding %s: %w", key, err)
		}
	}
	return o, seen, nil
}

// installerFlag is a flag of fibguard-install as its -help describes it.
type installerFlag struct {
	Env     string // the environment variable that sets it
	Default string // "" when -help shows none
}

// buildCommand builds cmd/NAME into dir and reads its flags, with their
// environment variables and defaults, from -help; each of required must
// be there. The tests compare the manifests with what the commands
// really read.
func buildCommand(dir, name string, required ...string) (string, map[string]installerFlag, error) {
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, "github.com/fibguard/fibguard/cmd/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("go build cmd/%s: %w\n%s", name, err, out)
	}
	var help bytes.Buffer
	cmd = exec.Command(bin, "-help")
	cmd.Env = []string{}
	cmd.Stdout, cmd.Stderr = &help, &help
	if err := cmd.Run(); err != nil {
		return "", nil, fmt.Errorf("%s -help: %w\n%s", name, err, help.Bytes())
	}
	flags, err := parseHelp(help.String(), required)
	if err != nil {
		return "", nil, fmt.Errorf("%s -help: %w\n%s", name, err, help.Bytes())
	}
	return bin, flags, nil
}

// helpFlag matches one flag of Go's flag package usage output whose usage
// names its environment variable in brackets, e.g.
//
//	-bin-dir string
//	  	the node's CNI bin directory, as mounted [CNI_BIN_DIR] (default "/host/opt/cni/bin")
var helpFlag = regexp.MustCompile(`(?m)^  -([a-z-]+)(?: \w+)?\n\s+.*\[([A-Z_]+)\](?: \(default (?:"(.*)"|(\S+))\))?$`)

func parseHelp(help string, required []string) (map[string]installerFlag, error) {
	flags := map[string]installerFlag{}
	for _, m := range helpFlag.FindAllStringSubmatch(help, -1) {
		flags[m[1]] = installerFlag{Env: m[2], Default: m[3] + m[4]}
	}
	for _, name := range required {
		if _, ok := flags[name]; !ok {
			return nil, fmt.Errorf("no flag -%s with an [ENV] in its usage", name)
		}
	}
	return flags, nil
}

// needInstaller fails the test when cmd/fibguard-install did not build:
// that is a bug, not a missing prerequisite.
func needInstaller(t testing.TB) {
	t.Helper()
	if setup.installErr != nil {
		t.Fatalf("manifests: %v", setup.installErr)
	}
}

// needAgent fails the test when cmd/fibguard-agent did not build.
func needAgent(t testing.TB) {
	t.Helper()
	if setup.agentErr != nil {
		t.Fatalf("manifests: %v", setup.agentErr)
	}
}

// flagByEnv returns the name of the installer's flag set by env.
func flagByEnv(env string) (string, bool) { return flagOf(setup.flags, env) }

// flagOf returns the name of the flag of flags set by env.
func flagOf(flags map[string]installerFlag, env string) (string, bool) {
	for name, f := range flags {
		if f.Env == env {
			return name, true
		}
	}
	return "", false
}
