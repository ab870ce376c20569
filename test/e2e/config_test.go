//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// config is where the suite finds the cluster and its node. Every field comes
// from an environment variable; hack/local-cluster.sh writes them for the
// local node, hack/kind-e2e.sh for kind.
type config struct {
	// Kubeconfig reaches the cluster as an admin (FIBGUARD_E2E_KUBECONFIG).
	Kubeconfig string
	// Node is the node the pods run on (FIBGUARD_E2E_NODE); empty: the
	// cluster's only node. With several nodes under test (Nodes), each
	// node's view of the configuration has its own.
	Node string
	// Nodes are the nodes the scenarios run on, each in turn
	// (FIBGUARD_E2E_NODES, separated by spaces); empty: Node alone.
	Nodes []string
	// NodeExec runs a command on the node: a prefix such as
	// "docker exec -i kind-control-plane" (FIBGUARD_E2E_NODE_EXEC); empty:
	// this machine is the node, and the suite runs in its network
	// namespace. A word {node} is replaced by the node's name.
	NodeExec []string
	// ConfDir and BinDir are the node's CNI directories
	// (FIBGUARD_E2E_CNI_CONF_DIR, FIBGUARD_E2E_CNI_BIN_DIR).
	ConfDir, BinDir string
	// Primary is the file name of the primary CNI's conflist in ConfDir
	// (FIBGUARD_E2E_PRIMARY_CONFLIST); the suite writes it as that CNI would.
	Primary string
	// IPAMDir is host-local's dataDir on the node (FIBGUARD_E2E_IPAM_DIR);
	// empty: host-local's default.
	IPAMDir string
	// ProbeImage is the pods' image, already on the node
	// (FIBGUARD_E2E_PROBE_IMAGE).
	ProbeImage string
	// Crictl is the command line of crictl on the node, endpoint included
	// (FIBGUARD_E2E_CRICTL, default "crictl").
	Crictl string
	// Kubectl is kubectl on this machine (FIBGUARD_E2E_KUBECTL).
	Kubectl string
	// Install says how fibguard is installed (FIBGUARD_E2E_INSTALL):
	// "manifests" (the default) applies manifests/ with kubectl and lets
	// the DaemonSet do it, its image loaded on the nodes; "process" runs
	// fibguard-install from BinaryDir on this machine against the node's
	// CNI directories, for debugging the installer without an image.
	Install string
	// Image is fibguard's image as manifests/base names it, already on the
	// nodes (FIBGUARD_E2E_IMAGE); UpgradeImage is a different build of it,
	// also on the nodes, that the upgrade scenario rolls out
	// (FIBGUARD_E2E_UPGRADE_IMAGE). Each image's tag is the version its
	// plugin reports.
	Image, UpgradeImage string
	// Restart restarts kubelet and the container runtime on the node, as
	// its service manager would, and returns once the node is Ready
	// (FIBGUARD_E2E_RESTART: a command line run on this machine, e.g.
	// "hack/local-cluster.sh restart" or "docker exec NODE systemctl
	// restart containerd kubelet"; {node} as in NodeExec).
	Restart []string
	// BinaryDir holds the fibguard, fibguard-event and fibguard-install
	// binaries for Install=process (FIBGUARD_E2E_BIN_DIR).
	BinaryDir string
	// Repo is the repository's root (for manifests/).
	Repo string
}

func loadConfig() (config, error) {
	c := config{
		Kubeconfig:   os.Getenv("FIBGUARD_E2E_KUBECONFIG"),
		Node:         os.Getenv("FIBGUARD_E2E_NODE"),
		Nodes:        strings.Fields(os.Getenv("FIBGUARD_E2E_NODES")),
		NodeExec:     strings.Fields(os.Getenv("FIBGUARD_E2E_NODE_EXEC")),
		ConfDir:      envOr("FIBGUARD_E2E_CNI_CONF_DIR", "/etc/cni/net.d"),
		BinDir:       envOr("FIBGUARD_E2E_CNI_BIN_DIR", "/opt/cni/bin"),
		Primary:      envOr("FIBGUARD_E2E_PRIMARY_CONFLIST", "10-fibguard-e2e.conflist"),
		IPAMDir:      os.Getenv("FIBGUARD_E2E_IPAM_DIR"),
		ProbeImage:   envOr("FIBGUARD_E2E_PROBE_IMAGE", "localhost/fibguard-e2e/probe:1.0"),
		Crictl:       envOr("FIBGUARD_E2E_CRICTL", "crictl"),
		Kubectl:      envOr("FIBGUARD_E2E_KUBECTL", "kubectl"),
		Install:      envOr("FIBGUARD_E2E_INSTALL", "manifests"),
		Image:        envOr("FIBGUARD_E2E_IMAGE", defaultImage),
		UpgradeImage: os.Getenv("FIBGUARD_E2E_UPGRADE_IMAGE"),
		Restart:      strings.Fields(os.Getenv("FIBGUARD_E2E_RESTART")),
		BinaryDir:    os.Getenv("FIBGUARD_E2E_BIN_DIR"),
		Repo:         filepath.Clean(repoPath()),
	}
	if c.Kubeconfig == "" {
		return c, fmt.Errorf("%w: FIBGUARD_E2E_KUBECONFIG is not set: run `make e2e` (local node) or hack/kind-e2e.sh", errNoCluster)
	}
	if len(c.Restart) == 0 {
		return c, fmt.Errorf("FIBGUARD_E2E_RESTART is not set: the command that restarts kubelet and the runtime on the node")
	}
	if len(c.Nodes) > 1 && c.Install == "process" {
		return c, fmt.Errorf("FIBGUARD_E2E_INSTALL=process runs the installer on this machine, one node: FIBGUARD_E2E_NODES names %d", len(c.Nodes))
	}
	switch c.Install {
	case "process":
		if c.BinaryDir == "" {
			return c, fmt.Errorf("FIBGUARD_E2E_INSTALL=process needs FIBGUARD_E2E_BIN_DIR (fibguard, fibguard-event and fibguard-install)")
		}
		if len(c.NodeExec) > 0 {
			return c, fmt.Errorf("FIBGUARD_E2E_INSTALL=process runs the installer on this machine: it needs this machine to be the node (FIBGUARD_E2E_NODE_EXEC empty)")
		}
	case "manifests":
		if c.UpgradeImage == "" || c.UpgradeImage == c.Image {
			return c, fmt.Errorf("FIBGUARD_E2E_UPGRADE_IMAGE=%q: want a second build of fibguard's image, with another tag, loaded on the nodes (hack/e2e-local.sh builds and loads one)", c.UpgradeImage)
		}
	default:
		return c, fmt.Errorf("FIBGUARD_E2E_INSTALL=%q: want process or manifests", c.Install)
	}
	return c, nil
}

// forNode is the configuration as one node sees it: Node set, and {node}
// in NodeExec and Restart replaced by its name.
func (c config) forNode(name string) config {
	subst := func(words []string) []string {
		out := make([]string, len(words))
		for i, w := range words {
			out[i] = strings.ReplaceAll(w, "{node}", name)
		}
		return out
	}
	c.Node, c.NodeExec, c.Restart = name, subst(c.NodeExec), subst(c.Restart)
	return c
}

// errNoCluster: the environment names no cluster; the suite skips.
var errNoCluster = errors.New("no cluster")

// defaultImage is the image manifests/base deploys (hack/build-image.sh's default).
const defaultImage = "ghcr.io/fibguard/fibguard:v0.1.0"

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// onNode runs a shell script on the node, stdin as given, and returns its
// standard output; the error carries standard error.
func (c config) onNode(ctx context.Context, stdin []byte, script string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := append(append([]string{}, c.NodeExec...), "sh", "-c", script)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("on the node: %q: %w: %s", script, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// kubectl runs the suite's kubectl against the cluster.
func (c config) kubectl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Kubectl, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// eventually calls cond every interval until it returns nil. An error
// from cond means "not yet" and says why; one wrapped by stop ends the wait
// at once. The error returned names cond's last answer.
func eventually(ctx context.Context, interval, timeout time.Duration, cond func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(ctx context.Context) (bool, error) {
		last = cond(ctx)
		var s stopError
		if errors.As(last, &s) {
			return false, s.err
		}
		return last == nil, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("%w (last: %s)", err, last.Error())
	}
	return err
}

// stopError ends eventually's wait.
type stopError struct{ err error }

func (s stopError) Error() string { return s.err.Error() }

func stop(err error) error { return stopError{err} }
