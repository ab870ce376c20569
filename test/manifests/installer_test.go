package manifests

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/fibguard/fibguard/install"
	"github.com/fibguard/fibguard/internal/netconf"
	"github.com/fibguard/fibguard/plugin"
)

// primaryConflist is the node's primary CNI configuration, as kindnet
// writes it.
const primaryConflist = `{
	"cniVersion": "0.3.1",
	"name": "kindnet",
	"plugins": [
		{
			"type": "ptp",
			"ipMasq": false,
			"ipam": {"type": "host-local", "dataDir": "/run/cni-ipam-state", "routes": [{"dst": "0.0.0.0/0"}], "ranges": [[{"subnet": "10.244.1.0/24"}]]},
			"mtu": 1500
		},
		{"type": "portmap", "capabilities": {"portMappings": true}}
	]
}
`

// TestInstallerRunsWithManifestEnv runs the real installer as the
// DaemonSet configures it — its environment, expanded as kubelet does,
// and its mounts — and checks what it does on the node: the DaemonSet's
// readiness probe passes, the entry has the overlay's mode and the node's
// name and is a configuration the plugin accepts; and SIGTERM ends it well
// within the grace period. No API server answers here, so the installer
// cannot tell whether its DaemonSet remains: it leaves fibguard installed
// (docs/install.md), and `fibguard-install -uninstall` removes it.
func TestInstallerRunsWithManifestEnv(t *testing.T) {
	needInstaller(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			o := render(t, v.dir)
			n := newNode(t, &o.DaemonSet, "node-1.example")
			n.fakeServiceAccount(t, namespace)
			p := n.start(t, "127.0.0.1", closedPort(t))
			p.waitReady(t)

			entry := n.entry(t)
			if entry["mode"] != v.mode {
				t.Errorf("entry mode %v, want %s", entry["mode"], v.mode)
			}
			if entry["nodeName"] != n.name {
				t.Errorf("entry nodeName %v, want %s (from NODE_NAME)", entry["nodeName"], n.name)
			}
			wantKC := path.Join(n.hostConfDir(), setup.flags["kubeconfig-name"].Default)
			if entry["kubeconfig"] != wantKC {
				t.Errorf("entry kubeconfig %v, want %s", entry["kubeconfig"], wantKC)
			}
			for k, want := range n.options(t) {
				if got, _ := json.Marshal(entry[k]); !jsonEqual(got, want) {
					t.Errorf("entry %s = %s, want %s from %s", k, got, want, setup.flags["options"].Env)
				}
			}
			fi, err := os.Stat(n.onHost(wantKC))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("the plugin's kubeconfig %s: %v, mode %v; want a file of mode 0600", wantKC, err, fi)
			}
			n.checkPluginAccepts(t)

			p.stop(t)
			if !strings.Contains(p.log.String(), "leaving fibguard installed") || n.entry(t)["type"] != "fibguard" {
				t.Errorf("stopped without an API server to ask, the installer did not leave fibguard installed")
			}
			p.uninstallNow(t)
			n.checkUninstalled(t)
		})
	}
}

// closedPort is a TCP port on 127.0.0.1 that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// uninstallNow runs `fibguard-install -uninstall` with the DaemonSet's
// environment, as an operator would in the pod.
func (p *installer) uninstallNow(t *testing.T) {
	t.Helper()
	cmd := exec.Command(setup.installer, "-uninstall")
	cmd.Env = p.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fibguard-install -uninstall: %v\n%s", err, out)
	}
}

// node is a Kubernetes node in a temporary directory: its root holds the
// host paths the DaemonSet mounts, the primary conflist, and the projected
// service account volume's files.
type node struct {
	name   string
	ds     *appsv1.DaemonSet
	root   string // the host's "/"
	saDir  string // the service account volume's contents
	plugin string // the plugin binary of the image
	event  string // the event binary of the image, next to the plugin
	// primary is the primary conflist on the host; original its bytes.
	primary  string
	original []byte
}

func newNode(t *testing.T, ds *appsv1.DaemonSet, name string) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{name: name, ds: ds, root: filepath.Join(dir, "host"), saDir: filepath.Join(dir, "serviceaccount"),
		plugin: filepath.Join(dir, "image", "fibguard"), event: filepath.Join(dir, "image", install.EventBinaryName),
		original: []byte(primaryConflist)}
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.HostPath != nil {
			if err := os.MkdirAll(filepath.Join(n.root, v.HostPath.Path), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.MkdirAll(n.saDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The installer copies and compares the binaries' bytes, nothing more.
	if err := os.MkdirAll(filepath.Dir(n.plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, body := range map[string]string{n.plugin: "fibguard plugin", n.event: "fibguard event binary"} {
		if err := os.WriteFile(p, []byte("#!/bin/false\n"+body+" stand-in\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n.primary = n.onHost(path.Join(n.hostConfDir(), "10-kindnet.conflist"))
	if err := os.WriteFile(n.primary, n.original, 0o644); err != nil {
		t.Fatalf("writing the primary conflist: %v", err)
	}
	return n
}

// emptyDir is the directory standing for the pod's emptyDir volume name.
func (n *node) emptyDir(t *testing.T, name string) string {
	t.Helper()
	d := filepath.Join(filepath.Dir(n.root), "emptydir", name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// container is the installer container of the DaemonSet.
func (n *node) container() *corev1.Container { return &n.ds.Spec.Template.Spec.Containers[0] }

// setting returns the installer's value of flag as the DaemonSet sets it:
// its environment variable, else the flag's default.
func (n *node) setting(flag string) string {
	f := setup.flags[flag]
	for _, e := range n.container().Env {
		if e.Name == f.Env {
			return e.Value
		}
	}
	return f.Default
}

// hostConfDir is the CNI conf dir as the host sees it.
func (n *node) hostConfDir() string { return n.setting("host-conf-dir") }

// onHost maps a host path into the node's directory.
func (n *node) onHost(p string) string { return filepath.Join(n.root, filepath.FromSlash(p)) }

// inContainer maps a path of the installer's container to the file the
// test gives it: under a hostPath mount, the node's file; under the
// service account mount, the test's files; the plugin binary of the image.
func (n *node) inContainer(t *testing.T, p string) string {
	t.Helper()
	pod := &n.ds.Spec.Template.Spec
	for _, m := range n.container().VolumeMounts {
		rel, err := filepath.Rel(m.MountPath, p)
		if err != nil || !filepath.IsLocal(rel) {
			continue
		}
		for _, v := range pod.Volumes {
			switch {
			case v.Name != m.Name:
			case v.HostPath != nil:
				return filepath.Join(n.onHost(v.HostPath.Path), rel)
			case v.Projected != nil:
				return filepath.Join(n.saDir, rel)
			case v.EmptyDir != nil:
				return filepath.Join(n.emptyDir(t, v.Name), rel)
			}
		}
	}
	if p == n.setting("binary") {
		return n.plugin
	}
	t.Fatalf("%s is neither under a mount of the DaemonSet nor the image's plugin binary", p)
	return ""
}

// env is the installer's environment: the DaemonSet's variables expanded
// as kubelet expands them, the API server's service variables, and the
// paths the installer uses moved into the node's directory.
func (n *node) env(t *testing.T, apiHost, apiPort string) []string {
	t.Helper()
	vars := []corev1.EnvVar{
		{Name: "KUBERNETES_SERVICE_HOST", Value: apiHost},
		{Name: "KUBERNETES_SERVICE_PORT", Value: apiPort},
	}
	vars = append(vars, n.container().Env...)
	fields := map[string]string{"spec.nodeName": n.name, "metadata.namespace": n.ds.Namespace, "metadata.name": n.ds.Name + "-" + n.name}
	env, err := expandEnv(vars, fields)
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"conf-dir", "bin-dir", "service-account-dir", "binary", "heartbeat-file"} {
		if v := n.setting(flag); v != "" {
			env = append(env, setup.flags[flag].Env+"="+n.inContainer(t, v))
		}
	}
	return env
}

// varRef is a $(VAR) reference, or the escape $$.
var varRef = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// expandEnv resolves a container's environment as kubelet does: a value
// from a field of the pod, or a literal in which $(VAR) is replaced by a
// variable defined earlier in the list ($$ is a literal $); a reference to
// a variable not (yet) defined stays as written.
func expandEnv(vars []corev1.EnvVar, fields map[string]string) ([]string, error) {
	defined := map[string]string{}
	var env []string
	for _, v := range vars {
		value := v.Value
		switch {
		case v.ValueFrom != nil && v.ValueFrom.FieldRef != nil:
			f, ok := fields[v.ValueFrom.FieldRef.FieldPath]
			if !ok {
				return nil, fmt.Errorf("%s: field %s is not simulated", v.Name, v.ValueFrom.FieldRef.FieldPath)
			}
			value = f
		case v.ValueFrom != nil:
			return nil, fmt.Errorf("%s: only fieldRef values are simulated, not %+v", v.Name, v.ValueFrom)
		default:
			value = varRef.ReplaceAllStringFunc(value, func(ref string) string {
				if ref == "$$" {
					return "$"
				}
				if val, ok := defined[ref[2:len(ref)-1]]; ok {
					return val
				}
				return ref
			})
		}
		defined[v.Name] = value
		env = append(env, v.Name+"="+value)
	}
	return env, nil
}

// options returns the fields of fibguard's entry that the DaemonSet sets
// through the installer's options variable, expanded as kubelet would.
func (n *node) options(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	name := setup.flags["options"].Env
	var opts map[string]json.RawMessage
	for _, kv := range n.env(t, "", "") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			if err := json.Unmarshal([]byte(v), &opts); err != nil {
				t.Fatalf("%s %s: %v", name, v, err)
			}
		}
	}
	return opts
}

// jsonEqual reports whether two JSON texts are the same value.
func jsonEqual(a, b []byte) bool {
	var va, vb any
	return json.Unmarshal(a, &va) == nil && json.Unmarshal(b, &vb) == nil && reflect.DeepEqual(va, vb)
}

// fakeServiceAccount writes what kubelet would project: a token (a JWT the
// installer only reads the times of, valid for an hour), a CA certificate
// and the namespace.
func (n *node) fakeServiceAccount(t *testing.T, namespace string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fibguard-test-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	claims := fmt.Sprintf(`{"iat":%d,"exp":%d}`, now.Unix(), now.Add(time.Hour).Unix())
	token := enc([]byte(`{"alg":"ES256"}`)) + "." + enc([]byte(claims)) + "." + enc([]byte("unsigned"))
	n.writeServiceAccount(t, token, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), namespace)
}

func (n *node) writeServiceAccount(t *testing.T, token string, ca []byte, namespace string) {
	t.Helper()
	for name, data := range map[string][]byte{"token": []byte(token), "ca.crt": ca, "namespace": []byte(namespace)} {
		if err := os.WriteFile(filepath.Join(n.saDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// installer is a running fibguard-install.
type installer struct {
	n       *node
	cmd     *exec.Cmd
	env     []string
	log     *bytes.Buffer
	done    chan struct{}
	waitErr error
}

// start runs the installer as the container's entrypoint, with the
// DaemonSet's environment; the test's cleanup kills it if it still runs.
func (n *node) start(t *testing.T, apiHost, apiPort string) *installer {
	t.Helper()
	p := &installer{n: n, env: n.env(t, apiHost, apiPort), log: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(setup.installer)
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting fibguard-install: %v", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("fibguard-install's log:\n%s", p.log)
		}
	})
	return p
}

// waitReady runs the DaemonSet's readiness probe until it passes, at most
// for 10 seconds (the installer needs milliseconds).
func (p *installer) waitReady(t *testing.T) {
	t.Helper()
	probe := p.n.container().ReadinessProbe.Exec.Command
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cmd := exec.CommandContext(ctx, setup.installer, probe[1:]...)
		cmd.Env = p.env
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil {
			p.checkLive(t)
			return
		}
		select {
		case <-p.done:
			t.Fatalf("fibguard-install exited (%v) before it was ready", p.waitErr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness probe %q still fails after 10s: %v\n%s", probe, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkLive runs the DaemonSet's liveness probe, which must pass on a
// running installer.
func (p *installer) checkLive(t *testing.T) {
	t.Helper()
	probe := p.n.container().LivenessProbe.Exec.Command
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, setup.installer, probe[1:]...)
	cmd.Env = p.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("liveness probe %q fails on a running installer: %v\n%s", probe, err, out)
	}
}

// stop sends SIGTERM, as kubelet does when the pod is deleted, and waits
// for the installer to exit, at most the pod's grace period.
func (p *installer) stop(t *testing.T) {
	t.Helper()
	grace := time.Duration(*p.n.ds.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(grace):
		t.Fatalf("fibguard-install still runs %v after SIGTERM, the pod's grace period", grace)
	}
	took := time.Since(start)
	if p.waitErr != nil {
		t.Errorf("fibguard-install exited with %v after SIGTERM", p.waitErr)
	}
	if took > grace/4 {
		t.Errorf("uninstalling took %v, too close to the grace period %v", took, grace)
	}
	t.Logf("SIGTERM to exit, uninstall included: %v (grace period %v)", took, grace)
}

// entry returns fibguard's entry in the primary conflist: the last one.
func (n *node) entry(t *testing.T) map[string]any {
	t.Helper()
	var conf struct {
		Plugins []map[string]any `json:"plugins"`
	}
	data, err := os.ReadFile(n.primary)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		t.Fatalf("the primary conflist does not parse: %v\n%s", err, data)
	}
	if len(conf.Plugins) != 3 || conf.Plugins[2]["type"] != netconf.Type {
		t.Fatalf("plugins %v: want ptp, portmap and then fibguard", conf.Plugins)
	}
	return conf.Plugins[2]
}

// checkPluginAccepts gives fibguard's entry to the plugin's STATUS, the
// way a runtime would (with the conflist's cniVersion and name): an entry
// the plugin refuses would fail every pod on the node.
func (n *node) checkPluginAccepts(t *testing.T) {
	t.Helper()
	conf := n.entry(t)
	conf["cniVersion"], conf["name"] = "0.3.1", "kindnet"
	stdin, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := plugin.New().Status(&skel.CmdArgs{StdinData: stdin}); err != nil {
		t.Errorf("the plugin refuses the entry the installer wrote: %v\n%s", err, stdin)
	}
}

// checkUninstalled: the primary conflist is back to its bytes, and no file
// of fibguard is left on the node.
func (n *node) checkUninstalled(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(n.primary)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, n.original) {
		t.Errorf("after uninstall the primary conflist is\n%s\nwant the original\n%s", data, n.original)
	}
	var left []string
	err = filepath.WalkDir(n.root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && p != n.primary {
			left = append(left, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("after uninstall the node still has %q", left)
	}
}

// splitHostPort splits an https:// URL's host and port.
func splitHostPort(t *testing.T, server string) (string, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(strings.TrimPrefix(server, "https://"))
	if err != nil {
		t.Fatalf("API server URL %q: %v", server, err)
	}
	return host, port
}
