//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// The namespace and ServiceAccount of manifests/base.
const (
	installNamespace = "fibguard-system"
	installAccount   = "fibguard"
)

// installer puts fibguard into the node's chain and takes it out again.
type installer interface {
	// install chains fibguard in mode (enforce or warn) and returns once the
	// primary conflist carries it.
	install(ctx context.Context, t *testing.T, mode string)
	// uninstall removes it and returns once the conflist and the bin dir
	// are without it.
	uninstall(ctx context.Context, t *testing.T)
}

// installer picks the way the configuration says; top is the whole
// suite's test, which owns the installer's files and log.
func (cl *cluster) installer(top *testing.T) installer {
	if cl.Install == "process" {
		dir := top.TempDir()
		return &processInstaller{cl: cl, sa: filepath.Join(dir, "serviceaccount"), logPath: filepath.Join(dir, "fibguard-install.log")}
	}
	return &manifestInstaller{cl: cl}
}

// fibguardEntry returns fibguard's entry in the primary conflist, if any.
func fibguardEntry(conflist string) (map[string]any, bool, error) {
	var doc struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(conflist), &doc); err != nil {
		return nil, false, fmt.Errorf("primary conflist: %w", err)
	}
	for i, p := range doc.Plugins {
		if p["type"] == "fibguard" {
			if i != len(doc.Plugins)-1 {
				return p, true, fmt.Errorf("fibguard is plugin %d of %d, not the last", i+1, len(doc.Plugins))
			}
			return p, true, nil
		}
	}
	return nil, false, nil
}

// waitChained waits until the primary conflist has fibguard last, in mode
// (or has none, when mode is "").
func (cl *cluster) waitChained(ctx context.Context, mode string) error {
	err := eventually(ctx, 200*time.Millisecond, 2*time.Minute, func(ctx context.Context) error {
		content, err := cl.readPrimary(ctx)
		if err != nil {
			return err
		}
		entry, ok, err := fibguardEntry(content)
		if err != nil {
			return err
		}
		if mode == "" {
			if ok {
				return errors.New("fibguard still chained")
			}
			return nil
		}
		got, _ := entry["mode"].(string) // a missing mode is the default, enforce
		if got == "" {
			got = "enforce"
		}
		if !ok || got != mode {
			return fmt.Errorf("chained=%v mode=%q", ok, got)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("primary conflist: want fibguard mode %q: %w", mode, err)
	}
	return nil
}

// applyRBAC creates what manifests/base creates except the DaemonSet: the
// installer then runs as a process with the DaemonSet's ServiceAccount.
func (cl *cluster) applyRBAC(ctx context.Context) error {
	out, err := cl.kubectl(ctx, "kustomize", filepath.Join(cl.Repo, "manifests", "base"))
	if err != nil {
		return err
	}
	var keep []string
	for _, doc := range strings.Split(out, "\n---\n") {
		if !strings.Contains(doc, "\nkind: DaemonSet\n") && !strings.HasPrefix(doc, "kind: DaemonSet\n") {
			keep = append(keep, doc)
		}
	}
	f, err := os.CreateTemp("", "fibguard-rbac-*.yaml")
	if err != nil {
		return fmt.Errorf("rbac manifest: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(strings.Join(keep, "\n---\n")); err != nil {
		f.Close()
		return fmt.Errorf("rbac manifest: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("rbac manifest: %w", err)
	}
	_, err = cl.kubectl(ctx, "apply", "-f", f.Name())
	return err
}

// processInstaller runs cmd/fibguard-install on this machine, which is the
// node, as the DaemonSet would run it there: same ServiceAccount, the
// service account files in a directory, the API server from
// KUBERNETES_SERVICE_HOST/PORT.
type processInstaller struct {
	cl      *cluster
	cmd     *exec.Cmd
	done    chan error
	sa      string // the service account directory
	logPath string // the installer's output
	args    []string
	env     []string
}

func (p *processInstaller) prepare(ctx context.Context, t *testing.T, mode string) {
	t.Helper()
	if err := p.cl.applyRBAC(ctx); err != nil {
		t.Fatalf("applying manifests/base RBAC: %v", err)
	}
	tr, err := p.cl.client.CoreV1().ServiceAccounts(installNamespace).CreateToken(ctx, installAccount,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", installNamespace, installAccount, err)
	}
	raw, err := clientcmd.BuildConfigFromFlags("", p.cl.Kubeconfig)
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	ca := raw.CAData
	if len(ca) == 0 && raw.CAFile != "" {
		if ca, err = os.ReadFile(raw.CAFile); err != nil {
			t.Fatalf("CA: %v", err)
		}
	}
	server, err := url.Parse(raw.Host)
	if err != nil {
		t.Fatalf("API server %q: %v", raw.Host, err)
	}
	if err := os.MkdirAll(p.sa, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"token": []byte(tr.Status.Token), "ca.crt": ca, "namespace": []byte(installNamespace)} {
		if err := os.WriteFile(filepath.Join(p.sa, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p.args = []string{
		"-conf-dir", p.cl.ConfDir, "-host-conf-dir", p.cl.ConfDir, "-bin-dir", p.cl.BinDir,
		"-binary", filepath.Join(p.cl.BinaryDir, "fibguard"), "-mode", mode,
		"-options", fmt.Sprintf(`{"nodeName":%q}`, p.cl.Node),
		"-service-account-dir", p.sa, "-resync", "2s", "-token-poll", "5s",
	}
	p.env = append(os.Environ(), "KUBERNETES_SERVICE_HOST="+server.Hostname(), "KUBERNETES_SERVICE_PORT="+server.Port(),
		"NODE_NAME="+p.cl.Node)
}

func (p *processInstaller) install(ctx context.Context, t *testing.T, mode string) {
	t.Helper()
	if p.cmd != nil {
		p.uninstall(ctx, t)
	}
	p.prepare(ctx, t, mode)
	bin := filepath.Join(p.cl.BinaryDir, "fibguard-install")
	p.cmd = exec.Command(bin, p.args...)
	p.cmd.Env = p.env
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own descriptor
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	p.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan<- error) { done <- cmd.Wait() }(p.cmd, p.done)
	// The readiness probe of the DaemonSet: -check exits 0 once installed.
	err = eventually(ctx, 200*time.Millisecond, time.Minute, func(ctx context.Context) error {
		check := exec.CommandContext(ctx, bin, append([]string{"-check"}, p.args...)...)
		check.Env = p.env
		if out, err := check.CombinedOutput(); err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("fibguard-install -check never succeeded: %v\n%s", err, p.output())
	}
	if err := p.cl.waitChained(ctx, mode); err != nil {
		t.Fatal(err)
	}
}

// uninstall stops the installer as the kubelet stops a DaemonSet pod
// (SIGTERM): it takes fibguard out on its way out.
func (p *processInstaller) uninstall(ctx context.Context, t *testing.T) {
	t.Helper()
	if p.cmd == nil {
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("SIGTERM to fibguard-install: %v", err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("fibguard-install exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done //nolint:errcheck // killed: its exit status says nothing
		t.Errorf("fibguard-install did not exit within 30s of SIGTERM")
	}
	p.cmd = nil
	if err := p.cl.waitChained(ctx, ""); err != nil {
		t.Fatal(err)
	}
}

// manifestInstaller applies manifests/ with kubectl, as users install
// fibguard: the DaemonSet installs it on every node (its image must be on
// the nodes: hack/e2e-local.sh and hack/kind-e2e.sh load it).
type manifestInstaller struct{ cl *cluster }

func (m *manifestInstaller) install(ctx context.Context, t *testing.T, mode string) {
	t.Helper()
	m.installImage(ctx, t, mode, m.cl.Image)
}

// installImage applies the kustomization of mode with image (as a user
// pins a release in an overlay), waits for the rollout and for fibguard
// to be chained, and checks what the DaemonSet put on the node.
func (m *manifestInstaller) installImage(ctx context.Context, t *testing.T, mode, image string) {
	t.Helper()
	dir := filepath.Join(m.cl.Repo, "manifests", "base")
	if mode == "warn" {
		dir = filepath.Join(m.cl.Repo, "manifests", "overlays", "warn")
	}
	if image != defaultImage {
		dir = overlay(t, dir, image)
	}
	if _, err := m.cl.kubectl(ctx, "apply", "-k", dir); err != nil {
		t.Fatal(err)
	}
	m.cl.waitRolledOut(ctx, t, mode)
}

// waitRolledOut waits until fibguard's DaemonSet has rolled out and its
// pods are Ready, and checks that it chained fibguard in mode and put its
// files on every node under test.
func (cl *cluster) waitRolledOut(ctx context.Context, t *testing.T, mode string) {
	t.Helper()
	if _, err := cl.kubectl(ctx, "-n", installNamespace, "rollout", "status", "daemonset/fibguard", "--timeout=3m"); err != nil {
		t.Fatal(err)
	}
	if err := cl.installerPodsReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.waitChainedAll(ctx, mode); err != nil {
		t.Fatal(err)
	}
	for _, n := range cl.all {
		if missing, err := n.installedFiles(ctx, true); err != nil || len(missing) > 0 {
			t.Fatalf("after the rollout node %s lacks %v (err %v)", n.Node, missing, err)
		}
	}
}

// uninstall is `kubectl delete -k manifests/base`: the installer pods get
// SIGTERM and take fibguard out, on every node.
func (m *manifestInstaller) uninstall(ctx context.Context, t *testing.T) {
	t.Helper()
	if _, err := m.cl.kubectl(ctx, "delete", "--ignore-not-found", "--wait=true", "-k", filepath.Join(m.cl.Repo, "manifests", "base")); err != nil {
		t.Fatal(err)
	}
	if err := m.cl.waitChainedAll(ctx, ""); err != nil {
		t.Fatal(err)
	}
}

// waitChainedAll is waitChained on every node under test.
func (cl *cluster) waitChainedAll(ctx context.Context, mode string) error {
	for _, n := range cl.all {
		if err := n.waitChained(ctx, mode); err != nil {
			return fmt.Errorf("node %s: %w", n.Node, err)
		}
	}
	return nil
}

// installedFiles lists which of fibguard's files on the node are there
// (want false) or missing (want true): the plugin and the event binary in
// the bin dir, the plugin's kubeconfig in the conf dir.
func (cl *cluster) installedFiles(ctx context.Context, want bool) ([]string, error) {
	var wrong []string
	for _, f := range []string{path.Join(cl.BinDir, "fibguard"), path.Join(cl.BinDir, "fibguard-event"), path.Join(cl.ConfDir, "fibguard-kubeconfig")} {
		out, err := cl.onNode(ctx, nil, "if [ -e "+shellQuote(f)+" ]; then echo yes; else echo no; fi")
		if err != nil {
			return nil, err
		}
		if (strings.TrimSpace(out) == "yes") != want {
			wrong = append(wrong, f)
		}
	}
	return wrong, nil
}

func ptr[T any](v T) *T { return &v }

// output is the installer's log so far, for failure messages.
func (p *processInstaller) output() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	return "fibguard-install's log:\n" + string(b)
}
